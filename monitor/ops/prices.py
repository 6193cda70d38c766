"""Pricing what was recorded without a price, once a price is known.

The hook prices each request with the bundled snapshot and the user's file; a model neither knows
is recorded with its tokens and a NULL cost. reprice() tries those again with every source,
the installed genai-prices package included, and marks each row with the sources it tried
(`priced_with`), so a row no source knows is not tried again until a source changes (a newer
genai-prices, a new or edited user file, a new snapshot).
"""

from __future__ import annotations

import os
import sqlite3

from monitor.read.pricing import ENV_VAR, GenaiPrices, PriceTable, load_prices
from monitor.store.db import Database
from monitor.store.writes import price_usage, refresh_execution_usage, set_execution_cost

LOCK_WAIT_MS = 500


def sources_fingerprint(table: PriceTable) -> str:
    """What a price found now depends on: the snapshot's date, the genai-prices version, the user's file."""
    try:
        from importlib.metadata import version

        genai = version("genai-prices")
    except Exception:  # noqa: BLE001 - not installed
        genai = "-"
    user = os.environ.get(ENV_VAR) or ""
    try:
        user += f"@{os.stat(user).st_mtime_ns}" if user else ""
    except OSError:
        pass
    return f"{table.date}|genai-prices {genai}|{user}"


def reprice(db: Database, table: PriceTable | None = None, *, everything: bool = False,
            genai: GenaiPrices | None = None) -> dict:
    """Price the usage recorded without a price that the current sources know; return counts
    {'priced': n, 'unpriced': n left without a price}. everything: also rows already tried with
    the same sources, and executions recorded with totals only (no per-request rows)."""
    counts = {"priced": 0, "unpriced": 0}
    if db.readonly:
        return counts
    if not everything:  # the cheap test first: nothing to do in almost every case
        tried = [r[0] for r in db.execute("SELECT DISTINCT priced_with FROM llm_usage WHERE cost_usd IS NULL")]
        if not tried:
            return counts
    table = table or load_prices()
    fingerprint = sources_fingerprint(table)
    if not everything and all(t == fingerprint for t in tried):
        counts["unpriced"] = db.execute("SELECT count(*) FROM llm_usage WHERE cost_usd IS NULL").fetchone()[0]
        return counts
    genai = genai or GenaiPrices()
    pending = db.execute(
        "SELECT execution_id, message_id, model, timestamp, input_tokens, output_tokens, cache_read_tokens,"
        " cache_write_tokens, cache_write_1h_tokens, calls FROM llm_usage WHERE cost_usd IS NULL"
        + ("" if everything else " AND (priced_with IS NULL OR priced_with != ?)"),
        () if everything else (fingerprint,)).fetchall()
    lone = []
    if everything:
        lone = db.execute(
            "SELECT id, model, started_at, coalesce(input_tokens, 0), coalesce(output_tokens, 0),"
            " coalesce(cache_read_tokens, 0), coalesce(cache_write_tokens, 0) FROM agent_executions e"
            " WHERE cost_usd IS NULL AND coalesce(input_tokens, output_tokens, cache_read_tokens,"
            " cache_write_tokens) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM llm_usage u WHERE u.execution_id = e.id)"
        ).fetchall()
    found = []
    for execution_id, message_id, model, when, inp, out, read, write, write_1h, calls in pending:
        cost = table.cost(model, inp, out, read, write, write_1h, requests=1 if calls == 1 else None)
        if cost is None and calls == 1:
            cost = genai.cost(model, inp, out, read, write, write_1h, when=when)
        found.append((execution_id, message_id, cost))
    lone_found = []
    for execution_id, model, when, inp, out, read, write in lone:
        cost = table.cost(model, inp, out, read, write)
        lone_found.append((execution_id, cost if cost is not None else genai.cost(model, inp, out, read, write, 0,
                                                                                   when=when)))
    db.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")
    try:
        with db.transaction() as conn:
            touched = set()
            for execution_id, message_id, cost in found:
                price_usage(conn, execution_id, message_id, cost, fingerprint)
                if cost is not None:
                    touched.add(execution_id)
                    counts["priced"] += 1
            for execution_id in touched:
                refresh_execution_usage(conn, execution_id)
            for execution_id, cost in lone_found:
                if cost is not None:
                    set_execution_cost(conn, execution_id, cost)
                    counts["priced"] += 1
    except sqlite3.OperationalError:
        return counts  # locked by another writer: the next command tries again
    finally:
        from monitor.store.db import BUSY_TIMEOUT_MS

        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    counts["unpriced"] = db.execute("SELECT count(*) FROM llm_usage WHERE cost_usd IS NULL").fetchone()[0]
    return counts
