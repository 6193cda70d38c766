"""`import`: merge export files (monitor's own, or the reference tool's JSON export) into the database.

Formats read:

- monitor's export: {header fields..., "orchestrations": [{..., "executions": [...]}],
  "unassigned_executions": [...]}
- with `monitor export --events`, an "events" array after those: the event log, each event naming
  its session_id and agent_session_id (the rows it belongs to, in the file or the database).
- the reference tool's export (seed 002): [{...orchestration, "executions": [...]}] for everything,
  or {"orchestration": {...}, "executions": [...]} for one session. Its ids are UUID strings, kept
  in the `uuid` column as the upgrade of a reference database keeps them.

Rows are matched by identity: an orchestration by session_id, an execution by agent_session_id, an
event by its dedup_key, else by its whole content (execution, orchestration, time, type, message, payload).
A row that is already there is kept unless the file's is more complete (finished over running,
then more fields known); the fields the winner lacks are taken from the other. An orchestration
that was already in the database and gains or changes executions from the file has its status and
counts derived from its executions again (two CI jobs' halves of one session make a whole).

Each file is one transaction: a file that is malformed, truncated or holds an invalid record
changes nothing, and its error says where (line, column). The file is read as a stream (flat
memory) and written in batches by sqlite-utils, inside monitor's transaction (its atomic() nests
as a savepoint there).
"""

from __future__ import annotations

import io
import json
import math
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import sqlite_utils

from monitor.capture.scrub import redact, redact_value
from monitor.errors import DatabaseError, InvalidInput
from monitor.ops.jsonstream import JsonStream
from monitor.store import writes
from monitor.store.db import EXECUTION_STATUSES, ORCHESTRATION_STATUSES, Database
from monitor.timeutil import format_timestamp, parse_timestamp, utcnow

_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
#: Executions per batch written (and orchestrations looked up) at once.
BATCH = 2000

_ORCHESTRATION_TEXT = ("task_description", "git_commit_hash", "plan_file_path", "progress_file_path")
_ORCHESTRATION_COUNTS = ("total_tasks", "completed_tasks", "failed_tasks")
_EXECUTION_TEXT = ("task_id", "error_message", "summary_report_path", "session_log_path", "model")
_EXECUTION_COUNTS = ("retry_count", "files_created", "files_modified")
_EXECUTION_NUMBERS = ("task_number", "duration_ms", "input_tokens", "output_tokens", "cache_read_tokens",
                      "cache_write_tokens", "exit_code")

#: The columns a merge compares and writes (id is the database's own; created_at is written only
#: with a new row: the file's, else the time of the import).
ORCHESTRATION_COLUMNS = ("uuid", "session_id", *_ORCHESTRATION_TEXT, "status", "started_at", "completed_at",
                         "duration_ms", *_ORCHESTRATION_COUNTS)
EXECUTION_COLUMNS = ("uuid", "orchestration_id", "agent_session_id", "agent_name", *_EXECUTION_TEXT, "status",
                     "started_at", "completed_at", *_EXECUTION_COUNTS, "self_healed", *_EXECUTION_NUMBERS,
                     "cost_usd")


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ImportResult:
    """What importing one file did. recounted: orchestrations already in the database whose status
    and counts were derived again from executions the file added or changed."""

    source: str
    orchestrations: Counts = field(default_factory=Counts)
    executions: Counts = field(default_factory=Counts)
    recounted: int = 0
    events: Counts = field(default_factory=Counts)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "orchestrations": vars(self.orchestrations),
                "executions": vars(self.executions), "recounted": self.recounted,
                "events": {"inserted": self.events.inserted, "unchanged": self.events.unchanged}}


# -- records: validated and put in the stored form ------------------------------------------------

class _Invalid(Exception):
    """A record that cannot be imported; the reader adds where it is."""


def _text(raw: dict, name: str, required: bool = False) -> str | None:
    value = raw.get(name)
    if value is None or value == "" and not required:
        if required:
            raise _Invalid(f"{name} is missing")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise _Invalid(f"{name} must be a non-empty string, not {value!r}")
    return value


