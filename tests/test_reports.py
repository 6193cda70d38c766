from __future__ import annotations

from datetime import timedelta

import pytest

from monitor import NotFound
from monitor.read.queries import Filters, list_orchestrations
from monitor.timeutil import format_timestamp
from monitor.read.reports import agent_report, failures, health, orchestration_summary, performance

from conftest import T0


def record(tracker, clock, agent, seconds, status="completed", session=None, **complete):
    """One execution of `agent` lasting `seconds`, started at the clock's current time."""
    agent_session_id = f"{agent}-{tracker.db.execute('SELECT count(*) FROM agent_executions').fetchone()[0]}"
    tracker.start_agent_execution(agent_session_id, agent, session)
    clock.advance(seconds=seconds)
    if status != "in_progress":
        tracker.complete_agent_execution(agent_session_id, status, **complete)
    return agent_session_id


def test_performance_gives_percentiles_retries_tokens_and_cost_per_agent(tracker, clock):
    for seconds in range(1, 21):  # 1..20 s
        record(tracker, clock, "coder", seconds, retry_count=1, input_tokens=100, output_tokens=10,
               cost_usd=0.01)
    record(tracker, clock, "tester", 5, status="failed")
    record(tracker, clock, "tester", 7)
    by_agent = {r["agent_name"]: r for r in performance(tracker.db)}
    coder = by_agent["coder"]
    assert (coder["executions"], coder["completed"], coder["failed"], coder["success_rate"]) == (20, 20, 0, 100.0)
    assert (coder["min_duration_ms"], coder["max_duration_ms"]) == (1000, 20_000)
    assert coder["avg_duration_ms"] == 10_500
    assert coder["p50_duration_ms"] == 10_000  # nearest rank: 10th of 20
    assert coder["p95_duration_ms"] == 19_000  # 19th of 20
    assert (coder["retries"], coder["input_tokens"], coder["output_tokens"]) == (20, 2000, 200)
    assert coder["cost_usd"] == pytest.approx(0.2)
    tester = by_agent["tester"]
    assert (tester["executions"], tester["failed"], tester["success_rate"]) == (2, 1, 50.0)
    assert tester["cost_usd"] is None and tester["input_tokens"] is None
    assert [r["agent_name"] for r in performance(tracker.db)] == ["coder", "tester"]


def test_performance_since_only_counts_recent_executions(tracker, clock):
    record(tracker, clock, "old", 1)
    clock.advance(days=3)
    record(tracker, clock, "new", 1)
    since = format_timestamp(clock.now - timedelta(days=1))
    assert [r["agent_name"] for r in performance(tracker.db, since)] == ["new"]


def test_agent_report_and_unknown_agent(tracker, clock):
    record(tracker, clock, "coder", 2, files_created=2)
    record(tracker, clock, "coder", 4, status="failed", error_message="compile error")
    report = agent_report(tracker.db, "coder")
    assert (report["executions"], report["failed"], report["success_rate"], report["files_created"]) == (2, 1, 50.0, 2)
    assert (report["p50_duration_ms"], report["p95_duration_ms"]) == (2000, 4000)
    assert [e["error_message"] for e in report["recent_executions"]] == ["compile error", None]
    with pytest.raises(NotFound, match="nobody"):
        agent_report(tracker.db, "nobody")


def test_summary_of_an_orchestration(tracker, clock):
    tracker.start_orchestration("s1", "demo", total_tasks=3)
    record(tracker, clock, "a", 1, session="s1", cost_usd=0.5)
    record(tracker, clock, "b", 3, status="failed", session="s1", cost_usd=0.25)
    record(tracker, clock, "b", 1, status="in_progress", session="s1")
    summary = orchestration_summary(tracker.db, "s1")
    assert summary["task_description"] == "demo"
    stats = summary["executions"]
    assert (stats["executions"], stats["completed"], stats["failed"], stats["in_progress"]) == (3, 1, 1, 1)
    assert stats["cost_usd"] == pytest.approx(0.75)
    assert [(a["agent_name"], a["executions"], a["failed"]) for a in summary["agents"]] == [("a", 1, 0), ("b", 2, 1)]
    with pytest.raises(NotFound):
        orchestration_summary(tracker.db, "s2")


def test_failures_lists_failed_and_partial_orchestrations_newest_first(tracker, clock):
    for name, statuses in [("ok", ["completed"]), ("bad", ["failed"]), ("mixed", ["completed", "failed"])]:
        tracker.start_orchestration(name)
        for i, status in enumerate(statuses):
            record(tracker, clock, f"agent{i}", 1, status=status, session=name,
                   error_message=f"{name} broke" if status == "failed" else None)
        tracker.complete_orchestration(name)
        clock.advance(minutes=1)
    found = failures(tracker.db)
    assert [(f["session_id"], f["status"], f["first_error"]) for f in found] == [
        ("mixed", "partial", "mixed broke"), ("bad", "failed", "bad broke")]
    assert found[0]["completion_rate"] == 50.0
    assert [f["session_id"] for f in failures(tracker.db, limit=1)] == ["mixed"]
    assert [f["session_id"] for f in failures(tracker.db, filters=Filters(status="failed"))] == ["bad"]
    assert [f["session_id"] for f in failures(tracker.db, filters=Filters(agent="agent1"))] == ["mixed"]
    execs = failures(tracker.db, executions=True)
    assert [e["error_message"] for e in execs] == ["mixed broke", "bad broke"]


