from __future__ import annotations

import os
import sqlite3

import pytest

from monitor import DatabaseError, Tracker, open_db
from monitor.store.migrations import LATEST
from monitor.read.queries import get_orchestration
from monitor.ops.retention import cleanup
from monitor.timeutil import parse_timestamp

from conftest import T0
from legacy import make_reference_db

def test_new_database_is_wal_with_foreign_keys_and_current_schema(db_path):
    with open_db(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST
        columns = {r[1] for r in db.execute("PRAGMA table_info(agent_executions)")}
    assert {"model", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
            "cost_usd", "exit_code", "self_healed", "session_log_path"} <= columns


def test_foreign_writer_timestamps_are_normalized_and_compare_correctly(db_path):
    """Rows written with SQLite's datetime('now') format must not break time comparisons (the
    reference's cleanup deleted a whole day's rows because ' ' sorts before 'T')."""
    with open_db(db_path) as db, db.transaction() as conn:
        conn.execute("INSERT INTO orchestrations (session_id, status, started_at)"
                     " VALUES ('late', 'running', '2026-11-20 18:00:00')")
        conn.execute("INSERT INTO orchestrations (session_id, status, started_at)"
                     " VALUES ('early', 'running', '2026-11-20 06:00:00')")
        stored = dict(conn.execute("SELECT session_id, started_at FROM orchestrations"))
    assert stored == {"late": "2026-11-20T18:00:00.000Z", "early": "2026-11-20T06:00:00.000Z"}
    with open_db(db_path) as db:
        # 'now' is 2026-11-21 12:00; 1 day back is 2026-11-20 12:00: only 'early' is older
        result = cleanup(db, 1, now=parse_timestamp("2026-11-21T12:00:00.000Z"))
        assert (result.orchestrations, result.executions) == (1, 0)
        assert [r[0] for r in db.execute("SELECT session_id FROM orchestrations")] == ["late"]


def test_read_of_a_missing_database_fails_clearly_and_creates_nothing(tmp_path):
    path = tmp_path / "missing.db"
    with pytest.raises(DatabaseError, match="no monitor database"):
        open_db(path, create=False)
    assert not path.exists()


def test_missing_directory_is_reported(tmp_path):
    with pytest.raises(DatabaseError, match="does not exist"):
        open_db(tmp_path / "nowhere" / "m.db")


@pytest.mark.parametrize("content", [b"hello, this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 80])
def test_a_file_that_is_not_sqlite_is_reported_and_left_alone(tmp_path, content):
    path = tmp_path / "junk.db"
    path.write_bytes(content)
    for create in (True, False):
        with pytest.raises(DatabaseError, match="not a monitor database"):
            open_db(path, create=create)
    assert path.read_bytes() == content


def test_an_empty_file_or_another_apps_database_is_not_read_as_ours(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(DatabaseError, match="not a monitor database"):
        open_db(empty, create=False)
    assert empty.read_bytes() == b""
    other = tmp_path / "other.db"
    sqlite3.connect(other).executescript("CREATE TABLE notes (x); INSERT INTO notes VALUES (1);")
    with pytest.raises(DatabaseError, match="not a monitor database"):
        open_db(other, create=False)


def test_a_database_from_a_newer_monitor_is_refused(db_path):
    open_db(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    with pytest.raises(DatabaseError, match="newer"):
        open_db(db_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_database_can_be_read_but_not_written(db_path):
    with Tracker(db_path) as t:
        t.start_orchestration("s1")
    db_path.chmod(0o444)
    try:
        with open_db(db_path, create=False) as db:
            assert db.readonly
            assert get_orchestration(db, "s1")["status"] == "running"
        with pytest.raises(DatabaseError, match="read-only"):
            Tracker(db_path).start_orchestration("s2")
    finally:
        db_path.chmod(0o644)


def test_readonly_open_reads_without_writing(db_path):
    with Tracker(db_path) as t:
        t.start_orchestration("s1")
    with open_db(db_path, readonly=True) as db:
        assert get_orchestration(db, "s1")["session_id"] == "s1"
        with pytest.raises(DatabaseError, match="read-only"):
            with db.transaction():
                pass


def test_path_comes_from_argument_then_environment_then_default(tmp_path, monkeypatch):
    from monitor.store.db import resolve_path

    monkeypatch.setenv("MONITOR_DB", str(tmp_path / "env.db"))
    assert resolve_path("x.db").name == "x.db"
    assert resolve_path(None) == tmp_path / "env.db"
    monkeypatch.delenv("MONITOR_DB")
    assert str(resolve_path(None)) == "monitoring.db"


def test_a_file_without_write_permission_is_opened_read_only(db_path, monkeypatch):
    """What a 0444 file does for a user who is not root, simulated so it runs as root too."""
    from click.testing import CliRunner

    from monitor.cli import cli

    with Tracker(db_path) as t:
        t.start_orchestration("s1")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode))
    with open_db(db_path, create=False) as db:
        assert db.readonly
        assert get_orchestration(db, "s1")["status"] == "running"
    listed = CliRunner().invoke(cli, ["list", "--json", "--db", str(db_path)])
    assert listed.exit_code == 0 and '"s1"' in listed.output
    cleaned = CliRunner().invoke(cli, ["cleanup", "0", "--db", str(db_path)])
    assert cleaned.exit_code == 1 and "read-only" in cleaned.output
    with pytest.raises(DatabaseError, match="read-only"):
        Tracker(db_path).start_orchestration("s2")


@pytest.mark.parametrize("stored", [1763900000, "1763900000", 1763900000000, "2025-11-23T13:13:20+01:00",
                                    "2025-11-23 12:13:20"])
def test_times_other_programs_store_are_normalized(db_path, stored):
    """Epoch seconds or milliseconds (as numbers or text), offsets, SQLite's own format: all become
    the one fixed-width UTC form, in our schema and in the reference tool's (numeric affinity)."""
    make_reference_db(db_path, T0)
    open_db(db_path).close()  # migrated
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO agent_executions (agent_session_id, agent_name, status, started_at)"
                 " VALUES ('foreign', 'x', 'in_progress', ?)", (stored,))
    conn.commit()
    conn.close()
    with open_db(db_path) as db:
        value = db.execute("SELECT started_at FROM agent_executions WHERE agent_session_id = 'foreign'").fetchone()[0]
    assert value == "2025-11-23T12:13:20.000Z"


def test_a_reference_database_with_epoch_times_is_migrated(tmp_path):
    path = tmp_path / "ref.db"
    make_reference_db(path, T0)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE agent_executions SET started_at = 1763900000 WHERE agent_session_id = 'lone-ok'")
    conn.commit()
    conn.close()
    with open_db(path) as db:
        assert db.execute("SELECT started_at FROM agent_executions WHERE agent_session_id = 'lone-ok'"
                          ).fetchone()[0] == "2025-11-23T12:13:20.000Z"
