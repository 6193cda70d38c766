"""Catching up: what a writer does first, so that nothing waits in the spool and no killed run
stays in progress.

drain() records the spool (monitor.store.spool) through the kind of each record: a Claude Code
hook payload, or the start or end of a `monitor run`. catch_up() also fails the runs whose
`monitor run` was killed: it tells which runners are gone *before* draining, so that an end a
runner spooled just before it exited is recorded rather than overwritten.

The hook's own path loads this module: imports stay light.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from monitor.capture import runs
from monitor.store import spool
from monitor.store.db import Database, is_transient

HOOK = "hook"


def apply_record(db: Database, record: dict) -> None:
    """Write one spooled record in the transaction open on db; raises to refuse it."""
    kind = record.get("kind")
    if kind == HOOK:
        from monitor.capture.claude.hook import apply_spooled

        apply_spooled(db, record)
    elif kind == runs.START:
        runs.apply_start(db.conn, record)
    elif kind == runs.END:
        runs.apply_end(db.conn, record)
    elif kind == runs.EVENT:
        runs.apply_event(db.conn, record)
    else:
        raise ValueError(f"unknown kind of record {kind!r}")


def drain(db: Database, *, deadline: float | None = None, skipped: Callable[[str], None] = lambda m: None) -> bool:
    """Record everything spooled, oldest first; True when nothing is left (see spool.ingest)."""
    if db.readonly:
        return False
    return spool.ingest(db, apply_record, deadline=deadline, skipped=skipped)


def catch_up(db: Database, *, wait: float | None = 1.0, skipped: Callable[[str], None] = lambda m: None) -> bool:
    """Drain the spool, then fail the runs whose `monitor run` was killed, waiting at most about
    `wait` seconds in all (None: as long as the busy timeout lets each transaction) for other
    writers. Never raises: what it cannot do now, the next writer does. Returns whether it caught up."""
    if db.readonly:
        return False
    try:
        killed = runs.killed_runs(db)
        deadline = None if wait is None else time.monotonic() + wait
        if not drain(db, deadline=deadline, skipped=skipped):
            return False
        if killed:
            with db.busy_timeout(None if deadline is None else (deadline - time.monotonic()) * 1000):
                runs.fail_killed(db, killed)
        return True
    except Exception as exc:  # noqa: BLE001 - a report must still report
        if not is_transient(exc):
            skipped(f"could not catch up: {type(exc).__name__}: {exc}")
        return False
