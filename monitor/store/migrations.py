"""Bring any database to schema.sql, and keep its version in PRAGMA user_version.

schema.sql says what a database is; this module says how an older one gets there. It compares
the database object by object with schema.sql (applied to a scratch in-memory database) and:

- creates what is missing (tables, indexes, triggers, views, full-text indexes);
- replaces an index, trigger or view whose definition changed;
- rebuilds a table whose definition changed: renames the old one away, creates the new one from
  schema.sql, copies every row across (columns in common; defaults for the new ones), drops the old.

A rebuild is where the data-keeping rules live, the same for every older shape:
- an id that is not an integer (the reference tool's UUID strings) becomes a new integer id, and the
  old id is kept as the row's `uuid`; references to it (agent_executions.orchestration_id,
  events.*_id) are remapped to the new id; a reference to a row that does not exist becomes NULL;
- times are rewritten to the one fixed-width UTC format (TIMESTAMP_SQL);
- NULL in a column that is now NOT NULL takes the column's default;
- the derived tables are refilled: the full-text indexes ('rebuild'), and the roll-ups (TOTALS:
  agent_totals, agent_model_totals, orchestration_totals, cost_rollup, model_totals, agent_durations)
  from their *_recount views.

Before it rebuilds a table, it keeps a copy of the whole file next to it (keep_copy) and says so
through the "monitor" logger. Everything happens in one BEGIN IMMEDIATE transaction with foreign
keys off (so that no cascade fires while tables are swapped), checked with foreign_key_check before
COMMIT: processes that open the file at once wait for the first one and then find it current.

Versions: 1 the first schema (the reference tool's columns plus tokens, cost, exit code),
2 the event log and full-text search, 3 agent_totals, 4 integer ids everywhere with `uuid` and
`created_at` columns, full-text indexes keyed by rowid, agent_totals_recount, 5 alert_state,
6 agent_model_totals and orchestration_totals (for `monitor metrics`), 7 llm_usage (tokens and cost per
LLM request and model), tool_calls, transcript_owners, 8 the runner_* columns of
`monitor run` executions and spool_offsets, 9 the agent-and-time index, the events' time index and
the cost_rollup roll-up, 10 idx_executions_agent_success, 11 idx_executions_agent_failed (`monitor run
--breaker`), 12 otel_endpoints and the otel_sent_* marks of `monitor otel push`, 13 daily_rollup (daily
roll-ups that outlive cleanup), 14 model_totals (cost by each request's model over all time) and
agent_durations (each agent's durations per bucket, for all-time percentiles), 15 the *_checked_through
and *_recheck_from columns of otel_endpoints and the otel_recheck_* triggers (a push with nothing new
reads nothing old). Raise LATEST with every change to schema.sql.

After upgrading an existing file the statistics the query planner reads are gathered anew
(ANALYZE, bounded by ANALYSIS_LIMIT), as SQLite recommends after a large change.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from monitor.errors import DatabaseError

TYPE_CHECKING = False
if TYPE_CHECKING:  # imported for real only by an upgrade (see _upgrade)
    import sqlite_utils

LATEST = 15

#: Any stored time (ISO text with or without zone, SQLite's datetime(), epoch seconds or
#: milliseconds as numbers or text) in the one format, as the *_normalize triggers do.
TIMESTAMP_SQL = ("CASE WHEN typeof({col}) IN ('integer', 'real')"
                 " OR ({col} GLOB '[0-9]*' AND {col} NOT GLOB '*[^0-9.]*')"
                 " THEN strftime('%Y-%m-%dT%H:%M:%fZ', iif(abs({col}) > 1e11, {col} / 1000.0, {col}), 'unixepoch')"
                 " ELSE coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', {col}), {col}) END")
#: What a time in the one format looks like (what needs no rewriting).
CANONICAL_GLOB = "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'"
#: Tables whose *_at columns hold times to normalise when they are copied.
_TIMED_TABLES = ("orchestrations", "agent_executions")
#: Derived tables, refilled from what they derive from after a rebuild.
_FTS = {"events_fts": "events", "errors_fts": "agent_executions"}
#: Running totals kept by triggers, each with a <table>_recount view.
TOTALS = ("agent_totals", "agent_model_totals", "orchestration_totals", "cost_rollup", "model_totals",
          "agent_durations")
#: Rows ANALYZE reads per index (SQLite's advice: 100-1000), so that gathering statistics takes
#: milliseconds on any size of database.
ANALYSIS_LIMIT = 1000


def schema_sql() -> str:
    """schema.sql as shipped inside the package (monitor/store/schema.sql is the top-level file)."""
    return (Path(__file__).parent / "schema.sql").read_text(encoding="utf-8")


def statements(script: str) -> Iterator[str]:
    """Split a script into complete statements (triggers hold ';' inside BEGIN ... END)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


