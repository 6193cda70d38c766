"""Reads: rows as plain dicts with JSON-ready types. No formatting here."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from monitor.store.db import Database
from monitor.errors import NotFound

#: uuid: the row's global identity (for a reference-tool row, its original id).
ORCHESTRATION_FIELDS = [
    "id", "uuid", "session_id", "task_description", "status", "started_at", "completed_at", "duration_ms",
    "total_tasks", "completed_tasks", "failed_tasks", "git_commit_hash", "plan_file_path",
    "progress_file_path",
]
EXECUTION_FIELDS = [
    "id", "uuid", "orchestration_id", "agent_session_id", "agent_name", "task_id", "task_number", "status",
    "started_at", "completed_at", "duration_ms", "retry_count", "self_healed", "files_created",
    "files_modified", "error_message", "summary_report_path", "session_log_path", "model",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd",
    "exit_code",
]
#: Columns of `list`: the orchestration plus a roll-up of its executions (unpriced: see unpriced_sum).
ORCHESTRATION_LIST_COLUMNS = [*ORCHESTRATION_FIELDS, "executions", "cost_usd", "unpriced"]
#: Columns of `executions`: the execution plus its orchestration's session id.
EXECUTION_LIST_COLUMNS = ["id", "session_id", *EXECUTION_FIELDS[1:]]

_ORCHESTRATION_SELECT = ", ".join(f"o.{c}" for c in ORCHESTRATION_FIELDS)
EXECUTION_SELECT = (
    "e.id, o.session_id, " + ", ".join(f"e.{c}" for c in EXECUTION_FIELDS[1:])
    + " FROM agent_executions e LEFT JOIN orchestrations o ON o.id = e.orchestration_id"
)


NEWEST_FIRST = "e.started_at DESC, e.id DESC"


@dataclass(frozen=True)
class Filters:
    """The filters report commands share. since is a stored-format timestamp; limit 0 or None = all."""

    since: str | None = None
    status: str | None = None
    agent: str | None = None
    limit: int | None = None


#: How far a page counts the matches its limit cut: beyond it, "more than COUNT_LIMIT". Counting
#: every match would make a page of the 50 newest cost as much as the whole history.
COUNT_LIMIT = 1_000


class Page(NamedTuple):
    """The rows a limit lets through, and how many match in all (len(rows) when none was cut);
    total is COUNT_LIMIT + 1 when there are more than COUNT_LIMIT."""

    rows: list[dict]
    total: int

    @property
    def more_than_counted(self) -> bool:
        return self.total > COUNT_LIMIT


def page(fetch: Callable[[int | None], list[dict]], count: Callable[[int], int], limit: int | None) -> Page:
    """fetch(limit) as a Page: one row more is fetched to learn whether any were cut, and only
    then are the matches counted, count(n) counting at most n. limit 0 or None: all rows."""
    if not limit:
        found = fetch(None)
        return Page(found, len(found))
    found = fetch(limit + 1)
    if len(found) <= limit:
        return Page(found, len(found))
    return Page(found[:limit], min(count(COUNT_LIMIT + 1), COUNT_LIMIT + 1))


def count_up_to(db: Database, from_where: str, params: Sequence[object] | dict, most: int | None) -> int:
    """count(*) of `FROM ... WHERE ...`, stopping at `most` rows (None: all of them)."""
    if most is None:
        return db.execute(f"SELECT count(*) {from_where}", params).fetchone()[0]
    return db.execute(f"SELECT count(*) FROM (SELECT 1 {from_where} LIMIT {int(most)})", params).fetchone()[0]


def execution_dict(item: dict) -> dict:
    """Booleans as booleans."""
    if "self_healed" in item and item["self_healed"] is not None:
        item["self_healed"] = bool(item["self_healed"])
    return item


def rows(db: Database, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list[dict]:
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor]


def unpriced_sum(alias: str = "") -> str:
    """SQL counting executions that have tokens but no cost: their model has no known price, so
    any cost total beside this count is incomplete."""
    a = f"{alias}." if alias else ""
    return (f"coalesce(sum({a}cost_usd IS NULL AND coalesce({a}input_tokens, {a}output_tokens,"
            f" {a}cache_read_tokens, {a}cache_write_tokens) IS NOT NULL), 0)")


def _where(clauses: list[str]) -> str:
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


def _limit(filters: Filters) -> str:
    return f" LIMIT {int(filters.limit)}" if filters.limit else ""


def _orchestration_where(filters: Filters) -> tuple[list[str], list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if filters.since:
        clauses.append("o.started_at >= ?")
        params.append(filters.since)
    if filters.status:
        clauses.append("o.status = ?")
        params.append(filters.status)
    if filters.agent:
        clauses.append(has_agent())
        params.append(filters.agent)
    return clauses, params


def has_agent(*, failed: bool = False) -> str:
    """An orchestration `o` that has an execution of agent ? (failed, with failed=True). The `+`
    keeps SQLite on the orchestration's own executions (a few rows through its index) rather
    than on every execution the agent (or the status) ever had."""
    status = " AND +a.status = 'failed'" if failed else ""
    return f"EXISTS (SELECT 1 FROM agent_executions a WHERE a.orchestration_id = o.id AND +a.agent_name = ?{status})"


def count_orchestrations(db: Database, filters: Filters = Filters(), most: int | None = None) -> int:
    """How many orchestrations list_orchestrations finds without a limit (at most `most`)."""
    clauses, params = _orchestration_where(filters)
    return count_up_to(db, f"FROM orchestrations o{_where(clauses)}", params, most)


def orchestration_page(db: Database, filters: Filters = Filters()) -> Page:
    """list_orchestrations as a Page: with the count of all matches when filters.limit cut them."""
    with db.snapshot():
        return page(lambda n: list_orchestrations(db, replace(filters, limit=n)),
                    lambda most: count_orchestrations(db, filters, most), filters.limit)


def list_orchestrations(db: Database, filters: Filters = Filters()) -> list[dict]:
    """Orchestrations, newest first, with their execution count and total cost."""
    clauses, params = _orchestration_where(filters)
    inner = (
        f"SELECT {_ORCHESTRATION_SELECT} FROM orchestrations o{_where(clauses)}"
        f" ORDER BY o.started_at DESC, o.id DESC{_limit(filters)}"
    )
    return rows(
        db,
        f"SELECT o.*, count(e.id) AS executions, round(sum(e.cost_usd), 6) AS cost_usd,"
        f" {unpriced_sum('e')} AS unpriced"
        f" FROM ({inner}) o LEFT JOIN agent_executions e ON e.orchestration_id = o.id"
        f" GROUP BY o.id ORDER BY o.started_at DESC, o.id DESC",
        params,
    )


def get_orchestration(db: Database, session_id: str) -> dict:
    """The orchestration with this session_id, or else with this uuid (a reference-tool id)."""
    found = rows(db, f"SELECT {_ORCHESTRATION_SELECT} FROM orchestrations o WHERE o.session_id = ?",
                 (session_id,))
    if not found:
        found = rows(db, f"SELECT {_ORCHESTRATION_SELECT} FROM orchestrations o WHERE o.uuid = ?", (session_id,))
    if not found:
        raise NotFound(f"no orchestration with session id {session_id!r} (see `monitor list`)")
    return found[0]


def execution_rows(db: Database, filters: Filters = Filters(), *, where: Sequence[str] = (),
                   params: Sequence[object] = (), order: str = NEWEST_FIRST) -> list[dict]:
    """Executions with their orchestration's session_id, filtered by `filters` (since, status,
    agent, limit) and any further `where` clauses on `e`, newest first unless `order` says."""
    clauses, values = _execution_where(filters, where, params)
    sql = f"SELECT {EXECUTION_SELECT}{_where(clauses)} ORDER BY {order}{_limit(filters)}"
    return [execution_dict(r) for r in rows(db, sql, values)]


def count_execution_rows(db: Database, filters: Filters = Filters(), *, where: Sequence[str] = (),
                         params: Sequence[object] = (), most: int | None = None) -> int:
    """How many rows execution_rows finds without a limit (at most `most`)."""
    clauses, values = _execution_where(filters, where, params)
    return count_up_to(db, f"FROM agent_executions e{_where(clauses)}", values, most)


def _execution_where(filters: Filters, where: Sequence[str], params: Sequence[object]
                     ) -> tuple[list[str], list[object]]:
    clauses, values = list(where), list(params)
    for clause, value in (("e.started_at >= ?", filters.since), ("e.status = ?", filters.status),
                          ("e.agent_name = ?", filters.agent)):
        if value:
            clauses.append(clause)
            values.append(value)
    return clauses, values


def execution_page(db: Database, filters: Filters = Filters(), *, where: Sequence[str] = (),
                   params: Sequence[object] = (), order: str = NEWEST_FIRST) -> Page:
    """execution_rows as a Page: with the count of all matches when filters.limit cut them."""
    with db.snapshot():
        return page(lambda n: execution_rows(db, replace(filters, limit=n), where=where, params=params, order=order),
                    lambda most: count_execution_rows(db, filters, where=where, params=params, most=most),
                    filters.limit)


def list_executions(db: Database, session_id: str | None = None, filters: Filters = Filters()) -> list[dict]:
    """Executions of one orchestration in the order they started, or of all, newest first."""
    where, params, order = _executions_of(db, session_id)
    return execution_rows(db, filters, where=where, params=params, order=order)


def executions_page(db: Database, session_id: str | None = None, filters: Filters = Filters()) -> Page:
    """list_executions as a Page: with the count of all matches when filters.limit cut them."""
    where, params, order = _executions_of(db, session_id)
    return execution_page(db, filters, where=where, params=params, order=order)


def _executions_of(db: Database, session_id: str | None) -> tuple[list[str], list[object], str]:
    """The clause, parameters and order of one orchestration's executions, or of all (newest first)."""
    if session_id is None:
        return [], [], NEWEST_FIRST
    return ["e.orchestration_id = ?"], [get_orchestration(db, session_id)["id"]], "e.started_at, e.id"