def test_list_filters(tracker, clock):
    tracker.start_orchestration("s1")
    record(tracker, clock, "coder", 1, session="s1")
    clock.advance(days=2)
    tracker.start_orchestration("s2")
    record(tracker, clock, "tester", 1, session="s2", status="failed")
    tracker.complete_orchestration("s2")
    assert [o["session_id"] for o in list_orchestrations(tracker.db)] == ["s2", "s1"]
    assert [o["session_id"] for o in list_orchestrations(tracker.db, Filters(status="failed"))] == ["s2"]
    assert [o["session_id"] for o in list_orchestrations(tracker.db, Filters(agent="coder"))] == ["s1"]
    assert [o["session_id"] for o in list_orchestrations(tracker.db, Filters(limit=1))] == ["s2"]
    assert [o["session_id"] for o in list_orchestrations(tracker.db, Filters(since="2026-11-21T00:00:00.000Z"))] == ["s2"]
    assert list_orchestrations(tracker.db)[0]["executions"] == 1


def test_health_windows_stale_detection_and_verdict(tracker, clock):
    clock.now = T0 - timedelta(hours=30)
    record(tracker, clock, "old", 1, status="failed")  # outside the 24 h window
    record(tracker, clock, "stuck", 1, status="in_progress")  # started 30 h ago, never finished
    clock.now = T0 - timedelta(hours=2)
    for _ in range(19):
        record(tracker, clock, "good", 1)
    record(tracker, clock, "bad", 1, status="failed")
    report = health(tracker.db, 24, now=T0)
    assert report["executions"]["executions"] == 20
    assert report["executions"]["success_rate"] == 95.0
    assert report["stale"]["count"] == 1
    assert report["stale"]["executions"][0]["agent_name"] == "stuck"
    assert report["stale"]["executions"][0]["running_ms"] == 30 * 3600 * 1000 - 1000
    assert report["status"] == "degraded"  # rate is fine, but one execution is stuck
    assert any("in progress" in r for r in report["reasons"])
    assert health(tracker.db, 24, now=T0, stale_after=timedelta(days=2))["status"] == "healthy"
    assert health(tracker.db, 48, now=T0, stale_after=timedelta(days=2))["status"] == "degraded"  # 20/22


def test_health_unhealthy_below_fail_threshold_and_idle_is_healthy(tracker, clock):
    assert health(tracker.db, 24, now=T0)["status"] == "healthy"
    assert health(tracker.db, 24, now=T0)["reasons"] == ["no activity in the last 24h"]
    clock.now = T0 - timedelta(hours=1)
    record(tracker, clock, "a", 1, status="failed")
    record(tracker, clock, "a", 1)
    report = health(tracker.db, 24, now=T0)
    assert (report["status"], report["executions"]["success_rate"]) == ("unhealthy", 50.0)
    assert health(tracker.db, 24, now=T0, fail_below=40, warn_below=60)["status"] == "degraded"


def test_health_compares_old_format_timestamps_correctly(db_path):
    """A reference-format row from 11:00 on the cutoff day is outside a window starting at 12:00."""
    from monitor import open_db

    with open_db(db_path) as db, db.transaction() as conn:
        conn.execute("INSERT INTO agent_executions (agent_session_id, agent_name, status, started_at)"
                     " VALUES ('x', 'a', 'failed', '2026-11-19 11:00:00')")
        conn.execute("INSERT INTO agent_executions (agent_session_id, agent_name, status, started_at)"
                     " VALUES ('y', 'a', 'completed', '2026-11-19 13:00:00')")
    with open_db(db_path) as db:
        report = health(db, 24, now=T0)
    assert (report["executions"]["executions"], report["executions"]["failed"]) == (1, 0)


def test_list_and_show_count_executions_whose_cost_is_unknown(tracker, clock):
    tracker.start_orchestration("s1")
    record(tracker, clock, "priced", 1, session="s1", input_tokens=10, cost_usd=0.5)
    record(tracker, clock, "mystery-model", 1, session="s1", input_tokens=10)
    record(tracker, clock, "no-llm", 1, session="s1")
    [row] = list_orchestrations(tracker.db)
    assert (row["executions"], row["cost_usd"], row["unpriced"]) == (3, 0.5, 1)
    agents = {a["agent_name"]: a["unpriced"] for a in orchestration_summary(tracker.db, "s1")["agents"]}
    assert agents == {"mystery-model": 1, "no-llm": 0, "priced": 0}