def fts5_available(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.monitor_fts5_probe USING fts5(x)")
        conn.execute("DROP TABLE temp.monitor_fts5_probe")
        return True
    except sqlite3.OperationalError:
        return False


def create_schema(conn: sqlite3.Connection) -> None:
    """Run schema.sql: creates whatever is missing, leaves what exists alone."""
    with_fts = fts5_available(conn)
    for statement in statements(schema_sql()):
        if with_fts or "_fts" not in statement:
            conn.execute(statement)


def notice(message: str) -> None:
    """Tell the user something once, through the "monitor" logger (the CLI shows it on stderr, the
    hook writes it to its log). logging is imported here: the hook's usual path never needs it."""
    import logging

    logging.getLogger("monitor").warning(message)


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, path: Path | None = None, notify: Callable[[str], None] | None = None) -> int:
    """Bring the database to LATEST (a no-op when it is there); safe when many processes open at once.

    path is the database file, for the copy kept before a table is rebuilt (None: no copy);
    notify takes what the user should be told (default: notice()).
    """
    notify = notify or notice
    version = user_version(conn)
    if version > LATEST:
        raise DatabaseError(
            f"this database has schema version {version}, newer than this monitor knows ({LATEST}): "
            "upgrade monitor"
        )
    if version == LATEST:
        return version
    conn.execute("PRAGMA foreign_keys = OFF")  # only outside a transaction; on again below
    copy: Path | None = None
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if user_version(conn) < LATEST:  # another process may have migrated while we waited
                copy = _upgrade(conn, path, notify)
                conn.execute(f"PRAGMA user_version = {LATEST}")
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise DatabaseError(f"upgrade left {len(problems)} broken references, first {problems[0]}:"
                                    " nothing was changed")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite ends it itself after some errors (a full disk)
                conn.execute("ROLLBACK")
            if copy is not None:
                copy.unlink(missing_ok=True)  # the original is intact: no need for its copy
            raise
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    if copy is not None:
        notify(f"upgraded {path} to monitor's schema (version {LATEST}); the original file is kept as {copy}."
               " Tools that wrote the old layout (the reference monitor) cannot write to it any more.")
    return LATEST


# -- comparing with schema.sql ---------------------------------------------------------------

def _objects(conn: sqlite3.Connection) -> dict[str, tuple[str, str, str]]:
    """name -> (type, table it belongs to, SQL) of every object schema.sql can make."""
    found = {}
    for kind, name, table, sql in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL"):
        if not name.startswith("sqlite_") and not (kind == "table" and _is_fts_shadow(name)):
            found[name] = (kind, table, sql)
    return found


def _same(a: str, b: str) -> bool:
    return a.split() == b.split()


def _is_fts_shadow(name: str) -> bool:
    """The tables FTS5 keeps behind each full-text table (events_fts_data, ...)."""
    return any(name == f"{fts}_{part}" for fts in _FTS for part in ("data", "idx", "docsize", "config", "content"))


