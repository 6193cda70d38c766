"""`monitor run`'s records: its start, its events and its end as plain records, written at once or
spooled, and failing the runs whose `monitor run` process was killed before it could record their end.

A record is a dict that JSON holds as it is (the spool stores it): its kind, the moment it
happened (`at`, already in the stored format) and its fields. Applying one is idempotent: a start
of an execution that exists changes nothing, an end of one that already ended changes nothing, an
event already recorded (its run's id and number) is not recorded again.
"""

from __future__ import annotations

import sqlite3

from monitor.capture.processes import ProcessIdentity, host_name, is_gone
from monitor.capture.scrub import redact, redact_head, redact_value
from monitor.store.db import Database
from monitor.store.writes import end_execution, insert_event, start_execution
from monitor.timeutil import format_timestamp, utcnow

START, END, EVENT = "run_start", "run_end", "run_event"
KILLED = "monitor run was killed"


def start_record(agent_session_id: str, agent_name: str, at: str, runner: ProcessIdentity, *,
                 session: str | None = None, task_id: str | None = None,
                 git_commit_hash: str | None = None) -> dict:
    return {"kind": START, "at": at, "agent_session_id": agent_session_id, "agent_name": agent_name,
            "session": session, "task_id": task_id, "git_commit_hash": git_commit_hash, "runner": list(runner)}


def end_record(agent_session_id: str, at: str, status: str, exit_code: int, error_message: str | None,
               retry_count: int = 0, self_healed: bool = False) -> dict:
    """A run's end, its error message redacted (see event_record)."""
    return {"kind": END, "at": at, "agent_session_id": agent_session_id, "status": status,
            "exit_code": exit_code, "error_message": None if error_message is None else redact(error_message),
            "retry_count": retry_count, "self_healed": self_healed}


def event_record(agent_session_id: str, at: str, seq: int, event_type: str, message: str,
                 payload: dict | None = None) -> dict:
    """An event of a run (started, attempt, exit, signal, timeout, retry): seq numbers the run's
    events, so that one written twice (once, then again from the spool) is recorded once.

    Its message and payload are redacted here, as the record is made: the spool, a file on disk
    that a record goes to when the database is busy, never holds a secret (the started event tells
    the command line), and the record says the same whichever way it is stored (written again at
    insert_event: redacting is idempotent)."""
    from monitor.capture.events import MESSAGE_LIMIT

    return {"kind": EVENT, "at": at, "agent_session_id": agent_session_id, "seq": seq, "type": event_type,
            "message": redact_head(message, MESSAGE_LIMIT), "payload": redact_value(payload)}


def apply_start(conn: sqlite3.Connection, record: dict) -> None:
    """Record a run's start; the same start again changes nothing, another run's id is refused."""
    pid, host, start = record["runner"]
    found = conn.execute("SELECT runner_pid, runner_host, runner_start FROM agent_executions"
                         " WHERE agent_session_id = ?", (record["agent_session_id"],)).fetchone()
    if found is not None:
        if tuple(found) == (pid, host, start):
            return
        raise ValueError(f"execution id {record['agent_session_id']!r} is already recorded by another run")
    start_execution(conn, record["agent_session_id"], record["agent_name"], record["at"],
                    session_id=record.get("session"), git_commit_hash=record.get("git_commit_hash"),
                    task_id=record.get("task_id"), runner=(pid, host, start))


def apply_end(conn: sqlite3.Connection, record: dict) -> None:
    row = conn.execute("SELECT id, orchestration_id FROM agent_executions WHERE agent_session_id = ?",
                       (record["agent_session_id"],)).fetchone()
    if row is None:
        raise LookupError(f"no execution {record['agent_session_id']!r} to end")
    end_execution(conn, row[0], row[1], record["status"], record["at"],
                  {"error_message": record.get("error_message"), "exit_code": record.get("exit_code"),
                   "retry_count": record.get("retry_count") or None,
                   "self_healed": 1 if record.get("self_healed") else None})


def apply_event(conn: sqlite3.Connection, record: dict) -> None:
    from monitor.capture.events import insert_event as insert_clipped

    row = conn.execute("SELECT id, orchestration_id FROM agent_executions WHERE agent_session_id = ?",
                       (record["agent_session_id"],)).fetchone()
    if row is None:
        raise LookupError(f"no execution {record['agent_session_id']!r} for its event")
    insert_clipped(conn, record["at"], record["type"], record["message"], record.get("payload"), row[0], row[1],
                   dedup_key=f"run:{record['agent_session_id']}:{record['seq']}")


# -- runs whose `monitor run` was killed -----------------------------------------------------

def _runs_here(db: Database) -> list[tuple[int, int | None, bool]]:
    """(execution id, orchestration id, whether its `monitor run` is gone) of the executions in
    progress recorded by a `monitor run` on this host."""
    rows = db.execute(
        "SELECT id, orchestration_id, runner_pid, runner_host, runner_start FROM agent_executions"
        " WHERE status = 'in_progress' AND runner_host = ? AND runner_pid IS NOT NULL", (host_name(),)).fetchall()
    return [(row[0], row[1], is_gone(ProcessIdentity(row[2], row[3], row[4]))) for row in rows]


def killed_runs(db: Database) -> list[tuple[int, int | None]]:
    """(execution id, orchestration id) of the executions in progress whose `monitor run` process,
    on this host, is gone."""
    return [(execution, orchestration) for execution, orchestration, gone in _runs_here(db) if gone]


def live_runs(db: Database) -> set[int]:
    """The executions in progress whose `monitor run` is still running on this host: however long
    they take, they are not stale (`monitor reap` spares them)."""
    return {execution for execution, _, gone in _runs_here(db) if not gone}


def fail_killed(db: Database, runs: list[tuple[int, int | None]], now: str | None = None) -> int:
    """Record those runs failed ("monitor run was killed", with a status_changed event), unless
    their end came meanwhile; return how many were."""
    if not runs:
        return 0
    now = now or format_timestamp(utcnow())
    failed = 0
    with db.transaction() as conn:
        for execution_id, orchestration_id in runs:
            if end_execution(conn, execution_id, orchestration_id, "failed", now, {"error_message": KILLED}):
                insert_event(conn, now, "status_changed", f"failed: {KILLED}",
                             '{"status":"failed","reason":"runner gone"}', execution_id, orchestration_id)
                failed += 1
    return failed
