"""Executions per UTC day: counts by status, p50/p95 duration, tokens and cost, per agent and model.

The same figures come from two places, counted the same way: the daily_rollup table (days that
cleanup has deleted rows of; see schema.sql and monitor/ops/rollup.py) and the executions
themselves (every other day). `count_days` counts executions; `daily` reads both.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from monitor.read.queries import rows
from monitor.read.reports import percentile_rank
from monitor.store.db import Database

Scope = Literal["day", "agent", "model"]
#: What daily_rollup stores per row, in its order (rolled_up_at aside).
ROLLUP_COLUMNS = [
    "day", "scope", "agent_name", "model", "executions", "completed", "failed", "in_progress", "timed",
    "duration_ms", "p50_duration_ms", "p95_duration_ms", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "cost_usd", "unpriced",
]
#: `performance --by day`: one row per day and agent, newest day first.
DAILY_COLUMNS = [
    "day", "agent_name", "executions", "completed", "failed", "in_progress", "success_rate", "avg_duration_ms",
    "p50_duration_ms", "p95_duration_ms", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "cost_usd", "unpriced",
]
_TOKENS = ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"]

#: Each execution `where` finds, as count_days reads it.
_EXECUTIONS = """
SELECT substr(started_at, 1, 10), agent_name, coalesce(model, ''), status, duration_ms,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd
FROM agent_executions WHERE {where}
"""
_STATUS_INDEX = {"completed": 1, "failed": 2, "in_progress": 3}


class _Group:
    """What count_days gathers for one day, agent and model."""

    __slots__ = ("counts", "tokens", "known", "durations", "costs", "unpriced")

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0]  # executions, completed, failed, in_progress
        self.tokens = [0, 0, 0, 0]
        self.known = [0, 0, 0, 0]  # how many executions knew each token count
        self.durations: list[int] = []
        self.costs: list[float] = []
        self.unpriced = 0


def count_days(db: Database, where: str, params: Sequence[object], *, percentiles: bool = True) -> list[dict]:
    """daily_rollup rows (every scope) counted from the executions `where` finds: what the roll-up
    of their days holds, as `performance` counts (execution_stats): sums are NULL when nothing was
    known, the cost is summed exactly (math.fsum), p50/p95 are nearest-rank (None without
    `percentiles`). One pass over the rows, each read once."""
    groups: dict[tuple[str, str, str], _Group] = {}
    for day, agent, model, status, duration, *usage, cost in db.execute(_EXECUTIONS.format(where=where), params):
        group = groups.get((day, agent, model))
        if group is None:
            group = groups[(day, agent, model)] = _Group()
        group.counts[0] += 1
        group.counts[_STATUS_INDEX[status]] += 1
        if duration is not None:
            group.durations.append(duration)
        for i, value in enumerate(usage):
            if value is not None:
                group.tokens[i] += value
                group.known[i] += 1
        if cost is not None:
            group.costs.append(cost)
        elif any(value is not None for value in usage):
            group.unpriced += 1
    scopes: dict[tuple[str, str, str, str], list[_Group]] = defaultdict(list)
    for (day, agent, model), group in groups.items():
        scopes[(day, "model", agent, model)].append(group)
        scopes[(day, "agent", agent, "")].append(group)
        scopes[(day, "day", "", "")].append(group)
    result = []
    for (day, scope, agent, model), members in sorted(scopes.items()):
        counts = [sum(m.counts[i] for m in members) for i in range(4)]
        durations = [d for m in members for d in m.durations]
        costs = [c for m in members for c in m.costs]
        row: dict = {"day": day, "scope": scope, "agent_name": agent, "model": model,
                     "executions": counts[0], "completed": counts[1], "failed": counts[2], "in_progress": counts[3],
                     "timed": len(durations), "duration_ms": sum(durations) if durations else None}
        if percentiles and durations:
            durations.sort()
            for p in (50, 95):
                row[f"p{p}_duration_ms"] = durations[percentile_rank(p, len(durations)) - 1]
        else:
            row["p50_duration_ms"] = row["p95_duration_ms"] = None
        for i, column in enumerate(_TOKENS):
            row[column] = sum(m.tokens[i] for m in members) if any(m.known[i] for m in members) else None
        row["cost_usd"] = math.fsum(costs) if costs else None
        row["unpriced"] = sum(m.unpriced for m in members)
        result.append({c: row[c] for c in ROLLUP_COLUMNS})
    return result


def rolled_up_days(db: Database, since_day: str = "") -> list[str]:
    """The days daily_rollup holds (from since_day on), oldest first."""
    return [day for (day,) in db.execute(
        "SELECT day FROM daily_rollup WHERE scope = 'day' AND day >= ? ORDER BY day", (since_day,))]


def daily(db: Database, since: str | None = None, *, scope: Scope = "agent", agent: str | None = None,
          orchestration_id: int | None = None, percentiles: bool = True) -> list[dict]:
    """Per-day figures of `scope` from the day of `since` on (whole days), oldest day first: rolled-up
    days from daily_rollup, the others counted from the executions. With `agent`, only that agent's
    (a 'day' scope is then its 'agent' rows); with orchestration_id, only that orchestration's
    executions, which roll-ups do not keep (days whose rows cleanup deleted are missing)."""
    return daily_scopes(db, since, (scope,), agent=agent, orchestration_id=orchestration_id,
                        percentiles=percentiles)[scope]


def daily_scopes(db: Database, since: str | None, scopes: Sequence[Scope], *, agent: str | None = None,
                 orchestration_id: int | None = None, percentiles: bool = True) -> dict[str, list[dict]]:
    """daily() of several scopes at once, from one pass over the executions."""
    since_day = since[:10] if since else ""
    clauses: list[str] = ["started_at >= ?"]
    params: list[object] = [since_day]
    if agent is not None:
        clauses.append("agent_name = ?")
        params.append(agent)
    wanted = {scope: "agent" if agent is not None and scope == "day" else scope for scope in scopes}
    stored: dict[str, list[dict]] = {scope: [] for scope in scopes}
    with db.snapshot():
        if orchestration_id is not None:
            clauses.append("orchestration_id = ?")
            params.append(orchestration_id)
        else:
            # Rolled-up days are the roll-up's alone (a day's executions left in place are in it).
            clauses.append("NOT EXISTS (SELECT 1 FROM daily_rollup r WHERE r.day = substr(started_at, 1, 10)"
                           " AND r.scope = 'day')")
            for scope in scopes:
                stored[scope] = rows(
                    db, f"SELECT {', '.join(ROLLUP_COLUMNS)} FROM daily_rollup WHERE scope = ? AND day >= ?"
                    + (" AND agent_name = ?" if agent is not None else ""),
                    (wanted[scope], since_day, *([agent] if agent is not None else [])))
        counted = count_days(db, " AND ".join(clauses), params, percentiles=percentiles)
    result: dict[str, list[dict]] = {}
    for scope in scopes:
        found = stored[scope] + [row for row in counted if row["scope"] == wanted[scope]]
        found.sort(key=lambda r: (r["day"], -r["executions"], r["agent_name"], r["model"]))
        result[scope] = [finish(row) for row in found]
    return result


def finish(row: dict) -> dict:
    """A stored or counted row as reports show it: the success rate and the average duration added,
    the cost rounded as `performance` rounds it."""
    shown = dict(row)
    done = row["completed"] + row["failed"]
    shown["success_rate"] = round(100.0 * row["completed"] / done, 1) if done else None
    shown["avg_duration_ms"] = round(row["duration_ms"] / row["timed"]) if row["timed"] else None
    if shown["cost_usd"] is not None:
        shown["cost_usd"] = round(shown["cost_usd"], 6)
    return shown


def performance_by_day(db: Database, since: str | None = None, agent: str | None = None) -> list[dict]:
    """`performance --by day`: per day and agent, newest day first (busiest agent first within a day)."""
    found = daily(db, since, scope="agent", agent=agent)
    found.sort(key=lambda r: r["day"], reverse=True)  # stable: each day's agents stay busiest first
    return [{c: row[c] for c in DAILY_COLUMNS} for row in found]


#: Usage per day, agent and model from cost_rollup (kept by triggers): a total of nothing known is NULL.
_USAGE = """
SELECT day, agent_name, model,
    CASE WHEN input_tokens_rows THEN input_tokens END AS input_tokens,
    CASE WHEN output_tokens_rows THEN output_tokens END AS output_tokens,
    CASE WHEN cache_read_tokens_rows THEN cache_read_tokens END AS cache_read_tokens,
    CASE WHEN cache_write_tokens_rows THEN cache_write_tokens END AS cache_write_tokens,
    CASE WHEN cost_usd_rows THEN cost_usd END AS cost_usd
