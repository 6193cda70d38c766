"""Reading the event log: `logs` (and --follow) and `search`."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import namedtuple
from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

from monitor.errors import DatabaseError, InvalidInput, NotFound
from monitor.read.queries import Page, count_up_to, page
from monitor.store.db import Database

T = TypeVar("T")

#: Columns of `logs` and `search` rows.
EVENT_COLUMNS = ["id", "timestamp", "session_id", "agent_name", "agent_session_id", "type", "message",
                 "payload"]
SEARCH_COLUMNS = ["kind", "timestamp", "session_id", "agent_name", "agent_session_id", "type", "message"]

EVENT_SELECT = (
    "SELECT v.id, v.timestamp, o.session_id, e.agent_name, e.agent_session_id, v.type, v.message,"
    " v.payload FROM events v LEFT JOIN agent_executions e ON e.id = v.execution_id"
    " LEFT JOIN orchestrations o ON o.id = v.orchestration_id"
)


class EventFilter(namedtuple("EventFilter", "session agent type since after_id limit",
                             defaults=(None, None, None, 0, None))):
    """Which events `logs` shows: of one session (or one execution), by agent, type, time, after an id."""

    __slots__ = ()


def _owner_clause(db: Database, session: str) -> tuple[str, object]:
    """An orchestration's or an execution's events, named by its session id or its uuid."""
    for table, key, clause in (("orchestrations", "session_id", "v.orchestration_id = ?"),
                               ("agent_executions", "agent_session_id", "v.execution_id = ?"),
                               ("orchestrations", "uuid", "v.orchestration_id = ?"),
                               ("agent_executions", "uuid", "v.execution_id = ?")):
        row = db.execute(f"SELECT id FROM {table} WHERE {key} = ?", (session,)).fetchone()
        if row is not None:
            return clause, row[0]
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
    return _decoded(db.execute(f"{EVENT_SELECT} WHERE {' AND '.join(clauses)} ORDER BY v.timestamp, v.id{limit}",
                               params))


def latest_events(db: Database, since: str, limit: int) -> list[dict]:
    """The newest `limit` events of every session at or after `since`, oldest of them first: the
    tail of the whole log (`watch`). A range search on the events' time index, read from its end."""
    newest = db.execute(f"{EVENT_SELECT} WHERE v.timestamp >= ? ORDER BY v.timestamp DESC, v.id DESC"
                        f" LIMIT {int(limit)}", (since,))
    return _decoded(newest)[::-1]


def _decoded(cursor: sqlite3.Cursor) -> list[dict]:
    """Event rows as dicts, payloads decoded from JSON (kept as text when they are not JSON)."""
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


def fts_query(text: str, *, prefix: bool = True) -> str | None:
    """User text as an FTS5 query that cannot be a syntax error: every word quoted, all of them
    required, each a prefix ("timeout" finds TimeoutError) or, with prefix=False, a whole word.
    None when the text has no word."""
    words = re.findall(r"\w+", text)
    if not words:
        return None
    star = "*" if prefix else ""
    return " ".join('"' + w.replace('"', '""') + '"' + star for w in words)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _has_fts(db: Database) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events_fts'").fetchone() is not None


def search(db: Database, text: str, *, since: str | None = None, limit: int | None = 50,
           use_fts: bool | None = None) -> list[dict]:
    """Event messages and execution error messages that contain `text`, newest first; at most
    `limit` (0 or None: all).

    Uses the FTS5 indexes when the database has them (every word of text must appear, in any
    order: as a whole word, or when no row has them all whole, as the start of one), else a plain
    substring match (LIKE, case-insensitive for ASCII)."""
    return _matching(db, text, since, use_fts, lambda m: _search(db, m, limit))


def count_matches(db: Database, text: str, *, since: str | None = None, use_fts: bool | None = None,
                  most: int | None = None) -> int:
    """How many rows search finds without a limit (at most `most`)."""
    return _matching(db, text, since, use_fts, lambda m: _count(db, m, most))


def search_page(db: Database, text: str, *, since: str | None = None, limit: int | None = 50) -> Page:
    """search as a Page: with the count of all matches when the limit cut them."""
    with db.snapshot():
        return page(lambda n: search(db, text, since=since, limit=n),
                    lambda most: count_matches(db, text, since=since, most=most), limit)


