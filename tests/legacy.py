"""Databases made by others: the reference tool (seed 002) and earlier versions of monitor.

make_reference_db() writes a file the way the reference tool does (its schema file, WAL, UUID v4
ids, `toISOString()` times, `datetime('now')` created_at, 0/1 booleans), with rows in every state:
completed, failed with an error message, partial, still running (stale), lone executions with no
orchestration, and times written in SQLite's own 'YYYY-MM-DD HH:MM:SS' form.
make_monitor_db() writes a database as monitor made it at an earlier schema version.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def iso(moment: datetime) -> str:
    """JavaScript's Date.toISOString(): what the reference tool stores in started_at/completed_at."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sqlite_time(moment: datetime) -> str:
    """SQLite's datetime('now') form, as created_at (and rows written by hand) hold it."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# (session, description, status, started hours before now, minutes it ran or None, executions)
# executions: (agent, status, seconds it ran or None, retries, self_healed, created, modified, error)
ORCHESTRATIONS = [
    ("ref-ok", "Build the login page", "completed", 3, 6, [
        ("planner", "completed", 4.2, 0, 0, 1, 0, None),
        ("coder", "completed", 61.5, 1, 1, 3, 5, None),
    ]),
    ("ref-fail", "Fix the flaky test", "failed", 2, 4, [
        ("coder", "completed", 30.0, 0, 0, 0, 2, None),
        ("tester", "failed", 95.0, 2, 0, 0, 0, "AssertionError: expected 200, got 500\n  at test_login (tests/login.test.ts:42)"),
    ]),
    ("ref-partial", "Upgrade dependencies", "partial", 1, 9, [
        ("coder", "completed", 120.0, 0, 0, 0, 7, None),
        ("reviewer", "failed", 600.0, 0, 0, 0, 0, "TimeoutError: agent exceeded 600s"),
    ]),
    ("ref-running", "Refactor the API", "running", 5, None, [
        ("coder", "in_progress", None, 0, 0, 0, 0, None),
    ]),
    ("ref-old", "Last month's run", "completed", 24 * 40, 2, [
        ("planner", "completed", 12.0, 0, 0, 0, 0, None),
    ]),
]
LONE_EXECUTIONS = [
    ("lone-ok", "linter", "completed", 4, 2.5, None),
    ("lone-fail", "deployer", "failed", 4, 8.0, "permission denied: /var/run/deploy.sock"),
]
#: Written with SQLite's time form in started_at/completed_at, as a hand-made row would be.
SQLITE_TIME_SESSION = ("ref-sqlite-time", "Written by hand", 7)


def make_reference_db(path: Path, now: datetime) -> dict[str, str]:
    """The file, and {session_id or agent_session_id: its UUID} for every row."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript((FIXTURES / "reference_schema.sql").read_text())
    ids: dict[str, str] = {}
    for session, description, status, hours_ago, minutes, executions in ORCHESTRATIONS:
        started = now - timedelta(hours=hours_ago)
        done = started + timedelta(minutes=minutes) if minutes is not None else None
        ids[session] = oid = str(uuid.uuid4())
        completed = sum(1 for e in executions if e[1] == "completed")
        failed = sum(1 for e in executions if e[1] == "failed")
        conn.execute(
            "INSERT INTO orchestrations (id, session_id, task_description, status, started_at, completed_at,"
            " duration_ms, total_tasks, completed_tasks, failed_tasks, git_commit_hash, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (oid, session, description, status, iso(started), done and iso(done),
             minutes and int(minutes * 60_000), len(executions), completed if done else 0,
             failed if done else 0, "9f2c1e7", sqlite_time(started)))
        for n, (agent, e_status, seconds, retries, healed, created, modified, error) in enumerate(executions, 1):
            e_started = started + timedelta(seconds=10 * n)
            e_done = e_started + timedelta(seconds=seconds) if seconds is not None else None
            agent_session = f"{session}-{agent}-{n}"
            ids[agent_session] = eid = str(uuid.uuid4())
            conn.execute(
                "INSERT INTO agent_executions (id, orchestration_id, agent_session_id, agent_name, task_id,"
                " task_number, status, started_at, completed_at, duration_ms, retry_count, self_healed,"
                " files_created, files_modified, error_message, session_log_path, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (eid, oid, agent_session, agent, f"T-{n}", n, e_status, iso(e_started), e_done and iso(e_done),
                 seconds and int(seconds * 1000), retries, healed, created, modified, error,
                 f"logs/{agent_session}.log", sqlite_time(e_started)))
    for agent_session, agent, status, hours_ago, seconds, error in LONE_EXECUTIONS:
        started = now - timedelta(hours=hours_ago)
        ids[agent_session] = eid = str(uuid.uuid4())
        conn.execute(
            "INSERT INTO agent_executions (id, orchestration_id, agent_session_id, agent_name, status,"
            " started_at, completed_at, duration_ms, error_message)"
            " VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?)",
            (eid, agent_session, agent, status, iso(started), iso(started + timedelta(seconds=seconds)),
             int(seconds * 1000), error))
    session, description, hours_ago = SQLITE_TIME_SESSION
    started = now - timedelta(hours=hours_ago)
    ids[session] = oid = str(uuid.uuid4())
    conn.execute("INSERT INTO orchestrations (id, session_id, task_description, status, started_at, completed_at,"
                 " duration_ms, total_tasks, completed_tasks) VALUES (?, ?, ?, 'completed', ?, ?, 60000, 1, 1)",
                 (oid, session, description, sqlite_time(started), sqlite_time(started + timedelta(minutes=1))))
    ids[f"{session}-worker-1"] = eid = str(uuid.uuid4())
    conn.execute("INSERT INTO agent_executions (id, orchestration_id, agent_session_id, agent_name, status,"
                 " started_at, completed_at, duration_ms) VALUES (?, ?, ?, 'worker', 'completed', ?, ?, 60000)",
                 (eid, oid, f"{session}-worker-1", sqlite_time(started), sqlite_time(started + timedelta(minutes=1))))
    conn.commit()
    conn.close()
    return ids


