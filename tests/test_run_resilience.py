"""`monitor run` never delays or kills the command it wraps: a locked database, a killed wrapper,
a full disk. Real processes, real SQLite locks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from monitor import DatabaseError, open_db
from monitor.capture import runs
from monitor.capture.ingest import catch_up
from monitor.capture.runner import Recorder
from monitor.capture.processes import ProcessIdentity, host_name, is_gone, this_process
from legacy import make_monitor_db

LOCK_HOLDER = ("import select, sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
               " c.execute('BEGIN IMMEDIATE'); print('locked', flush=True);"
               " select.select([sys.stdin], [], [], 30)")


def env_for(db_path: Path) -> dict:
    return {**os.environ, "MONITOR_DB": str(db_path)}


def monitor(db_path: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", *args], env=env_for(db_path), capture_output=True,
                          text=True, timeout=60, **kwargs)


def executions(db_path: Path) -> list[dict]:
    result = monitor(db_path, "executions", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("schema", ["current", "older: another process is upgrading it"])
def test_a_locked_database_neither_delays_the_command_nor_changes_its_exit_code(db_path, tmp_path, schema):
    if schema == "current":
        assert monitor(db_path, "run", "--agent", "warm", "--", "true").returncode == 0
    else:
        make_monitor_db(db_path, 3, datetime.now(timezone.utc))
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(db_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    marker = tmp_path / "started"
    script = (f"import sys, time; open({str(marker)!r}, 'w').write(repr(time.time()));"
              " print('half-way', file=sys.stderr); sys.exit(3)")
    try:
        launched = time.time()
        result = monitor(db_path, "run", "--agent", "tests", "--session", "ci", "--", sys.executable, "-c", script)
        took = time.time() - launched
        started = float(marker.read_text())
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert result.returncode == 3 and result.stderr == "half-way\n"
    assert started - launched < 5 and took < 10  # not the lock's 30 s
    rows = {row["agent_name"]: row for row in executions(db_path)}  # the next command records the spool
    assert (rows["tests"]["status"], rows["tests"]["exit_code"], rows["tests"]["error_message"]) == (
        "failed", 3, "half-way")
    assert rows["tests"]["session_id"] == "ci"
    assert not list(db_path.parent.glob("*.spool*"))
    told = json.loads(monitor(db_path, "logs", rows["tests"]["agent_session_id"], "--json").stdout)
    assert [e["type"] for e in told] == ["started", "attempt", "exit"]  # spooled in order with the run


CHATTY = """
import sys, time
for i in range(30):
    print(f"line {i}", file=sys.stderr, flush=True)
    time.sleep(0.05)
