"""`watch`: what is happening now, as one snapshot read in one short read transaction.

Every part is a read the other reports already make (queries, reports, costs, logs), limited to
a window or to a few rows through an index, so a refresh costs the same on any size of database;
none of them writes, and a read transaction in WAL mode never makes a writer wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from monitor.read import costs, logs, reports
from monitor.read.queries import (Filters, Page, count_execution_rows, count_orchestrations, execution_rows,
                                  list_orchestrations, page)
from monitor.store.db import Database
from monitor.timeutil import before, format_timestamp

#: What the orchestration and execution rows of the snapshot hold besides their own columns.
ELAPSED = "elapsed_ms"


@dataclass(frozen=True)
class Limits:
    """How many rows each part of the snapshot holds at most (each part also counts all it has)."""

    running: int = 10
    failures: int = 5
    events: int = 20


@dataclass(frozen=True)
class LiveSnapshot:
    """What `watch` shows at `generated_at`. Times are stored-format timestamps; rows are plain
    dicts as the other reads give them, with elapsed_ms on what is still running."""

    generated_at: str
    since: str                      # the window's start: failures, agents, events and `overall`
    window_hours: float
    today: str                      # midnight (UTC) of generated_at: what cost_today counts from
    stale_after_ms: int
    stale: int                      # executions in progress for longer than stale_after_ms
    overall: dict                   # reports.execution_stats of the window
    running_orchestrations: Page    # newest first
    running_executions: Page        # newest first
    failures: Page                  # failed executions in the window, newest first
    agents: list[dict]              # reports.performance over the window
    cost_today: dict                # costs.total of today's cost by agent
    events: list[dict]              # the newest events in the window, oldest of them first

    def to_dict(self) -> dict:
        """JSON-ready: each page as {"rows": [...], "total": N} (total is at most COUNT_LIMIT + 1)."""
        result: dict = {}
        for name, value in vars(self).items():
            result[name] = {"rows": value.rows, "total": value.total} if isinstance(value, Page) else value
        return result


def live_snapshot(db: Database, now: datetime, *, window: timedelta = timedelta(hours=24),
                  stale_after: timedelta = timedelta(hours=1), limits: Limits = Limits()) -> LiveSnapshot:
    """The snapshot at `now`, every part read in one read transaction (one state of the database)."""
    since = format_timestamp(before(now, window))
    today = format_timestamp(now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0))
    running = Filters(status="in_progress")
    failed = Filters(since=since, status="failed")
    with db.snapshot():
        orchestrations = page(
            lambda n: list_orchestrations(db, Filters(status="running", limit=n)),
            lambda most: count_orchestrations(db, Filters(status="running"), most), limits.running)
        executions = page(
            lambda n: execution_rows(db, Filters(status="in_progress", limit=n)),
            lambda most: count_execution_rows(db, running, most=most), limits.running)
        failures = page(lambda n: execution_rows(db, Filters(since, "failed", None, n)),
                        lambda most: count_execution_rows(db, failed, most=most), limits.failures)
        stale = count_execution_rows(db, running, where=["e.started_at < ?"],
                                     params=[format_timestamp(before(now, stale_after))])
        overall = reports.execution_stats(db, "started_at >= ?", (since,))
        agents = reports.performance(db, since)
        cost_today = costs.total(costs.cost_report(db, today, by="agent"), "agent")
        events = logs.latest_events(db, since, limits.events) if limits.events else []
    for row in (*orchestrations.rows, *executions.rows):
        row[ELAPSED] = reports.age_ms(now, row["started_at"])
    del cost_today["agent"]
    return LiveSnapshot(
        generated_at=format_timestamp(now), since=since, window_hours=window.total_seconds() / 3600, today=today,
        stale_after_ms=round(stale_after.total_seconds() * 1000), stale=stale, overall=overall,
        running_orchestrations=orchestrations, running_executions=executions, failures=failures, agents=agents,
        cost_today=cost_today, events=events)
