"""What `report --html` shows, gathered from the database: typed, without any HTML.

Trends (executions, success rate and cost over time, tokens by agent) come from the daily figures
(monitor/read/daily.py), so they reach back past cleanup through the roll-ups; durations per agent
and the tables (slowest agents, failures, stale executions, costly sessions) from the executions
still kept. Days are grouped into weeks beyond WEEKS_AFTER days, into months beyond MONTHS_AFTER.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from monitor.capture.failure import failure_line
from monitor.read.daily import daily_scopes, trends
from monitor.read.queries import get_orchestration, rows
from monitor.read.reports import age_ms, execution_stats, performance, stale_clause
from monitor.store.db import Database
from monitor.timeutil import before, format_timestamp, utcnow

WEEKS_AFTER = 120
MONTHS_AFTER = 730
#: Rows of each table.
TABLE_ROWS = 15
#: The longest first error line shown (characters).
ERROR_LINE = 240
STATUSES = ("completed", "failed", "in_progress")
TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


@dataclass
class Period:
    """One bar of the charts over time: a day, a week (from its Monday) or a month."""

    start: str
    executions: int = 0
    completed: int = 0
    failed: int = 0
    in_progress: int = 0
    cost_by_model: dict[str, float] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        done = self.completed + self.failed
        return round(100.0 * self.completed / done, 1) if done else None


@dataclass
class ReportData:
    generated_at: str
    database: str
    since: str | None
    session: str | None
    agent: str | None
    #: 'day', 'week' or 'month': what one Period is.
    period: str
    periods: list[Period]
    models: list[str]
    #: Per agent over the kept executions: performance's rows (p50/p95 duration, counts, cost).
    agents: list[dict]
    #: Per agent over the whole window (roll-ups included): each token kind's total.
    tokens_by_agent: list[dict]
    slowest: list[dict]
    failures: list[dict]
    stale: list[dict]
    costliest_sessions: list[dict]
    #: `monitor check`'s result (verdict, rules) for the same window or session.
    check: dict
    stale_after_ms: int


def period_start(day: str, period: str) -> str:
    """The first day of the period `day` falls in."""
    if period == "day":
        return day
    if period == "month":
        return day[:8] + "01"
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def _period_for(first: str | None, last: str | None) -> str:
    if not first or not last:
        return "day"
    span = (date.fromisoformat(last) - date.fromisoformat(first)).days
    return "month" if span > MONTHS_AFTER else "week" if span > WEEKS_AFTER else "day"


def error_line(text: str | None) -> str | None:
    """The line of an error message that says what went wrong, as every table shows it
    (capture.failure.failure_line: a pytest FAILED line, an exception ...), cut at ERROR_LINE characters."""
    if not text:
        return text
    line = failure_line(text)
    return line if len(line) <= ERROR_LINE else line[:ERROR_LINE - 1] + "…"


def gather(db: Database, *, since: str | None = None, session: str | None = None, agent: str | None = None,
           check_result: dict, stale_after: timedelta = timedelta(hours=1), now: datetime | None = None
           ) -> ReportData:
    """Everything the report shows, read in one snapshot (its charts and tables agree while others
    record). check_result: `monitor check` over the same scope (the caller runs it, with the rules
    it reads from the project's configuration)."""
    with db.snapshot():
        return _gather(db, since, session, agent, check_result, stale_after, now or utcnow())


def _gather(db: Database, since: str | None, session: str | None, agent: str | None, check_result: dict,
            stale_after: timedelta, now: datetime) -> ReportData:
    orchestration_id = get_orchestration(db, session)["id"] if session is not None else None
    if orchestration_id is None:
        days, per_model = trends(db, since, agent)  # from indexes and roll-ups: fast at any size
    else:
        found = daily_scopes(db, since, ("day", "model"), agent=agent, orchestration_id=orchestration_id,
                             percentiles=False)
        days, per_model = found["day"], found["model"]
    period = _period_for(days[0]["day"] if days else None, days[-1]["day"] if days else None)
    periods: dict[str, Period] = {}
    for row in days:
        p = periods.setdefault(period_start(row["day"], period), Period(period_start(row["day"], period)))
        p.executions += row["executions"]
        p.completed += row["completed"]
        p.failed += row["failed"]
        p.in_progress += row["in_progress"]
    model_cost: dict[str, float] = defaultdict(float)
    tokens: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(TOKEN_KINDS, 0))
    for row in per_model:
        model = row["model"] or "(none)"
        if row["cost_usd"] is not None:
            p = periods.setdefault(period_start(row["day"], period), Period(period_start(row["day"], period)))
            p.cost_by_model[model] = p.cost_by_model.get(model, 0.0) + row["cost_usd"]
            model_cost[model] += row["cost_usd"]
        for kind in TOKEN_KINDS:
            tokens[row["agent_name"]][kind] += row[kind] or 0
    for p in periods.values():
        p.cost_by_model = {m: round(c, 6) for m, c in p.cost_by_model.items()}
    tokens_by_agent: list[dict] = [{"agent_name": name, **kinds, "total_tokens": sum(kinds.values())}
                                   for name, kinds in tokens.items() if any(kinds.values())]
    tokens_by_agent.sort(key=lambda r: (-r["total_tokens"], r["agent_name"]))

    agents = _agents(db, since, orchestration_id, agent)
    slowest = sorted((a for a in agents if a["p95_duration_ms"] is not None),
                     key=lambda a: (-a["p95_duration_ms"], a["agent_name"]))[:TABLE_ROWS]
    where, params = _where(since, orchestration_id, agent)
    failures = rows(db, "SELECT e.started_at, o.session_id, e.agent_name, e.agent_session_id, e.exit_code,"
                        " e.duration_ms, e.error_message FROM agent_executions e"
                        " LEFT JOIN orchestrations o ON o.id = e.orchestration_id"
                        f" WHERE e.status = 'failed'{where} ORDER BY e.started_at DESC, e.id DESC LIMIT ?",
                    (*params, TABLE_ROWS))
    for row in failures:
        row["error"] = error_line(row.pop("error_message"))
    stale_before = format_timestamp(before(now, stale_after))
    stale = rows(db, "SELECT e.started_at, o.session_id, e.agent_name, e.agent_session_id FROM agent_executions e"
                     " LEFT JOIN orchestrations o ON o.id = e.orchestration_id"
                     f" WHERE {stale_clause(alias='e')}{where}"
                     " ORDER BY e.started_at, e.id LIMIT ?", (stale_before, *params, TABLE_ROWS))
    for row in stale:
        row["age_ms"] = age_ms(now, row["started_at"])
    costliest = rows(db, "SELECT o.session_id, o.status, o.started_at, count(*) AS executions,"
                         " round(sum(e.cost_usd), 6) AS cost_usd FROM agent_executions e"
                         " JOIN orchestrations o ON o.id = e.orchestration_id"
                         f" WHERE e.cost_usd IS NOT NULL{where} GROUP BY o.id"
                         " ORDER BY sum(e.cost_usd) DESC, o.session_id LIMIT ?", (*params, TABLE_ROWS))
    return ReportData(
        generated_at=format_timestamp(now), database=str(db.path), since=since, session=session, agent=agent,
        period=period, periods=sorted(periods.values(), key=lambda p: p.start),
        models=sorted(model_cost, key=lambda m: (-model_cost[m], m)), agents=agents,
        tokens_by_agent=tokens_by_agent, slowest=slowest, failures=failures, stale=stale,
        costliest_sessions=costliest, check=check_result, stale_after_ms=round(stale_after.total_seconds() * 1000))