open(sys.argv[1], "w").write("finished")
"""


@pytest.mark.slow
def test_killing_monitor_run_leaves_the_command_running_and_the_next_command_marks_it_failed(db_path, tmp_path):
    done = tmp_path / "done"
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--agent", "chatty", "--session", "s", "--",
         sys.executable, "-c", CHATTY, str(done)],
        env=env_for(db_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert wrapper.stderr.readline() == "line 0\n"
    deadline = time.monotonic() + 20
    while not executions(db_path) and time.monotonic() < deadline:  # its start is recorded
        time.sleep(0.05)
    os.kill(wrapper.pid, signal.SIGKILL)  # the wrapper alone, not its process group
    assert wrapper.wait(timeout=10) == -signal.SIGKILL
    rest = wrapper.stderr.read()  # the command keeps writing to stderr, through the tee, to the end
    assert rest.splitlines()[-1] == "line 29"
    assert done.read_text() == "finished"
    [row] = executions(db_path)
    assert (row["status"], row["error_message"], row["exit_code"]) == ("failed", runs.KILLED, None)
    result = monitor(db_path, "show", "s", "--json")
    assert json.loads(result.stdout)["status"] == "failed"


def test_a_run_whose_wrapper_is_alive_is_left_alone_and_a_reused_pid_is_not_taken_for_it(db_path, tracker):
    me = this_process()
    assert me.start is not None and not is_gone(me)
    assert is_gone(me._replace(start="another-boot:1"))  # the pid now belongs to another process
    assert not is_gone(me._replace(host=me.host + "-elsewhere"))  # never judged from another host
    finished = subprocess.Popen(["true"])
    finished.wait()
    assert is_gone(ProcessIdentity(finished.pid, host_name(), None))
    with tracker.db.transaction() as conn:
        for name, runner in (("alive", me), ("reused", me._replace(start="another-boot:1"))):
            runs.apply_start(conn, runs.start_record(name, name, "2026-11-20T12:00:00.000Z", runner))
    assert monitor(db_path, "list").returncode == 0  # any report catches up
    states = {row["agent_name"]: (row["status"], row["error_message"]) for row in executions(db_path)}
    assert states == {"alive": ("in_progress", None), "reused": ("failed", runs.KILLED)}


def test_an_end_spooled_by_a_wrapper_that_then_exited_is_recorded_not_taken_for_a_kill(db_path, tracker):
    gone = ProcessIdentity(2**22 + 12345, host_name(), "gone:1")
    with tracker.db.transaction() as conn:
        runs.apply_start(conn, runs.start_record("r", "a", "2026-11-20T12:00:00.000Z", gone))
    from monitor.store import spool

    spool.append(db_path, runs.end_record("r", "2026-11-20T12:00:01.000Z", "completed", 0, None))
    assert catch_up(tracker.db) is True
    row = tracker.db.execute("SELECT status, duration_ms, error_message FROM agent_executions").fetchone()
    assert tuple(row) == ("completed", 1000, None)


def full(db) -> None:
    """The disk is full: not one more page, and the pages there are packed (a real full disk fails
    the same way, SQLITE_FULL)."""
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    size = 4096
    with db.transaction() as conn:
        while size >= 8:
            try:
                with db.savepoint():
                    conn.execute("INSERT INTO events (timestamp, type, payload) VALUES"
                                 " ('2026-11-20T12:00:00.000Z', 'custom', ?)", ("x" * size,))
            except sqlite3.OperationalError:
                size //= 2


def test_an_end_that_cannot_be_written_leaves_the_orchestration_running_then_is_recorded(db_path):
    db = open_db(db_path)
    recorder = Recorder(db_path, db, warn=print)
    recorder.begin(runs.start_record("run-1", "tests", "2026-11-20T12:00:00.000Z", this_process(), session="ci"))
    assert recorder.settle(timeout=30)
    full(db)
    message = "E" * 20_000  # a long error: new pages for the row and the full-text index
    end = runs.end_record("run-1", "2026-11-20T12:00:05.000Z", "failed", 1, message)
    assert recorder.finish(end, 1, time.monotonic() + 1) == 1
    with open_db(db_path) as fresh:  # the disk has room again
        assert fresh.execute("SELECT status FROM orchestrations").fetchone()[0] == "running"
        assert fresh.execute("SELECT status FROM agent_executions").fetchone()[0] == "in_progress"
        assert catch_up(fresh, wait=None) is True
        assert tuple(fresh.execute("SELECT status, duration_ms, exit_code FROM agent_executions").fetchone()) == (
            "failed", 5000, 1)
        assert tuple(fresh.execute("SELECT status, failed_tasks FROM orchestrations").fetchone()) == ("failed", 1)
    db.close()


def test_a_completion_on_a_full_disk_changes_neither_the_execution_nor_its_orchestration(tracker):
    tracker.start_agent_execution("a-1", "coder", orchestration="s")
    tracker.start_agent_execution("a-2", "coder", orchestration="s")
    tracker.complete_agent_execution("a-2", "completed")
    full(tracker.db)
    with pytest.raises((sqlite3.OperationalError, DatabaseError), match="full"):
        tracker.complete_agent_execution("a-1", "failed", "E" * 20_000)
    assert tracker.db.execute("SELECT status FROM orchestrations").fetchone()[0] == "running"
    assert [tuple(r) for r in tracker.db.execute("SELECT agent_session_id, status FROM agent_executions")] == [
        ("a-1", "in_progress"), ("a-2", "completed")]


def test_a_session_end_on_a_full_disk_changes_nothing(db_path):
    from monitor.capture.claude.hook import record_payload

    with open_db(db_path) as db:
        for payload in ({"hook_event_name": "SessionStart", "source": "startup"},
                        {"hook_event_name": "SubagentStart", "agent_id": "a1", "agent_type": "helper"}):
            record_payload(db, {"session_id": "s", **payload})
        full(db)
        with pytest.raises((sqlite3.OperationalError, DatabaseError), match="full"):
            record_payload(db, {"session_id": "s", "hook_event_name": "SessionEnd", "reason": "logout"})
        assert db.execute("SELECT status FROM orchestrations").fetchone()[0] == "running"
        assert [r[0] for r in db.execute("SELECT status FROM agent_executions ORDER BY id")] == [
            "in_progress", "in_progress"]


def test_reap_spares_a_long_run_whose_monitor_run_is_alive(db_path, tracker):
    with tracker.db.transaction() as conn:
        runs.apply_start(conn, runs.start_record("long-build", "build", "2026-01-01T00:00:00.000Z", this_process()))
    tracker.start_agent_execution("lost", "coder")  # no runner: stale once old enough
    tracker.db.execute("UPDATE agent_executions SET started_at = '2026-01-01T00:00:00.000Z'")
    result = monitor(db_path, "reap", "--older-than", "1h", "--json")
    assert result.returncode == 0, result.stderr
    assert [row["agent_session_id"] for row in json.loads(result.stdout)["ended"]] == ["lost"]
    states = {row["agent_session_id"]: row["status"] for row in executions(db_path)}
    assert states == {"long-build": "in_progress", "lost": "failed"}


def test_a_killed_run_gets_a_status_changed_event(db_path, tracker):
    gone = ProcessIdentity(2**22 + 54321, host_name(), "gone:1")
    with tracker.db.transaction() as conn:
        runs.apply_start(conn, runs.start_record("r", "a", "2026-11-20T12:00:00.000Z", gone))
    assert catch_up(tracker.db) is True
    assert [tuple(r) for r in tracker.db.execute("SELECT type, message FROM events")] == [
        ("status_changed", f"failed: {runs.KILLED}")]
