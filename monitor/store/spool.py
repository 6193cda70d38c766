"""The spool: what could not be written while the database was locked (or full) waits in a file.

`monitoring.db.spool`, next to the database, holds one JSON object a line (a hook payload, or
the start or end of a `monitor run`), each with the moment it happened. Writers append to it
through store/files.open_append (O_APPEND, owner-only, never through a symbolic link, never to
anything but a regular file), under an flock, and fsync it.

Any process that holds the database's write lock ingests it (ingest()): it claims the file by
renaming it to `monitoring.db.spool.<claim>` (a name no other file has, that sorts in claim
order), then records its lines in order, in short transactions, each of which also moves the
claimed file's offset in spool_offsets: a line is recorded exactly once, whichever process
crashes where. A claimed file read to its end is deleted. An appender that opened the file
before it was renamed notices (the path no longer leads to its file) and appends to the new one.

Imports stay few: `python -m monitor.hooks` loads this module.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path

from monitor.store import writes
from monitor.store.db import Database, is_transient
from monitor.store.files import open_append

SUFFIX = ".spool"
#: One ingesting transaction records at most this many lines, or for about this long.
BATCH_LINES = 500
BATCH_SECONDS = 0.1
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_CLAIM = re.compile(r"\d{20}-\d+-[0-9a-f]{6}")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

Record = dict
Apply = Callable[[Database, Record], None]


class _Removed(OSError):
    """A claimed file that was not a regular file, removed unread."""


def spool_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + SUFFIX)


# -- appending -------------------------------------------------------------------------------

def append(db_path: Path, record: Record) -> Path:
    """Append one record as a line to the database's spool, durably (fsync); return the spool's path.
    Raises OSError when it cannot (not a regular file, a symbolic link, a full disk): a failed
    write leaves no partial line behind."""
    line = (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
    path = spool_path(db_path)
    for _ in range(100):  # a retry each time a claim renamed the file between open and lock
        with open_append(path) as f:
            fd = f.fileno()
            opened = os.fstat(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when the file closes
            if _same_file(path, opened):
                _write_line(fd, line)
                return path
    raise OSError(f"{path} kept being claimed while appending to it")


def _same_file(path: Path, opened: os.stat_result) -> bool:
    try:
        now = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)


def _write_line(fd: int, line: bytes) -> None:
    size = os.fstat(fd).st_size
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.ftruncate(fd, size)  # no half line for the next append to run into
        raise


# -- claiming and listing --------------------------------------------------------------------

def claim(db_path: Path) -> Path | None:
    """Rename the spool to a claimed name (None when there is no spool)."""
    live = spool_path(db_path)
    claimed = live.with_name(f"{live.name}.{time.time_ns():020d}-{os.getpid()}-{os.urandom(3).hex()}")
    try:
        os.rename(live, claimed)
    except FileNotFoundError:
        return None
    return claimed


def pending(db_path: Path) -> tuple[bool, list[Path]]:
    """Whether a spool is waiting to be claimed, and the claimed files not yet ingested, oldest first."""
    live = spool_path(db_path)
    prefix = live.name + "."
    found, claimed = False, []
    try:
        with os.scandir(live.parent) as entries:
            for entry in entries:
                if entry.name == live.name:
                    found = True
                elif entry.name.startswith(prefix) and _CLAIM.fullmatch(entry.name[len(prefix):]):
                    claimed.append(entry.name)
    except OSError:
        return False, []
    return found, [live.with_name(name) for name in sorted(claimed)]


def _open_claimed(path: Path) -> BinaryIO | None:
    """A claimed file, opened for reading once no appender is still writing to it; None when it is
    gone. Anything but a regular file (a planted FIFO, link or device) is removed unread."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError:  # O_NOFOLLOW on a symbolic link
        path.unlink()
        raise _Removed(f"{path} was not a regular file: removed unread") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        path.unlink()
        raise _Removed(f"{path} was not a regular file: removed unread")
    fcntl.flock(fd, fcntl.LOCK_EX)  # waits for an append that began before the claim
    fcntl.flock(fd, fcntl.LOCK_UN)
    return os.fdopen(fd, "rb")


# -- ingesting -------------------------------------------------------------------------------

def ingest(db: Database, apply: Apply, *, deadline: float | None = None,
           skipped: Callable[[str], None] = lambda message: None) -> bool:
    """Record every spooled line in order through apply(db, record), which writes inside the
    transaction open on db and raises to refuse a record. Returns True when nothing is left.

    A record apply refuses (or a line that is not JSON) is passed to skipped() and left behind;
    a transient failure (the lock, a full disk) stops here, keeping that record for later.
    deadline (time.monotonic()) bounds the whole call, waits for the lock included.
    """
    live, claimed = pending(db.path)
    if not live and not claimed:
        return True
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        try:
            with db.busy_timeout(None if left is None else left * 1000):
                finished, more = _step(db, apply, skipped, deadline)
        except Exception as exc:
            if not is_transient(exc):
                skipped(f"spool not ingested: {type(exc).__name__}: {exc}")
            return False
        if finished is not None:
            finished.unlink(missing_ok=True)
        if not more:
            return True


def _step(db: Database, apply: Apply, skipped: Callable[[str], None],
          deadline: float | None) -> tuple[Path | None, bool]:
    """One transaction: claim the spool if there is one, forget finished files, then record a
    batch of the oldest claimed file. Returns (the file read to its end, to delete once this is
    committed; whether anything may be left)."""
    with db.transaction() as conn:
        claim(db.path)
        _, claimed = pending(db.path)
        writes.forget_spool_files(conn, [n for n in writes.spool_files(conn) if not db.path.with_name(n).exists()])
        if not claimed:
            return None, False
        path = claimed[0]
        try:
            file = _open_claimed(path)
        except _Removed as exc:
            skipped(str(exc))
            return None, True
        if file is None:
            return None, True
        with file:
            offset, done = _batch(db, file, writes.spool_offset(conn, path.name), apply, skipped, deadline)
        writes.set_spool_offset(conn, path.name, offset)
        return (path if done else None), True


def _batch(db: Database, file: BinaryIO, offset: int, apply: Apply, skipped: Callable[[str], None],
           deadline: float | None) -> tuple[int, bool]:
    """Record lines from offset; return the offset reached and whether the file is read to its end."""
    file.seek(offset)
    stop = time.monotonic() + BATCH_SECONDS
    if deadline is not None:
        stop = min(stop, deadline)
    for _ in range(BATCH_LINES):
        line = file.readline()
        if not line.endswith(b"\n"):
            if line:  # an append that could not finish (a claimed file never grows again)
                skipped(f"spool: an incomplete last line of {len(line)} bytes dropped")
            return offset + len(line), True
        offset += len(line)
        _record(db, line, apply, skipped)
        if time.monotonic() >= stop:
            break
    return offset, file.read(1) == b""


def _record(db: Database, line: bytes, apply: Apply, skipped: Callable[[str], None]) -> None:
    try:
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than Python's stack
        skipped(f"spool: a line that is not a record dropped ({exc}): {line[:80]!r}")
        return
    try:
        with db.savepoint():
            apply(db, record)
    except Exception as exc:
        if is_transient(exc):
            raise
        skipped(f"spooled {record.get('kind', 'record')} of {record.get('at')} not recorded:"
                f" {type(exc).__name__}: {exc}")
