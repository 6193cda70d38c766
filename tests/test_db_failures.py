"""What a failing database says: a full disk is "disk full", the Python API raises DatabaseError for
every database failure, an absurd --limit is bad input, and a read-only copy that cannot see its
-wal says that recent rows may be missing.

A real full disk and a real read-only file system are made in a private mount namespace
(`unshare`), so they need no privilege and leave nothing mounted; where that is not possible
those tests are skipped, and SQLite's own page limit stands in for the full disk."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from monitor import DatabaseError, Tracker, open_db

MONITOR = Path(sys.executable).with_name("monitor")


def can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "tmpfs", "/mnt"], capture_output=True)
    return probe.returncode == 0


needs_unshare = pytest.mark.skipif(not can_unshare(), reason="no private mount namespace here (unshare -rm)")


def in_namespace(mounts: str, *argv: str) -> subprocess.CompletedProcess:
    """argv run after the shell commands `mounts`, in a mount namespace of its own."""
    script = f'{mounts} && exec "$@"'
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *argv], capture_output=True, text=True,
                          timeout=120)


def fill(tracker: Tracker) -> DatabaseError:
    """Record executions until the database refuses one; that refusal."""
    with pytest.raises(DatabaseError) as refused:
        for n in range(100_000):
            tracker.start_agent_execution(f"run-{n}", "agent-" + "x" * 2000)
    return refused.value


def test_a_database_that_is_full_says_disk_full_and_stays_usable(db_path):
    with Tracker(db_path) as t:
        t.start_orchestration("kept")
        pages = t.db.execute("PRAGMA page_count").fetchone()[0]
        t.db.execute(f"PRAGMA max_page_count = {pages + 2}")
        error = fill(t)
        assert str(error).startswith(f"disk full: cannot write to {db_path}; free some space")
        assert error.sqlite_error == "SQLITE_FULL" and not isinstance(error, sqlite3.Error)
        t.db.execute("PRAGMA max_page_count = 1073741823")
        t.start_orchestration("after")  # the failed transaction was rolled back, not left open
    with open_db(db_path, create=False) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM orchestrations").fetchone()[0] == 2


FILL = """
import sys
from monitor import DatabaseError, Tracker
t = Tracker(sys.argv[1])
try:
    for n in range(100_000):
        t.start_agent_execution(f"run-{n}", "agent-" + "x" * 2000)
except DatabaseError as exc:
    print(f"DatabaseError: {exc}")
"""


@needs_unshare
def test_a_real_full_disk_says_disk_full(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    db = disk / "m.db"
    mount = f"mount -t tmpfs -o size=512k tmpfs {disk}"  # the empty schema (~230k) and its -shm fit
    filled = in_namespace(mount, sys.executable, "-c", FILL, str(db))
    assert filled.returncode == 0, filled.stderr
    assert filled.stdout.startswith(f"DatabaseError: disk full: cannot write to {db}"), filled.stdout
    ran = in_namespace(f"{mount} && {sys.executable} -c '{FILL}' {db} >/dev/null", str(MONITOR), "run", "--db",
                       str(db), "--agent", "a", "--", sys.executable, "-c", "print('the work still runs')")
    assert ran.returncode == 0 and ran.stdout == "the work still runs\n"
    assert "disk full" in ran.stderr and "Traceback" not in ran.stderr


def test_the_tracker_raises_database_error_never_a_raw_sqlite_error(db_path):
    with Tracker(db_path) as t:
        t.start_orchestration("s1")
        other = sqlite3.connect(db_path)
        other.execute("ALTER TABLE orchestrations RENAME TO renamed")
        other.close()
        with pytest.raises(DatabaseError, match="no such table") as raised:
            t.start_orchestration("s2")
        assert not isinstance(raised.value, sqlite3.Error)
        with pytest.raises(DatabaseError):
            t.complete_orchestration("s1")


@pytest.mark.parametrize("args", [["list", "--limit"], ["executions", "--limit"], ["search", "x", "--limit"],
                                  ["failures"]])
def test_an_absurd_limit_is_bad_input(db_path, invoke, args):
    Tracker(db_path).close()
    result = invoke(*args, "100000000000000000000000")
    assert result.exit_code == 2, result.output
    assert "100000000000000000000000 is not in the range 0<=x<=1000000000000" in result.output


def copy_without_shm(db_path: Path, folder: Path) -> Path:
    """A copy of the database and its -wal, taken while a writer has it open (so the -wal holds
    commits the main file does not), without its -shm."""
    folder.mkdir()
    Tracker(db_path).close()  # the schema in the main file (closing the last connection checkpoints)
    t = Tracker(db_path)
    t.start_orchestration("s1")
    t.start_orchestration("s2")
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{db_path}{suffix}", folder / f"m.db{suffix}")
    t.close()
    return folder / "m.db"


@needs_unshare
def test_a_read_only_copy_whose_wal_cannot_be_read_says_rows_may_be_missing(tmp_path, db_path):
    copy = copy_without_shm(db_path, tmp_path / "copy")
    read_only = f"mount --bind {copy.parent} {copy.parent} && mount -o remount,bind,ro {copy.parent}"
    listed = in_namespace(read_only, str(MONITOR), "list", "--json", "--db", str(copy))
    assert listed.returncode == 0, listed.stderr
    assert "recent rows may be missing" in listed.stderr
    assert json.loads(listed.stdout) == []  # what the main file alone holds


@needs_unshare
def test_a_read_only_copy_with_nothing_in_its_wal_says_nothing(tmp_path, db_path):
    Tracker(db_path).close()
    copy = tmp_path / "copy" / "m.db"
    copy.parent.mkdir()
    shutil.copyfile(db_path, copy)
    read_only = f"mount --bind {copy.parent} {copy.parent} && mount -o remount,bind,ro {copy.parent}"
    listed = in_namespace(read_only, str(MONITOR), "list", "--json", "--db", str(copy))
    assert (listed.returncode, listed.stdout.strip(), listed.stderr) == (0, "[]", "")