def _target() -> dict[str, tuple[str, str, str]]:
    scratch = sqlite3.connect(":memory:")
    try:
        create_schema(scratch)
        return _objects(scratch)
    finally:
        scratch.close()


def _upgrade(conn: sqlite3.Connection, path: Path | None, notify: Callable[[str], None]) -> Path | None:
    have = _objects(conn)
    if "agent_executions" not in have and "orchestrations" not in have:
        create_schema(conn)  # a new file
        return None
    import sqlite_utils  # only to upgrade an older file: a hook never loads it otherwise

    want = _target()
    rebuild = [name for name, (kind, _, sql) in want.items()
               if kind == "table" and name in have and not _same(have[name][2], sql) and not sql.startswith("CREATE VIRTUAL")]
    copy = keep_copy(conn, path) if rebuild and path is not None else None
    db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
    # Triggers, views and indexes that change, or that hang on a table about to be rebuilt, go
    # first; full-text tables whose definition changed too (they are refilled below).
    refill = {name for name, (kind, _, sql) in want.items()
              if sql.startswith("CREATE VIRTUAL") and (name not in have or not _same(have[name][2], sql)
                                                       or _FTS[name] in rebuild)}
    for name, (kind, table, sql) in have.items():
        if name in want and _same(want[name][2], sql) and table not in rebuild and name not in refill:
            continue
        if kind in ("trigger", "view", "index") and (name in want or table in rebuild):
            conn.execute(f"DROP {kind.upper()} IF EXISTS [{name}]")
        elif name in refill and name in have:
            conn.execute(f"DROP TABLE [{name}]")
    conn.execute("PRAGMA legacy_alter_table = ON")  # renames leave other tables' references alone
    try:
        for table in rebuild:
            db.rename_table(table, f"_monitor_old_{table}")
    finally:
        conn.execute("PRAGMA legacy_alter_table = OFF")
    target_sql = {name: sql for name, (kind, _, sql) in want.items() if kind == "table"}
    for table in rebuild:  # schema.sql's order: parents before children
        conn.execute(target_sql[table])
        _copy_rows(conn, db, f"_monitor_old_{table}", table)
    for table in reversed(rebuild):
        conn.execute(f"DROP TABLE [_monitor_old_{table}]")
    create_schema(conn)
    if rebuild:
        _remap_references(conn, db, rebuild, notify)
    for fts in refill | {f for f, source in _FTS.items() if source in rebuild and f in want}:
        conn.execute(f"INSERT INTO {fts} ({fts}) VALUES ('rebuild')")
    if rebuild or any(table not in have for table in TOTALS):
        refill_agent_totals(conn)
    analyze(conn)
    return copy


def refill_agent_totals(conn: sqlite3.Connection) -> None:
    """Recount the roll-ups (TOTALS) from the rows they sum (after a bulk load that bypassed
    their triggers)."""
    for table in TOTALS:
        conn.execute(f"DELETE FROM {table}")
        conn.execute(f"INSERT INTO {table} SELECT * FROM {table}_recount")


def analyze(conn: sqlite3.Connection) -> None:
    """Gather the query planner's statistics anew, reading at most ANALYSIS_LIMIT rows per index."""
    conn.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
    conn.execute("ANALYZE")


