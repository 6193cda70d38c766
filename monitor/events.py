"""The event log: append events and LLM calls (never raising into the agent), read them back, search.

An event belongs to an execution, or only to an orchestration. Appending is one short
transaction; a failure to record is reported as an EventWarning (see warnings), not raised.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import time
import warnings
from collections import namedtuple
from collections.abc import Iterator

from .db import Database
from .errors import InvalidInput, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .pricing import PriceTable

EVENT_TYPES = ("started", "status_changed", "llm_call", "tool_call", "output", "error", "retry", "file",
               "custom")
MESSAGE_LIMIT = 2000
PAYLOAD_LIMIT = 32_000
_TYPE = re.compile(r"^[a-z][a-z0-9_.-]{0,39}$")

#: Columns of `logs` and `search` rows.
EVENT_COLUMNS = ["id", "timestamp", "session_id", "agent_name", "agent_session_id", "type", "message",
                 "payload"]
SEARCH_COLUMNS = ["kind", "timestamp", "session_id", "agent_name", "agent_session_id", "type", "message"]


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
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def encode_payload(payload: object) -> str | None:
    """JSON text; anything that is not JSON becomes its str(); too long a payload is cut and marked."""
    if payload is None:
        return None
    text = json.dumps(payload, ensure_ascii=False, default=str, separators=(",", ":"))
    if len(text) > PAYLOAD_LIMIT:
        text = json.dumps({"truncated": True, "size": len(text), "head": text[: PAYLOAD_LIMIT // 2]},
                          ensure_ascii=False)
    return text


def insert_event(conn: sqlite3.Connection, now: str, event_type: str, message: str | None,
                 payload: object, execution_id: int | None, orchestration_id: int | None,
                 dedup_key: str | None = None) -> int | None:
    """One INSERT; returns the new id, or None when dedup_key was already recorded."""
    row = conn.execute(
        "INSERT INTO events (orchestration_id, execution_id, timestamp, type, message, payload, dedup_key)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
        (orchestration_id, execution_id, now, event_type, _clip(message, MESSAGE_LIMIT),
         encode_payload(payload), dedup_key),
    ).fetchone()
    return row[0] if row else None


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
    """Record an llm_call event and add its tokens and cost to the execution's totals.

    The execution's cost stays unknown (NULL) once any of its usage had no price: a partial
    sum would read as a complete one. Returns this usage's cost (None when unpriced).
    """
    if cost_usd is None:
        cost_usd = prices.cost(usage.model, usage.input_tokens, usage.output_tokens,
                               usage.cache_read_tokens, usage.cache_write_tokens)
    payload = {"model": usage.model, "input_tokens": usage.input_tokens,
               "output_tokens": usage.output_tokens, "cache_read_tokens": usage.cache_read_tokens,
               "cache_write_tokens": usage.cache_write_tokens, "cost_usd": cost_usd,
               "calls": usage.calls, "duration_ms": usage.duration_ms}
    cost_text = "unpriced" if cost_usd is None else f"${cost_usd:.4f}"
    calls = f"{usage.calls} calls, " if usage.calls != 1 else ""
    message = (f"{usage.model or 'unknown model'}: {calls}{usage.input_tokens:,} in, "
               f"{usage.output_tokens:,} out, {usage.cache_read_tokens:,} cache read, "
               f"{usage.cache_write_tokens:,} cache write tokens, {cost_text}")
    if insert_event(conn, now, "llm_call", message, payload, execution_id, orchestration_id,
                    dedup_key) is None:
        return cost_usd  # already recorded
    conn.execute(
        "UPDATE agent_executions SET"
        " cost_usd = CASE WHEN :cost IS NULL THEN NULL"
        "   WHEN cost_usd IS NULL AND coalesce(input_tokens, 0) + coalesce(output_tokens, 0)"
        "     + coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0) > 0 THEN NULL"
        "   ELSE coalesce(cost_usd, 0) + :cost END,"
        " input_tokens = coalesce(input_tokens, 0) + :input,"
        " output_tokens = coalesce(output_tokens, 0) + :output,"
        " cache_read_tokens = coalesce(cache_read_tokens, 0) + :cache_read,"
        " cache_write_tokens = coalesce(cache_write_tokens, 0) + :cache_write,"
        " model = coalesce(model, :model)"
        " WHERE id = :id",
        {"cost": cost_usd, "input": usage.input_tokens, "output": usage.output_tokens,
         "cache_read": usage.cache_read_tokens, "cache_write": usage.cache_write_tokens,
         "model": usage.model, "id": execution_id},
    )
    return cost_usd


# -- reads -----------------------------------------------------------------------------------

_EVENT_SELECT = (
    "SELECT v.id, v.timestamp, o.session_id, e.agent_name, e.agent_session_id, v.type, v.message,"
    " v.payload FROM events v LEFT JOIN agent_executions e ON e.id = v.execution_id"
    " LEFT JOIN orchestrations o ON o.id = v.orchestration_id"
)


class EventFilter(namedtuple("EventFilter", "session agent type since after_id limit",
                             defaults=(None, None, None, 0, None))):
    """Which events `logs` shows: of one session (or one execution), by agent, type, time, after an id."""

    __slots__ = ()


def _owner_clause(db: Database, session: str) -> tuple[str, object]:
    row = db.execute("SELECT id FROM orchestrations WHERE session_id = ?", (session,)).fetchone()
    if row is not None:
        return "v.orchestration_id = ?", row[0]
    row = db.execute("SELECT id FROM agent_executions WHERE agent_session_id = ?", (session,)).fetchone()
    if row is not None:
        return "v.execution_id = ?", row[0]
    raise NotFound(f"no orchestration or execution with id {session!r} (see `monitor list`)")


def list_events(db: Database, where: EventFilter) -> list[dict]:
    """Events of a session (an orchestration's session_id, or an execution's agent_session_id),
    oldest first. Payloads are decoded from JSON."""
    owner, owner_id = _owner_clause(db, where.session)
    clauses, params = [owner], [owner_id]
    for clause, value in (("e.agent_name = ?", where.agent), ("v.type = ?", where.type),
                          ("v.timestamp >= ?", where.since), ("v.id > ?", where.after_id)):
        if value:
            clauses.append(clause)
            params.append(value)
    limit = f" LIMIT {int(where.limit)}" if where.limit else ""
    cursor = db.execute(f"{_EVENT_SELECT} WHERE {' AND '.join(clauses)} ORDER BY v.timestamp, v.id{limit}",
                        params)
    names = [d[0] for d in cursor.description]
    found = []
    for row in cursor:
        item = dict(zip(names, row))
        if item["payload"] is not None:
            try:
                item["payload"] = json.loads(item["payload"])
            except ValueError:
                pass
        found.append(item)
    return found


def follow_events(db: Database, where: EventFilter, interval: float = 0.5) -> Iterator[list[dict]]:
    """Events recorded after where.after_id, in batches as they come (each in time order),
    polling every `interval` seconds; stops only when the caller does (Ctrl-C raises
    KeyboardInterrupt out of the sleep).

    The next batch starts after the highest id seen, not after the last row shown: a hook process
    can take its timestamp before another one, then write after it, so time order and id order
    may differ."""
    after = where.after_id
    while True:
        batch = list_events(db, where._replace(after_id=after, limit=None))
        if batch:
            after = max(e["id"] for e in batch)
            yield batch
        else:
            time.sleep(interval)


#: The columns of the `logs` table (the other formats give every EVENT_COLUMNS field).
LOG_TABLE_COLUMNS = ["timestamp", "agent_name", "type", "message"]


def render_log(db: Database, where: EventFilter, fmt: str, *, follow: bool = False,
               interval: float = 0.5) -> Iterator[str]:
    """What `logs` prints, chunk by chunk: the events so far, then (follow) new ones as they are
    recorded, until the caller stops. Following is a stream: JSON comes as JSON lines, and CSV and
    the table print their header once, before the first rows."""
    from .output import render_rows

    found = list_events(db, where)
    if not follow:
        yield render_rows(found, fmt, EVENT_COLUMNS, table_columns=LOG_TABLE_COLUMNS,
                          empty="No events recorded for this session.")
        return
    fmt = "nl" if fmt == "json" else fmt
    after = max((e["id"] for e in found), default=where.after_id)
    header = {"csv": 1, "table": 2}.get(fmt, 0)  # its lines, printed with the first rows only
    first = True
    for batch in itertools.chain([found], follow_events(db, where._replace(after_id=after), interval)):
        if not batch and not (first and fmt == "csv"):
            continue  # nothing yet: an empty table says nothing, an empty CSV is its header
        lines = render_rows(batch, fmt, EVENT_COLUMNS, table_columns=LOG_TABLE_COLUMNS).splitlines()
        yield "\n".join(lines if first else lines[header:])
        first = False


def fts_query(text: str) -> str | None:
    """User text as an FTS5 query that cannot be a syntax error: every word a quoted prefix
    ("timeout" finds TimeoutError), all of them required. None when the text has no word."""
    words = re.findall(r"\w+", text)
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _has_fts(db: Database) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events_fts'").fetchone() is not None


def search(db: Database, text: str, *, since: str | None = None, limit: int = 50,
           use_fts: bool | None = None) -> list[dict]:
    """Event messages and execution error messages that contain `text`, newest first.

    Uses the FTS5 indexes when the database has them (every word of text must appear, in any
    order), else a plain substring match (LIKE, case-insensitive for ASCII)."""
    if not text or not text.strip():
        raise InvalidInput("give some text to search for")
    query = fts_query(text)
    if use_fts is None:
        use_fts = _has_fts(db)
    if use_fts and query is not None:
        try:
            return _search(db, "events_fts MATCH ?", "errors_fts MATCH ?", query, since, limit, fts=True)
        except sqlite3.OperationalError:
            pass  # e.g. an FTS5-less SQLite reading a database that has the index: fall back
    return _search(db, "v.message LIKE ? ESCAPE '\\'", "e.error_message LIKE ? ESCAPE '\\'", _like(text),
                   since, limit, fts=False)


def _search(db: Database, event_match: str, error_match: str, needle: str, since: str | None,
            limit: int, fts: bool) -> list[dict]:
    event_where, error_where = [event_match], [error_match]
    params_events: list[object] = [needle]
    params_errors: list[object] = [needle]
    if since:
        event_where.append("v.timestamp >= ?")
        params_events.append(since)
        error_where.append("e.started_at >= ?")
        params_errors.append(since)
    events_from = ("events_fts JOIN events v ON v.id = events_fts.rowid" if fts else "events v")
    errors_from = ("errors_fts JOIN agent_executions e ON e.id = errors_fts.rowid" if fts
                   else "agent_executions e")
    # Each side takes its newest `limit` matches by id (ids follow time) before the merge, so a
    # word found in a million events does not sort a million rows.
    sql = (
        f"SELECT * FROM (SELECT 'event' AS kind, v.timestamp, o.session_id, x.agent_name,"
        f" x.agent_session_id, v.type, v.message FROM {events_from}"
        f" LEFT JOIN agent_executions x ON x.id = v.execution_id"
        f" LEFT JOIN orchestrations o ON o.id = v.orchestration_id"
        f" WHERE {' AND '.join(event_where)} ORDER BY {'events_fts.rowid' if fts else 'v.id'} DESC"
        f" LIMIT {int(limit)})"
        f" UNION ALL"
        f" SELECT * FROM (SELECT 'error' AS kind, coalesce(e.completed_at, e.started_at), o.session_id,"
        f" e.agent_name, e.agent_session_id, e.status, e.error_message FROM {errors_from}"
        f" LEFT JOIN orchestrations o ON o.id = e.orchestration_id"
        f" WHERE {' AND '.join(error_where)} ORDER BY {'errors_fts.rowid' if fts else 'e.id'} DESC"
        f" LIMIT {int(limit)})"
        f" ORDER BY 2 DESC LIMIT {int(limit)}"
    )
    cursor = db.execute(sql, [*params_events, *params_errors])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor]