FROM cost_rollup WHERE day >= ? AND day != ''
"""
TREND_DAY_COLUMNS = ["day", "executions", "completed", "failed", "in_progress"]
TREND_USAGE_COLUMNS = ["day", "agent_name", "model", *_TOKENS, "cost_usd"]


def trends(db: Database, since: str | None = None, agent: str | None = None) -> tuple[list[dict], list[dict]]:
    """What charts over time need, without reading the executions themselves: executions by status
    per day (TREND_DAY_COLUMNS), and tokens and cost per day, agent and model (TREND_USAGE_COLUMNS),
    oldest day first, from the day of `since` on; the same figures as daily()'s 'day' and 'model'
    rows. Rolled-up days come from daily_rollup; the others' counts from the (status, started_at)
    index (the agent's index with `agent`), their usage from the cost_rollup roll-up."""
    since_day = since[:10] if since else ""
    with db.snapshot():
        rolled = set(rolled_up_days(db, since_day))
        agent_clause = " AND agent_name = ?" if agent is not None else ""
        agent_params = [agent] if agent is not None else []
        per_day: dict[str, dict] = {}
        for status, day, count in db.execute(
                "SELECT status, substr(started_at, 1, 10) AS day, count(*) FROM agent_executions"
                f" WHERE started_at >= ?{agent_clause} GROUP BY status, day", [since_day, *agent_params]):
            if day in rolled:
                continue
            row = per_day.setdefault(day, {"day": day, "executions": 0, "completed": 0, "failed": 0, "in_progress": 0})
            row["executions"] += count
            row[status] = count
        usage = [row for row in rows(db, _USAGE + agent_clause, [since_day, *agent_params]) if row["day"] not in rolled]
        stored = rows(db, f"SELECT {', '.join(ROLLUP_COLUMNS)} FROM daily_rollup WHERE scope = ? AND day >= ?"
                      + agent_clause, [("agent" if agent is not None else "day"), since_day, *agent_params])
        stored_usage = rows(db, f"SELECT {', '.join(TREND_USAGE_COLUMNS)} FROM daily_rollup WHERE scope = 'model'"
                            f" AND day >= ?{agent_clause}", [since_day, *agent_params])
    days = [{c: row[c] for c in TREND_DAY_COLUMNS} for row in stored] + list(per_day.values())
    usage += [row for row in stored_usage if any(row[c] is not None for c in (*_TOKENS, "cost_usd"))]
    days.sort(key=lambda r: r["day"])
    usage.sort(key=lambda r: (r["day"], r["agent_name"], r["model"]))
    return days, usage
