"""Torture tests: many writers, killed writers, cleanup under load, fuzzed CLI arguments, broken files.

Real database files and real processes; no mocks and no timing assertions. Each test is bounded
to a few seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import Tracker, open_db
from monitor.cli import cli

from conftest import Clock

ROOT = Path(__file__).resolve().parent.parent


def spawn(code: str, *args: object, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def table_dump(path: Path) -> list:
    """Every row of every table (read with plain sqlite3, so nothing is migrated or created)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND sql NOT LIKE 'CREATE VIRTUAL%' AND name NOT LIKE '%fts%' ORDER BY name")]
        return [(t, conn.execute(f"SELECT * FROM \"{t}\" ORDER BY 1").fetchall()) for t in tables]
    finally:
        conn.close()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


# -- (a) many writers -----------------------------------------------------------------------------

WRITER = """
import os, random, sys, time
from monitor import Tracker

worker, count, db = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
go = sys.argv[4] if len(sys.argv) > 4 else None
choices = random.Random(worker)
while go and not os.path.exists(go):  # every writer starts at once, its imports already paid
    time.sleep(0.005)
with Tracker(db) as t:
    t.start_orchestration(f"orch-{worker}", total_tasks=count)
    for i in range(count):
        name = f"w{worker}-e{i}"
        t.start_agent_execution(name, f"agent-{i % 7}", f"orch-{worker}", task_number=i)
        failed = choices.random() < 0.2
        t.complete_agent_execution(name, "failed" if failed else "completed",
                                   f"error {worker}/{i}" if failed else None, retry_count=i % 3)
    t.complete_orchestration(f"orch-{worker}")
"""


def run_writers(db_path: Path, workers: int, count: int) -> None:
    """Start the writers, release them all at once, and check that none failed or hit a lock."""
    go = db_path.with_name("go")
    procs = [spawn(WRITER, w, count, db_path, go) for w in range(workers)]
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "locked" not in err and "busy" not in err, err


def expected_statuses(workers: int, count: int) -> dict[str, str]:
    """What WRITER records: each worker's own seeded choice of failures."""
    expected = {}
    for w in range(workers):
        choices = random.Random(w)
        for i in range(count):
            expected[f"w{w}-e{i}"] = "failed" if choices.random() < 0.2 else "completed"
    return expected


@pytest.mark.slow
def test_eight_writers_lose_nothing(tmp_path):
    db_path = tmp_path / "torture.db"
    open_db(db_path).close()
    workers, count = 8, 120
    run_writers(db_path, workers, count)
    expected = expected_statuses(workers, count)
    with open_db(db_path, create=False) as db:
        stored = dict(db.execute("SELECT agent_session_id, status FROM agent_executions"))
        assert stored == expected
        assert db.execute("SELECT count(*) FROM agent_executions WHERE completed_at IS NULL"
                          " OR duration_ms IS NULL").fetchone()[0] == 0
        for w in range(workers):
            failed = sum(1 for i in range(count) if expected[f"w{w}-e{i}"] == "failed")
            assert db.execute(
                "SELECT status, completed_tasks, failed_tasks FROM orchestrations WHERE session_id = ?",
                (f"orch-{w}",)).fetchone() == ("partial", count - failed, failed)
    assert integrity(db_path) == "ok"


def test_writers_creating_a_new_database_at_once(tmp_path):
    """The first open of a new file migrates it; racing processes must not trip over each other."""
    db_path = tmp_path / "new.db"
    run_writers(db_path, 6, 5)
    with open_db(db_path, create=False) as db:
        assert dict(db.execute("SELECT agent_session_id, status FROM agent_executions")) == expected_statuses(6, 5)
    assert integrity(db_path) == "ok"


# -- (b) writers killed with SIGKILL --------------------------------------------------------------

KILLED_WRITER = """
import sys
from monitor import Tracker

round_, db = sys.argv[1], sys.argv[2]
with Tracker(db) as t:
    for o in range(1000):
        session = f"r{round_}-o{o}"
        t.start_orchestration(session, "killed writer", git_commit_hash="abc")
        print("O", session, flush=True)
        for e in range(3):
            name = f"{session}-e{e}"
            t.start_agent_execution(name, "victim", session, task_number=e)
            print("S", name, flush=True)
            status = "failed" if e == 2 else "completed"
            t.complete_agent_execution(name, status, "boom" if e == 2 else None, files_created=e,
                                       input_tokens=100 + e, cost_usd=0.5)
            print("C", name, status, flush=True)
        t.complete_orchestration(session)
        print("F", session, flush=True)
"""