def _where(since: str | None, orchestration_id: int | None, agent: str | None) -> tuple[str, list[object]]:
    """Extra conditions on executions `e` (each starting with AND) and their parameters."""
    clauses: list[str] = []
    params: list[object] = []
    if since:
        clauses.append(" AND e.started_at >= ?")
        params.append(since)
    if orchestration_id is not None:
        clauses.append(" AND e.orchestration_id = ?")
        params.append(orchestration_id)
    if agent is not None:
        clauses.append(" AND e.agent_name = ?")
        params.append(agent)
    return "".join(clauses), params


def _agents(db: Database, since: str | None, orchestration_id: int | None, agent: str | None) -> list[dict]:
    """performance's per-agent rows over the scope (a session's agents: each one's execution_stats)."""
    if orchestration_id is None:
        return [row for row in performance(db, since) if agent is None or row["agent_name"] == agent]
    where = "orchestration_id = ?"
    params: list[object] = [orchestration_id]
    if since:
        where, params = where + " AND started_at >= ?", [*params, since]
    names = [name for (name,) in db.execute(
        f"SELECT DISTINCT agent_name FROM agent_executions WHERE {where} ORDER BY agent_name", params)
        if agent is None or name == agent]
    found = [{"agent_name": name, **execution_stats(db, where + " AND agent_name = ?", (*params, name))}
             for name in names]
    return sorted(found, key=lambda r: (-r["executions"], r["agent_name"]))
