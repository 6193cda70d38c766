"""A database made by the reference tool (seed 002) is adopted on first open, by any command, by
many processes at once: every row, link and UUID kept, a copy of the original left beside it, and
every command right on it afterwards."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import T0
from legacy import LONE_EXECUTIONS, ORCHESTRATIONS, SQLITE_TIME_SESSION, make_monitor_db, make_reference_db

from monitor import Tracker, open_db
from monitor.cli import cli

CANONICAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.backup-*"))


@pytest.fixture
def ref(tmp_path) -> tuple[Path, dict[str, str]]:
    """A reference-tool file whose rows are recent (the reports' windows reach them)."""
    path = tmp_path / "reference.db"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return path, make_reference_db(path, now)


def cli_json(path: Path, *args: str):
    result = CliRunner().invoke(cli, [*args, "--db", str(path)])
    assert result.exit_code in (0, 3, 4), result.output
    return json.loads(result.stdout)


def test_every_row_link_and_uuid_is_kept_and_new_ids_are_integers(ref):
    path, ids = ref
    before = {r[0]: r[1:] for r in rows(path, "SELECT e.agent_session_id, e.orchestration_id, e.status,"
                                              " e.error_message, e.self_healed FROM agent_executions e")}
    open_db(path).close()
    after = {r[0]: r[1:] for r in rows(path, "SELECT e.agent_session_id, o.uuid, e.status, e.error_message,"
                                             " e.self_healed FROM agent_executions e"
                                             " LEFT JOIN orchestrations o ON o.id = e.orchestration_id")}
    assert after == before
    assert dict(rows(path, "SELECT session_id, uuid FROM orchestrations")) == {
        k: v for k, v in ids.items() if k in {o[0] for o in ORCHESTRATIONS} | {SQLITE_TIME_SESSION[0]}}
    assert dict(rows(path, "SELECT agent_session_id, uuid FROM agent_executions")) == {
        k: v for k, v in ids.items() if k in before}
    assert {r[0] for r in rows(path, "SELECT typeof(id) FROM orchestrations UNION SELECT typeof(id)"
                                     " FROM agent_executions")} == {"integer"}
    times = rows(path, "SELECT started_at, completed_at, created_at FROM orchestrations UNION ALL"
                       " SELECT started_at, completed_at, created_at FROM agent_executions")
    assert all(CANONICAL.match(t) for row in times for t in row if t is not None)
    [(hand_written,)] = rows(copy := backups(path)[0], "SELECT started_at FROM orchestrations"
                                                        " WHERE session_id = 'ref-sqlite-time'")
    assert rows(path, "SELECT started_at FROM orchestrations WHERE session_id = 'ref-sqlite-time'") == [
        (hand_written.replace(" ", "T") + ".000Z",)]
    assert copy.exists()


def test_a_copy_of_the_original_is_kept_and_the_upgrade_said_so_once(ref):
    path, _ = ref
    original = rows(path, "SELECT * FROM agent_executions ORDER BY id")
    first = subprocess.run([sys.executable, "-m", "monitor", "list", "--json", "--db", str(path)],
                           capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    [copy] = backups(path)
    assert f"kept as {copy}" in first.stderr and first.stderr.count("\n") == 1
    assert copy.stat().st_mode & 0o777 == 0o600
    assert rows(copy, "SELECT * FROM agent_executions ORDER BY id") == original
    assert rows(copy, "PRAGMA user_version") == [(0,)]
    again = subprocess.run([sys.executable, "-m", "monitor", "list", "--json", "--db", str(path)],
                           capture_output=True, text=True)
    assert again.returncode == 0 and again.stderr == ""
    assert backups(path) == [copy]


def test_the_reference_tool_can_no_longer_write_to_an_adopted_file(ref):
    path, _ = ref
    open_db(path).close()
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="datatype mismatch"):
        conn.execute("INSERT INTO orchestrations (id, session_id, started_at)"
                     " VALUES ('6f1c9a0e-8e43-4d3b-9a55-0f0b6c1d2e3f', 'from-reference', '2025-10-05T13:38:38.123Z')")
    conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("origin", ["reference", "monitor v3"])
def test_eight_processes_opening_an_old_file_at_once_lose_nothing(tmp_path, origin):
    path = tmp_path / "old.db"
    if origin == "reference":
        make_reference_db(path, T0)
    else:
        make_monitor_db(path, 3, T0)
    existing = rows(path, "SELECT agent_session_id, status FROM agent_executions ORDER BY agent_session_id")
    children = [subprocess.Popen([sys.executable, "-m", "monitor", "run", "--db", str(path), "--agent", f"p{i}",
                                  "--session", "joined", "--", sys.executable, "-c", "pass"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
    results = [(child.wait(timeout=120), child.stderr.read()) for child in children]
    assert [code for code, _ in results] == [0] * 8, results
    assert sum("kept as" in err for _, err in results) == 1
    assert len(backups(path)) == 1
    recorded = rows(path, "SELECT e.agent_name, e.status FROM agent_executions e JOIN orchestrations o"
                          " ON o.id = e.orchestration_id WHERE o.session_id = 'joined' ORDER BY agent_name")
    assert recorded == [(f"p{i}", "completed") for i in range(8)]
    kept = rows(path, "SELECT agent_session_id, status FROM agent_executions WHERE agent_name NOT GLOB 'p[0-9]'"
                      " ORDER BY agent_session_id")
    assert kept == existing
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]
    assert rows(path, "PRAGMA foreign_key_check") == []


def test_every_report_is_right_on_an_adopted_file(ref):
    path, ids = ref
    sessions = {o[0]: o[2] for o in ORCHESTRATIONS} | {SQLITE_TIME_SESSION[0]: "completed"}
    listed = cli_json(path, "list", "--json")
    assert {o["session_id"]: o["status"] for o in listed} == sessions
    assert {o["session_id"]: o["executions"] for o in listed}["ref-fail"] == 2

    shown = cli_json(path, "show", "ref-fail", "--json")
    assert (shown["uuid"], shown["executions"]["executions"], shown["executions"]["failed"]) == (
        ids["ref-fail"], 2, 1)
    assert cli_json(path, "show", ids["ref-fail"], "--json")["session_id"] == "ref-fail"

    coder = cli_json(path, "agent", "coder", "--json")
    assert (coder["executions"], coder["completed"], coder["in_progress"]) == (4, 3, 1)

    executions = cli_json(path, "executions", "ref-fail", "--json")
    assert [(e["agent_name"], e["status"], e["retry_count"]) for e in executions] == [
        ("coder", "completed", 0), ("tester", "failed", 2)]
    assert executions[1]["error_message"].startswith("AssertionError: expected 200")
    assert {e["uuid"] for e in executions} == {ids["ref-fail-coder-1"], ids["ref-fail-tester-2"]}

    health = cli_json(path, "health", "24", "--json")
    assert health["stale"]["count"] == 1 and health["status"] == "unhealthy"
    assert health["executions"]["failed"] == 3

    performance = {a["agent_name"]: a for a in cli_json(path, "performance", "--json")}
    assert set(performance) == {"planner", "coder", "tester", "reviewer", "linter", "deployer", "worker"}
    assert performance["planner"]["executions"] == 2

    failed = cli_json(path, "failures", "--json")
    assert {f["session_id"]: f["first_error"].splitlines()[0] for f in failed} == {
        "ref-fail": "AssertionError: expected 200, got 500", "ref-partial": "TimeoutError: agent exceeded 600s"}
    assert {e["agent_session_id"] for e in cli_json(path, "failures", "--executions", "--json")} == {
        "ref-fail-tester-2", "ref-partial-reviewer-2", "lone-fail"}

    assert [r["agent_session_id"] for r in cli_json(path, "search", "permission denied", "--json")] == ["lone-fail"]
    assert [r["agent_session_id"] for r in cli_json(path, "search", "AssertionError", "--json")] == [
        "ref-fail-tester-2"]
    assert cli_json(path, "logs", "ref-fail", "--json") == []
    assert cli_json(path, "cost", "--json") == []  # the reference tool recorded no tokens
    with Tracker(path) as t:
        t.start_agent_execution("priced", "coder")
        t.complete_agent_execution("priced", "completed", model="claude-sonnet-4-5", input_tokens=1000, cost_usd=0.5)
    assert {r["agent"]: (r["executions"], r["cost_usd"]) for r in cli_json(path, "cost", "--json")} == {
        "coder": (1, 0.5)}


def test_export_and_cleanup_on_an_adopted_file(ref, tmp_path):
    path, ids = ref
    exported = json.loads(CliRunner().invoke(cli, ["export", "--db", str(path)]).stdout)
    by_session = {o["session_id"]: o for o in exported["orchestrations"]}
    assert by_session["ref-ok"]["uuid"] == ids["ref-ok"]
    assert [e["uuid"] for e in by_session["ref-ok"]["executions"]] == [ids["ref-ok-planner-1"], ids["ref-ok-coder-2"]]
    assert {e["agent_session_id"] for e in exported["unassigned_executions"]} == {e[0] for e in LONE_EXECUTIONS}

    cleaned = CliRunner().invoke(cli, ["cleanup", "30", "--json", "--db", str(path)])
    assert cleaned.exit_code == 0, cleaned.output
    assert (json.loads(cleaned.stdout)["orchestrations"], json.loads(cleaned.stdout)["executions"]) == (1, 1)
    assert "ref-old" not in {o["session_id"] for o in cli_json(path, "list", "--json")}
    assert rows(path, "SELECT count(*) FROM agent_executions WHERE agent_session_id LIKE 'ref-old%'") == [(0,)]


def test_the_python_api_works_on_an_adopted_file(ref):
    path, ids = ref
    with Tracker(path) as t:
        t.complete_agent_execution("ref-running-coder-1", "completed", files_modified=4)
        new_id = t.start_agent_execution("late-helper", "helper", orchestration="ref-running")
        t.complete_agent_execution("late-helper", "failed", "gave up")
        t.start_orchestration("brand-new")
        row = t.db.execute("SELECT status, completed_tasks, failed_tasks FROM orchestrations"
                           " WHERE session_id = 'ref-running'").fetchone()
        assert tuple(row) == ("partial", 1, 1)
        fresh = t.db.execute("SELECT id, uuid FROM orchestrations WHERE session_id = 'brand-new'").fetchone()
    assert isinstance(new_id, int) and isinstance(fresh[0], int) and fresh[1] is None  # not a reference row


def test_a_reference_to_a_missing_orchestration_becomes_a_lone_execution(tmp_path, caplog):
    path = tmp_path / "dangling.db"
    make_reference_db(path, T0)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE agent_executions SET orchestration_id = 'no-such-uuid' WHERE agent_session_id = 'lone-ok'")
    conn.commit()
    conn.close()
    open_db(path).close()
    assert rows(path, "SELECT orchestration_id FROM agent_executions WHERE agent_session_id = 'lone-ok'") == [(None,)]
    assert "1 row of agent_executions pointed to no row of orchestrations" in caplog.text


def test_the_hook_adopts_a_reference_file_silently_and_notes_it_in_its_log(tmp_path):
    path = tmp_path / "reference.db"
    make_reference_db(path, T0)
    log = tmp_path / "hook.log"
    payload = (Path(__file__).parent / "payloads" / "session_start.json").read_bytes()
    done = subprocess.run([sys.executable, "-m", "monitor.hooks", "--db", str(path)], input=payload,
                          capture_output=True, env={**os.environ, "MONITOR_HOOK_LOG": str(log)})
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert f"original file is kept as {backups(path)[0]}" in log.read_text()
    assert rows(path, "SELECT count(*) FROM orchestrations") == [(len(ORCHESTRATIONS) + 2,)]
