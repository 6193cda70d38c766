"""The event log: append events and LLM calls (never raising into the agent), read them back, search.

An event belongs to an execution, or only to an orchestration. Appending is one short
transaction; a failure to record is reported as an EventWarning (see warnings), not raised.
"""

from __future__ import annotations

import json
import re
import sqlite3
import warnings
from collections import namedtuple

from monitor.capture.scrub import redact_head, redact_value
from monitor.errors import InvalidInput, NotFound
from monitor.store import writes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from monitor.read.pricing import PriceTable

EVENT_TYPES = ("started", "status_changed", "llm_call", "tool_call", "output", "error", "retry", "file",
               "custom")
MESSAGE_LIMIT = 2000
PAYLOAD_LIMIT = 32_000
_TYPE = re.compile(r"^[a-z][a-z0-9_.-]{0,39}$")



class EventWarning(UserWarning):
    """An event or LLM call could not be recorded; the agent carries on."""


def report_failure(what: str, exc: BaseException) -> None:
    warnings.warn(f"monitor: could not record {what}: {exc}", EventWarning, stacklevel=3)


def check_type(event_type: object) -> str:
    if not isinstance(event_type, str) or not _TYPE.match(event_type):
        raise InvalidInput(
            f"event type must be a short lowercase word ({', '.join(EVENT_TYPES)} or your own), "
            f"got {event_type!r}"
        )
    return event_type


def _clip(text: str | None, limit: int) -> str | None:
    """text redacted (see monitor.capture.scrub), then cut to limit characters."""
    if text is None:
        return None
    text = redact_head(str(text), limit)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def encode_payload(payload: object) -> str | None:
    """JSON text, secrets redacted; anything that is not JSON becomes its str(); too long a payload
    is cut and marked."""
    if payload is None:
        return None
    text = _dumps(payload)
    if len(text) > PAYLOAD_LIMIT:
        return json.dumps({"truncated": True, "size": len(text), "head": redact_head(text, PAYLOAD_LIMIT // 2)[
            : PAYLOAD_LIMIT // 2]}, ensure_ascii=False)
    return _dumps(redact_value(json.loads(text)))


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def insert_event(conn: sqlite3.Connection, now: str, event_type: str, message: str | None,
                 payload: object, execution_id: int | None, orchestration_id: int | None,
                 dedup_key: str | None = None) -> int | None:
    """One event, its message clipped and its payload as JSON; returns the new id, or None when
    dedup_key was already recorded."""
    return writes.insert_event(conn, now, event_type, _clip(message, MESSAGE_LIMIT), encode_payload(payload),
                               execution_id, orchestration_id, dedup_key)


def resolve_owner(conn: sqlite3.Connection, execution: str | None, orchestration: str | None
                  ) -> tuple[int | None, int | None]:
    """(execution id, orchestration id) from an agent_session_id and/or a session_id."""
    if execution is not None:
        row = conn.execute("SELECT id, orchestration_id FROM agent_executions WHERE agent_session_id = ?",
                           (execution,)).fetchone()
        if row is None:
            raise NotFound(f"no agent execution with id {execution!r}")
        return row[0], row[1]
    if orchestration is not None:
        row = conn.execute("SELECT id FROM orchestrations WHERE session_id = ?", (orchestration,)).fetchone()
        if row is None:
            raise NotFound(f"no orchestration with session id {orchestration!r}")
        return None, row[0]
    raise InvalidInput("an event needs an execution (agent_session_id) or an orchestration (session_id)")


def _tokens(name: str, value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{name} must be a whole number >= 0, got {value!r}")
    return value


# Named tuples, not dataclasses: `monitor hook` imports this module and must start fast.
class Usage(namedtuple("Usage", "model input_tokens output_tokens cache_read_tokens cache_write_tokens"
                                " calls duration_ms", defaults=(0, 0, 0, 0, 1, None))):
    """Tokens of one or more LLM calls of one model."""

    __slots__ = ()

    def validate(self) -> Usage:
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "calls"):
            _tokens(name, getattr(self, name))
        if self.duration_ms is not None:
            _tokens("duration_ms", self.duration_ms)
        return self

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens


def add_usage(conn: sqlite3.Connection, now: str, execution_id: int, orchestration_id: int | None,
              usage: Usage, prices: PriceTable, cost_usd: float | None = None,
              dedup_key: str | None = None) -> float | None:
    """Record an llm_call event and add its tokens and cost to the execution's totals (unknown
    once any of its usage had no price). Returns this usage's cost (None when unpriced)."""
    if cost_usd is None:
        cost_usd = prices.cost(usage.model, usage.input_tokens, usage.output_tokens,
                               usage.cache_read_tokens, usage.cache_write_tokens)  # base prices: see pricing
    payload = {"model": usage.model, "input_tokens": usage.input_tokens,
               "output_tokens": usage.output_tokens, "cache_read_tokens": usage.cache_read_tokens,
               "cache_write_tokens": usage.cache_write_tokens, "cost_usd": cost_usd,
               "calls": usage.calls, "duration_ms": usage.duration_ms}
    cost_text = "unpriced" if cost_usd is None else f"${cost_usd:.4f}"
    calls = f"{usage.calls} calls, " if usage.calls != 1 else ""
    message = (f"{usage.model or 'unknown model'}: {calls}{usage.input_tokens:,} in, "
               f"{usage.output_tokens:,} out, {usage.cache_read_tokens:,} cache read, "
               f"{usage.cache_write_tokens:,} cache write tokens, {cost_text}")
    event_id = insert_event(conn, now, "llm_call", message, payload, execution_id, orchestration_id, dedup_key)
    if event_id is None:
        return cost_usd  # already recorded
    writes.put_usage(conn, (execution_id, f"call:{event_id}", usage.model, now, usage.input_tokens,
                            usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens, 0, usage.calls,
                            cost_usd, "api", None))
    writes.add_execution_usage(conn, execution_id, usage.model, usage.input_tokens, usage.output_tokens,
                               usage.cache_read_tokens, usage.cache_write_tokens, cost_usd)
    return cost_usd
