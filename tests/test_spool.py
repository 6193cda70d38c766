"""The spool (monitor.store.spool): appended safely, claimed once, ingested in order, exactly once,
whoever appends or crashes meanwhile. Real files, real SQLite, real processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from monitor import open_db
from monitor.store import spool


def apply_counting(db, record):
    """A record that is not idempotent: each application is one more row."""
    if record.get("refuse"):
        raise ValueError("refused")
    db.conn.execute("INSERT INTO events (timestamp, type, message) VALUES (?, 'custom', ?)",
                 (record["at"], record["n"]))


def messages(db_path: Path) -> list[str]:
    with open_db(db_path, create=False) as db:
        return [m for (m,) in db.execute("SELECT message FROM events ORDER BY id")]


def record(n: int, **extra) -> dict:
    return {"kind": "test", "at": "2026-11-20T12:00:00.000Z", "n": str(n), **extra}


def leftovers(db_path: Path) -> list[str]:
    return sorted(p.name for p in db_path.parent.iterdir() if ".spool" in p.name)


def test_append_is_owner_only_and_one_line_per_record(db_path):
    umask = os.umask(0)  # whatever the umask
    try:
        path = spool.append(db_path, record(1, text="line\nbreak \u00e9 \udc80"))
        spool.append(db_path, record(2))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["n"] == "1"


def test_append_never_follows_a_link_nor_writes_to_a_fifo(db_path, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    spool.spool_path(db_path).symlink_to(target)
    with pytest.raises(OSError):
        spool.append(db_path, record(1))
    assert target.read_text() == "keep\n"
    spool.spool_path(db_path).unlink()
    os.mkfifo(spool.spool_path(db_path))
    with pytest.raises(OSError):  # at once: no reader, and not a regular file
        spool.append(db_path, record(1))


def test_ingest_records_in_order_once_and_removes_the_files(db_path):
    with open_db(db_path) as db:
        for n in range(5):
            spool.append(db_path, record(n))
        assert spool.ingest(db, apply_counting) is True
        spool.append(db_path, record(5))
        assert spool.ingest(db, apply_counting) is True
        assert spool.ingest(db, apply_counting) is True
        assert db.execute("SELECT count(*) FROM spool_offsets").fetchone()[0] == 0
    assert messages(db_path) == ["0", "1", "2", "3", "4", "5"]
    assert leftovers(db_path) == []


def test_a_refused_record_is_reported_and_the_rest_recorded(db_path):
    said: list[str] = []
    spool.append(db_path, record(1))
    spool.append(db_path, record(2, refuse=True))
    with open(spool.spool_path(db_path), "ab") as f:
        f.write(b"not json\n" + b"[" * 100_000 + b"]" * 100_000 + b"\n")
    spool.append(db_path, record(3))
    with open_db(db_path) as db:
        assert spool.ingest(db, apply_counting, skipped=said.append) is True
    assert messages(db_path) == ["1", "3"]
    assert len(said) == 3 and "refused" in said[0] and "not a record" in said[1] and "not a record" in said[2]


def test_a_crash_mid_batch_or_before_the_delete_records_nothing_twice(db_path):
    for n in range(4):
        spool.append(db_path, record(n))

    def crash_at_2(db, rec):
        if rec["n"] == "2":
            raise KeyboardInterrupt  # the process dies half-way through a batch
        apply_counting(db, rec)

    with open_db(db_path) as db:
        with pytest.raises(KeyboardInterrupt):
            spool.ingest(db, crash_at_2)
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0  # the batch was undone
        finished, _ = spool._step(db, apply_counting, lambda m: None, None)  # committed, then "crashed"
        assert finished is not None and finished.exists()
        assert spool.ingest(db, apply_counting) is True
    assert messages(db_path) == ["0", "1", "2", "3"]
    assert leftovers(db_path) == []


def test_a_deadline_leaves_the_rest_for_later_in_order(db_path, monkeypatch):
    monkeypatch.setattr(spool, "BATCH_LINES", 3)
    for n in range(10):
        spool.append(db_path, record(n))
    with open_db(db_path) as db:
        import time

        assert spool.ingest(db, apply_counting, deadline=time.monotonic()) is False
        calls = []

        def one_batch(db, rec):
            calls.append(rec["n"])
            apply_counting(db, rec)

        spool._step(db, one_batch, lambda m: None, None)
        assert calls == ["0", "1", "2"]
        spool.append(db_path, record(10))  # arrives meanwhile: after the claimed ones
        assert spool.ingest(db, apply_counting) is True
    assert messages(db_path) == [str(n) for n in range(11)]


def test_a_planted_non_regular_claimed_file_is_removed_unread(db_path, tmp_path):
    said: list[str] = []
    os.mkfifo(db_path.with_name(db_path.name + ".spool.00000000000000000001-1-abcdef"))
    spool.append(db_path, record(1))
    with open_db(db_path) as db:
        assert spool.ingest(db, apply_counting, skipped=said.append) is True
    assert messages(db_path) == ["1"] and "not a regular file" in said[0]


APPENDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from monitor.store import spool
    db, writer, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for n in range(count):
        spool.append(db, {"kind": "test", "at": "2026-11-20T12:00:00.000Z", "n": f"{writer}-{n}"})
""")
INGESTER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from monitor import open_db
    from monitor.store import spool
    def apply(db, record):
        db.conn.execute("INSERT INTO events (timestamp, type, message) VALUES (?, 'custom', ?)",
                     (record["at"], record["n"]))
    db = open_db(Path(sys.argv[1]))
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        spool.ingest(db, apply)
""")


@pytest.mark.slow
def test_appenders_and_ingesters_at_once_lose_nothing_and_record_nothing_twice(db_path):
    open_db(db_path).close()
    writers, count = 4, 150
    ingesters = [subprocess.Popen([sys.executable, "-c", INGESTER, str(db_path), "2"]) for _ in range(2)]
    appenders = [subprocess.Popen([sys.executable, "-c", APPENDER, str(db_path), str(w), str(count)])
                 for w in range(writers)]
    for process in appenders + ingesters:
        assert process.wait(timeout=60) == 0
    with open_db(db_path) as db:
        assert spool.ingest(db, apply_counting) is True
    seen = messages(db_path)
    assert sorted(seen) == sorted(f"{w}-{n}" for w in range(writers) for n in range(count))
    for w in range(writers):  # each writer's records in the order it wrote them
        mine = [m for m in seen if m.startswith(f"{w}-")]
        assert mine == [f"{w}-{n}" for n in range(count)]
    assert leftovers(db_path) == []
