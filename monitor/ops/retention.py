"""`cleanup`: delete old data in short batches, so writers running at the same time barely wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.store.db import Database
from monitor.store.writes import delete_daily_rollup_before, delete_old_lone_executions, delete_oldest_orchestrations
from monitor.timeutil import EARLIEST, before, format_timestamp, utcnow

#: The first batch: orchestrations (with their executions), or executions without one, per write
#: transaction. Later batches are sized so that each transaction takes about BATCH_SECONDS: long
#: enough that per-transaction costs (commit, checkpoint, finding the next ids) stay small next to
#: the deleting, short enough that a concurrent writer waits a fraction of a second, not seconds.
ORCHESTRATION_BATCH = 200
EXECUTION_BATCH = 2000
BATCH_SECONDS = 0.2
#: A writer blocked by a batch polls for the lock, at last every 100 ms (SQLite's busy handler),
#: so a few milliseconds between batches are easily missed, batch after batch. After every
#: PAUSE_EVERY seconds of deleting, cleanup leaves the lock free for PAUSE seconds: every waiting
#: writer gets in, and none waits much longer than PAUSE_EVERY. The pause starts with a WAL
#: checkpoint (the only one: checkpointing each batch would copy the same index pages again and
#: again), so a writer that commits then has nothing left to copy itself.
PAUSE_EVERY = 0.45
PAUSE = 0.11
MAX_ORCHESTRATION_BATCH = 20_000
MAX_EXECUTION_BATCH = 200_000
#: How long the checkpoint after VACUUM may wait for readers to move on before it gives up on
#: truncating the WAL. Writers wait while it does: it is kept short.
TRUNCATE_WAIT_MS = 500


def next_size(size: int, seconds: float, largest: int) -> int:
    """The batch size that would have taken BATCH_SECONDS, changed by at most 2x per batch."""
    wanted = size * BATCH_SECONDS / max(seconds, 1e-3)
    return max(1, min(largest, round(max(size / 2, min(size * 2, wanted)))))


@dataclass
class CleanupResult:
    cutoff: str
    orchestrations: int
    executions: int
    dry_run: bool
    vacuumed: bool = False
    #: After a vacuum: whether the WAL could be emptied and truncated, and its size on disk then.
    wal_truncated: bool | None = None
    wal_bytes: int | None = None
    #: Days counted into daily_rollup before their rows went (see monitor/ops/rollup.py), and the
    #: roll-up rows that `all_` deleted (the days before the cutoff's).
    rolled_up_days: int = 0
    rollups_deleted: int = 0


def cutoff_for(days: float, now: datetime | None = None) -> str:
    """The stored-format moment `days` before now; before year 1 (cleanup 1000000) means nothing is older."""
    try:
        return format_timestamp(before(now or utcnow(), timedelta(days=days)))
    except OverflowError:  # timedelta itself: more days than it holds
        return format_timestamp(EARLIEST)


class Pauser:
    """Called after each batch: once PAUSE_EVERY seconds have passed since the last pause,
    checkpoint, then sleep for the rest of PAUSE."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.since = time.perf_counter()

    def __call__(self) -> None:
        if time.perf_counter() - self.since >= PAUSE_EVERY:
            began = time.perf_counter()
            checkpoint(self.db)
            time.sleep(max(0.0, PAUSE - (time.perf_counter() - began)))
            self.since = time.perf_counter()


def checkpoint(db: Database) -> None:
    """Copy the batches' pages from the WAL into the file now, from here: otherwise the next
    writer whose commit crosses the WAL size limit does it, and waits seconds at a million rows.
    PASSIVE: never waits for readers or writers; what it cannot copy now, a later call will."""
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


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


def share_old(db: Database, cutoff: str) -> tuple[int, int]:
    """(rows a cleanup with this cutoff deletes, rows there are): orchestrations and executions."""
    old = sum(count_old(db, cutoff))
    total = db.execute("SELECT (SELECT count(*) FROM orchestrations) + (SELECT count(*) FROM agent_executions)"
                       ).fetchone()[0]
    return old, total


def sweeping(old: int, total: int) -> bool:
    """Whether a cleanup deleting old of total rows deletes all of them or more than half: worth a
    question first (a mistyped `cleanup 0` would erase a whole history)."""
    return old > 0 and old * 2 > total


