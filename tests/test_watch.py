"""`monitor watch`: the snapshot on a fixed clock, its plain text and its full screen, plain
periodic output through a pipe, and (when tmux is installed) a real terminal: a run recorded by
another process appears, `q` quits with 0 and leaves the terminal as it found it."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import Tracker, open_db
from monitor.cli import cli
from monitor.cli.live import screen
from monitor.cli.options import Settings
from monitor.read.live import Limits, live_snapshot

from conftest import T0, Clock
from test_cli_tables import NOW, record

ROOT = Path(__file__).resolve().parent.parent
MONITOR = [sys.executable, "-m", "monitor"]


@pytest.fixture
def recorded(db_path: Path, clock: Clock) -> Path:
    """test_cli_tables' data (a partial build-7 with a failed tester, a stuck execution, events,
    costs), and a running orchestration whose coder started 90 s before NOW."""
    record(db_path, clock)
    with Tracker(db_path, clock=clock) as t:
        clock.now = NOW - timedelta(seconds=90)
        t.start_orchestration("live-9", "Live refactor", total_tasks=2, git_commit_hash="abc1234")
        t.start_agent_execution("live-9-coder", "coder", "live-9")
    clock.now = NOW
    return db_path


def test_the_snapshot_at_a_fixed_time(recorded):
    with open_db(recorded, create=False) as db:
        snapshot = live_snapshot(db, NOW, limits=Limits(events=2))
        assert not db.conn.in_transaction  # nothing held between refreshes: writers and checkpoints go on
    assert (snapshot.generated_at, snapshot.since, snapshot.today) == (
        "2026-11-20T12:30:00.000Z", "2026-11-19T12:30:00.000Z", "2026-11-20T00:00:00.000Z")
    assert [(r["session_id"], r["elapsed_ms"]) for r in snapshot.running_orchestrations.rows] == [("live-9", 90_000)]
    assert [(r["agent_session_id"], r["session_id"], r["elapsed_ms"]) for r in snapshot.running_executions.rows] == [
        ("live-9-coder", "live-9", 90_000), ("stuck-1", None, 3.5 * 3_600_000)]
    assert (snapshot.stale, snapshot.stale_after_ms) == (1, 3_600_000)  # stuck-1, in progress for 3h 30m
    assert [(r["agent_session_id"], r["exit_code"], r["error_message"].splitlines()[-1])
            for r in snapshot.failures.rows] == [("build-7-tester", 1, "FAILED test_login - 2 != 3")]
    # deploy-3's deployer ran a day before T0: outside the window, in no part.
    assert [(a["agent_name"], a["executions"], a["failed"], a["success_rate"], a["p95_duration_ms"])
            for a in snapshot.agents] == [
        ("coder", 2, 0, 100.0, 65_000), ("lint", 1, 0, 100.0, 900), ("planner", 1, 0, 100.0, 2_500),
        ("slowpoke", 1, 0, None, None), ("tester", 1, 1, 0.0, 12_400)]
    assert {k: snapshot.overall[k] for k in ("executions", "failed", "in_progress", "success_rate")} == {
        "executions": 6, "failed": 1, "in_progress": 2, "success_rate": 75.0}
    # planner's $0.048 and coder's $1.35; tester's local-llama tokens have no price.
    assert (snapshot.cost_today["cost_usd"], snapshot.cost_today["unpriced"]) == (1.398, 1)
    assert [(e["timestamp"], e["type"], e["message"]) for e in snapshot.events] == [  # the newest 2, in order
        ("2026-11-20T12:01:20.000Z", "error", "2 tests failed"),
        ("2026-11-20T12:01:22.400Z", "status", "build-7 finished: partial")]


def test_the_window_and_the_day_follow_the_clock(recorded):
    """An hour later, with a window of 30 minutes, build-7 (12:00-12:01) has left every part."""
    with open_db(recorded, create=False) as db:
        later = live_snapshot(db, NOW + timedelta(hours=1), window=timedelta(minutes=30))
        next_day = live_snapshot(db, T0 + timedelta(days=1, minutes=1))
    assert later.since == "2026-11-20T13:00:00.000Z"
    assert (later.failures.rows, later.events, [a["agent_name"] for a in later.agents]) == ([], [], [])
    assert [r["elapsed_ms"] for r in later.running_executions.rows] == [3_690_000, 16_200_000]
    assert (next_day.today, next_day.cost_today["cost_usd"]) == ("2026-11-21T00:00:00.000Z", None)


def test_each_part_counts_what_its_limit_leaves_out(db_path, clock):
    with Tracker(db_path, clock=clock) as t:
        for n in range(4):
            t.start_agent_execution(f"run-{n}", "worker")
            t.start_agent_execution(f"bad-{n}", "worker")
            t.complete_agent_execution(f"bad-{n}", "failed", f"error {n}")
    with open_db(db_path, create=False) as db:
        snapshot = live_snapshot(db, T0, limits=Limits(running=3, failures=2))
    assert (len(snapshot.running_executions.rows), snapshot.running_executions.total) == (3, 4)
    assert [r["error_message"] for r in snapshot.failures.rows] == ["error 3", "error 2"]
    assert snapshot.failures.total == 4
    text = run_once(db_path, Clock(T0)).output
    assert "Running executions (4)" in text  # --once shows up to 10 of each
    with open_db(db_path, create=False) as db:
        from monitor.cli.output import live_sections
        titles = [title for title, _ in live_sections(live_snapshot(db, T0, limits=Limits(running=3, failures=2)))]
    assert titles[2:4] == ["Running executions (3 of 4)", "Failures in the last 24h (2 of 4)"]


def run_once(db_path: Path, clock: Clock, *args: str):
    result = CliRunner(env={"COLUMNS": "120"}).invoke(cli, ["watch", "--once", *args, "--db", str(db_path)],
                                                      obj=Settings(now=clock))
    assert result.exit_code == 0, result.output
    return result


def test_once_prints_one_plain_snapshot(recorded, clock):
    assert run_once(recorded, clock).output == """\
