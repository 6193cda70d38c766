"""`reap`: end stale executions (in progress for too long: their process died) as failed.

Each batch is one short write transaction that fails its executions, logs an event for each, and
rolls their orchestrations' status and counts up, so writers running at the same time barely
wait and never see an execution failed under a running-for-ever orchestration. An execution that
finishes meanwhile is left alone (only what is still in progress is ended), so reaping twice ends
nothing more.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.read.reports import stale_clause
from monitor.store.db import Database
from monitor.store.writes import REAPED, finish_execution, finish_orchestration, insert_event
from monitor.timeutil import before, format_duration, format_timestamp, utcnow

#: Executions ended per write transaction.
BATCH = 200
#: How many of the ended executions the result names.
SHOWN = 20
_STALE = f"FROM agent_executions e WHERE {stale_clause(alias='e')}"
_SHOWN_COLUMNS = ("e.id, e.orchestration_id, e.agent_session_id, e.agent_name, e.started_at,"
                  " (SELECT session_id FROM orchestrations o WHERE o.id = e.orchestration_id) AS session_id")


@dataclass
class ReapResult:
    cutoff: str
    older_than_ms: int
    message: str
    dry_run: bool
    executions: int = 0
    orchestrations: int = 0
    #: The first SHOWN executions ended (or, with dry_run, that would be), oldest first.
    ended: list[dict] = field(default_factory=list)


def stale_message(older_than: timedelta) -> str:
    """What a reaped execution's error message says: 'no completion after 2h 00m'."""
    return f"{REAPED}{format_duration(older_than.total_seconds() * 1000)}"


def reap(db: Database, older_than: timedelta = timedelta(hours=1), *, now: datetime | None = None,
         dry_run: bool = False, spare: Collection[int] = ()) -> ReapResult:
    """Fail every execution in progress for longer than `older_than`, and update their orchestrations.
    The executions in `spare` are left alone (those whose `monitor run` is known to be running)."""
    now = now or utcnow()
    cutoff = format_timestamp(before(now, older_than))
    result = ReapResult(cutoff, round(older_than.total_seconds() * 1000), stale_message(older_than), dry_run)
    stale = _STALE + f" AND e.id NOT IN ({', '.join('?' * len(spare))})"
    spared = (cutoff, *sorted(spare))
    if dry_run:
        with db.snapshot():
            result.executions, result.orchestrations = db.execute(
                f"SELECT count(*), count(DISTINCT e.orchestration_id) {stale}", spared).fetchone()
            result.ended = _stale(db.conn, stale, spared, SHOWN)
        return result
    touched: set[int] = set()
    while True:
        with db.transaction() as conn:
            batch = _stale(conn, stale, spared, BATCH)
            _end(conn, batch, format_timestamp(now), result.message)
        result.executions += len(batch)
        touched.update(r["orchestration_id"] for r in batch if r["orchestration_id"] is not None)
        result.ended.extend(batch[:SHOWN - len(result.ended)])
        if len(batch) < BATCH:
            break
    result.orchestrations = len(touched)
    return result


def _stale(conn: sqlite3.Connection, stale: str, params: tuple, limit: int) -> list[dict]:
    cursor = conn.execute(
        f"SELECT {_SHOWN_COLUMNS} {stale} ORDER BY e.started_at, e.id LIMIT ?", (*params, limit))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _end(conn: sqlite3.Connection, batch: list[dict], now: str, message: str) -> None:
    """Fail each execution of `batch`, log why, and roll its orchestration up (still running if it
    has other executions in progress)."""
    for row in batch:
        if finish_execution(conn, row["id"], "failed", now, message):
            insert_event(conn, now, "status_changed", f"failed by monitor reap: {message}",
                         json.dumps({"status": "failed", "reason": "stale"}), row["id"], row["orchestration_id"])
    for orchestration_id in sorted({r["orchestration_id"] for r in batch if r["orchestration_id"] is not None}):
        finish_orchestration(conn, orchestration_id, now, final=False)