class _Match(NamedTuple):
    """Where search looks: the FROM and WHERE of its events side and of its errors side."""

    events_from: str
    event_where: list[str]
    event_params: list[object]
    errors_from: str
    error_where: list[str]
    error_params: list[object]
    fts: bool


def _matching(db: Database, text: str, since: str | None, use_fts: bool | None,
              run: Callable[[_Match], T]) -> T:
    """run(the FTS5 match) where the database has the indexes and text has a word, else run(a LIKE match).

    With FTS5 the words are whole words first, and prefixes only when that finds nothing: FTS5
    reads a word as a whole from the newest match on and stops at the limit, but gathers every
    match of a prefix before it can give the first one (a million for a word in every event)."""
    if not text or not text.strip():
        raise InvalidInput("give some text to search for")
    if use_fts is None:
        use_fts = _has_fts(db)
    whole, prefix = fts_query(text, prefix=False), fts_query(text)
    if use_fts and whole is not None and prefix is not None:
        try:
            return run(_match(whole, since, fts=True)) or run(_match(prefix, since, fts=True))
        except (sqlite3.OperationalError, DatabaseError):
            pass  # e.g. an FTS5-less SQLite reading a database that has the index: fall back
    return run(_match(_like(text), since, fts=False))


def _match(needle: str, since: str | None, fts: bool) -> _Match:
    event_where = ["events_fts MATCH ?" if fts else "v.message LIKE ? ESCAPE '\\'"]
    error_where = ["errors_fts MATCH ?" if fts else "e.error_message LIKE ? ESCAPE '\\'"]
    event_params: list[object] = [needle]
    error_params: list[object] = [needle]
    if since:
        # The window's first id as well as its time: full-text matches are read newest first by id,
        # and without the bound a window holding fewer matches than the limit would read them all.
        event_id = "events_fts.rowid" if fts else "v.id"
        error_id = "errors_fts.rowid" if fts else "e.id"
        event_where += ["v.timestamp >= ?", f"{event_id} >= (SELECT min(+id) FROM events WHERE timestamp >= ?)"]
        event_params += [since, since]
        error_where += ["e.started_at >= ?",
                        f"{error_id} >= (SELECT min(+id) FROM agent_executions WHERE started_at >= ?)"]
        error_params += [since, since]
    return _Match("events_fts JOIN events v ON v.id = events_fts.rowid" if fts else "events v",
                  event_where, event_params,
                  "errors_fts JOIN agent_executions e ON e.id = errors_fts.rowid" if fts else "agent_executions e",
                  error_where, error_params, fts)


def _search(db: Database, m: _Match, limit: int | None) -> list[dict]:
    # Each side takes its newest `limit` matches by id (ids follow time) before the merge, so a
    # word found in a million events does not sort a million rows.
    top = f" LIMIT {int(limit)}" if limit else ""
    sql = (
        f"SELECT * FROM (SELECT 'event' AS kind, v.timestamp, o.session_id, x.agent_name,"
        f" x.agent_session_id, v.type, v.message FROM {m.events_from}"
        f" LEFT JOIN agent_executions x ON x.id = v.execution_id"
        f" LEFT JOIN orchestrations o ON o.id = v.orchestration_id"
        f" WHERE {' AND '.join(m.event_where)} ORDER BY {'events_fts.rowid' if m.fts else 'v.id'} DESC{top})"
        f" UNION ALL"
        f" SELECT * FROM (SELECT 'error' AS kind, coalesce(e.completed_at, e.started_at), o.session_id,"
        f" e.agent_name, e.agent_session_id, e.status, e.error_message FROM {m.errors_from}"
        f" LEFT JOIN orchestrations o ON o.id = e.orchestration_id"
        f" WHERE {' AND '.join(m.error_where)} ORDER BY {'errors_fts.rowid' if m.fts else 'e.id'} DESC{top})"
        f" ORDER BY 2 DESC{top}"
    )
    cursor = db.execute(sql, [*m.event_params, *m.error_params])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor]


def _count(db: Database, m: _Match, most: int | None) -> int:
    events = count_up_to(db, f"FROM {m.events_from} WHERE {' AND '.join(m.event_where)}", m.event_params, most)
    if most is not None and events >= most:
        return events
    errors = count_up_to(db, f"FROM {m.errors_from} WHERE {' AND '.join(m.error_where)}", m.error_params,
                         None if most is None else most - events)
    return events + errors