monitor watch · 2026-11-20 12:30:00 UTC · since 2026-11-19 12:30:00 UTC
6 executions in the last 24h · success 75.0% · p95 1m 05s · 1 stale (over 1h 00m) · cost today $1.3980 (1 unpriced)

Running orchestrations (1)
session      tasks    done    failed    runs    elapsed  description
---------  -------  ------  --------  ------  ---------  -------------
live-9           2       0         0       1     1m 30s  Live refactor

Running executions (2)
agent     execution     session      elapsed  started
--------  ------------  ---------  ---------  ---------
coder     live-9-coder  live-9        1m 30s  12:28:30
slowpoke  stuck-1                     3h 30m  09:00:00

Failures in the last 24h (1)
failed at    agent    session      exit    took  error
-----------  -------  ---------  ------  ------  --------------------------
12:01:22     tester   build-7         1   12.4s  FAILED test_login - 2 != 3

Agents in the last 24h (5)
agent       runs    failed    success     p50     p95    cost $
--------  ------  --------  ---------  ------  ------  --------
coder          2         0     100.0%  1m 05s  1m 05s    1.3500
lint           1         0     100.0%   900ms   900ms
planner        1         0     100.0%    2.5s    2.5s    0.0480
slowpoke       1         0
tester         1         1       0.0%   12.4s   12.4s

