"""Aggregates built on the tables: show, agent, performance, failures, health."""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.store.db import Database
from monitor.errors import NotFound
from monitor.read.queries import (Filters, Page, count_up_to, execution_page, execution_rows, get_orchestration,
                                  has_agent, page, rows, unpriced_sum)
from monitor.timeutil import before, format_duration, format_timestamp, parse_timestamp, utcnow
from monitor.verdict import HEALTH_STATUS, Levels, worst

#: One pass over a set of executions; every report that summarises executions uses it.
EXECUTION_STATS = """
    count(*) AS executions,
    coalesce(sum(status = 'completed'), 0) AS completed,
    coalesce(sum(status = 'failed'), 0) AS failed,
    coalesce(sum(status = 'in_progress'), 0) AS in_progress,
    count(duration_ms) AS timed,
    avg(duration_ms) AS avg_duration_ms,
    min(duration_ms) AS min_duration_ms,
    max(duration_ms) AS max_duration_ms,
    coalesce(sum(retry_count), 0) AS retries,
    coalesce(sum(self_healed), 0) AS self_healed,
    coalesce(sum(files_created), 0) AS files_created,
    coalesce(sum(files_modified), 0) AS files_modified,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(cost_usd) AS cost_usd,
    """ + unpriced_sum() + """ AS unpriced
"""
PERFORMANCE_COLUMNS = [
    "agent_name", "executions", "completed", "failed", "in_progress", "success_rate",
    "avg_duration_ms", "p50_duration_ms", "p95_duration_ms", "min_duration_ms", "max_duration_ms",
    "retries", "self_healed", "files_created", "files_modified", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "cost_usd", "unpriced",
]
FAILED_ORCHESTRATION_COLUMNS = [
    "session_id", "status", "task_description", "total_tasks", "completed_tasks", "failed_tasks",
    "completion_rate", "duration_ms", "started_at", "completed_at", "first_error",
]


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def rounded_ratio_sql(numerator: str, denominator: str, digits: int = 0) -> str:
    """SQL for Python's round(numerator / denominator, digits) (half to even, where SQLite's round()
    goes half away from zero) of two non-negative integer expressions, the denominator not 0: what
    _rate and the average duration give, for queries that must show the same numbers in SQL alone
    (`monitor ui`). Exact integer arithmetic: a float tie (10.5 ms) rounds as Python rounds it."""
    scale = 10 ** digits
    top, bottom = f"(({numerator}) * {scale})", f"({denominator})"
    quotient, remainder = f"({top} / {bottom})", f"({top} % {bottom})"
    rounded = f"({quotient} + (2 * {remainder} > {bottom} OR (2 * {remainder} = {bottom} AND {quotient} % 2 = 1)))"
    return f"({rounded} * 1.0 / {scale})" if digits else rounded


