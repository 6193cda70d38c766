"""Usage accounting: tokens and cost per LLM request (table llm_usage), kept current as they come in.

Each assistant message is one row, keyed by (execution, message id), holding the counts of the
last transcript line read for it: a message still being written is updated later, never counted
twice. An execution's totals are the sums of its rows (writes.refresh_execution_usage).

Subagents: their transcripts carry placeholder output counts (1-26) on every line; the parent's
PostToolUse for the Agent (or Task) tool carries, in tool_response.usage, the real counts of the
subagent's last request. apply_agent_result() lays them over that request's row (matched by its
input and cache counts, which the transcript does get right), keeping the larger output count;
before the transcript line is read it waits as an 'agent_result_pending' row that the line's
arrival absorbs. So every request is counted once, with the best count known for it; the other
requests of a subagent keep the transcript's output counts, which are lower bounds.
"""

from __future__ import annotations

import sqlite3

from monitor.capture.claude.transcript import Message, usage_counts
from monitor.capture.events import insert_event
from monitor.store.writes import carry_execution_totals, delete_usage, put_usage, refresh_execution_usage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from monitor.read.pricing import PriceTable

PENDING = "agent-result:"
_ROW = ("model, timestamp, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
        " cache_write_1h_tokens, calls, cost_usd, source")


class Delta:
    """What a batch of usage added, per model: tokens, new requests, cost (None once unpriced)."""

    def __init__(self) -> None:
        self.per_model: dict[str | None, list] = {}

    def add(self, model: str | None, old: tuple | None, new: tuple, old_cost: float | None,
            new_cost: float | None) -> None:
        """A request's counts went from old (None: not recorded) to new (all 0: removed)."""
        entry = self.per_model.setdefault(model, [0, 0, 0, 0, 0, 0, 0.0])
        before = old or (0, 0, 0, 0, 0)
        for i in range(5):
            entry[i] += new[i] - before[i]
        entry[5] += int(any(new)) - int(old is not None and any(old))
        if entry[6] is not None:
            entry[6] = None if new_cost is None or (old is not None and old_cost is None) else (
                entry[6] + new_cost - (old_cost or 0))

    def record(self, conn: sqlite3.Connection, now: str, execution_id: int, orchestration_id: int | None,
               key: str) -> None:
        """One llm_call event per model whose counts changed."""
        for model, (inp, out, read, write, write_1h, calls, cost) in self.per_model.items():
            if not any((inp, out, read, write, write_1h)):
                continue
            cost_text = "unpriced" if cost is None else f"${cost:.4f}"
            calls_text = "" if calls == 1 else "more of calls already counted, " if calls <= 0 else f"{calls} calls, "
            hour = f" ({write_1h:,} for 1 hour)" if write_1h else ""
            message = (f"{model or 'unknown model'}: {calls_text}{inp:,} in, {out:,} out, {read:,} cache read, "
                       f"{write + write_1h:,} cache write tokens{hour}, {cost_text}")
            payload = {"model": model, "input_tokens": inp, "output_tokens": out, "cache_read_tokens": read,
                       "cache_write_tokens": write + write_1h, "cache_write_1h_tokens": write_1h,
                       "cost_usd": None if cost is None else round(cost, 8), "calls": calls}
            insert_event(conn, now, "llm_call", message, payload, execution_id, orchestration_id, f"{key}:{model}")


def _cost(prices: PriceTable | None, model: str | None, counts: tuple) -> float | None:
    return None if prices is None else prices.cost(model, *counts, requests=1)


def _stored(conn: sqlite3.Connection, execution_id: int, message_id: str) -> tuple | None:
    return conn.execute(f"SELECT {_ROW} FROM llm_usage WHERE execution_id = ? AND message_id = ?",
                        (execution_id, message_id)).fetchone()


def _pending(conn: sqlite3.Connection, execution_id: int) -> list[tuple]:
    return conn.execute(f"SELECT message_id, {_ROW} FROM llm_usage WHERE execution_id = ?"
                        " AND message_id >= ? AND message_id < ?",
                        (execution_id, PENDING, PENDING[:-1] + ";")).fetchall()


