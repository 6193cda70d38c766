"""Open the monitor database: WAL, busy timeout, foreign keys, migrations."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from monitor.store import migrations
from monitor.store.files import ensure_private_file
from monitor.errors import DatabaseError

DEFAULT_PATH = "monitoring.db"
ORCHESTRATION_STATUSES = ("running", "completed", "failed", "partial")
EXECUTION_STATUSES = ("in_progress", "completed", "failed")
ENV_VAR = "MONITOR_DB"
#: How long a writer waits for another one before giving up. Each lifecycle event holds
#: the write lock for well under a millisecond, so this is only reached by a stuck process.
BUSY_TIMEOUT_MS = 60_000
#: SQLite's errors for a write that may succeed later: another connection holds the lock
#: (SQLITE_BUSY, SQLITE_LOCKED and their extended forms), or the disk, or max_page_count, is full.
_TRANSIENT_ERRORS = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL")
#: What a commit waits for. In WAL mode NORMAL writes the commit to the WAL file without an fsync;
#: the WAL is synced at each checkpoint. A process that crashes loses nothing that was committed;
#: a power loss or an OS crash can undo the last transactions committed before it (never part of
#: one), and never corrupts the file. FULL syncs every commit, at several times the cost: opt in
#: with MONITOR_SYNC=full.
SYNCHRONOUS = "NORMAL"
SYNC_ENV_VAR = "MONITOR_SYNC"
_SYNC_MODES = {"": "NORMAL", "normal": "NORMAL", "full": "FULL"}
#: How long closing waits for the write lock to refresh the planner's statistics: it is skipped
#: (to be done by a later close) rather than make a report or a hook wait behind another writer.
OPTIMIZE_BUSY_MS = 20


def synchronous() -> str:
    """What commits wait for: SYNCHRONOUS, or FULL (an fsync at every commit) with MONITOR_SYNC=full."""
    value = os.environ.get(SYNC_ENV_VAR, "").strip().lower()
    if value not in _SYNC_MODES:
        raise DatabaseError(f"{SYNC_ENV_VAR} must be 'normal' (the default) or 'full', got {value!r}")
    return _SYNC_MODES[value]


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
        self._depth = 0  # transaction() blocks open on this connection
        self.closed = False

    def execute(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> sqlite3.Cursor:
        with self.errors():
            return self.conn.execute(sql, params)

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Any sqlite3 error raised inside, as the DatabaseError that says what it means."""
        try:
            yield
        except sqlite3.Error as exc:
            raise database_error(exc, self.path) from exc

    def set_busy_timeout(self, milliseconds: float) -> None:
        """How long a statement waits for another process's lock before failing (at least 1 ms)."""
        self.conn.execute(f"PRAGMA busy_timeout = {max(1, int(milliseconds))}")

    @contextmanager
    def busy_timeout(self, milliseconds: float | None) -> Iterator[None]:
        """set_busy_timeout() for the block only (None: the one set stays)."""
        before = self.conn.execute("PRAGMA busy_timeout").fetchone()[0]
        if milliseconds is not None:
            self.set_busy_timeout(milliseconds)
        try:
            yield
        finally:
            self.set_busy_timeout(before)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock up front, so no transaction fails half-way on it.
        Committed when the block ends, rolled back if it (or the commit) fails; a database failure
        anywhere in it is raised as DatabaseError.

        Inside another transaction() (a batch), a savepoint instead: the outer one commits, and a
        failure undoes only the inner block."""
        if self.readonly:
            raise DatabaseError(f"{self.path} is read-only: cannot record or delete anything in it")
        nested = self._depth > 0
        with self.errors():
            self.conn.execute("SAVEPOINT nested" if nested else "BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self.conn
                self.conn.execute("RELEASE nested" if nested else "COMMIT")
            except BaseException:
                if not nested:
                    self._rollback()
                elif self.conn.in_transaction:  # SQLite may have ended the whole transaction itself
                    self.conn.execute("ROLLBACK TO nested")
                    self.conn.execute("RELEASE nested")
                raise
            finally:
                self._depth -= 1

    @contextmanager
    def savepoint(self) -> Iterator[sqlite3.Connection]:
        """Inside a transaction: undo only what the block wrote when it raises."""
        self.conn.execute("SAVEPOINT monitor_step")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK TO monitor_step")
            self.conn.execute("RELEASE monitor_step")
            raise
        self.conn.execute("RELEASE monitor_step")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same state of the database. Inside
        another one (a snapshot or a transaction), the block is part of it."""
        if self.conn.in_transaction:
            yield self.conn
            return
        with self.errors():
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                self._rollback()

    def _rollback(self) -> None:
        """End the transaction still open, if any (SQLite has ended it itself after some errors,
        disk full among them); a failure here would hide the error that led to it."""
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def close(self) -> None:
        """Close the connection, first refreshing the query planner's statistics where this
        connection's queries found them missing or out of date (SQLite's advice: PRAGMA optimize
        before closing, with an analysis limit so that it takes milliseconds on any size)."""
        if self.closed:
            return
        self.closed = True
        try:
            if not self.readonly and not self.conn.in_transaction:
                optimize(self.conn)
        finally:
            self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _writable(path: Path) -> bool:
    """Whether we may write the file: its mode allows someone to (a 0444 file is read-only even to
    root, who os.access lets through) and we may write it and its directory (for -wal and -shm)."""
    return bool(path.stat().st_mode & 0o222) and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def optimize(conn: sqlite3.Connection) -> None:
    """PRAGMA optimize, bounded by migrations.ANALYSIS_LIMIT; skipped when the lock is busy."""
    try:
        conn.execute(f"PRAGMA busy_timeout = {OPTIMIZE_BUSY_MS}")
        conn.execute(f"PRAGMA analysis_limit = {migrations.ANALYSIS_LIMIT}")
        conn.execute("PRAGMA optimize")
    except sqlite3.Error:
        pass  # busy, read-only or a full disk: statistics can wait for another close