def _number(raw: dict, name: str, default: int | None = None) -> int | None:
    value = raw.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid(f"{name} must be a whole number, not {value!r}")
    if default is not None and value < 0:
        raise _Invalid(f"{name} must not be negative, not {value!r}")
    return value


def _time(raw: dict, name: str, required: bool = False) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise _Invalid(f"{name} is missing")
        return None
    if isinstance(value, str) and _CANONICAL.fullmatch(value):
        return value  # already in the stored form (every monitor export, the reference tool's times)
    try:
        return format_timestamp(parse_timestamp(value))
    except (TypeError, ValueError, OverflowError, OSError):
        raise _Invalid(f"{name} is not a time: {value!r}") from None


def _status(raw: dict, allowed: tuple[str, ...]) -> str:
    value = raw.get("status")
    if value not in allowed:
        raise _Invalid(f"status must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _uuid(raw: dict) -> str | None:
    """monitor's export carries uuid; the reference tool's id is the UUID itself."""
    value = raw.get("uuid")
    if value is None and isinstance(raw.get("id"), str):
        value = raw["id"]
    if value is not None and not isinstance(value, str):
        raise _Invalid(f"uuid must be a string, not {value!r}")
    return value or None


def orchestration_record(raw: Any) -> dict[str, Any]:
    """An orchestration of an export file as it is stored (without its executions)."""
    if not isinstance(raw, dict):
        raise _Invalid(f"an orchestration must be an object, not {type(raw).__name__}")
    record: dict[str, Any] = {"uuid": _uuid(raw), "session_id": _text(raw, "session_id", required=True)}
    record.update((name, _text(raw, name)) for name in _ORCHESTRATION_TEXT)
    record["status"] = _status(raw, ORCHESTRATION_STATUSES)
    record["started_at"] = _time(raw, "started_at", required=True)
    record["completed_at"] = _time(raw, "completed_at")
    record["duration_ms"] = _number(raw, "duration_ms")
    record.update((name, _number(raw, name, 0)) for name in _ORCHESTRATION_COUNTS)
    record["created_at"] = _time(raw, "created_at")
    return record


def execution_record(raw: Any) -> dict[str, Any]:
    """An execution of an export file as it is stored (orchestration_id is set by the importer)."""
    if not isinstance(raw, dict):
        raise _Invalid(f"an execution must be an object, not {type(raw).__name__}")
    record: dict[str, Any] = {"uuid": _uuid(raw), "orchestration_id": None,
                              "agent_session_id": _text(raw, "agent_session_id", required=True),
                              "agent_name": _text(raw, "agent_name", required=True)}
    record.update((name, _text(raw, name)) for name in _EXECUTION_TEXT)
    if record["error_message"] is not None:  # as every writer stores it (a reference tool's file is not redacted)
        record["error_message"] = redact(record["error_message"])
    record["status"] = _status(raw, EXECUTION_STATUSES)
    record["started_at"] = _time(raw, "started_at", required=True)
    record["completed_at"] = _time(raw, "completed_at")
    record.update((name, _number(raw, name, 0)) for name in _EXECUTION_COUNTS)
    healed = raw.get("self_healed")
    if healed not in (None, True, False, 0, 1):
        raise _Invalid(f"self_healed must be true or false, not {healed!r}")
    record["self_healed"] = int(bool(healed))
    record.update((name, _number(raw, name)) for name in _EXECUTION_NUMBERS)
    cost = raw.get("cost_usd")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost)):
        raise _Invalid(f"cost_usd must be a number, not {cost!r}")
    record["cost_usd"] = None if cost is None else float(cost)
    record["created_at"] = _time(raw, "created_at")
    return record


