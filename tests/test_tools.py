"""`monitor tools`: tool calls from Claude Code hooks and service calls from the Python API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from monitor import Tracker
from monitor.capture.claude.hook import handle_payload
from monitor.cli import cli
from monitor.read.tools import tool_report

T0 = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_HOOK_LOG", str(tmp_path / "hook.log"))
    path = tmp_path / "tools.db"
    calls = [("Bash", 120, None, False), ("Bash", 80, "exit 1", False), ("Bash", 4000, None, True),
             ("mcp__github__create_issue", 900, None, False), ("mcp__github__list_issues", 300, None, False),
             ("mcp__linear__search", 1500, "timeout", False), ("Read", None, None, False)]
    for n, (tool, took, error, interrupt) in enumerate(calls):
        payload = {"session_id": "s1", "hook_event_name": "PostToolUseFailure" if error else "PostToolUse",
                   "tool_name": tool, "tool_input": {}, "tool_use_id": f"toolu_{n}", "is_interrupt": interrupt,
                   **({"duration_ms": took} if took is not None else {}), **({"error": error} if error else {})}
        assert handle_payload(json.dumps(payload), path, clock=lambda n=n: T0 + timedelta(minutes=n))
        assert handle_payload(json.dumps(payload), path, clock=lambda n=n: T0 + timedelta(minutes=n))  # a replay
    with Tracker(path, clock=lambda: T0 + timedelta(hours=1)) as t:
        t.start_agent_execution("job-1", "etl")
        assert t.record_service_call("job-1", "postgres", "insert_rows", duration_ms=45)
        assert t.record_service_call("job-1", "postgres", "insert_rows", duration_ms=55, outcome="failed")
        assert t.record_service_call("job-1", "s3", "put_object") is True
    return path


def test_tool_calls_by_tool(db_path):
    with Tracker(db_path) as t:
        found = {r["tool"]: r for r in tool_report(t.db)}
    assert [(r["tool"], r["calls"], r["failed"], r["interrupted"], r["p50_duration_ms"], r["p95_duration_ms"])
            for r in found.values()] == [
        ("Bash", 3, 1, 1, 120, 4000), ("insert_rows", 2, 1, 0, 45, 55), ("Read", 1, 0, 0, None, None),
        ("mcp__github__create_issue", 1, 0, 0, 900, 900), ("mcp__github__list_issues", 1, 0, 0, 300, 300),
        ("mcp__linear__search", 1, 1, 0, 1500, 1500), ("put_object", 1, 0, 0, None, None)]
    assert found["Bash"]["failure_rate"] == 66.7


def test_tool_calls_by_server_and_since(db_path):
    with Tracker(db_path) as t:
        by_server = [(r["server"], r["calls"], r["failed"], r["p50_duration_ms"]) for r in tool_report(t.db, by="server")]
        recent = tool_report(t.db, since="2026-11-20T12:30:00.000Z", by="server")
    assert by_server == [(None, 4, 1, 120), ("github", 2, 0, 300), ("postgres", 2, 1, 45), ("linear", 1, 1, 1500),
                         ("s3", 1, 0, None)]
    assert [r["server"] for r in recent] == ["postgres", "s3"]


def test_record_service_call_never_raises(db_path):
    with Tracker(db_path) as t:
        with pytest.warns(UserWarning, match="no agent execution"):
            assert t.record_service_call("nobody", "s3", "get") is False
        with pytest.warns(UserWarning, match="outcome must be"):
            assert t.record_service_call("job-1", "s3", "get", outcome="maybe") is False


def test_tools_command(db_path):
    result = CliRunner().invoke(cli, ["tools", "--by", "server", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == [
        "server        calls    failed    interrupted    failure rate    p50    p95    max",
        "----------  -------  --------  -------------  --------------  -----  -----  -----",
        "(built-in)        4         1              1           50.0%  120ms   4.0s   4.0s",
    ]
    result = CliRunner().invoke(cli, ["tools", "--json", "--since", "2026-11-21", "--db", str(db_path)])
    assert result.exit_code == 0 and json.loads(result.output) == []


def test_tools_since_uses_the_time_index(db_path):
    with Tracker(db_path) as t:
        # Closing a connection gathers statistics (PRAGMA optimize): on these 8 rows they rightly
        # choose a scan. The index is what a table of any size gets without them.
        t.db.execute("ANALYZE sqlite_master")
        t.db.execute("DELETE FROM sqlite_stat1")
        t.db.execute("ANALYZE sqlite_master")
        plan = " ".join(str(r[-1]) for r in t.db.execute(
            "EXPLAIN QUERY PLAN SELECT tool, outcome, duration_ms FROM tool_calls WHERE timestamp >= ?", ("x",)))
    assert "idx_tool_calls_timestamp" in plan