Latest events (3)
time      agent    type       message
--------  -------  ---------  -------------------------
12:00:10  coder    tool_call  Edit payments/api.py
12:01:20  tester   error      2 tests failed
12:01:22           status     build-7 finished: partial
"""


def test_times_of_other_days_show_their_date(recorded, clock):
    """A day later, stuck-1 (started yesterday at 09:00) shows its date; the summary wraps at 80 columns."""
    clock.now = NOW + timedelta(days=1)
    result = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["watch", "--once", "--db", str(recorded)],
                                                     obj=Settings(now=clock))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1:3] == ["0 executions in the last 24h · success - · p95 - · 2 stale (over 1h 00m)",
                          "cost today $0.0000"]
    assert "slowpoke  stuck-1                     1d 03h  11-20 09:00" in lines


def test_once_on_an_empty_database_says_none(db_path, clock):
    open_db(db_path).close()
    text = run_once(db_path, clock, "--since", "90m", "--stale-after", "30m").output
    assert text.splitlines()[:2] == [
        "monitor watch · 2026-11-20 12:00:00 UTC · since 2026-11-20 10:30:00 UTC",
        "0 executions in the last 90m · success - · p95 - · 0 stale (over 30m 00s) · cost today $0.0000"]
    assert text.count("\nnone\n") == 5


def test_once_as_json(recorded, clock):
    document = json.loads(run_once(recorded, clock, "--json").output)
    assert document["running_executions"]["total"] == 2
    assert [r["agent_session_id"] for r in document["running_executions"]["rows"]] == ["live-9-coder", "stuck-1"]
    assert document["failures"]["rows"][0]["self_healed"] is False
    assert (document["stale"], document["cost_today"]["cost_usd"], len(document["events"])) == (1, 1.398, 3)


@pytest.mark.parametrize("args, message", [
    (["--interval", "0"], "0 is not in the range"),
    (["--since", "2026-11-01"], "is not a duration"),
    (["--stale-after", "soon"], "is not a duration"),
])
def test_bad_options_are_one_line_errors(db_path, args, message):
    open_db(db_path).close()
    result = CliRunner().invoke(cli, ["watch", "--once", *args, "--db", str(db_path)])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_a_missing_database_is_an_error(tmp_path):
    result = CliRunner().invoke(cli, ["watch", "--once", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no monitor database at ")


def render_screen(snapshot, width: int, height: int) -> list[str]:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, height=height, color_system=None, record=True)
    console.print(screen(snapshot, width, height, 1.5))
    return console.export_text().splitlines()


def test_the_screen_fills_the_terminal_with_the_newest_events(recorded):
    with open_db(recorded, create=False) as db:
        snapshot = live_snapshot(db, NOW)
    tall = render_screen(snapshot, 120, 50)
    assert len(tall) == 50
    assert tall[0] == "monitor watch · 2026-11-20 12:30:00 UTC · since 2026-11-19 12:30:00 UTC"
    assert tall[-1] == "q quits · refreshes every 1.5s"
    assert "Latest events (3)" in tall and tall[-2] == ""  # room to spare: blank lines above the help
    # 30 lines: the longest parts give up rows first, the events their oldest; the help line stays last.
    short = render_screen(snapshot, 120, 30)
    assert len(short) == 30 and short[-1] == "q quits · refreshes every 1.5s"
    assert [line for line in short if line.endswith(")") and not line.startswith("6 ")] == [
        "Running orchestrations (1)", "Running executions (1 of 2)", "Failures in the last 24h (1)",
        "Agents in the last 24h (2 of 5)", "Latest events (2)"]
    agents, events = short.index("Agents in the last 24h (2 of 5)"), short.index("Latest events (2)")
    assert [line.split()[0] for line in short[agents + 3:agents + 5]] == ["coder", "lint"]  # the busiest
    assert [line.split()[0] for line in short[events + 3:-1]] == ["12:01:20", "12:01:22"]   # the newest
    # 20 lines: a part cut to nothing says so, rather than 'none'.
    shortest = render_screen(snapshot, 120, 20)
    assert shortest[3:5] == ["Running orchestrations (0 of 1)", "… (a taller terminal shows them)"]
    # Narrow: no line is wider than the terminal; the failure's message is shortened, not wrapped.
    narrow = render_screen(snapshot, 60, 40)
    assert max(len(line) for line in narrow) <= 60
    assert "12:01:22     tester   build-7         1   12.4s  FAILED tes…" in narrow
    # Very short: the parts are cut at the bottom, the help line is still the last.
    tiny = render_screen(snapshot, 120, 8)
    assert (len(tiny), tiny[-1], tiny[2]) == (8, "q quits · refreshes every 1.5s", "")


def test_reads_neither_wait_for_a_writer_nor_make_it_wait(recorded):
    """A writer holds the write lock with a change not yet committed: the snapshot (whose
    connection gives up on any lock after 1 ms) reads the last committed state; and a writer
    commits while a snapshot's read transaction is open."""
    writer = sqlite3.connect(recorded, isolation_level=None, timeout=0.001)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE agent_executions SET status = 'completed' WHERE agent_session_id = 'stuck-1'")
    with open_db(recorded, create=False, busy_timeout_ms=1) as db:
        assert live_snapshot(db, NOW).stale == 1
        writer.execute("COMMIT")
        with db.snapshot():
            db.execute("SELECT count(*) FROM agent_executions").fetchone()
            writer.execute("UPDATE agent_executions SET status = 'in_progress' WHERE agent_session_id = 'stuck-1'")
        assert live_snapshot(db, NOW).stale == 1
    writer.close()


