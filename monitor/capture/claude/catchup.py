"""The next command's catch-up: what Claude Code wrote to a transcript after its last hook.

Claude Code writes a session's transcript asynchronously: the last turn's lines can arrive after
the last hook (SessionEnd included). Every transcript a hook has read is remembered with its
execution (transcript_owners); catch_up() reads what those written to lately have gained since,
exactly as the hook would have, so that reports count it. It never waits on another writer for
long and never raises: a report must not fail over it.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timedelta

from monitor.capture.claude.transcript import READ_BUDGET, read_transcript
from monitor.capture.claude.usage import Delta, apply_messages
from monitor.store.db import Database
from monitor.store.writes import claim_transcript
from monitor.timeutil import format_timestamp, utcnow

#: Transcripts read by a hook in this window are looked at again.
WINDOW = timedelta(days=2)
#: How long catch-up waits for the write lock before leaving the work to the next command.
LOCK_WAIT_MS = 500


def catch_up(db: Database, now: datetime | None = None, prices: object = None) -> int:
    """Read what recently read transcripts gained since; return how many messages were recorded."""
    if db.readonly:
        return 0
    now = now or utcnow()
    try:
        owned = db.execute(
            "SELECT t.path, t.offset, o.execution_id, e.agent_session_id, e.orchestration_id"
            " FROM transcript_owners o JOIN transcript_offsets t ON t.path = o.path"
            " JOIN agent_executions e ON e.id = o.execution_id"
            " WHERE o.read_at >= ?", (format_timestamp(now - WINDOW),)).fetchall()
    except sqlite3.Error:
        return 0
    budget, reads = READ_BUDGET, []
    for path, offset, execution_id, key, orchestration_id in owned:
        try:
            size = os.stat(path).st_size
        except OSError:
            continue
        if size == offset or budget <= 0:
            continue
        try:
            found = read_transcript(path, offset, skip_sidechain=":" not in key, budget=budget)
        except OSError:
            continue
        budget -= max(0, found.offset - offset)
        if found.offset != offset:
            reads.append((path, offset, found, execution_id, orchestration_id))
    if not reads:
        return 0
    if prices is None:
        from monitor.errors import InvalidInput
        from monitor.read.pricing import PriceTable, load_prices

        try:
            prices = load_prices()
        except InvalidInput:
            prices = PriceTable()
    counted = 0
    stamp = format_timestamp(now)
    db.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")
    try:
        with db.transaction() as conn:
            for path, offset, found, execution_id, orchestration_id in reads:
                if not claim_transcript(conn, path, offset, found.offset, None, stamp, execution_id):
                    continue
                if found.messages:
                    delta = Delta()
                    apply_messages(conn, execution_id, list(found.messages.values()), prices, delta, stamp)  # type: ignore[arg-type]
                    delta.record(conn, stamp, execution_id, orchestration_id, f"usage:{path}:{found.offset}")
                    counted += len(found.messages)
    except sqlite3.Error:
        return 0  # locked by another writer (or read-only after all): the next command will do it
    finally:
        from monitor.store.db import BUSY_TIMEOUT_MS

        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return counted