def event_record(raw: Any) -> dict[str, Any]:
    """An event of an export file (--events) as it is stored, with the session_id and
    agent_session_id it names (the importer turns them into ids)."""
    if not isinstance(raw, dict):
        raise _Invalid(f"an event must be an object, not {type(raw).__name__}")
    payload, message = raw.get("payload"), raw.get("message")
    if payload is not None and not isinstance(payload, str):
        payload = json.dumps(payload, ensure_ascii=False)  # a payload given as JSON rather than its text
    if message is not None and not isinstance(message, str):
        raise _Invalid(f"message must be a string, not {message!r}")
    return {"session_id": _text(raw, "session_id"), "agent_session_id": _text(raw, "agent_session_id"),
            "timestamp": _time(raw, "timestamp", required=True), "type": _text(raw, "type", required=True),
            "message": None if message is None else redact(message),
            "payload": None if payload is None else _redacted_payload(payload), "dedup_key": _text(raw, "dedup_key")}


def _redacted_payload(text: str) -> str:
    """A payload's JSON text with its secrets redacted, as the event log stores payloads; the text
    as it was when there is none (so that importing a file again finds the same payload)."""
    try:
        value = json.loads(text)
    except ValueError:
        return redact(text)
    redacted = redact_value(value)
    return text if redacted == value else json.dumps(redacted, ensure_ascii=False)


# -- reading a file: a stream of ("orchestration" | "execution", record, parent session id) ------

Event = tuple[str, dict[str, Any], str | None]


def read_events(stream: JsonStream) -> Iterator[Event]:
    """The records of an export document, in file order, each validated where it was read."""
    first = stream.peek()
    if first == "[":
        yield from _orchestrations(stream)
    elif first == "{":
        yield from _document(stream)
    else:
        raise stream.error("not an export: expected a JSON object or array, found "
                           + ("the end of the file" if first == "" else repr(first)))
    stream.end()


