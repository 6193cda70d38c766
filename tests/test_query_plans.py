"""Every windowed or per-item read finds its rows through an index, never by scanning a big table.

The SQL is not copied here: each library call runs with a trace callback on its connection, and
every SELECT it issued is then put through EXPLAIN QUERY PLAN. A plan is a behaviour, not a timing.

Plans must not depend on luck: each read is checked with no statistics (a database nobody has
analyzed), with the statistics that monitor itself writes on a 1M-execution database (PRAGMA
optimize under an analysis limit: approximate) and with exact ones (a full ANALYZE of that database).
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest

from monitor import Tracker, open_db
from monitor.alerts.check import check
from monitor.alerts.rules import Config, parse_flags
from monitor.ops import reap, retention
from monitor.ops.export import write_export
from monitor.read import costs, logs, metrics, queries, reports, tools
from monitor.read.live import Limits, live_snapshot
from monitor.read.queries import Filters

from conftest import T0, Clock

SINCE = "2026-11-19T12:00:00.000Z"
SINCE_MIDDAY = "2026-11-20T11:00:00.000Z"  # a window of whole days and part of one


#: sqlite_stat1 of a generated 1M-execution database (benchmarks/generate.py, 800 days): as
#: monitor's PRAGMA optimize writes it (analysis_limit: rows per agent read as ~1000), and exact.
STATS_1M = {
    "approximate": """
        agent_executions|idx_executions_agent_duration|689490 1001 58
        agent_executions|idx_executions_agent_started|612480 1001 1
        agent_executions|idx_executions_orchestration|1145007 23 2
        agent_executions|idx_executions_started|1065816 2
        agent_executions|idx_executions_status_started|749232 1001 2
        agent_executions|sqlite_autoindex_agent_executions_1|1043072 1001
        agent_executions|sqlite_autoindex_agent_executions_2|1091200 1
        agent_totals|agent_totals|30 1
        cost_rollup|cost_rollup|78975 101 4 1
        events|idx_events_execution|1138488 1 1
        events|idx_events_orchestration|1145007 23 2
        events|sqlite_autoindex_events_1|1043072 1001
        orchestrations|idx_orchestrations_started|88818 1
        orchestrations|idx_orchestrations_status_started|86240 667 1
        orchestrations|sqlite_autoindex_orchestrations_1|103472 1001
        orchestrations|sqlite_autoindex_orchestrations_2|76464 1""",
    "exact": """
        agent_executions|idx_executions_agent_duration|1000000 33334 62
        agent_executions|idx_executions_agent_started|1000000 33334 1
        agent_executions|idx_executions_orchestration|1000000 11 2
        agent_executions|idx_executions_started|1000000 2
        agent_executions|idx_executions_status_started|1000000 333334 2
        agent_executions|sqlite_autoindex_agent_executions_1|1000000 1000000
        agent_executions|sqlite_autoindex_agent_executions_2|1000000 1
        agent_totals|agent_totals|30 1
        cost_rollup|cost_rollup|89145 112 4 1
        events|idx_events_execution|1000000 1 1
        events|idx_events_orchestration|1000000 11 2
        events|sqlite_autoindex_events_1|1000000 1000000
        orchestrations|idx_orchestrations_started|93152 1
        orchestrations|idx_orchestrations_status_started|93152 23288 1
        orchestrations|sqlite_autoindex_orchestrations_1|93152 93152
        orchestrations|sqlite_autoindex_orchestrations_2|93152 1""",
}


def use_statistics(database, which: str) -> None:
    """Give the planner no statistics, or those of STATS_1M[which], and make it read them again."""
    conn = database.conn
    conn.execute("ANALYZE sqlite_master")  # creates sqlite_stat1 if it is missing
    conn.execute("DELETE FROM sqlite_stat1")
    for line in STATS_1M.get(which, "").strip().splitlines():
        conn.execute("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", line.strip().split("|"))
    conn.execute("ANALYZE sqlite_master")  # reload what the planner knows


@pytest.fixture(scope="module", params=["no statistics", "approximate", "exact"])
def db(tmp_path_factory, request):
    """One database for the module and each set of statistics: every test here only reads (plans,
    and dry runs)."""
    path = tmp_path_factory.mktemp("plans") / "plans.db"
    with Tracker(path, clock=Clock(step=timedelta(seconds=7))) as tracker:
        for o in range(3):
            tracker.start_orchestration(f"s{o}", "task", git_commit_hash="abc")
            for n in range(4):
                tracker.start_agent_execution(f"s{o}-{n}", f"agent{n % 2}", orchestration=f"s{o}")
                tracker.complete_agent_execution(f"s{o}-{n}", "failed" if n == 3 else "completed",
                                                 "boom" if n == 3 else None, input_tokens=100, cost_usd=0.01)
                tracker.event("tool_call", "Bash: pytest done", execution=f"s{o}-{n}")
            tracker.complete_orchestration(f"s{o}")
        tracker.start_agent_execution("loose", "agent0")
    database = open_db(path, create=False)
    use_statistics(database, request.param)
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


#: Tables with a row per agent (or model, or status), not per execution: reading all of one is
#: reading a handful of rows.
PER_AGENT_TABLES = {"agent_totals", "agent_model_totals", "orchestration_totals", "model_totals", "t"}


def full_scans(db, sql: str) -> list[str]:
    """Plan lines that read a whole table: a SCAN without an index, of something that is not a
    subquery or a CTE of the same statement, nor a per-agent table."""
    plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
    derived = {m.group(2) for line in plan
               if (m := re.match(r"(MATERIALIZE|CO-ROUTINE) (\S+)", line))}
    derived |= {m.group(2) for m in re.finditer(r"\bFROM\s+(\w+)\s+(?:AS\s+)?(\w+)", sql, re.IGNORECASE)
                if m.group(1) in PER_AGENT_TABLES}  # a per-agent table under an alias
    bad = []
    for line in plan:
        m = re.match(r"SCAN (\S+)(.*)", line)
        full_text_match = re.search(r"VIRTUAL TABLE INDEX \d+:.*M", line)  # FTS5 reading a MATCH
        full_text_config = m and re.fullmatch(r"(main\.)?\w+_fts_config", m.group(1))  # FTS5 reading its settings
        if (m and "USING" not in m.group(2) and not full_text_match and not full_text_config
                and m.group(1) not in derived | PER_AGENT_TABLES | SMALL_DERIVED):
            bad.append(line)
    return bad


#: Constant rows of a statement (SELECT 0 UNION ALL SELECT 1) and the schema: reading them scans no data.
SMALL_DERIVED = {"p", "u", "sqlite_master"}


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
    "executions --agent --since": lambda db: queries.list_executions(db, filters=Filters(SINCE, None, "agent1", 100)),
    "list --agent --since": lambda db: queries.list_orchestrations(db, Filters(SINCE, None, "agent1", 50)),
    "cost by agent": lambda db: costs.cost_report(db, by="agent"),
    "cost by model": lambda db: costs.cost_report(db, by="model"),
    "cost by model --since": lambda db: costs.cost_report(db, SINCE_MIDDAY, by="model"),
    "cost by agent --since": lambda db: costs.cost_report(db, SINCE_MIDDAY, by="agent"),
    "cost by session --since": lambda db: costs.cost_report(db, SINCE, by="session"),
    "search": lambda db: logs.search_page(db, "pytest", limit=1),
    "search --since": lambda db: logs.search_page(db, "pytest", since=SINCE, limit=1),
    "search by prefix": lambda db: logs.search(db, "pyt", limit=1),
    "logs SESSION": lambda db: logs.list_events(db, logs.EventFilter("s1")),
    "logs SESSION --since": lambda db: logs.list_events(db, logs.EventFilter("s1", since=SINCE)),
    "export --since": lambda db: write_export(db, io.StringIO(), since=SINCE),
    "export SESSION": lambda db: write_export(db, io.StringIO(), "s1"),
    "export SESSION --events": lambda db: write_export(db, io.StringIO(), "s1", events=True),
    "export --since --events": lambda db: write_export(db, io.StringIO(), since=SINCE, events=True),
    "otel export SESSION": lambda db: _otel().write_json(db, io.StringIO(), resource={}, session_id="s1"),
    "otel export --since": lambda db: _otel().write_json(db, io.StringIO(), resource={}, since=SINCE),
    "otel push (what an endpoint has not accepted)": lambda db: list(_otel().batches(db, {}, unsent_for=1)),
    "otel push: where it starts reading": lambda db: _begin_otel_pass(db),
    "tools --since": lambda db: tools.tool_report(db, SINCE),
    # Limits of 1: the running and failed executions are cut, so their counts are read too.
    "watch (a live snapshot)": lambda db: live_snapshot(db, T0 + timedelta(hours=1), limits=Limits(1, 1, 5)),
    "the latest events": lambda db: logs.latest_events(db, SINCE, 5),
}


def _begin_otel_pass(db):
    from monitor.store import writes

    with db.transaction() as conn:
        return writes.begin_otel_pass(conn, writes.otel_endpoint_id(conn, "http://collector/v1/traces", T0.isoformat()))


def _otel():  # (imported here: protobuf is paid by the otel reads only)
    from monitor.exporters import otel

    return otel


@pytest.mark.parametrize("name", list(READS))
def test_read_uses_an_index(db, name):
    for sql in traced_selects(db, READS[name]):
        assert full_scans(db, sql) == [], f"{name}: {sql}"


#: Every read of READS over a time window.
WINDOWED = [name for name in READS if "--since" in name] + [
    "health window and stale executions", "check, every rule", "reap --dry-run", "metrics (a Prometheus scrape)",
    "watch (a live snapshot)", "the latest events"]


@pytest.mark.parametrize("name", WINDOWED)
def test_windowed_reads_search_a_time_range(db, name):
    """A time window is a range search on an index, so its cost follows the window, not the table."""
    plans = [row[3] for sql in traced_selects(db, READS[name])
             for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
    assert any(re.search(r"SEARCH .* USING (COVERING )?(INDEX|PRIMARY KEY) .*(started_at|timestamp|day)[<>]", line)
               for line in plans), plans


@pytest.mark.parametrize("name", ["agent --since", "performance --since", "executions --agent --since",
                                  "watch (a live snapshot)"])
def test_an_agent_over_a_window_is_read_by_time(db, name):
    """Not through the agent's duration index, which walks every execution the agent ever had."""
    plans = [row[3] for sql in traced_selects(db, READS[name])
             for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
    assert not [line for line in plans if "idx_executions_agent_duration" in line], plans


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


@pytest.mark.parametrize("name", ["performance", "agent"])
def test_all_time_percentiles_start_at_their_bucket(db, name):
    """All of an agent's history: each percentile seeks its bucket's smallest duration in the
    agent's duration index (agent_durations says which), instead of walking the index from its start."""
    selects = [sql for sql in traced_selects(db, READS[name]) if "OFFSET" in sql]
    assert selects, "no percentile was read"
    for sql in selects:
        plan = " ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "USING COVERING INDEX idx_executions_agent_duration (agent_name=? AND duration_ms>?)" in plan, plan