def cleanup(
    db: Database,
    days: float,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    vacuum: bool = False,
    all_: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CleanupResult:
    """Delete orchestrations that started more than `days` ago, with all their executions, and
    executions with no orchestration that started that long ago; first, roll up the days (that are
    over) whose rows go, so that their trends stay. all_: delete the roll-ups of the days before the
    cutoff's day too. progress(n) is called with the number of rows each batch removed."""
    from monitor.ops.rollup import days_to_roll_up, roll_up

    cutoff = cutoff_for(days, now)
    # With all_, the days before the cutoff's would be rolled up only to be deleted.
    days_due = [day for day in days_to_roll_up(db, cutoff, now) if not all_ or day >= cutoff[:10]]
    if dry_run:
        orchestrations, executions = count_old(db, cutoff)
        return CleanupResult(cutoff, orchestrations, executions, dry_run=True, rolled_up_days=len(days_due))
    rolled = roll_up(db, days_due, now)
    rollups_deleted = 0
    if all_:
        with db.transaction() as conn:
            rollups_deleted = delete_daily_rollup_before(conn, cutoff[:10])
    autocheckpoint = db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    synchronous = db.execute("PRAGMA synchronous").fetchone()[0]
    db.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoints come with the pauses instead
    # No fsync at each batch's commit, only at checkpoints: a power cut may undo the last batches
    # (never half of one), and the next cleanup deletes those rows again.
    db.execute("PRAGMA synchronous = NORMAL")
    try:
        result = _delete_old(db, cutoff, progress)
        if any(result):
            compact_search_indexes(db)
    finally:
        db.execute(f"PRAGMA synchronous = {int(synchronous)}")
        db.execute(f"PRAGMA wal_autocheckpoint = {int(autocheckpoint)}")
    if not vacuum:
        return CleanupResult(cutoff, *result, dry_run=False, rolled_up_days=rolled, rollups_deleted=rollups_deleted)
    truncated, wal_bytes = compact(db)
    return CleanupResult(cutoff, *result, dry_run=False, vacuumed=True, wal_truncated=truncated, wal_bytes=wal_bytes,
                         rolled_up_days=rolled, rollups_deleted=rollups_deleted)


def compact(db: Database) -> tuple[bool, int]:
    """VACUUM, then copy the WAL back into the file and truncate it, waiting at most
    TRUNCATE_WAIT_MS for readers: a process still reading what the WAL held before keeps it (its
    pages are copied at a later checkpoint). Returns whether the WAL was truncated, and its size."""
    db.execute("VACUUM")
    checkpoint(db)  # what it can copy without waiting for anyone
    with db.busy_timeout(TRUNCATE_WAIT_MS):
        busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    wal = db.path.with_name(db.path.name + "-wal")
    size = wal.stat().st_size if wal.exists() else 0
    return not busy and size == 0, size


#: Leaf pages a search index merge writes per transaction: a few MB, well under a second.
MERGE_PAGES = 500


def compact_search_indexes(db: Database) -> None:
    """Merge each full-text index down until it holds no trace of deleted rows: FTS5 keeps a deleted
    row's words in its older segments until they are merged (secure_delete clears the pages SQLite
    frees, not those). In short transactions, pausing as the deletes do."""
    pause = Pauser(db)
    tables = [name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE name IN ('events_fts', 'errors_fts') ORDER BY name")]
    for table in tables:
        while True:
            before = db.conn.total_changes
            with db.transaction() as conn:
                conn.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('merge', ?)", (-MERGE_PAGES,))
            if db.conn.total_changes - before < 2:  # SQLite's sign that the merge had nothing left to do
                break
            pause()


def _delete_old(db: Database, cutoff: str, progress: Callable[[int], None] | None) -> tuple[int, int]:
    orchestrations = executions = 0
    size = ORCHESTRATION_BATCH
    pause = Pauser(db)
    while True:
        began = time.perf_counter()
        with db.transaction() as conn:
            batch, removed = delete_oldest_orchestrations(conn, cutoff, size)
        if not batch:
            break
        orchestrations += batch
        executions += removed
        if progress:
            progress(batch + removed)
        size = next_size(size, time.perf_counter() - began, MAX_ORCHESTRATION_BATCH)
        pause()
    size = EXECUTION_BATCH
    while True:
        began = time.perf_counter()
        with db.transaction() as conn:
            removed = delete_old_lone_executions(conn, cutoff, size)
        executions += removed
        if progress and removed:
            progress(removed)
        if removed < size:
            break
        size = next_size(size, time.perf_counter() - began, MAX_EXECUTION_BATCH)
        pause()
    checkpoint(db)
    return orchestrations, executions