def make_monitor_db(path: Path, version: int, now: datetime) -> None:
    """A database as monitor made it at schema `version` (1-3: the versions that shipped before 4), with a finished orchestration, a
    failed execution, a lone one, and (from version 2) events."""
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / f"monitor_v{version}.sql").read_text())
    t = iso(now - timedelta(hours=2))
    conn.execute("INSERT INTO orchestrations (id, session_id, status, started_at, completed_at, duration_ms,"
                 " total_tasks, completed_tasks, failed_tasks) VALUES (7, 'v-run', 'partial', ?, ?, 60000, 2, 1, 1)",
                 (t, t))
    conn.execute("INSERT INTO agent_executions (id, orchestration_id, agent_session_id, agent_name, status,"
                 " started_at, completed_at, duration_ms, cost_usd, input_tokens) VALUES"
                 " (11, 7, 'v-a', 'coder', 'completed', ?, ?, 1000, 0.5, 1200),"
                 " (12, 7, 'v-b', 'tester', 'failed', ?, ?, 2000, NULL, NULL),"
                 " (13, NULL, 'v-lone', 'linter', 'completed', ?, ?, 300, NULL, NULL)", (t, t, t, t, t, t))
    conn.execute("UPDATE agent_executions SET error_message = 'tests failed: 3 of 412' WHERE id = 12")
    if version >= 2:
        conn.execute("INSERT INTO events (orchestration_id, execution_id, timestamp, type, message)"
                     " VALUES (7, 12, ?, 'error', 'pytest exited 1: connection refused')", (t,))
    conn.commit()
    conn.close()


def reference_export(path: Path, session: str | None = None) -> object:
    """What the reference tool's `export` prints for its database at path (seed 002): every
    orchestration with its executions nested, or {orchestration, executions} for one session;
    rows as SQLite gives them (UUID ids, 0/1 booleans, created_at in SQLite's time form)."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row

    def executions(orchestration_id: str) -> list[dict]:
        return [dict(r) for r in conn.execute(
            "SELECT * FROM agent_executions WHERE orchestration_id = ? ORDER BY started_at", (orchestration_id,))]

    try:
        if session is not None:
            row = dict(conn.execute("SELECT * FROM orchestrations WHERE session_id = ?", (session,)).fetchone())
            return {"orchestration": row, "executions": executions(row["id"])}
        return [{**dict(o), "executions": executions(o["id"])}
                for o in conn.execute("SELECT * FROM orchestrations ORDER BY started_at DESC")]
    finally:
        conn.close()
