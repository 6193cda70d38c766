"""monitor's reports as SQL alone: the canned queries of `monitor ui` (Datasette runs them).

Each query is built from the fragments of the report it mirrors, so that the page gives the numbers
the command prints:

- failures_24h: `monitor failures --executions --since 24h` (queries.EXECUTION_SELECT, newest first);
- stale_executions: the stale list of `monitor health` (reports.stale_clause, oldest first);
- cost_by_agent_per_day: `monitor cost --by agent` for each UTC day (the cost_rollup table and
  costs.SUMS: a day's row is what `cost --since DAY` adds to `cost --since DAY+1`);
- slowest_agents: `monitor performance` per agent (reports' execution statistics, nearest-rank
  p50/p95 by reports.percentile_rank_sql, rounding by reports.rounded_ratio_sql), slowest p95 first;
- session_timeline: `monitor logs SESSION` (logs.EVENT_SELECT) with each execution's start and end
  among its events, in time order.

Parameters are Datasette's named parameters (:hours); one left empty takes its default. Times are
SQLite's 'now', in the stored format, as the CLI computes them from its clock.
"""

from __future__ import annotations

from typing import TypedDict

from monitor.read.costs import SUMS
from monitor.read.logs import EVENT_SELECT
from monitor.read.queries import EXECUTION_SELECT, NEWEST_FIRST
from monitor.read.reports import (EXECUTION_STATS, TOTALS_STATS, percentile_rank_sql, rounded_ratio_sql,
                                  stale_clause)


class CannedQuery(TypedDict):
    """A Datasette canned query: its title, a description, its SQL and its parameters."""

    title: str
    description: str
    sql: str
    params: list[str]


def _ago(param: str, unit: str, default: int) -> str:
    """The moment `:param` units (default `default`) before now, in the stored format."""
    return (f"strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || CAST(coalesce(nullif(:{param}, ''), {default}) AS REAL)"
            f" || ' {unit}')")


_FAILURES = f"""SELECT {EXECUTION_SELECT}
WHERE e.status = 'failed' AND e.started_at >= {_ago('hours', 'hours', 24)}
ORDER BY {NEWEST_FIRST}"""

_STALE = f"""SELECT o.session_id, e.agent_name, e.agent_session_id, e.started_at,
  CAST(round((julianday('now') - julianday(e.started_at)) * 86400000) AS INTEGER) AS running_ms,
  e.task_id, e.model
FROM agent_executions e LEFT JOIN orchestrations o ON o.id = e.orchestration_id
WHERE {stale_clause(_ago('minutes', 'minutes', 60), alias='e')}
ORDER BY e.started_at, e.id"""

_COST_PER_DAY = f"""SELECT r.day AS day, r.agent_name AS agent, {SUMS.strip()}
FROM cost_rollup r
WHERE r.day >= coalesce(nullif(substr(:since, 1, 10), ''), '0')
GROUP BY r.day, r.agent_name
ORDER BY r.day DESC, sum(r.cost_usd) DESC, executions DESC, agent"""

#: As performance: all time, the counts from the agent_totals roll-up; with :since, from the
#: executions of the window. The percentiles number each agent's durations in the order of its
#: (agent_name, duration_ms) index, and keep the rows at the two ranks.
_SLOWEST = f"""WITH stats AS (
  SELECT agent_name, {TOTALS_STATS.strip()}, duration_ms AS total_duration_ms
  FROM agent_totals t WHERE :since = '' AND executions > 0
  UNION ALL
  SELECT agent_name, {EXECUTION_STATS.strip()}, sum(duration_ms)
  FROM agent_executions WHERE :since != '' AND started_at >= :since GROUP BY +agent_name),
percentiles AS (SELECT r.agent_name,
                  max(CASE WHEN r.n = {percentile_rank_sql(50, 's.timed')} THEN r.duration_ms END) AS p50_duration_ms,
                  max(CASE WHEN r.n = {percentile_rank_sql(95, 's.timed')} THEN r.duration_ms END) AS p95_duration_ms
                FROM (SELECT agent_name, duration_ms,
                             row_number() OVER (PARTITION BY agent_name ORDER BY duration_ms) AS n
                      FROM agent_executions
                      WHERE duration_ms IS NOT NULL AND (:since = '' OR started_at >= :since)) r
                JOIN stats s ON s.agent_name = r.agent_name
                WHERE r.n IN ({percentile_rank_sql(50, 's.timed')}, {percentile_rank_sql(95, 's.timed')})
                GROUP BY r.agent_name)
SELECT s.agent_name, s.executions, s.completed, s.failed, s.in_progress,
  CASE WHEN s.completed + s.failed > 0
       THEN {rounded_ratio_sql('100 * s.completed', 's.completed + s.failed', 1)} END AS success_rate,
  CASE WHEN s.timed > 0 THEN {rounded_ratio_sql('s.total_duration_ms', 's.timed')} END AS avg_duration_ms,
  p.p50_duration_ms, p.p95_duration_ms, s.min_duration_ms, s.max_duration_ms, s.retries
FROM stats s LEFT JOIN percentiles p ON p.agent_name = s.agent_name
ORDER BY p.p95_duration_ms DESC, p.p50_duration_ms DESC, s.agent_name"""