def test_a_read_only_database_is_watched(recorded, clock):
    before = recorded.read_bytes()
    os.chmod(recorded, 0o444)
    try:
        result = subprocess.run([*MONITOR, "watch", "--once", "--db", str(recorded)], capture_output=True,
                                text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.chmod(recorded, 0o600)
    assert (result.returncode, result.stderr) == (0, "")
    assert "Running executions (2)" in result.stdout
    assert recorded.read_bytes() == before


def test_a_pipe_gets_a_plain_snapshot_every_interval(recorded):
    """Not a terminal: plain text (no escape sequence), one snapshot per interval; Ctrl-C ends it
    with 130 and no traceback."""
    process = subprocess.Popen([*MONITOR, "watch", "--interval", "0.2", "--db", str(recorded)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"})
    assert process.stdout is not None
    headers = 0
    try:
        deadline = time.monotonic() + 30
        while headers < 3 and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert "\x1b" not in line
            headers += line.startswith("monitor watch · ")
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert headers == 3
    assert (process.returncode, stderr) == (130, "")


# -- a real terminal -------------------------------------------------------------------------------

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """A tmux server of its own (-L), one pane of 110 x 40."""

    def __init__(self, tmp_path: Path) -> None:
        self.socket = f"monitor-test-{os.getpid()}-{tmp_path.name}"

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "watch")

    def wait_for(self, text: str, seconds: float = 30) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared on the screen:\n{shown}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


@needs_tmux
@pytest.mark.slow
@pytest.mark.parametrize("key, exit_code", [("q", "0"), ("C-c", "130")])
def test_a_real_terminal(tmp_path, db_path, key, exit_code):
    """watch runs in a tmux pane; another process records an execution, which appears on the
    screen; `q` ends it with 0 (Ctrl-C with 130), and the terminal is as it was: main screen,
    cursor shown, line editing and echo on (stty, run right after in the same pane)."""
    open_db(db_path).close()
    tmux = Tmux(tmp_path)
    # The shell outlives a Ctrl-C (a handler, not an ignored signal, which watch would inherit).
    script = (f"trap : INT; cd {tmp_path}; stty -a > stty-before.txt; PYTHONPATH={ROOT} {sys.executable} -m monitor watch"
              f" --interval 0.3 --db {db_path}; echo $? > exit-code.txt; stty -a > stty-after.txt;"
              f" sleep 60")
    tmux("new-session", "-d", "-s", "watch", "-x", "110", "-y", "40", "sh", "-c", script)
    try:
        tmux.wait_for("Running executions (0)")
        assert tmux("display", "-p", "-t", "watch", "#{alternate_on}").strip() == "1"
        with Tracker(db_path) as t:  # another process records: this test's, not watch's
            t.start_orchestration("tmux-1", "Seen live", total_tasks=1, git_commit_hash="abc1234")
            t.start_agent_execution("tmux-1-coder", "coder-from-outside", "tmux-1")
        shown = tmux.wait_for("coder-from-outside")
        assert "Running executions (1)" in shown and "tmux-1-coder" in shown
        assert shown.rstrip().splitlines()[-1].startswith("q quits")
        tmux("send-keys", "-t", "watch", key)
        deadline = time.monotonic() + 30
        while not (tmp_path / "stty-after.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (tmp_path / "exit-code.txt").read_text().strip() == exit_code
        assert tmux("display", "-p", "-t", "watch", "#{alternate_on} #{cursor_flag}").split() == ["0", "1"]
        time.sleep(0.2)
        before, after = ((tmp_path / name).read_text() for name in ("stty-before.txt", "stty-after.txt"))
        assert after == before
        assert " icanon" in after and " echo " in after
        assert "coder-from-outside" not in tmux.screen()  # the watch screen is gone
    finally:
        tmux.kill()
