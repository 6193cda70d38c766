from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from monitor import open_db
from monitor.ops.export import export_to_file, write_export
from monitor.ops.retention import cleanup

from conftest import T0


def seed(tracker, clock):
    """s-old (40 days ago, 2 executions), s-new (today, 1), plus an old and a new lone execution."""
    clock.now = T0 - timedelta(days=40)
    tracker.start_orchestration("s-old", "old work")
    for i in range(2):
        tracker.start_agent_execution(f"old-{i}", "coder", "s-old")
        tracker.complete_agent_execution(f"old-{i}", "completed", self_healed=i == 1)
    tracker.start_agent_execution("lone-old", "tester")
    tracker.complete_agent_execution("lone-old", "failed", "boom")
    clock.now = T0
    tracker.start_orchestration("s-new", "new work")
    tracker.start_agent_execution("new-0", "coder", "s-new")
    tracker.start_agent_execution("lone-new", "tester")


def ids(db, table, column):
    return sorted(r[0] for r in db.execute(f"SELECT {column} FROM {table}"))


def test_cleanup_deletes_old_orchestrations_with_their_executions_and_old_lone_executions(tracker, clock):
    seed(tracker, clock)
    dry = cleanup(tracker.db, 30, now=T0, dry_run=True)
    assert (dry.orchestrations, dry.executions, dry.dry_run) == (1, 3, True)
    assert len(ids(tracker.db, "agent_executions", "agent_session_id")) == 5  # dry run deleted nothing
    seen = []
    result = cleanup(tracker.db, 30, now=T0, progress=seen.append)
    assert (result.orchestrations, result.executions) == (1, 3)
    assert sum(seen) == 4
    assert ids(tracker.db, "orchestrations", "session_id") == ["s-new"]
    assert ids(tracker.db, "agent_executions", "agent_session_id") == ["lone-new", "new-0"]
    again = cleanup(tracker.db, 30, now=T0)
    assert (again.orchestrations, again.executions) == (0, 0)


def test_cleanup_boundary_is_exact_to_the_millisecond(tracker, clock):
    clock.now = T0 - timedelta(days=30, milliseconds=1)
    tracker.start_orchestration("just-older")
    clock.now = T0 - timedelta(days=30)
    tracker.start_orchestration("exactly-30-days")
    assert cleanup(tracker.db, 30, now=T0).orchestrations == 1
    assert ids(tracker.db, "orchestrations", "session_id") == ["exactly-30-days"]


def test_cleanup_in_many_batches(tracker, clock, monkeypatch):
    import monitor.ops.retention as retention

    monkeypatch.setattr(retention, "ORCHESTRATION_BATCH", 3)
    monkeypatch.setattr(retention, "EXECUTION_BATCH", 2)
    clock.now = T0 - timedelta(days=10)
    for i in range(10):
        tracker.start_orchestration(f"s{i}")
        tracker.start_agent_execution(f"e{i}", "x", f"s{i}")
        tracker.start_agent_execution(f"lone{i}", "x")
    result = cleanup(tracker.db, 5, now=T0, vacuum=True)
    assert (result.orchestrations, result.executions, result.vacuumed) == (10, 20, True)
    assert tracker.db.execute("SELECT count(*) FROM agent_executions").fetchone()[0] == 0


def test_export_nests_executions_and_includes_lone_ones(tracker, clock):
    seed(tracker, clock)
    import io

    out = io.StringIO()
    counts = write_export(tracker.db, out, None)
    data = json.loads(out.getvalue())
    assert counts == {"orchestrations": 2, "executions": 3, "unassigned_executions": 2}
    assert [o["session_id"] for o in data["orchestrations"]] == ["s-old", "s-new"]
    old = data["orchestrations"][0]
    assert [e["agent_session_id"] for e in old["executions"]] == ["old-0", "old-1"]
    assert [e["self_healed"] for e in old["executions"]] == [False, True]  # booleans, not 0/1
    assert data["orchestrations"][1]["executions"][0]["status"] == "in_progress"
    assert [e["agent_session_id"] for e in data["unassigned_executions"]] == ["lone-old", "lone-new"]
    assert data["unassigned_executions"][0]["error_message"] == "boom"


@pytest.mark.parametrize("session, since, expected", [
    ("s-new", None, (["s-new"], 0)),
    (None, "2026-11-01T00:00:00.000Z", (["s-new"], 1)),
])
def test_export_of_one_session_or_a_period(tracker, clock, session, since, expected):
    seed(tracker, clock)
    import io

    out = io.StringIO()
    write_export(tracker.db, out, session, since)
    data = json.loads(out.getvalue())
    assert ([o["session_id"] for o in data["orchestrations"]], len(data["unassigned_executions"])) == expected


def test_export_of_an_empty_database_is_valid_json(db_path):
    import io

    out = io.StringIO()
    with open_db(db_path) as db:
        write_export(db, out)
    data = json.loads(out.getvalue())
    assert (data["orchestrations"], data["unassigned_executions"]) == ([], [])


def test_an_export_file_name_with_a_nul_is_a_one_line_usage_error(invoke, tracker):
    """Found by the fuzzed-arguments test: `export -o` with a NUL in the name was a traceback."""
    tracker.start_orchestration("s1")
    result = invoke("export", "-o", "a\0b")
    assert (result.exit_code, result.output.splitlines()[-1]) == (
        2, "Error: Invalid value for '-o' / '--output': 'a\\x00b' is not a file name (it holds a NUL character)")


def test_export_to_file_replaces_atomically_and_leaves_no_temp_file(tracker, clock, tmp_path):
    seed(tracker, clock)
    target = tmp_path / "out" / "export.json"
    target.parent.mkdir()
    target.write_text("previous")
    export_to_file(tracker.db, target)
    assert len(json.loads(target.read_text())["orchestrations"]) == 2
    assert [p.name for p in target.parent.iterdir()] == ["export.json"]


READER = ("import select, sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN');"
          " c.execute('SELECT count(*) FROM agent_executions').fetchone(); print('reading', flush=True);"
          " select.select([sys.stdin], [], [], 30)")


def test_vacuum_with_a_reader_open_waits_briefly_and_says_the_wal_was_not_truncated(tracker, clock, db_path):
    import subprocess
    import sys
    import time

    from click.testing import CliRunner

    from monitor.cli import cli

    clock.now = T0 - timedelta(days=10)
    for i in range(300):
        tracker.start_agent_execution(f"old-{i}", "x" * 200)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline() == "reading\n"
        began = time.monotonic()
        result = CliRunner().invoke(cli, ["cleanup", "5", "--vacuum", "--db", str(db_path)])
        assert time.monotonic() - began < 10  # not the minute a busy checkpoint waited
        tracker.start_agent_execution("writer", "x")  # writers move on
    finally:
        reader.stdin.close()
        reader.wait(timeout=10)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Deleted 0 orchestrations and 300 executions")
    assert re.search(r" Vacuumed; the WAL could not be truncated while another process reads it"
                     r" \(\d+\.\d MB left: vacuum again once it is done\)\.$", result.output)
    again = cleanup(tracker.db, 5, now=T0, vacuum=True)  # the reader is gone
    assert (again.vacuumed, again.wal_truncated, again.wal_bytes) == (True, True, 0)