#: The orchestration named :session (its session_id or uuid), and the executions of the timeline:
#: its executions, or the one execution named :session when no orchestration is.
_OWNER = """WITH named AS (SELECT id FROM orchestrations WHERE session_id = :session
               UNION ALL SELECT id FROM orchestrations WHERE uuid = :session LIMIT 1),
lone AS (SELECT id FROM agent_executions WHERE agent_session_id = :session AND NOT EXISTS (SELECT 1 FROM named)),
runs AS (SELECT id FROM agent_executions WHERE orchestration_id = (SELECT id FROM named)
         UNION ALL SELECT id FROM lone)"""

#: logs' event columns, then how long an execution took (its end row), and the order of rows at one
#: moment: an execution's start, its events, its end.
_TIMELINE = f"""{_OWNER}
SELECT timestamp, kind, agent_name, agent_session_id, type, message, duration_ms, payload FROM (
  SELECT e.started_at AS timestamp, 'execution' AS kind, e.agent_name, e.agent_session_id, 'started' AS type,
         e.task_id AS message, NULL AS duration_ms, NULL AS payload, 0 AS moment, e.id AS row_id
  FROM agent_executions e WHERE e.id IN runs
  UNION ALL
  SELECT e.completed_at, 'execution', e.agent_name, e.agent_session_id, e.status, e.error_message,
         e.duration_ms, NULL, 2, e.id
  FROM agent_executions e WHERE e.id IN runs AND e.completed_at IS NOT NULL
  UNION ALL
  SELECT timestamp, 'event', agent_name, agent_session_id, type, message, NULL, payload, 1, id FROM (
    {EVENT_SELECT} WHERE v.orchestration_id = (SELECT id FROM named)
    UNION ALL
    {EVENT_SELECT} WHERE v.execution_id = (SELECT id FROM lone))
)
ORDER BY timestamp, moment, row_id"""

QUERIES: dict[str, CannedQuery] = {
    "failures_24h": {
        "title": "Failures in the last 24 hours",
        "description": "Failed executions that started in the last :hours hours (default 24), newest first,"
                       " with their error: `monitor failures --executions --since 24h`.",
        "sql": _FAILURES,
        "params": ["hours"],
    },
    "stale_executions": {
        "title": "Stale executions",
        "description": "Executions still in progress :minutes minutes after they started (default 60), oldest"
                       " first: `monitor health`'s stale list. `monitor reap` ends them as failed.",
        "sql": _STALE,
        "params": ["minutes"],
    },
    "cost_by_agent_per_day": {
        "title": "Cost by agent per day",
        "description": "Tokens and cost (USD) per UTC day and agent, since the day :since (YYYY-MM-DD; empty:"
                       " all), costliest first each day: `monitor cost --by agent` day by day. unpriced counts"
                       " executions whose model has no known price (their cost is not in cost_usd).",
        "sql": _COST_PER_DAY,
        "params": ["since"],
    },
    "slowest_agents": {
        "title": "Slowest agents",
        "description": "Per agent: executions, success rate, average, p50 and p95 duration (nearest rank,"
                       " in ms), slowest p95 first; executions that started since :since (a date or a"
                       " time, 2026-11-01; empty: all): `monitor performance`.",
        "sql": _SLOWEST,
        "params": ["since"],
    },
    "session_timeline": {
        "title": "Session timeline",
        "description": "One orchestration (its session id) or execution (its agent session id), in time order:"
                       " each execution's start and end and every event between: `monitor logs SESSION`"
                       " with `monitor executions SESSION`.",
        "sql": _TIMELINE,
        "params": ["session"],
    },
}