def percentile_rank(p: int, count: int) -> int:
    """The 1-based nearest rank of the p-th percentile among `count` sorted values: ceil(p% of
    count), at least 1 (exact in integers; percentile_rank_sql says the same in SQL)."""
    return max(1, (p * count + 99) // 100)


def percentile_rank_sql(p: int, count: str) -> str:
    """percentile_rank in SQL, `count` being an integer SQL expression."""
    return f"max(1, ({int(p)} * ({count}) + 99) / 100)"


def stale_clause(before: str = "?", alias: str = "") -> str:
    """Executions (of `alias`) in progress since before `before` (an SQL value: a parameter by
    default): what health, check and `monitor ui` call stale."""
    a = f"{alias}." if alias else ""
    return f"{a}status = 'in_progress' AND {a}started_at < {before}"


_STATS_ORDER = [
    "executions", "completed", "failed", "in_progress", "success_rate", "avg_duration_ms",
    "p50_duration_ms", "p95_duration_ms", "min_duration_ms", "max_duration_ms", "retries",
    "self_healed", "files_created", "files_modified", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "cost_usd", "unpriced",
]


def _finish_stats(stats: dict, percentiles: dict[int, int | None]) -> dict:
    """Add the success rate and percentiles; round the average and the cost; order the keys."""
    stats["success_rate"] = _rate(stats["completed"], stats["completed"] + stats["failed"])
    if stats["avg_duration_ms"] is not None:
        stats["avg_duration_ms"] = round(stats["avg_duration_ms"])
    for p, value in percentiles.items():
        stats[f"p{p}_duration_ms"] = value
    if stats["cost_usd"] is not None:
        stats["cost_usd"] = round(stats["cost_usd"], 6)
    return {**{k: stats.pop(k) for k in _STATS_ORDER}, **stats}


def _percentiles(db: Database, where: str, params: tuple, count: int, *, agent_history: bool = False
                 ) -> dict[int, int | None]:
    """Nearest-rank p50 and p95 of duration_ms, `count` being how many durations `where` has.

    Each is one ORDER BY ... OFFSET from whichever end is nearer (p95 from the top). The rows that
    `where` chooses (a window, a session) are found through their own index and sorted:
    `+duration_ms` keeps SQLite from walking an agent's duration index through every execution the
    agent ever had to spare that sort. All of one agent's executions (agent_history, `where` being
    "agent_name = ?") go through its duration buckets instead (_history_percentiles).
    """
    if agent_history:
        return _history_percentiles(db, params[0], count)
    result: dict[int, int | None] = {}
    for p in (50, 95):
        if not count:
            result[p] = None
            continue
        rank = percentile_rank(p, count)
        order, offset = ("", rank - 1) if rank - 1 <= count - rank else (" DESC", count - rank)
        row = db.execute(
            f"SELECT duration_ms FROM agent_executions WHERE {where} AND +duration_ms IS NOT NULL"
            f" ORDER BY +duration_ms{order} LIMIT 1 OFFSET {offset}",
            params,
        ).fetchone()
        result[p] = row[0] if row else None
    return result


def _history_percentiles(db: Database, agent_name: str, count: int) -> dict[int, int | None]:
    """Exact nearest-rank p50 and p95 of all of one agent's durations, whatever their number: the
    agent_durations roll-up (a few hundred buckets at most) says which bucket holds each rank and
    how many durations come before it, and the agent's duration index is read from that bucket's
    smallest duration on, skipping only the bucket's own durations before the rank."""
    buckets = db.execute("SELECT bucket, executions FROM agent_durations WHERE agent_name = ? ORDER BY bucket",
                         (agent_name,)).fetchall()
    result: dict[int, int | None] = {}
    for p in (50, 95):
        rank = percentile_rank(p, count)
        before, row = 0, None
        for bucket, executions in buckets:
            if before + executions >= rank:
                row = db.execute("SELECT duration_ms FROM agent_executions WHERE agent_name = ?"
                                 " AND duration_ms >= ? ORDER BY duration_ms LIMIT 1 OFFSET ?",
                                 (agent_name, bucket, rank - before - 1)).fetchone()
                break
            before += executions
        result[p] = row[0] if row and count else None
    return result


def execution_stats(db: Database, where: str, params: tuple, *, agent_history: bool = False) -> dict:
    """Counts, success rate, durations (with p50/p95), tokens and cost of the executions `where`
    finds; agent_history: they are all of one agent's (see _percentiles)."""
    stats = rows(db, f"SELECT {EXECUTION_STATS} FROM agent_executions WHERE {where}", params)[0]
    return _finish_stats(stats, _percentiles(db, where, params, stats.pop("timed"), agent_history=agent_history))


def orchestration_summary(db: Database, session_id: str) -> dict:
    """`show`: the orchestration, a roll-up of its executions, and its agents."""
    with db.snapshot():
        orchestration = get_orchestration(db, session_id)
        where, params = "orchestration_id = ?", (orchestration["id"],)
        summary = {**orchestration, "executions": execution_stats(db, where, params)}
        summary["agents"] = rows(
            db,
            "SELECT agent_name, count(*) AS executions, coalesce(sum(status = 'failed'), 0) AS failed,"
            f" sum(duration_ms) AS total_duration_ms, round(sum(cost_usd), 6) AS cost_usd,"
            f" {unpriced_sum()} AS unpriced"
            " FROM agent_executions WHERE orchestration_id = ? GROUP BY agent_name ORDER BY agent_name",
            params,
        )
    return summary


def agent_report(db: Database, agent_name: str, since: str | None = None, recent: int = 10) -> dict:
    """`agent NAME`: one agent's statistics and its latest executions."""
    where = "agent_name = ?"
    params: tuple[str, ...] = (agent_name,)
    if since:
        where, params = where + " AND started_at >= ?", (agent_name, since)
    with db.snapshot():
        stats = execution_stats(db, where, params) if since else _agent_history(db, agent_name)
        if not stats["executions"]:
            known = db.execute("SELECT 1 FROM agent_executions WHERE agent_name = ? LIMIT 1",
                               (agent_name,)).fetchone()
            if not known:
                raise NotFound(f"no executions recorded for agent {agent_name!r} (see `monitor performance`)")
        recent_rows = execution_rows(db, Filters(since=since, agent=agent_name, limit=recent))
    return {"agent_name": agent_name, "since": since, **stats, "recent_executions": recent_rows}


#: The same statistics as EXECUTION_STATS, read from the agent_totals row `t` of each agent
#: (kept by triggers: see migrations.AGENT_TOTALS); min and max come from the agent's index.
TOTALS_STATS = """
    executions, completed, failed, in_progress, timed,
    CASE WHEN timed THEN 1.0 * duration_ms / timed END AS avg_duration_ms,
    (SELECT min(duration_ms) FROM agent_executions e WHERE e.agent_name = t.agent_name) AS min_duration_ms,
    (SELECT max(duration_ms) FROM agent_executions e WHERE e.agent_name = t.agent_name) AS max_duration_ms,
    retries, self_healed, files_created, files_modified,
    CASE WHEN input_tokens_rows THEN input_tokens END AS input_tokens,
    CASE WHEN output_tokens_rows THEN output_tokens END AS output_tokens,
    CASE WHEN cache_read_tokens_rows THEN cache_read_tokens END AS cache_read_tokens,
    CASE WHEN cache_write_tokens_rows THEN cache_write_tokens END AS cache_write_tokens,
    CASE WHEN cost_usd_rows THEN cost_usd END AS cost_usd,
    unpriced
"""


def _agent_history(db: Database, agent_name: str) -> dict:
    """execution_stats of all of one agent's executions: its agent_totals row and its duration index."""
    found = rows(db, f"SELECT {TOTALS_STATS} FROM agent_totals t WHERE agent_name = ?", (agent_name,))
    if not found:
        return execution_stats(db, "agent_name = ?", (agent_name,))  # none: the same zeros and NULLs
    return _finish_stats(found[0], _percentiles(db, "agent_name = ?", (agent_name,), found[0].pop("timed"),
                                                agent_history=True))


def performance(db: Database, since: str | None = None) -> list[dict]:
    """`performance`: per-agent statistics, including p50/p95 duration, busiest agent first.

    All time, the counts and sums come from the agent_totals roll-up (one row per agent); with
    since, from the executions in that window (a range search on started_at).
    """
    where, params = ("started_at >= ?", (since,)) if since else ("1", ())
    with db.snapshot():
        if since is None:
            per_agent = rows(db, f"SELECT agent_name, {TOTALS_STATS} FROM agent_totals t"
                                 " WHERE executions > 0 ORDER BY executions DESC, agent_name")
        else:
            per_agent = rows(
                db,
                # GROUP BY +agent_name: without it SQLite walks the whole agent index and fetches
                # every row out of order instead of searching the started_at range.
                f"SELECT agent_name, {EXECUTION_STATS} FROM agent_executions WHERE {where}"
                " GROUP BY +agent_name ORDER BY executions DESC, agent_name",
                params,
            )
        result = []
        for stats in per_agent:
            agent_where = "agent_name = ?" + (" AND started_at >= ?" if since else "")
            agent_params = (stats["agent_name"], *params)
            stats = _finish_stats(stats, _percentiles(db, agent_where, agent_params, stats.pop("timed"),
                                                      agent_history=since is None))
            result.append({c: stats[c] for c in PERFORMANCE_COLUMNS})
    return result


def failures(db: Database, limit: int | None = 50, filters: Filters = Filters(), executions: bool = False
             ) -> list[dict]:
    """`failures`: failed and partial orchestrations (or, with executions=True, failed executions),
    newest first; at most `limit` (0 or None: all)."""
    if executions:
        return execution_rows(db, _failed_executions(filters, limit))
    clauses, params = _failed_orchestrations(filters)
    return rows(
        db,
        "SELECT session_id, status, task_description, total_tasks, completed_tasks, failed_tasks,"
        " CASE WHEN total_tasks > 0 THEN round(100.0 * completed_tasks / total_tasks, 1) END AS completion_rate,"
        " duration_ms, started_at, completed_at,"
        " (SELECT error_message FROM agent_executions e WHERE e.orchestration_id = f.id"
        "  AND e.status = 'failed' ORDER BY e.started_at, e.id LIMIT 1) AS first_error"
        f" FROM (SELECT o.* FROM orchestrations o WHERE {' AND '.join(clauses)}"
        f"  ORDER BY o.started_at DESC, o.id DESC{f' LIMIT {int(limit)}' if limit else ''}) f"
        " ORDER BY started_at DESC, id DESC",
        params,
    )


def failures_page(db: Database, filters: Filters = Filters(), executions: bool = False) -> Page:
    """failures as a Page, filters.limit being the limit: with the count of all matches when it cut them."""
    if executions:
        return execution_page(db, _failed_executions(filters, filters.limit))
    clauses, params = _failed_orchestrations(filters)
    with db.snapshot():
        return page(lambda n: failures(db, n, filters),
                    lambda most: count_up_to(db, f"FROM orchestrations o WHERE {' AND '.join(clauses)}", params, most),
                    filters.limit)


def _failed_executions(filters: Filters, limit: int | None) -> Filters:
    return Filters(filters.since, "failed", filters.agent, limit)


def _failed_orchestrations(filters: Filters) -> tuple[list[str], list[object]]:
    """The clauses on `o` that find failed and partial orchestrations (or those of filters.status)."""
    statuses = [filters.status] if filters.status else ["failed", "partial"]
    clauses = [f"o.status IN ({', '.join('?' * len(statuses))})"]
    params: list[object] = list(statuses)
    if filters.since:
        clauses.append("o.started_at >= ?")
        params.append(filters.since)
    if filters.agent:
        clauses.append(has_agent(failed=True))
        params.append(filters.agent)
    return clauses, params


def health(
    db: Database,
    hours: float = 24,
    *,
    stale_after: timedelta = timedelta(hours=1),
    warn_below: float = 95.0,
    fail_below: float = 80.0,
    now: datetime | None = None,
    stale_shown: int = 20,
) -> dict:
    """`health`: activity over the last `hours`, executions stuck in progress, and a verdict.

    unhealthy: success rate (finished executions in the window) below fail_below percent;
    degraded: below warn_below, or any execution in progress for longer than stale_after;
    healthy otherwise (including no activity at all).
    """
    now = now or utcnow()
    since = format_timestamp(before(now, timedelta(hours=hours)))
    stale_before = format_timestamp(before(now, stale_after))
    with db.snapshot():
        orchestrations = rows(
            db,
            "SELECT count(*) AS total, coalesce(sum(status = 'running'), 0) AS running,"
            " coalesce(sum(status = 'completed'), 0) AS completed,"
            " coalesce(sum(status = 'partial'), 0) AS partial,"
            " coalesce(sum(status = 'failed'), 0) AS failed"
            " FROM orchestrations WHERE started_at >= ?",
            (since,),
        )[0]
        executions = execution_stats(db, "started_at >= ?", (since,))
        stale_count = db.execute(
            f"SELECT count(*) FROM agent_executions WHERE {stale_clause()}",
            (stale_before,),
        ).fetchone()[0]
        stale_rows = [
            {k: r[k] for k in ("session_id", "agent_name", "agent_session_id", "started_at")}
            | {"running_ms": age_ms(now, r["started_at"])}
            for r in execution_rows(db, Filters(limit=stale_shown),
                                    where=[stale_clause(alias="e")], params=[stale_before], order="e.started_at")
        ]
    rate = executions["success_rate"]
    rate_level = Levels(warn_below, fail_below, minimum=True).judge(rate)
    stale_level = Levels(warn=0).judge(stale_count)
    reasons = []
    if rate_level != "pass":
        reasons.append(f"success rate {rate}% is below {fail_below if rate_level == 'fail' else warn_below:g}%")
    if stale_level != "pass":
        reasons.append(f"{stale_count} {'execution' if stale_count == 1 else 'executions'} in progress"
                       f" for over {_human(stale_after)}")
    status = HEALTH_STATUS[worst([rate_level, stale_level])]
    if not executions["executions"] and not orchestrations["total"]:
        reasons.append(f"no activity in the last {hours:g}h")
    return {
        "status": status,
        "reasons": reasons,
        "window_hours": hours,
        "since": since,
        "generated_at": format_timestamp(now),
        "orchestrations": orchestrations,
        "executions": executions,
        "stale": {"threshold_ms": round(stale_after.total_seconds() * 1000), "count": stale_count,
                  "executions": stale_rows},
    }


def age_ms(now: datetime, started_at: str) -> int | None:
    try:
        started = parse_timestamp(started_at)
    except (ValueError, TypeError, OverflowError):
        return None  # a time another program stored in a form nobody can read
    return max(0, round((now - started).total_seconds() * 1000))


def _human(delta: timedelta) -> str:
    return format_duration(delta.total_seconds() * 1000)