def json_object_sql(columns: Sequence[str], alias: str, given: Mapping[str, str] = {}) -> str:
    """SQL for a row of `alias` as a JSON object text, its keys in the order of `columns`, made by
    SQLite itself: what execution_dict() and json.dumps would make of it, at a fraction of the cost.
    `given` supplies a column's SQL (the session id of a joined row)."""
    values = []
    for column in columns:
        value = given.get(column, f"{alias}.{column}")
        if column == "self_healed":  # a boolean, as execution_dict makes it
            value = f"CASE WHEN {value} IS NOT NULL THEN json(iif({value}, 'true', 'false')) END"
        values.append(f"'{column}', {value}")
    return f"json_object({', '.join(values)})"


def export_json(db: Database, session_id: str | None = None, since: str | None = None
                ) -> tuple[Iterator[tuple[str, int]], Iterator[str]]:
    """The export as JSON texts, streamed: (each orchestration with its executions nested, how
    many executions it has) and the executions with no orchestration (none when session_id is
    given), each in the order they started. `since` keeps what started at or after it."""
    orchestration_id = None if session_id is None else get_orchestration(db, session_id)["id"]
    where, params = _where_export("o", orchestration_id, since)
    execution = json_object_sql(EXECUTION_LIST_COLUMNS, "e", {"session_id": "o.session_id"})
    nested = (f"(SELECT '[' || group_concat(j, ',') || ']' FROM (SELECT {execution} AS j FROM agent_executions e"
              " WHERE e.orchestration_id = o.id ORDER BY e.started_at, e.id))")
    # The executions' array is joined to the orchestration's object as text: json() around it
    # would parse every byte again. rtrim takes the object's closing brace (its values are scalars).
    fields = json_object_sql(ORCHESTRATION_FIELDS, "o")
    orchestration = f"""rtrim({fields}, '}}') || ',"executions":' || coalesce({nested}, '[]') || '}}'"""
    orchestrations = db.execute(
        f"SELECT {orchestration}, (SELECT count(*) FROM agent_executions e WHERE e.orchestration_id = o.id)"
        f" FROM orchestrations o{_where(where)} ORDER BY o.started_at, o.id", params)
    if session_id is not None:
        return (tuple(row) for row in orchestrations), iter(())
    lone, lone_params = _where_export("e", None, since)
    unassigned = db.conn.execute(
        f"SELECT {json_object_sql(EXECUTION_LIST_COLUMNS, 'e', {'session_id': 'NULL'})} FROM agent_executions e"
        f"{_where(['e.orchestration_id IS NULL', *lone])} ORDER BY e.started_at, e.id", lone_params)
    return (tuple(row) for row in orchestrations), (row[0] for row in unassigned)