def _same_request(a: tuple, b: tuple) -> bool:
    """Whether two counts are of the same request: same input, cache read and cache write counts."""
    return a[0] == b[0] and a[2] == b[2] and a[3] + a[4] == b[3] + b[4]


def apply_messages(conn: sqlite3.Connection, execution_id: int, messages: list[Message],
                   prices: PriceTable | None, delta: Delta, now: str) -> None:
    """Record (or update) each message's usage for an execution; add what changed to delta. A
    message without a timestamp of its own is dated now."""
    carry_execution_totals(conn, execution_id)
    pending = _pending(conn, execution_id)
    for m in messages:
        counts = m.counts()
        old = _stored(conn, execution_id, m.id)
        model, timestamp, source = m.model or (old[0] if old else None), m.timestamp or (old[1] if old else now), \
            "transcript"
        if old is not None and old[9] == "agent_result":
            source = "agent_result"  # the tool result's count of this request stays if larger
            counts = counts[:1] + (max(counts[1], old[3]),) + counts[2:]
        elif old is None:
            for row in pending:
                if _same_request(counts, row[3:8]):
                    counts = counts[:1] + (max(counts[1], row[4]),) + counts[2:]
                    source = "agent_result"
                    delete_usage(conn, execution_id, row[0])
                    pending.remove(row)
                    # what the pending row had counted is taken back, then the whole request added
                    delta.add(row[1], row[3:8], (0, 0, 0, 0, 0), row[9], 0.0)
                    break
        old_counts = old[2:7] if old else None
        if old is not None and old_counts == counts and old[0] == model:
            continue
        cost = _cost(prices, model, counts)
        put_usage(conn, (execution_id, m.id, model, timestamp, *counts, 1, cost, source, None))
        if old is not None and old[0] != model:
            delta.add(old[0], old_counts, (0, 0, 0, 0, 0), old[8], 0.0)
            old_counts, old = None, None
        delta.add(model, old_counts, counts, old[8] if old else None, cost)
    refresh_execution_usage(conn, execution_id)


def agent_result_usage(response: object) -> tuple[str | None, tuple[int, int, int, int, int]] | None:
    """(model, counts) of the subagent's last request in an Agent/Task tool_response, or None."""
    if not isinstance(response, dict) or not isinstance(response.get("usage"), dict):
        return None
    model = response.get("resolvedModel") or response.get("model")
    counts = usage_counts(response["usage"])
    return (model if isinstance(model, str) and model else None), counts


def apply_agent_result(conn: sqlite3.Connection, execution_id: int, key: str, model: str | None,
                       counts: tuple[int, int, int, int, int], timestamp: str, prices: PriceTable | None,
                       delta: Delta) -> None:
    """Lay the counts of a subagent's last request (from its Agent tool result) over that
    request's row, or keep them as a pending row until the transcript line arrives."""
    if not any(counts):
        return
    carry_execution_totals(conn, execution_id)
    rows = conn.execute(f"SELECT message_id, {_ROW} FROM llm_usage WHERE execution_id = ?"
                        " ORDER BY timestamp DESC", (execution_id,)).fetchall()
    target = next((r for r in rows if not r[0].startswith(PENDING) and _same_request(counts, r[3:8])), None)
    if target is None:
        message_id, old = PENDING + key, _stored(conn, execution_id, PENDING + key)
        if old is not None:
            return  # a replay
        cost = _cost(prices, model, counts)
        put_usage(conn, (execution_id, message_id, model, timestamp, *counts, 1, cost, "agent_result_pending", None))
        delta.add(model, None, counts, None, cost)
    else:
        old_counts = target[3:8]
        better = old_counts[:1] + (max(old_counts[1], counts[1]),) + old_counts[2:]
        if better == old_counts and target[10] == "agent_result":
            return
        row_model = target[1] or model
        cost = _cost(prices, row_model, better)
        put_usage(conn, (execution_id, target[0], row_model, target[2], *better, 1, cost, "agent_result", None))
        delta.add(row_model, old_counts, better, target[9], cost)
    refresh_execution_usage(conn, execution_id)
