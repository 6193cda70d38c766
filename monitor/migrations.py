"""Schema versions, kept in PRAGMA user_version.

Migration 1 brings any database to schema.sql: a new file, or one made by the reference tool
(its exact column set, timestamps written by SQLite's CURRENT_TIMESTAMP). Every later change to
the schema is a new numbered function appended to MIGRATIONS, and also written into schema.sql.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from importlib import resources

from .errors import DatabaseError

TIMESTAMP_SQL = "strftime('%Y-%m-%dT%H:%M:%fZ', {col})"
_CANONICAL_GLOB = (
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'"
)


def schema_sql() -> str:
    return resources.files("monitor").joinpath("schema.sql").read_text(encoding="utf-8")


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


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_adopt_schema]
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
