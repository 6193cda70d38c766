"""Every windowed or per-item read finds its rows through an index, never by scanning a big table.

The SQL is not copied here: each library call runs with a trace callback on its connection, and
every SELECT it issued is then put through EXPLAIN QUERY PLAN. A plan is a behaviour, not a timing.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from monitor import Tracker, open_db
from monitor.alerts.check import check
from monitor.alerts.rules import Config, parse_flags
from monitor.ops import reap, retention
from monitor.read import metrics, queries, reports
from monitor.read.queries import Filters

from conftest import T0, Clock

SINCE = "2026-11-19T12:00:00.000Z"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """One database for the module: every test here only reads (plans, and a dry-run cleanup)."""
    path = tmp_path_factory.mktemp("plans") / "plans.db"
    with Tracker(path, clock=Clock(step=timedelta(seconds=7))) as tracker:
        for o in range(3):
            tracker.start_orchestration(f"s{o}", "task", git_commit_hash="abc")
            for n in range(4):
                tracker.start_agent_execution(f"s{o}-{n}", f"agent{n % 2}", orchestration=f"s{o}")
                tracker.complete_agent_execution(f"s{o}-{n}", "failed" if n == 3 else "completed",
                                                 "boom" if n == 3 else None)
            tracker.complete_orchestration(f"s{o}")
        tracker.start_agent_execution("loose", "agent0")
    database = open_db(path, create=False)
    yield database
    database.close()


def traced_selects(db, call) -> list[str]:
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        call(db)
    finally:
        db.conn.set_trace_callback(None)
    selects = [s for s in statements if re.match(r"\s*(SELECT|WITH)\b", s, re.IGNORECASE)]
    assert selects, "the call issued no SELECT: the trace is not seeing its queries"
    return selects


#: Tables with a row per agent, not per execution: reading all of one is reading a handful of rows.
PER_AGENT_TABLES = {"agent_totals", "agent_model_totals", "orchestration_totals", "t"}


def full_scans(db, sql: str) -> list[str]:
    """Plan lines that read a whole table: a SCAN without an index, of something that is not a
    subquery or a CTE of the same statement, nor a per-agent table."""
    plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
    derived = {m.group(2) for line in plan
               if (m := re.match(r"(MATERIALIZE|CO-ROUTINE) (\S+)", line))}
    bad = []
    for line in plan:
        m = re.match(r"SCAN (\S+)(.*)", line)
        if m and "USING" not in m.group(2) and m.group(1) not in derived | PER_AGENT_TABLES:
            bad.append(line)
    return bad


READS = {
    "health window and stale executions": lambda db: reports.health(db, 24, now=T0 + timedelta(hours=1)),
    "list newest first": lambda db: queries.list_orchestrations(db, Filters(limit=50)),
    "list --since --status": lambda db: queries.list_orchestrations(db, Filters(SINCE, "failed", None, 50)),
    "list --agent": lambda db: queries.list_orchestrations(db, Filters(agent="agent1", limit=50)),
    "failures": lambda db: reports.failures(db, 50),
    "failures --since --agent": lambda db: reports.failures(db, 50, Filters(SINCE, None, "agent1")),
    "failures --executions": lambda db: reports.failures(db, 50, executions=True),
    "failures --executions --since": lambda db: reports.failures(db, 50, Filters(SINCE), executions=True),
    "failures --executions --since --agent": lambda db: reports.failures(
        db, 50, Filters(SINCE, None, "agent1"), executions=True),
    "executions of a session": lambda db: queries.list_executions(db, "s1"),
    "executions newest first": lambda db: queries.list_executions(db, filters=Filters(limit=100)),
    "executions --since --status": lambda db: queries.list_executions(
        db, filters=Filters(SINCE, "failed", None, 100)),
    "executions --agent": lambda db: queries.list_executions(db, filters=Filters(agent="agent0", limit=100)),
    "show": lambda db: reports.orchestration_summary(db, "s1"),
    "agent": lambda db: reports.agent_report(db, "agent0"),
    "agent --since": lambda db: reports.agent_report(db, "agent0", SINCE),
    "performance": lambda db: reports.performance(db),
    "performance --since": lambda db: reports.performance(db, SINCE),
    "cleanup --dry-run": lambda db: retention.cleanup(db, 30, now=T0, dry_run=True),
    "check, every rule": lambda db: check(db, parse_flags(Config(), [
        "activity=1h", "cost=1", "p95_duration=1m", "failed_orchestrations=1", "failed_executions=1",
        "agents.*.success_rate=50"]), now=T0 + timedelta(hours=1)),
    "check --session, every rule": lambda db: check(db, parse_flags(Config(), [
        "cost=1", "p95_duration=1m", "duration=1h", "failed_executions=1", "agents.*.p95_duration=1m"]),
        session="s1", now=T0 + timedelta(hours=1)),
    "reap --dry-run": lambda db: reap.reap(db, timedelta(hours=1), now=T0 + timedelta(hours=2), dry_run=True),
    "metrics (a Prometheus scrape)": lambda db: metrics.collect(db, now=T0 + timedelta(hours=1)),
}


@pytest.mark.parametrize("name", list(READS))
def test_read_uses_an_index(db, name):
    for sql in traced_selects(db, READS[name]):
        assert full_scans(db, sql) == [], f"{name}: {sql}"


@pytest.mark.parametrize("name", ["health window and stale executions", "executions --since --status",
                                  "failures --executions --since", "list --since --status",
                                  "performance --since", "check, every rule", "reap --dry-run"])
def test_windowed_reads_search_a_started_at_range(db, name):
    """A time window is a range search on an index, so its cost follows the window, not the table."""
    plans = [row[3] for sql in traced_selects(db, READS[name])
             for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
    assert any(re.search(r"SEARCH .* USING (COVERING )?INDEX .*started_at[<>]", line) for line in plans), plans


def test_the_checker_sees_a_full_scan(db):
    """The check itself can fail: an unindexed filter is reported."""
    assert full_scans(db, "SELECT * FROM agent_executions WHERE error_message = 'boom'") == [
        "SCAN agent_executions"]
    assert full_scans(db, "SELECT * FROM agent_executions WHERE started_at >= '2026'") == []


#: What the CLI's list commands call: one row more than the limit, then (when cut, as here with a
#: limit of 1) the count of all matches.
PAGES = {
    "list page": lambda db: queries.orchestration_page(db, Filters(limit=1)),
    "list page --since --status": lambda db: queries.orchestration_page(db, Filters(SINCE, "partial", None, 1)),
    "executions page": lambda db: queries.executions_page(db, filters=Filters(limit=1)),
    "executions page of a session": lambda db: queries.executions_page(db, "s1", Filters(limit=1)),
    "executions page --since --status": lambda db: queries.executions_page(
        db, filters=Filters(SINCE, "completed", None, 1)),
    "failures page": lambda db: reports.failures_page(db, Filters(limit=1)),
    "failures --executions page": lambda db: reports.failures_page(db, Filters(limit=1), executions=True),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_pages_and_their_counts_use_an_index(db, name):
    selects = traced_selects(db, PAGES[name])
    assert any("count(*)" in sql for sql in selects), f"{name}: the limit cut nothing, so nothing was counted"
    for sql in selects:
        assert full_scans(db, sql) == [], f"{name}: {sql}"
