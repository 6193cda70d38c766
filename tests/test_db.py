from __future__ import annotations

import os
import sqlite3

import pytest

from monitor import DatabaseError, Tracker, open_db
from monitor.store.migrations import LATEST
from monitor.read.queries import get_orchestration, list_executions
from monitor.ops.retention import cleanup
from monitor.timeutil import parse_timestamp

# The reference tool's schema, column for column (timestamps from SQLite's CURRENT_TIMESTAMP).
REFERENCE_SCHEMA = """
CREATE TABLE orchestrations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL UNIQUE,
  task_description TEXT,
  status TEXT NOT NULL CHECK(status IN ('running', 'completed', 'failed', 'partial')),
  started_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  completed_at DATETIME,
  duration_ms INTEGER,
  total_tasks INTEGER DEFAULT 0,
  completed_tasks INTEGER DEFAULT 0,
  failed_tasks INTEGER DEFAULT 0,
  git_commit_hash TEXT,
  plan_file_path TEXT,
  progress_file_path TEXT
);
CREATE TABLE agent_executions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  orchestration_id INTEGER,
  agent_session_id TEXT NOT NULL UNIQUE,
  agent_name TEXT NOT NULL,
  task_id TEXT,
  task_number INTEGER,
  status TEXT NOT NULL CHECK(status IN ('in_progress', 'completed', 'failed')),
  started_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  completed_at DATETIME,
  duration_ms INTEGER,
  retry_count INTEGER DEFAULT 0,
  self_healed BOOLEAN DEFAULT 0,
  files_created INTEGER DEFAULT 0,
  files_modified INTEGER DEFAULT 0,
  error_message TEXT,
  summary_report_path TEXT,
  session_log_path TEXT,
  FOREIGN KEY (orchestration_id) REFERENCES orchestrations(id) ON DELETE CASCADE
);
CREATE INDEX idx_orchestrations_session ON orchestrations(session_id);
CREATE INDEX idx_agent_executions_orchestration ON agent_executions(orchestration_id);
CREATE INDEX idx_agent_executions_agent ON agent_executions(agent_name);
"""


def make_reference_db(path):
    conn = sqlite3.connect(path)
    conn.executescript(REFERENCE_SCHEMA)
    conn.execute("INSERT INTO orchestrations (session_id, task_description, status, started_at, completed_at,"
                 " duration_ms, total_tasks, completed_tasks, failed_tasks)"
                 " VALUES ('old-1', 'legacy run', 'completed', '2026-11-01 10:00:00', '2026-11-01 10:05:00',"
                 " 300000, 2, 2, 0)")
    conn.execute("INSERT INTO agent_executions (orchestration_id, agent_session_id, agent_name, status,"
                 " started_at, completed_at, duration_ms, self_healed, files_created)"
                 " VALUES (1, 'old-a1', 'backend', 'completed', '2026-11-01 10:00:01', '2026-11-01 10:04:00',"
                 " 239000, 1, 7)")
    conn.execute("INSERT INTO agent_executions (orchestration_id, agent_session_id, agent_name, status,"
                 " error_message) VALUES (NULL, 'old-a2', 'frontend', 'failed', 'timeout')")
    conn.commit()
    conn.close()


def test_new_database_is_wal_with_foreign_keys_and_current_schema(db_path):
    with open_db(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST
        columns = {r[1] for r in db.execute("PRAGMA table_info(agent_executions)")}
    assert {"model", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
            "cost_usd", "exit_code", "self_healed", "session_log_path"} <= columns


def test_reference_database_is_migrated_in_place_with_its_data(db_path):
    make_reference_db(db_path)
    with Tracker(db_path) as t:
        assert t.db.execute("PRAGMA user_version").fetchone()[0] == LATEST
        old = get_orchestration(t.db, "old-1")
        assert (old["task_description"], old["duration_ms"], old["completed_tasks"]) == ("legacy run", 300000, 2)
        # timestamps were rewritten to the one fixed-width format
        assert old["started_at"] == "2026-11-01T10:00:00.000Z"
        execs = list_executions(t.db, "old-1")
        assert [(e["agent_session_id"], e["self_healed"], e["files_created"], e["cost_usd"]) for e in execs] == [
            ("old-a1", True, 7, None)]
        # and the new columns work on the old rows
        t.start_agent_execution("new-a", "backend", "old-1")
        t.complete_agent_execution("new-a", "completed", cost_usd=0.25, exit_code=0)
        assert len(list_executions(t.db, "old-1")) == 2
    # opening again does not migrate twice or change anything
    with open_db(db_path) as db:
        assert db.execute("SELECT count(*) FROM agent_executions").fetchone()[0] == 3


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
    make_reference_db(db_path)
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
    make_reference_db(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE agent_executions SET started_at = 1763900000 WHERE agent_session_id = 'old-a2'")
    conn.commit()
    conn.close()
    with open_db(path) as db:
        assert db.execute("SELECT started_at FROM agent_executions WHERE agent_session_id = 'old-a2'"
                          ).fetchone()[0] == "2025-11-23T12:13:20.000Z"


def test_a_migrated_reference_database_has_everything_a_new_one_has(tmp_path):
    """Migration 1 applies today's schema.sql; later migrations then find their objects there
    already. Both paths must end in the same schema (the reference's own extra indexes aside)."""
    def shape(path):
        with open_db(path) as db:
            objects = set(db.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
            columns = {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for (kind, t) in objects
                       if kind == "table"}
        return objects, columns

    make_reference_db(tmp_path / "ref.db")
    new_objects, new_columns = shape(tmp_path / "new.db")
    ref_objects, ref_columns = shape(tmp_path / "ref.db")
    assert new_objects <= ref_objects
    assert {t: sorted(c) for t, c in new_columns.items()} == {t: sorted(ref_columns[t]) for t in new_columns}
