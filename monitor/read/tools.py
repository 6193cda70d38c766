"""`tools`: Claude Code's tool calls and the external-service calls recorded through the Python API,
per tool or per server (an MCP server, a service), with failures, interrupts and p50/p95 of each
call's own duration."""

from __future__ import annotations


from monitor.errors import InvalidInput
from monitor.read.reports import percentile_rank
from monitor.store.db import Database

TOOL_COLUMNS = ["calls", "failed", "interrupted", "failure_rate", "p50_duration_ms", "p95_duration_ms",
                "max_duration_ms"]
GROUPINGS = {"tool": "tool", "server": "server"}


def _nearest_rank(durations: list[int], p: int) -> int | None:
    return durations[percentile_rank(p, len(durations)) - 1] if durations else None


def tool_report(db: Database, since: str | None = None, by: str = "tool") -> list[dict]:
    """One row per tool (or server; built-in tools, which have none, are one row keyed None),
    busiest first: calls, failures, interrupts, failure rate, p50/p95/max of duration_ms."""
    if by not in GROUPINGS:
        raise InvalidInput(f"--by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    where, params = ("WHERE timestamp >= ?", (since,)) if since else ("", ())
    groups: dict[str | None, dict] = {}
    durations: dict[str | None, list[int]] = {}
    with db.snapshot():
        for key, outcome, duration in db.execute(
                f"SELECT {GROUPINGS[by]}, outcome, duration_ms FROM tool_calls {where}", params):
            group = groups.setdefault(key, {by: key, "calls": 0, "failed": 0, "interrupted": 0})
            group["calls"] += 1
            group["failed"] += outcome == "failed"
            group["interrupted"] += outcome == "interrupted"
            if duration is not None:
                durations.setdefault(key, []).append(duration)
    for key, group in groups.items():
        found = sorted(durations.get(key, []))
        group["failure_rate"] = round(100 * (group["failed"] + group["interrupted"]) / group["calls"], 1)
        group["p50_duration_ms"] = _nearest_rank(found, 50)
        group["p95_duration_ms"] = _nearest_rank(found, 95)
        group["max_duration_ms"] = found[-1] if found else None
    return sorted(groups.values(), key=lambda g: (-g["calls"], str(g[by])))