EVENT_EXPORT_COLUMNS = ("timestamp", "type", "message", "payload", "dedup_key")


def export_events_json(db: Database, session_id: str | None = None, since: str | None = None) -> Iterator[str]:
    """The event log of what export_json() exports, as JSON texts in id order (in time order with since): each event with the
    session_id and agent_session_id it names (NULL where its orchestration_id or execution_id is),
    payload as the stored text. With session_id: that orchestration's events and its executions';
    with since: the events of what started at or after it (an event of neither, by its own time), read
    from the first event of the window on."""
    clauses: list[str] = []
    params: list[object] = []
    if session_id is not None:
        orchestration_id = get_orchestration(db, session_id)["id"]
        clauses.append("ev.id IN (SELECT id FROM events WHERE orchestration_id = ? UNION SELECT v.id FROM events v"
                       " JOIN agent_executions x ON v.execution_id = x.id WHERE x.orchestration_id = ?)")
        params += [orchestration_id, orchestration_id]
    if since:  # (an event is not older than its row: the time index finds the window's first one)
        clauses.append("ev.timestamp >= ? AND coalesce(o.started_at, eo.started_at, e.started_at, ev.timestamp) >= ?")
        params += [since, since]
    fields = json_object_sql(("session_id", "agent_session_id", *EVENT_EXPORT_COLUMNS), "ev",
                             {"session_id": "o.session_id", "agent_session_id": "e.agent_session_id"})
    cursor = db.execute(
        f"SELECT {fields} FROM events ev LEFT JOIN orchestrations o ON o.id = ev.orchestration_id"
        " LEFT JOIN agent_executions e ON e.id = ev.execution_id"
        " LEFT JOIN orchestrations eo ON eo.id = e.orchestration_id"
        f"{_where(clauses)} ORDER BY {'ev.timestamp, ev.id' if since else 'ev.id'}", params)
    return (row[0] for row in cursor)


def _where_export(alias: str, orchestration_id: int | None, since: str | None) -> tuple[list[str], list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if orchestration_id is not None:
        clauses.append(f"{alias}.id = ?")
        params.append(orchestration_id)
    if since:
        clauses.append(f"{alias}.started_at >= ?")
        params.append(since)
    return clauses, params