@pytest.mark.slow
def test_writer_killed_mid_stream_loses_no_committed_row(tmp_path):
    db_path = tmp_path / "killed.db"
    open_db(db_path).close()
    rnd = random.Random(20)
    started: set[str] = set()
    completed: dict[str, str] = {}
    orchestrations: set[str] = set()
    finished: set[str] = set()
    for round_ in range(10):
        proc = spawn(KILLED_WRITER, round_, db_path)
        assert proc.stdout is not None
        lines_before_kill = rnd.randrange(1, 40)
        for _ in range(lines_before_kill):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            kind, name, *rest = line.split()
            {"O": orchestrations, "S": started, "F": finished}.get(kind, set()).add(name)
            if kind == "C":
                completed[name] = rest[0]
        proc.send_signal(signal.SIGKILL)
        # Whatever it printed before dying was committed too.
        rest_of_output = proc.stdout.read()
        # Only whole lines: a line the kill cut short names nothing for sure.
        for line in rest_of_output[: rest_of_output.rfind("\n") + 1].splitlines():
            kind, name, *rest = line.split()
            {"O": orchestrations, "S": started, "F": finished}.get(kind, set()).add(name)
            if kind == "C":
                completed[name] = rest[0]
        proc.wait(timeout=30)
        proc.stderr.close()  # type: ignore[union-attr]
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL

    assert integrity(db_path) == "ok"
    with open_db(db_path, create=False) as db:
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = {r[0]: r[1:] for r in db.execute(
            "SELECT agent_session_id, status, completed_at, duration_ms, files_created, input_tokens,"
            " cost_usd, orchestration_id IS NOT NULL FROM agent_executions")}
        stored_orchestrations = {r[0]: r[1:] for r in db.execute(
            "SELECT session_id, status, completed_at FROM orchestrations")}
        # Nothing half-written: every execution belongs to an orchestration; finished rows are whole.
        assert db.execute("SELECT count(*) FROM agent_executions WHERE orchestration_id IS NULL"
                          " OR orchestration_id NOT IN (SELECT id FROM orchestrations)").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM agent_executions WHERE status != 'in_progress'"
                          " AND (completed_at IS NULL OR duration_ms IS NULL)").fetchone()[0] == 0
    assert orchestrations <= set(stored_orchestrations)
    assert started <= set(rows)
    for name, status in completed.items():
        e = int(name[-1])
        assert rows[name][0] == status
        assert rows[name][1] is not None and rows[name][2] is not None
        assert rows[name][3:] == (e, 100 + e, 0.5, 1)
    for session in finished:
        assert stored_orchestrations[session][0] == "partial"
        assert stored_orchestrations[session][1] is not None
    assert len(completed) > 20  # the kills did land mid-stream, after real work


# -- (c) cleanup while writers insert -------------------------------------------------------------

def seed_old(db_path: Path, orchestrations: int, per: int, days_ago: int) -> None:
    """Old history, inserted in bulk (the Tracker would take far longer for this many rows)."""
    when = datetime.now(timezone.utc) - timedelta(days=days_ago)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with open_db(db_path) as db, db.transaction() as conn:
        conn.executemany(
            "INSERT INTO orchestrations (id, session_id, status, started_at, completed_at)"
            " VALUES (?, ?, 'completed', ?, ?)",
            [(o + 1, f"old-{o}", stamp, stamp) for o in range(orchestrations)])
        conn.executemany(
            "INSERT INTO agent_executions (orchestration_id, agent_session_id, agent_name, status,"
            " started_at, completed_at, duration_ms) VALUES (?, ?, 'old-agent', 'completed', ?, ?, 5)",
            [(o + 1, f"old-{o}-{e}", stamp, stamp) for o in range(orchestrations) for e in range(per)])
        conn.executemany(
            "INSERT INTO agent_executions (agent_session_id, agent_name, status, started_at)"
            " VALUES (?, 'loose', 'in_progress', ?)", [(f"loose-{i}", stamp) for i in range(50)])


