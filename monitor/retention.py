"""`cleanup`: delete old data in short batches, so writers running at the same time barely wait."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .db import Database
from .timeutil import format_timestamp, utcnow

#: Orchestrations per write transaction (with their executions); small enough that a concurrent
#: writer waits milliseconds, not seconds.
ORCHESTRATION_BATCH = 200
EXECUTION_BATCH = 2000


@dataclass
class CleanupResult:
    cutoff: str
    orchestrations: int
    executions: int
    dry_run: bool
    vacuumed: bool = False


def cutoff_for(days: float, now: datetime | None = None) -> str:
    """The stored-format moment `days` before now; before year 1 (cleanup 1000000) means nothing is older."""
    try:
        return format_timestamp((now or utcnow()) - timedelta(days=days))
    except OverflowError:
        return "0001-01-01T00:00:00.000Z"


def count_old(db: Database, cutoff: str) -> tuple[int, int]:
    """(orchestrations, executions) that a cleanup with this cutoff deletes."""
    orchestrations, in_them = db.execute(
        "SELECT count(*), coalesce(sum((SELECT count(*) FROM agent_executions e"
        " WHERE e.orchestration_id = o.id)), 0) FROM orchestrations o WHERE o.started_at < ?",
        (cutoff,),
    ).fetchone()
    unassigned = db.execute(
        "SELECT count(*) FROM agent_executions WHERE orchestration_id IS NULL AND started_at < ?",
        (cutoff,),
    ).fetchone()[0]
    return orchestrations, in_them + unassigned


def cleanup(
    db: Database,
    days: float,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    vacuum: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CleanupResult:
    """Delete orchestrations that started more than `days` ago, with all their executions, and
    executions with no orchestration that started that long ago. progress(n) is called with the
    number of rows each batch removed."""
    cutoff = cutoff_for(days, now)
    if dry_run:
        orchestrations, executions = count_old(db, cutoff)
        return CleanupResult(cutoff, orchestrations, executions, dry_run=True)
    orchestrations = executions = 0
    while True:
        with db.transaction() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM orchestrations WHERE started_at < ? ORDER BY started_at LIMIT ?",
                (cutoff, ORCHESTRATION_BATCH),
            )]
            if not ids:
                break
            marks = ", ".join("?" * len(ids))
            # Executions first and explicitly: the count is exact, and a database made by an
            # older tool without ON DELETE CASCADE is cleaned all the same.
            removed = conn.execute(f"DELETE FROM agent_executions WHERE orchestration_id IN ({marks})",
                                   ids).rowcount
            conn.execute(f"DELETE FROM orchestrations WHERE id IN ({marks})", ids)
        # Copy this batch's pages into the file now, from here: otherwise the next writer whose
        # commit crosses the WAL size limit does it, and waits seconds at a million rows.
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        orchestrations += len(ids)
        executions += removed
        if progress:
            progress(len(ids) + removed)
    while True:
        with db.transaction() as conn:
            removed = conn.execute(
                "DELETE FROM agent_executions WHERE id IN (SELECT id FROM agent_executions"
                " WHERE orchestration_id IS NULL AND started_at < ? LIMIT ?)",
                (cutoff, EXECUTION_BATCH),
            ).rowcount
        executions += removed
        if progress and removed:
            progress(removed)
        if removed < EXECUTION_BATCH:
            break
    if vacuum:
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return CleanupResult(cutoff, orchestrations, executions, dry_run=False, vacuumed=vacuum)
