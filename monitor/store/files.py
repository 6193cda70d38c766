"""Every file and folder monitor writes, written safely.

- A whole file (settings, their backups, exports) is written to a unique temporary file in the
  target's own folder, created exclusively and never through a link (O_CREAT | O_EXCL |
  O_NOFOLLOW), synced, then renamed over the target: a reader sees the old file or the whole new
  one, and a link planted at a predictable name is never followed. A target that is itself a
  symlink is updated where it points (the link stays a link).
- A file monitor creates is readable by its owner only (0600), a folder 0700, whatever the umask;
  a file that exists keeps its mode.
- Logs and spool files are appended to through open_append(): never through a link, never a FIFO
  or a device, 0600 when new.

Imports stay cheap (fcntl, os, stat): `python -m monitor.hooks` uses this module on every tool call.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitor.errors import MonitorError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_TEMP_ATTEMPTS = 100

PathLike = str | os.PathLike[str]


def create_exclusive(path: PathLike, mode: int = PRIVATE_FILE) -> int:
    """A new file at path, open for writing, with exactly `mode` whatever the umask. Raises
    FileExistsError if anything is there, a symlink (even a dangling one) included."""
    fd = os.open(path, _CREATE, mode)
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def ensure_private_file(path: PathLike) -> bool:
    """Create path as an empty 0600 file unless something is there already; return whether it
    was created. (The database: SQLite then gives its -wal and -shm the same mode.)"""
    try:
        os.close(create_exclusive(path))
    except FileExistsError:
        return False
    return True


def ensure_private_dir(path: PathLike) -> Path:
    """Create the folder path, and any missing folder above it, 0700 whatever the umask; an
    existing folder keeps its mode."""
    folder = Path(path)
    missing = [d for d in (folder, *folder.parents) if not d.exists()]
    for d in reversed(missing):
        try:
            os.mkdir(d, PRIVATE_DIR)
        except FileExistsError:
            continue  # made by another process just now
        os.chmod(d, PRIVATE_DIR)
    return folder


def _target(path: PathLike) -> tuple[Path, int]:
    """Where a write to path lands (a symlink's target) and the mode it gets (the existing file's,
    else 0600)."""
    target = Path(os.path.realpath(path))
    try:
        return target, stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return target, PRIVATE_FILE


def _temporary(target: Path, mode: int) -> tuple[int, Path]:
    """A new, uniquely named file next to target (so that renaming it over target is atomic)."""
    for _ in range(_TEMP_ATTEMPTS):
        tmp = target.with_name(f".{target.name}.{os.urandom(6).hex()}.tmp")
        try:
            return create_exclusive(tmp, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot make a temporary file next to {target}")


@contextmanager
def atomic_write(path: PathLike, *, binary: bool = False) -> Iterator[IO[Any]]:
    """Write path as a whole or not at all: yields a file open on a fresh temporary file next to
    the target, which replaces the target (synced) when the block ends, and is removed if it
    raises. The file keeps the existing target's mode; a new one is 0600."""
    target, mode = _target(path)
    try:
        fd, tmp = _temporary(target, mode)
    except OSError as exc:
        raise cannot_write(target, exc) from None
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a full disk, a target that became a directory ...
            raise cannot_write(target, exc) from None
        raise
    _sync_dir(target.parent)


def cannot_write(target: PathLike, exc: OSError) -> MonitorError:
    """The one-line error for a file that could not be written: 'cannot write x.json: No space
    left on device', naming a missing folder."""
    folder = Path(target).parent
    return MonitorError(f"cannot write {target}: {exc.strerror or exc}"
                        + ("" if folder.is_dir() else f" (no directory {folder})"))


def write_atomic(path: PathLike, data: str | bytes) -> None:
    """Replace the file at path with data, atomically (see atomic_write)."""
    if isinstance(data, bytes):
        with atomic_write(path, binary=True) as f:
            f.write(data)
    else:
        with atomic_write(path) as f:
            f.write(data)


def write_new(path: PathLike, data: bytes, mode: int = PRIVATE_FILE) -> None:
    """Write data to a file that must not exist yet (FileExistsError otherwise, a link included),
    with exactly `mode`, synced."""
    fd = create_exclusive(path, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def open_append(path: PathLike) -> IO[bytes]:
    """Open path for appending, created 0600 if new. Refuses (OSError) a symlink, and anything
    that is not a regular file (a FIFO would block, a device would swallow or flood)."""
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_TEMP_ATTEMPTS):  # renamed or removed between the two opens (a spool claimed): again
        try:
            fd = create_exclusive(path)
            # O_APPEND as the other branch has it: each write lands at the end, whoever else appends
            # (create_exclusive's fd has none; "ab" only seeks to the end once).
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
            break
        except FileExistsError:
            pass
        try:
            fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
            break
        except FileNotFoundError:
            continue
    else:
        raise FileNotFoundError(f"{path} kept disappearing while it was opened")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return os.fdopen(fd, "ab")
    except BaseException:
        os.close(fd)
        raise


def rotate(path: PathLike, limit: int) -> None:
    """Rename path to path.1 (replacing an older one) once it is larger than limit bytes. The
    rename moves links rather than following them."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(info.st_mode) and info.st_size > limit:
        os.replace(path, f"{os.fspath(path)}.1")


def _sync_dir(folder: Path) -> None:
    """Make a rename in folder durable; best effort (some file systems refuse)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