@pytest.mark.slow
def test_cleanup_while_four_writers_insert(tmp_path):
    db_path = tmp_path / "cleanup.db"
    seed_old(db_path, orchestrations=2000, per=5, days_ago=60)
    writers = [spawn(WRITER, w, 80, db_path) for w in range(4)]
    with open_db(db_path, create=False) as db:  # start cleaning once the writers are writing
        for _ in range(3000):
            if db.execute("SELECT count(*) FROM orchestrations").fetchone()[0] > 2000:
                break
            time.sleep(0.01)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cleaner = subprocess.run([sys.executable, "-m", "monitor", "cleanup", "30", "--db", str(db_path)],
                             capture_output=True, text=True, timeout=120, env=env)
    for p in writers:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert cleaner.returncode == 0, cleaner.stderr
    assert re.match(r"Deleted 2,000 orchestrations and 10,050 executions that started before ",
                    cleaner.stdout), cleaner.stdout
    with open_db(db_path, create=False) as db:
        assert db.execute("SELECT count(*) FROM orchestrations").fetchone()[0] == 4
        assert db.execute("SELECT count(*) FROM agent_executions").fetchone()[0] == 4 * 80
        assert db.execute("SELECT count(*) FROM agent_executions WHERE status = 'in_progress'"
                          ).fetchone()[0] == 0
    assert integrity(db_path) == "ok"


# -- (d) fuzzed CLI arguments ---------------------------------------------------------------------

#: Commands that are meant to change the database; every other command must leave it as it was.
WRITING_COMMANDS = {"cleanup", "reap", "alert", "run", "hook", "record", "event", "log-event", "import", "ingest"}