def _record(stream: JsonStream, make: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    start = stream.offset()
    raw = stream.value()
    return _checked(stream, make, raw, start)


def _checked(stream: JsonStream, make: Callable[[Any], dict[str, Any]], raw: Any, start: int) -> dict[str, Any]:
    try:
        return make(raw)
    except _Invalid as exc:
        raise stream.error_at(str(exc), start) from None


def _document(stream: JsonStream) -> Iterator[Event]:
    known = False
    parent: str | None = None  # {"orchestration": ..., "executions": [...]}: the reference tool's one session
    early: list[tuple[Any, int]] = []  # its executions, when they come before their orchestration
    for key in stream.iter_object():
        if key == "orchestrations":
            known = True
            yield from _orchestrations(stream)
        elif key == "unassigned_executions":
            known = True
            for _ in stream.iter_array():
                yield "execution", _record(stream, execution_record), None
        elif key == "events":
            for _ in stream.iter_array():
                yield "event", _record(stream, event_record), None
        elif key == "orchestration":
            known = True
            orchestration = _record(stream, orchestration_record)
            parent = orchestration["session_id"]
            yield "orchestration", orchestration, None
            for raw, start in early:
                yield "execution", _checked(stream, execution_record, raw, start), parent
            early = []
        elif key == "executions":
            known = True
            for _ in stream.iter_array():
                if parent is None:
                    at = stream.offset()
                    early.append((stream.value(), at))
                else:
                    yield "execution", _record(stream, execution_record), parent
        else:
            stream.value()  # a header field: monitor_version, exported_at, session_id, since, ...
    if not known:
        raise stream.error("not an export: the object has no orchestrations, orchestration or executions")
    if early:
        raise stream.error("executions without an orchestration")


def _orchestrations(stream: JsonStream) -> Iterator[Event]:
    for _ in stream.iter_array():
        yield from _orchestration(stream)


def _orchestration(stream: JsonStream) -> Iterator[Event]:
    """One orchestration and its executions. They stream when "executions" comes after
    session_id (as every known exporter writes it); otherwise they wait for the object's end."""
    start = stream.offset()
    if stream.peek() != "{":
        raise stream.error("an orchestration must be an object")
    fields: dict[str, Any] = {}
    sent: dict[str, Any] | None = None
    early: list[tuple[Any, int]] = []
    for key in stream.iter_object():
        if key != "executions":
            fields[key] = stream.value()
            continue
        if sent is None and "session_id" in fields:
            sent = _checked(stream, orchestration_record, fields, start)
            yield "orchestration", sent, None
        for _ in stream.iter_array():
            if sent is None:
                at = stream.offset()
                early.append((stream.value(), at))
            else:
                yield "execution", _record(stream, execution_record), sent["session_id"]
    orchestration = _checked(stream, orchestration_record, fields, start)
    if sent is None or orchestration != sent:
        yield "orchestration", orchestration, None  # (again, with the fields that came after executions)
    for raw, at in early:
        yield "execution", _checked(stream, execution_record, raw, at), orchestration["session_id"]


# -- merging ----------------------------------------------------------------------------------------

def _known(record: dict[str, Any], columns: tuple[str, ...]) -> int:
    return sum(record.get(c) not in (None, 0, "") for c in columns)


def merge(existing: dict[str, Any], incoming: dict[str, Any], columns: tuple[str, ...],
          running: str) -> dict[str, Any]:
    """The more complete of two records of one row (finished over `running`, then more fields
    known; a tie keeps existing), its missing fields filled from the other when that one is
    unfinished or has the same status."""
    def rank(record: dict[str, Any]) -> tuple[bool, int]:
        return record["status"] != running, _known(record, columns)

    winner, other = (incoming, existing) if rank(incoming) > rank(existing) else (existing, incoming)
    merged = {c: winner.get(c) for c in columns}
    if other["status"] in (running, winner["status"]):
        for c in columns:
            if merged[c] in (None, 0, "") and other.get(c) not in (None, 0, ""):
                merged[c] = other[c]
    return merged


class _FileImport:
    """One file's import inside one transaction, written a batch at a time."""

    def __init__(self, conn: sqlite3.Connection, source: str) -> None:
        self.conn = conn
        self.db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
        self.result = ImportResult(source)
        # Orchestrations this file adds get ids from here on (AUTOINCREMENT): their status is the file's.
        self.first_new_id: int = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM orchestrations").fetchone()[0]
        self.orchestrations: dict[str, tuple[dict[str, Any], bool]] = {}  # session -> (record, counted)
        self.executions: dict[str, tuple[dict[str, Any], str | None]] = {}  # agent session -> (record, parent)
        self.events: list[dict[str, Any]] = []
        self.flushed_session: str | None = None
        self.now = format_timestamp(utcnow())  # created_at of a new row whose file does not say

    def add(self, event: Event) -> None:
        kind, record, parent = event
        if kind == "event":
            self.events.append(record)
        elif kind == "orchestration":
            session = record["session_id"]
            pending = self.orchestrations.get(session)
            counted = pending[1] if pending is not None else session != self.flushed_session
            self.orchestrations[session] = (record, counted)
        else:
            key = record["agent_session_id"]
            if key in self.executions:  # the same execution twice in one batch
                self.result.executions.unchanged += 1
                record = merge(self.executions[key][0], record, EXECUTION_COLUMNS, "in_progress")
            self.executions[key] = (record, parent)
        if len(self.executions) >= BATCH or len(self.orchestrations) >= BATCH or len(self.events) >= BATCH:
            self.flush()

    def flush(self) -> None:
        ids = self._merge_orchestrations()
        changed_parents = self._merge_executions(ids)
        for orchestration_id in sorted(changed_parents):
            if orchestration_id < self.first_new_id and writes.recount_orchestration(self.conn, orchestration_id):
                self.result.recounted += 1
        self._add_events()
        if self.orchestrations:
            self.flushed_session = next(reversed(self.orchestrations))
        self.orchestrations.clear()
        self.executions.clear()
        self.events.clear()

    def _merge_orchestrations(self) -> dict[str, int]:
        incoming = {session: record for session, (record, _) in self.orchestrations.items()}
        counted = {session for session, (_, first) in self.orchestrations.items() if first}
        self._upsert("orchestrations", "session_id", incoming, ORCHESTRATION_COLUMNS, "running",
                     self.result.orchestrations, counted)
        wanted = {parent for _, parent in self.executions.values() if parent is not None}
        found = self._existing("orchestrations", "session_id", wanted, ("id", "session_id"))
        return {session: row["id"] for session, row in found.items()}

    def _merge_executions(self, parent_ids: dict[str, int]) -> set[int]:
        incoming = {}
        for key, (record, parent) in self.executions.items():
            record["orchestration_id"] = None if parent is None else parent_ids[parent]
            incoming[key] = record
        written = self._upsert("agent_executions", "agent_session_id", incoming, EXECUTION_COLUMNS,
                               "in_progress", self.result.executions, set(incoming))
        return {r["orchestration_id"] for r in written if r["orchestration_id"] is not None}

    def _add_events(self) -> None:
        """The batch's events, once the rows they name are written (the file's or the database's)."""
        if not self.events:
            return
        sessions = self._existing("orchestrations", "session_id",
                                  {e["session_id"] for e in self.events if e["session_id"]}, ("id", "session_id"))
        agents = self._existing("agent_executions", "agent_session_id",
                                {e["agent_session_id"] for e in self.events if e["agent_session_id"]},
                                ("id", "agent_session_id"))
        for event in self.events:
            ids = []
            for name, found, what in (("session_id", sessions, "orchestration"),
                                      ("agent_session_id", agents, "execution")):
                key = event[name]
                if key is not None and key not in found:
                    raise InvalidInput(f"an event names {what} {key!r}, which is neither in the file nor in"
                                       " the database")
                ids.append(None if key is None else found[key]["id"])
            inserted = writes.import_event(self.conn, ids[0], ids[1], event["timestamp"], event["type"],
                                           event["message"], event["payload"], event["dedup_key"])
            counts = self.result.events
            if inserted:
                counts.inserted += 1
            else:
                counts.unchanged += 1

    def _existing(self, table: str, key: str, keys: set[str] | list[str],
                  columns: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        keys = list(keys)
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            for row in self.db.table(table).rows_where(f"{key} IN ({', '.join('?' * len(part))})", part,
                                                 select=", ".join(columns)):
                found[row[key]] = row
        return found

    def _upsert(self, table: str, key: str, incoming: dict[str, dict[str, Any]], columns: tuple[str, ...],
                running: str, counts: Counts, counted: set[str]) -> list[dict[str, Any]]:
        """Insert the new rows, update the ones the file improves; return the rows written."""
        existing = self._existing(table, key, list(incoming), columns)
        new, better = [], []
        for k, record in incoming.items():
            old = existing.get(k)
            if old is None:
                new.append({**record, "created_at": record.get("created_at") or self.now})
                outcome = "inserted"
            else:
                merged = merge(old, record, columns, running)
                if merged == {c: old[c] for c in columns}:
                    outcome = "unchanged"
                else:
                    better.append(merged)
                    outcome = "updated"
            if k in counted:
                setattr(counts, outcome, getattr(counts, outcome) + 1)
        if new:
            self.db.table(table).insert_all(new)
        if better:
            self.db.table(table).upsert_all(better, pk=key)
        return new + better


def import_stream(db: Database, source: TextIO, name: str,
                  progress: Callable[[int], None] | None = None) -> ImportResult:
    """Import one export document read from source (name: how errors and the result call it).

    One transaction: on any error (InvalidInput with the position, or a database error) nothing
    of the file stays."""
    stream = JsonStream(source, progress)
    try:
        with db.transaction() as conn:
            job = _FileImport(conn, name)
            try:
                for event in read_events(stream):
                    job.add(event)
                job.flush()
            except sqlite3.IntegrityError as exc:  # (inside: the transaction would say it in its own words)
                raise DatabaseError(f"{name}: not imported, it conflicts with the database ({exc})") from None
    except InvalidInput as exc:
        raise InvalidInput(f"{name}: not imported: {exc}") from None
    return job.result


def import_file(db: Database, path: str, progress: Callable[[int], None] | None = None) -> ImportResult:
    """Import one export file (path "-": standard input); see import_stream()."""
    if path == "-":
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", errors="strict")
        try:
            return import_stream(db, stdin, "<stdin>", progress)
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"<stdin>: not imported: not UTF-8 text ({exc.reason})") from None
        finally:
            stdin.detach()
    try:
        with open(path, encoding="utf-8-sig", errors="strict") as source:
            return import_stream(db, source, path, progress)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not imported: not UTF-8 text ({exc.reason})") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise InvalidInput(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
