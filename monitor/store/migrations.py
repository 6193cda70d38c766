"""Schema versions, kept in PRAGMA user_version.

Migration 1 brings any database to schema.sql: a new file, or one made by the reference tool
(its exact column set, timestamps written by SQLite's CURRENT_TIMESTAMP). Every later change to
the schema is a new numbered function appended to MIGRATIONS, and also written into schema.sql.
Because migration 1 applies today's schema.sql, a later migration can find its objects already
there: each must be idempotent (IF NOT EXISTS, add a column only if missing). tests/test_db.py
checks that a new and a migrated reference database end with the same schema.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from monitor.errors import DatabaseError

# Any stored time, as the normalising triggers of schema.sql rewrite it.
TIMESTAMP_SQL = ("CASE WHEN typeof({col}) IN ('integer', 'real')"
                 " OR ({col} GLOB '[0-9]*' AND {col} NOT GLOB '*[^0-9.]*')"
                 " THEN strftime('%Y-%m-%dT%H:%M:%fZ', iif(abs({col}) > 1e11, {col} / 1000.0, {col}), 'unixepoch')"
                 " ELSE strftime('%Y-%m-%dT%H:%M:%fZ', {col}) END")
_CANONICAL_GLOB = (
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'"
)


def schema_sql() -> str:
    """schema.sql as shipped inside the package (the wheel holds a copy of the top-level file)."""
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


def _columns(conn: sqlite3.Connection, table: str) -> dict[str, tuple]:
    return {row[1]: row for row in conn.execute(f"PRAGMA table_info({table})")}


def _m001_adopt_schema(conn: sqlite3.Connection) -> None:
    """Create the schema, or complete an older one (the reference tool's) in place."""
    script = schema_sql()
    target = sqlite3.connect(":memory:")
    try:
        for statement in statements(script):
            target.execute(statement)
        existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for (table,) in target.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            if table not in existing or table.startswith("sqlite_"):
                continue
            have = _columns(conn, table)
            for name, (_, _, decl_type, notnull, default, _) in _columns(target, table).items():
                if name in have:
                    continue
                clause = f"ALTER TABLE {table} ADD COLUMN {name} {decl_type}"
                if default is not None and not default.startswith("("):
                    clause += f" {'NOT NULL ' if notnull else ''}DEFAULT {default}"
                conn.execute(clause)
    finally:
        target.close()
    for statement in statements(script):
        conn.execute(statement)
    for table in ("orchestrations", "agent_executions"):
        for col in ("started_at", "completed_at"):
            conn.execute(
                f"UPDATE {table} SET {col} = coalesce({TIMESTAMP_SQL.format(col=col)}, {col}) "
                f"WHERE {col} NOT GLOB {_CANONICAL_GLOB}"
            )


_M002_TABLES = """
CREATE TABLE IF NOT EXISTS events (
    id               INTEGER PRIMARY KEY,
    orchestration_id INTEGER REFERENCES orchestrations(id) ON DELETE CASCADE,
    execution_id     INTEGER REFERENCES agent_executions(id) ON DELETE CASCADE,
    timestamp        TEXT    NOT NULL,
    type             TEXT    NOT NULL,
    message          TEXT,
    payload          TEXT,
    dedup_key        TEXT    UNIQUE
);
CREATE INDEX IF NOT EXISTS idx_events_orchestration ON events (orchestration_id, timestamp);
CREATE INDEX IF NOT EXISTS idx_events_execution ON events (execution_id, timestamp);
CREATE TABLE IF NOT EXISTS transcript_offsets (
    path            TEXT    PRIMARY KEY,
    offset          INTEGER NOT NULL DEFAULT 0,
    last_message_id TEXT,
    updated_at      TEXT
) WITHOUT ROWID;
"""
# External-content FTS5 indexes, kept current by triggers; only rows with text are indexed.
_M002_FTS = """
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(message, content='events', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS events_fts_insert AFTER INSERT ON events WHEN NEW.message IS NOT NULL
BEGIN
    INSERT INTO events_fts (rowid, message) VALUES (NEW.id, NEW.message);
END;
CREATE TRIGGER IF NOT EXISTS events_fts_delete AFTER DELETE ON events WHEN OLD.message IS NOT NULL
BEGIN
    INSERT INTO events_fts (events_fts, rowid, message) VALUES ('delete', OLD.id, OLD.message);
END;
CREATE TRIGGER IF NOT EXISTS events_fts_update AFTER UPDATE OF message ON events
WHEN OLD.message IS NOT NEW.message
BEGIN
    INSERT INTO events_fts (events_fts, rowid, message)
    SELECT 'delete', OLD.id, OLD.message WHERE OLD.message IS NOT NULL;
    INSERT INTO events_fts (rowid, message) SELECT NEW.id, NEW.message WHERE NEW.message IS NOT NULL;
END;
CREATE VIRTUAL TABLE IF NOT EXISTS errors_fts
    USING fts5(error_message, content='agent_executions', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS errors_fts_insert AFTER INSERT ON agent_executions
WHEN NEW.error_message IS NOT NULL
BEGIN
    INSERT INTO errors_fts (rowid, error_message) VALUES (NEW.id, NEW.error_message);
END;
CREATE TRIGGER IF NOT EXISTS errors_fts_delete AFTER DELETE ON agent_executions
WHEN OLD.error_message IS NOT NULL
BEGIN
    INSERT INTO errors_fts (errors_fts, rowid, error_message) VALUES ('delete', OLD.id, OLD.error_message);
END;
CREATE TRIGGER IF NOT EXISTS errors_fts_update AFTER UPDATE OF error_message ON agent_executions
WHEN OLD.error_message IS NOT NEW.error_message
BEGIN
    INSERT INTO errors_fts (errors_fts, rowid, error_message)
    SELECT 'delete', OLD.id, OLD.error_message WHERE OLD.error_message IS NOT NULL;
    INSERT INTO errors_fts (rowid, error_message)
    SELECT NEW.id, NEW.error_message WHERE NEW.error_message IS NOT NULL;
END;
"""


def fts5_available(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.monitor_fts5_probe USING fts5(x)")
        conn.execute("DROP TABLE temp.monitor_fts5_probe")
        return True
    except sqlite3.OperationalError:
        return False


def _m002_events(conn: sqlite3.Connection) -> None:
    """The event log, transcript offsets, and (where SQLite has FTS5) full-text search indexes."""
    for statement in statements(_M002_TABLES):
        conn.execute(statement)
    if fts5_available(conn):
        for statement in statements(_M002_FTS):
            conn.execute(statement)
        # Index the error messages recorded before this migration.
        conn.execute(
            "INSERT INTO errors_fts (rowid, error_message) SELECT id, error_message"
            " FROM agent_executions WHERE error_message IS NOT NULL"
        )


# What one execution row R adds to its agent's agent_totals row, column by column.
AGENT_TOTALS: dict[str, str] = {
    "executions": "1",
    "completed": "R.status = 'completed'",
    "failed": "R.status = 'failed'",
    "in_progress": "R.status = 'in_progress'",
    "timed": "R.duration_ms IS NOT NULL",
    "duration_ms": "coalesce(R.duration_ms, 0)",
    "retries": "coalesce(R.retry_count, 0)",
    "self_healed": "coalesce(R.self_healed, 0)",
    "files_created": "coalesce(R.files_created, 0)",
    "files_modified": "coalesce(R.files_modified, 0)",
    **{f"{c}{suffix}": (f"R.{c} IS NOT NULL" if suffix else f"coalesce(R.{c}, 0)")
       for c in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd")
       for suffix in ("", "_rows")},
    "unpriced": "R.cost_usd IS NULL AND coalesce(R.input_tokens, R.output_tokens, R.cache_read_tokens,"
                " R.cache_write_tokens) IS NOT NULL",
}
# The columns whose change moves a total (an UPDATE of anything else fires nothing).
_TOTALS_SOURCES = ("agent_name, status, duration_ms, retry_count, self_healed, files_created, files_modified,"
                   " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd")


def _totals_step(row: str, sign: str) -> str:
    """Statements that add (sign '+') or take away ('-') execution `row` (NEW or OLD) from its agent."""
    sets = ", ".join(f"{c} = {c} {sign} ({e.replace('R.', row + '.')})" for c, e in AGENT_TOTALS.items())
    add = f"INSERT OR IGNORE INTO agent_totals (agent_name) VALUES ({row}.agent_name);\n" if sign == "+" else ""
    tidy = (f"\nDELETE FROM agent_totals WHERE agent_name = {row}.agent_name AND executions = 0;"
            if sign == "-" else "")
    return f"{add}UPDATE agent_totals SET {sets} WHERE agent_name = {row}.agent_name;{tidy}"


def agent_totals_triggers() -> list[str]:
    return [
        "CREATE TRIGGER IF NOT EXISTS agent_totals_insert AFTER INSERT ON agent_executions BEGIN\n"
        f"{_totals_step('NEW', '+')}\nEND",
        "CREATE TRIGGER IF NOT EXISTS agent_totals_delete AFTER DELETE ON agent_executions BEGIN\n"
        f"{_totals_step('OLD', '-')}\nEND",
        f"CREATE TRIGGER IF NOT EXISTS agent_totals_update AFTER UPDATE OF {_TOTALS_SOURCES}"
        f" ON agent_executions BEGIN\n{_totals_step('OLD', '-')}\n{_totals_step('NEW', '+')}\nEND",
    ]


def rebuild_agent_totals(conn: sqlite3.Connection) -> None:
    """Recount agent_totals from agent_executions (after a bulk load that bypassed the triggers)."""
    columns = ", ".join(AGENT_TOTALS)
    sums = ", ".join(f"sum({e})" for e in AGENT_TOTALS.values())
    conn.execute("DELETE FROM agent_totals")
    conn.execute(f"INSERT INTO agent_totals (agent_name, {columns})"
                 f" SELECT R.agent_name, {sums} FROM agent_executions AS R GROUP BY R.agent_name")


def _m003_agent_totals(conn: sqlite3.Connection) -> None:
    """Per-agent running totals for the all-time performance report, counted from what is stored."""
    for statement in statements(schema_sql()):
        if "agent_totals" in statement.split("(")[0]:
            conn.execute(statement)
    for trigger in agent_totals_triggers():
        conn.execute(trigger)
    rebuild_agent_totals(conn)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_adopt_schema, _m002_events, _m003_agent_totals]
LATEST = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the missing migrations in one transaction; safe when many processes open at once."""
    version = user_version(conn)
    if version > LATEST:
        raise DatabaseError(
            f"this database has schema version {version}, newer than this monitor knows ({LATEST}): "
            "upgrade monitor"
        )
    if version == LATEST:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = user_version(conn)  # another process may have migrated while we waited
        for number in range(version + 1, LATEST + 1):
            MIGRATIONS[number - 1](conn)
        conn.execute(f"PRAGMA user_version = {LATEST}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return LATEST