def _copy_rows(conn: sqlite3.Connection, db: sqlite_utils.Database, old: str, new: str) -> None:
    """Every row of old into new, in rowid order (if it has rowids), by the rules in the module's docstring."""
    old_columns = {c.name: c for c in db[old].columns}
    integer_id = old_columns.get("id") is not None and old_columns["id"].type.upper() == "INTEGER"
    names, values = [], []
    for column in db[new].columns:
        if column.name == "id":
            value = "id" if integer_id else "CASE WHEN typeof(id) = 'integer' THEN id END"
        elif column.name == "uuid":
            kept = "uuid" if "uuid" in old_columns else "NULL"
            value = f"coalesce({kept}, CASE WHEN typeof(id) = 'text' THEN id END)"  # NULL: none
        elif column.name in old_columns:
            value = f"[{column.name}]"
            if new in _TIMED_TABLES and column.name.endswith("_at"):
                value = f"CASE WHEN {value} GLOB {CANONICAL_GLOB} THEN {value} ELSE {TIMESTAMP_SQL.format(col=value)} END"
        else:
            continue  # a new column: its default
        if column.notnull and column.default_value is not None:
            value = f"coalesce({value}, {column.default_value})"
        names.append(f"[{column.name}]")
        values.append(value)
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (old,)).fetchone()[0]
    order = "" if "WITHOUT ROWID" in sql.upper() else " ORDER BY rowid"  # a WITHOUT ROWID table has none
    conn.execute(f"INSERT INTO [{new}] ({', '.join(names)}) SELECT {', '.join(values)} FROM [{old}]{order}")


def _remap_references(conn: sqlite3.Connection, db: sqlite_utils.Database, rebuilt: list[str],
                      notify: Callable[[str], None]) -> None:
    """Point references at rebuilt tables to the new ids: an old text id is found by uuid; a
    reference to no row becomes NULL (the row itself is kept: an execution becomes a lone one)."""
    for child in db.table_names():
        if child.startswith("sqlite_") or _is_fts_shadow(child) or child in _FTS:
            continue
        for fk in db.table(child).foreign_keys:
            if fk.other_table not in rebuilt:
                continue
            col, parent = fk.column, fk.other_table
            ref = f"[{child}].[{col}]"
            if "uuid" not in db.table(parent).columns_dict:  # its ids were integers, kept as they were
                lost = conn.execute(f"UPDATE [{child}] SET [{col}] = NULL WHERE [{col}] IS NOT NULL"
                                    f" AND NOT EXISTS (SELECT 1 FROM [{parent}] WHERE id = {ref})").rowcount
                if lost:
                    notify(f"{lost} {'row' if lost == 1 else 'rows'} of {child} pointed to no row of {parent}:"
                           f" {col} set to NULL")
                continue
            # CAST: compared as text, so that the uuid index serves the lookup (a column of integer
            # affinity would otherwise turn the comparison numeric and scan the parent per row).
            lost = conn.execute(
                f"UPDATE [{child}] SET [{col}] = NULL WHERE [{col}] IS NOT NULL AND CASE typeof([{col}])"
                f" WHEN 'integer' THEN NOT EXISTS (SELECT 1 FROM [{parent}] WHERE id = {ref})"
                f" ELSE NOT EXISTS (SELECT 1 FROM [{parent}] WHERE uuid = CAST({ref} AS TEXT)) END").rowcount
            conn.execute(f"UPDATE [{child}] SET [{col}] = (SELECT id FROM [{parent}] WHERE uuid = CAST({ref} AS TEXT))"
                         f" WHERE typeof([{col}]) = 'text'")
            if lost:
                notify(f"{lost} {'row' if lost == 1 else 'rows'} of {child} pointed to no row of {parent}:"
                       f" {col} set to NULL")


def keep_copy(conn: sqlite3.Connection, path: Path) -> Path:
    """A consistent copy of the database next to it, readable by its owner only, under a name no
    other file has (monitoring.db -> monitoring.db.backup-v3-1.db). The caller holds the write lock
    and has written nothing yet: a second connection reads the committed state (WAL lets it)."""
    version = user_version(conn)
    for n in range(1, 10_000):
        candidate = path.with_name(f"{path.name}.backup-v{version}-{n}.db")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        source = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
        target = sqlite3.connect(candidate)
        try:
            source.backup(target)
        except BaseException:
            candidate.unlink(missing_ok=True)
            raise
        finally:
            target.close()
            source.close()
        return candidate
    raise DatabaseError(f"cannot find a free name for a copy of {path} before upgrading it")