def _connect(path: Path, readonly: bool, notify: Callable[[str], None] | None) -> sqlite3.Connection:
    if readonly:
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA user_version").fetchone()
            return conn
        except sqlite3.OperationalError:
            # A WAL database in a read-only directory cannot get its -shm file: read the
            # file as it stands instead, which leaves out what only its -wal holds.
            if wal_has_commits(path):
                (notify or migrations.notice)(
                    f"{path} is read as it stands: its -wal file holds changes that cannot be read without"
                    f" a -shm file, which cannot be made in its read-only folder; recent rows may be missing."
                    f" Open it once where it can be written, or copy its -shm file with it.")
            return sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


_WAL_HEADER, _FRAME_HEADER = 32, 24


def wal_has_commits(path: Path) -> bool:
    """Whether path's -wal file holds at least one committed transaction: a frame that belongs to
    the log's current generation (its salts match the header's) and ends a transaction."""
    try:
        with open(f"{path}-wal", "rb") as wal:
            header = wal.read(_WAL_HEADER)
            if len(header) < _WAL_HEADER or header[:4] not in (b"\x37\x7f\x06\x82", b"\x37\x7f\x06\x83"):
                return False
            page_size = int.from_bytes(header[8:12], "big") or 65536
            salts = header[16:24]
            while len(frame := wal.read(_FRAME_HEADER)) == _FRAME_HEADER and frame[8:16] == salts:
                if int.from_bytes(frame[4:8], "big"):  # the database size after a commit; 0 otherwise
                    return True
                wal.seek(page_size, os.SEEK_CUR)
    except OSError:
        return False
    return False


def open_db(
    path: str | os.PathLike[str] | None = None, *, create: bool = True, readonly: bool = False,
    notify: Callable[[str], None] | None = None, busy_timeout_ms: int = BUSY_TIMEOUT_MS,
) -> Database:
    """Open (and if needed create and migrate) the database.

    create=False is for reports: a missing file is an error, not a new empty database.
    readonly=True never writes; a write-protected file is opened read-only automatically.
    notify takes what an upgrade has to tell the user (default: the "monitor" logger).
    busy_timeout_ms is how long any statement waits for another process's lock (the hook waits
    about a second, then spools); past it, a DatabaseError for which is_transient() is true.
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
        try:  # readable by its owner only, whatever the umask: SQLite gives -wal and -shm its mode
            ensure_private_file(db_path)
        except OSError as exc:
            raise DatabaseError(f"cannot create {db_path}: {exc.strerror or exc}") from None
    elif not _writable(db_path):
        readonly = True
    try:
        conn = _connect(db_path, readonly, notify)
    except sqlite3.Error as exc:
        raise database_error(exc, db_path) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {max(1, int(busy_timeout_ms))}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # deleted rows are overwritten, not left in free pages
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
            conn.execute(f"PRAGMA synchronous = {synchronous()}")
            if version != migrations.LATEST:
                migrations.migrate(conn, db_path, notify)
                # Load the schema as it now is: a statement first prepared against the schema read
                # before another process migrated can fail on SQLite < 3.42 ("no such table").
                conn.execute("SELECT count(*) FROM agent_executions WHERE 0").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        raise database_error(exc, db_path) from None
    except BaseException:
        conn.close()
        raise
    return Database(conn, db_path, readonly)


def database_error(exc: sqlite3.Error, path: Path) -> DatabaseError:
    """The DatabaseError that says what a sqlite3 error means for the file at path."""
    return DatabaseError(describe_sqlite_error(exc, path), getattr(exc, "sqlite_errorname", None))


#: Free space under which an I/O error while writing is taken for a full disk: SQLite reports some
#: failed writes (growing the -shm file, syncing) as "disk I/O error" whatever their cause.
DISK_FULL_BELOW = 1 << 20


def is_transient(exc: BaseException) -> bool:
    """Whether a failed write may succeed later: the database was locked by another process for
    longer than the busy timeout, or the disk was full. What a hook or `monitor run` could not
    write then goes to the spool (monitor.store.spool) instead of being lost."""
    seen: BaseException | None = exc
    while seen is not None:
        name = getattr(seen, "sqlite_error", None) or getattr(seen, "sqlite_errorname", None)
        if isinstance(name, str) and name.startswith(_TRANSIENT_ERRORS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def describe_sqlite_error(exc: sqlite3.Error, path: Path) -> str:
    message = str(exc)
    name = getattr(exc, "sqlite_errorname", None) or ""
    if name == "SQLITE_FULL" or "disk is full" in message or (name.startswith("SQLITE_IOERR") and _disk_full(path)):
        return f"disk full: cannot write to {path}; free some space on its disk and try again (SQLite says: {message})"
    if "not a database" in message or "malformed" in message:
        return f"{path} is not a monitor database (SQLite says: {message})"
    if "readonly" in message or "read-only" in message:
        return f"{path} is read-only: cannot write to it"
    if "unable to open" in message:
        return f"cannot open {path}: {message}"
    if "locked" in message or "busy" in message:
        return f"{path} is locked by another process for too long: {message}"
    return f"{path}: {message}"


def _disk_full(path: Path) -> bool:
    try:
        info = os.statvfs(path.parent)
    except OSError:
        return False
    return info.f_bavail * info.f_frsize < DISK_FULL_BELOW