NASTY = ["'; DROP TABLE orchestrations; --", "\" OR 1=1 --", "%", "_", "*", "\\", "\x00", "", " ",
         "-1", "0", "1e309", "nan", "9" * 40, "24h", "7d", "2026-11-20", "1970-01-01", "s1", "agent0",
         "--json", "--csv", "--help", "☃", "𝕏", "\u202e", "a\nb", "../../etc/passwd",
         "999999d", "100000w", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-05:00", "1000000"]
values = st.one_of(st.sampled_from(NASTY), st.text(max_size=20), st.integers(-10**20, 10**20).map(str))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A small database with data in every state, copied fresh for each fuzzed call."""
    path = tmp_path_factory.mktemp("fuzz") / "template.db"
    clock = Clock(datetime.now(timezone.utc) - timedelta(days=40), step=timedelta(hours=3))
    with Tracker(path, clock=clock) as t:
        for o in range(4):
            t.start_orchestration(f"s{o}", "task ☃ 'quoted'", git_commit_hash="abc")
            for e in range(3):
                t.start_agent_execution(f"s{o}-e{e}", f"agent{e}", f"s{o}")
                if (o, e) != (3, 2):
                    t.complete_agent_execution(f"s{o}-e{e}", "failed" if e == 1 else "completed",
                                               "boom" if e == 1 else None, cost_usd=0.25)
            if o != 3:
                t.complete_orchestration(f"s{o}")
    return path


def command_args(command, draw) -> list[str]:
    """Random arguments for a click command: its own options with random (or no) values, random
    positional arguments, and now and then something it does not know."""
    import click

    args: list[str] = []
    for param in command.params:
        if isinstance(param, click.Option):
            if param.name == "db_path" or not draw(st.booleans()):
                continue
            args.append(draw(st.sampled_from(param.opts)))
            if not param.is_flag and not param.count:
                args.append(draw(values))
        elif isinstance(param, click.Argument) and param.name != "command":
            for _ in range(draw(st.integers(0, 2))):
                args.append(draw(values))
    if draw(st.integers(0, 9)) == 0:
        args.append(draw(values))
    draw(st.randoms()).shuffle(args)
    return args


#: `ui` serves until it is stopped, whatever its arguments: its bad arguments are tested in test_ui.py.
COMMANDS = sorted(set(cli.commands) - {"ui"})
TRUE = shutil.which("true") or "true"


@pytest.mark.slow
@pytest.mark.parametrize("name", COMMANDS)
def test_fuzzed_arguments_never_crash(name, template, tmp_path_factory):
    command = cli.commands[name]
    workdir = tmp_path_factory.mktemp(f"fuzz-{name}")
    db_path = workdir / "db.sqlite"
    shutil.copyfile(template, db_path)
    before = table_dump(db_path)  # each call's fresh copy holds the same (a dump costs as much as a call)

    @settings(max_examples=10 if name == "run" else 25, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def check(data):
        args = command_args(command, data.draw)
        for suffix in ("-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(template, db_path)
        if name == "run":  # random options, but only ever a harmless command
            own = {o for p in command.params for o in p.opts if o.startswith("--")} - {"--db", "--agent"}
            options = [a for a in args if a in own]
            argv = [name, "--db", str(db_path), "--agent", "fuzz"]
            for option in options[:3]:
                argv += [option, data.draw(values)]
            argv += ["--", TRUE]
        elif name == "watch":  # random options, but one snapshot: without --once it refreshes until stopped
            argv = [name, *args, "--once", "--db", str(db_path)]
        else:
            argv = [name, *args, "--db", str(db_path)]
        runner = CliRunner()
        with contextlib.chdir(workdir):  # `export -o RANDOM` writes there
            result = runner.invoke(cli, argv, catch_exceptions=True)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            argv, result.output, result.exc_info)
        verdicts = (3, 4) if name in ("check", "health") else ()  # warn, fail
        assert result.exit_code in (0, 1, 2, *verdicts), (argv, result.output)
        assert "Traceback" not in result.output
        if name not in WRITING_COMMANDS:
            assert table_dump(db_path) == before, argv

    check()


# -- (e) broken database files --------------------------------------------------------------------

READ_CALLS = [["list"], ["show", "s0"], ["executions"], ["health", "24"], ["performance"], ["failures"],
              ["agent", "agent0"], ["export"]]
WRITE_CALLS = [["cleanup", "30"], ["run", "--agent", "a", "--", sys.executable, "-c", "pass"]]


def make_valid(path: Path) -> None:
    with Tracker(path) as t:
        for i in range(200):
            t.start_orchestration(f"s{i}", "x" * 200, git_commit_hash="abc")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file, still in WAL mode
    conn.close()


def broken(kind: str, path: Path) -> Path:
    if kind == "truncated":
        make_valid(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "zero bytes":
        path.write_bytes(b"")
    elif kind == "not sqlite":
        path.write_text("orchestration,status\nbuild-1,completed\n" * 50)
    elif kind == "missing directory":
        return path.parent / "no" / "such" / "dir" / "monitoring.db"
    return path


def fingerprint(path: Path) -> tuple:
    """The file's bytes, and whether its directory exists (a missing one must not be created)."""
    return (hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None, path.parent.exists())


@pytest.mark.parametrize("kind", ["truncated", "zero bytes", "not sqlite", "missing directory"])
def test_broken_database_gives_one_line_error(tmp_path, kind):
    path = broken(kind, tmp_path / "monitoring.db")
    before = fingerprint(path)
    for call in READ_CALLS + WRITE_CALLS:
        if kind == "zero bytes" and call[0] == "run":
            continue  # an empty file is a new database to a writer: it gets created, by design
        argv = [call[0], "--db", str(path), *call[1:]]
        result = CliRunner().invoke(cli, argv, catch_exceptions=True)
        assert result.exception is None or isinstance(result.exception, SystemExit), (argv, result.exc_info)
        lines = result.stderr.strip().splitlines()
        if call[0] == "run":  # the work itself still runs (a CI step), with a one-line warning
            assert result.exit_code == 0, (argv, result.output)
            assert len(lines) == 1 and lines[0].startswith("monitor: running without recording: "), lines
        else:
            assert result.exit_code == 1, (argv, result.output)
            assert len(lines) == 1 and lines[0].startswith("Error: "), (argv, result.stderr)
        assert "Traceback" not in result.output
        assert fingerprint(path) == before, argv
    # and through a real process, where stderr is what a user sees
    proc = subprocess.run([sys.executable, "-m", "monitor", "health", "--db", str(path)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert re.fullmatch(r"Error: [^\n]+\n", proc.stderr), proc.stderr
    assert fingerprint(path) == before


def test_read_only_database(tmp_path):
    path = tmp_path / "monitoring.db"
    make_valid(path)
    path.chmod(0o444)
    before = fingerprint(path)
    for call in READ_CALLS:
        result = CliRunner().invoke(cli, [call[0], "--db", str(path), *call[1:]], catch_exceptions=True)
        assert result.exception is None or isinstance(result.exception, SystemExit), (call, result.exc_info)
        # agent0 has no executions in this file: a clean "not found"
        assert result.exit_code == (1 if call[0] == "agent" else 0), (call, result.output)
        assert fingerprint(path) == before, call
    writes_are_refused = not os.access(path, os.W_OK)  # root writes to a 0444 file all the same
    for call in WRITE_CALLS:
        result = CliRunner().invoke(cli, [call[0], "--db", str(path), *call[1:]], catch_exceptions=True)
        assert result.exception is None or isinstance(result.exception, SystemExit), (call, result.exc_info)
        if writes_are_refused:
            assert result.exit_code == 1, (call, result.output)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: ") and "read-only" in lines[0], result.stderr
            assert fingerprint(path) == before, call
        else:
            assert result.exit_code in (0, 1), (call, result.output)
