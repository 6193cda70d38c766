"""Open the monitor database: WAL, busy timeout, foreign keys, migrations."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from monitor.store import migrations
from monitor.errors import DatabaseError

DEFAULT_PATH = "monitoring.db"
ORCHESTRATION_STATUSES = ("running", "completed", "failed", "partial")
EXECUTION_STATUSES = ("in_progress", "completed", "failed")
ENV_VAR = "MONITOR_DB"
#: How long a writer waits for another one before giving up. Each lifecycle event holds
#: the write lock for well under a millisecond, so this is only reached by a stuck process.
BUSY_TIMEOUT_MS = 60_000


def resolve_path(path: str | os.PathLike[str] | None = None) -> Path:
    """--db PATH, else $MONITOR_DB, else ./monitoring.db."""
    if path:
        return Path(path)
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


class Database:
    """One connection in autocommit mode; writes go through transaction()."""

    def __init__(self, conn: sqlite3.Connection, path: Path, readonly: bool) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly

    def execute(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock up front, so no transaction fails half-way on it."""
        if self.readonly:
            raise DatabaseError(f"{self.path} is read-only: cannot record or delete anything in it")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same state of the database."""
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA user_version").fetchone()
            return conn
        except sqlite3.OperationalError:
            # A WAL database in a read-only directory cannot get its -shm file: read the
            # file as it stands instead.
            conn = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None,
                                   check_same_thread=False)
            return conn
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


def open_db(
    path: str | os.PathLike[str] | None = None, *, create: bool = True, readonly: bool = False,
    notify: Callable[[str], None] | None = None,
) -> Database:
    """Open (and if needed create and migrate) the database.

    create=False is for reports: a missing file is an error, not a new empty database.
    readonly=True never writes; a write-protected file is opened read-only automatically.
    notify takes what an upgrade has to tell the user (default: the "monitor" logger).
    """
    db_path = resolve_path(path)
    if db_path.is_dir():
        raise DatabaseError(f"{db_path} is a directory, not a database file")
    if not db_path.exists():
        if not create or readonly:
            raise DatabaseError(
                f"no monitor database at {db_path}: record a run first (monitor run ...), "
                f"or point --db / {ENV_VAR} at an existing file"
            )
        if not db_path.parent.exists():
            raise DatabaseError(f"cannot create {db_path}: directory {db_path.parent} does not exist")
    elif not os.access(db_path, os.W_OK) or not os.access(db_path.parent, os.W_OK):
        readonly = True
    try:
        conn = _connect(db_path, readonly)
    except sqlite3.Error as exc:
        raise DatabaseError(describe_sqlite_error(exc, db_path)) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        version = migrations.user_version(conn)  # the first read: fails here if not SQLite
        has_tables = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'agent_executions'"
        ).fetchone()[0]
        if not has_tables and not create:
            raise DatabaseError(f"{db_path} is not a monitor database (it has no agent_executions table)")
        if readonly:
            if version > migrations.LATEST:
                migrations.migrate(conn)  # raises the 'newer monitor' error
            if version < migrations.LATEST:
                raise DatabaseError(
                    f"{db_path} has an older schema (version {version}) and is read-only here: "
                    "open it once with write access to upgrade it"
                )
        else:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            if version != migrations.LATEST:
                migrations.migrate(conn, db_path, notify)
                # Load the schema as it now is: a statement first prepared against the schema read
                # before another process migrated can fail on SQLite < 3.42 ("no such table").
                conn.execute("SELECT count(*) FROM agent_executions WHERE 0").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DatabaseError(describe_sqlite_error(exc, db_path)) from None
    except BaseException:
        conn.close()
        raise
    return Database(conn, db_path, readonly)


def describe_sqlite_error(exc: sqlite3.Error, path: Path) -> str:
    message = str(exc)
    if "not a database" in message or "malformed" in message:
        return f"{path} is not a monitor database (SQLite says: {message})"
    if "readonly" in message or "read-only" in message:
        return f"{path} is read-only: cannot write to it"
    if "unable to open" in message:
        return f"cannot open {path}: {message}"
    if "locked" in message or "busy" in message:
        return f"{path} is locked by another process for too long: {message}"
    return f"{path}: {message}"
