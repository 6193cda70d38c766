"""`monitor run` that heals: retries with backoff, a time limit on the command's process group, a
circuit breaker, what the error message keeps, the events of a run, and a real terminal. Each
run is monitor itself as a separate process."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor import Tracker, open_db
from monitor.capture.failure import failure_line, last_lines
from monitor.capture.healing import FAILURES_SQL, Breaker, Policy, backoff_delay, breaker_state, spoken
from monitor.read.queries import list_executions

PY = sys.executable


def monitor(db_path: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "monitor", *args], env={**os.environ, "MONITOR_DB": str(db_path), "COLUMNS": "250"},
                          capture_output=True, text=True, timeout=60, **kwargs)


def executions(db_path: Path) -> list[dict]:
    with open_db(db_path, create=False) as db:
        return list_executions(db)


def events(db_path: Path, execution: str) -> list[dict]:
    result = monitor(db_path, "logs", execution, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def flaky(counter: Path, failures: int, code: int = 3) -> str:
    """A script that fails (exit `code`, a line on stderr) its first `failures` runs, then succeeds."""
    return (f"import pathlib, sys; p = pathlib.Path({str(counter)!r}); n = int(p.read_text()) if p.exists() else 0;"
            f" p.write_text(str(n + 1)); print('run', n + 1, flush=True)\n"
            f"if n < {failures}: print(f'ERROR: attempt {{n + 1}} broke', file=sys.stderr); sys.exit({code})")


# -- retries ---------------------------------------------------------------------------------

def test_a_retry_that_succeeds_after_failures_is_one_self_healed_execution(db_path, tmp_path):
    counter = tmp_path / "count"
    result = monitor(db_path, "run", "--agent", "flaky", "--session", "ci-1", "--retries", "3", "--backoff", "0.1s",
                     "--", PY, "-c", flaky(counter, 2))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "run 1\nrun 2\nrun 3\n"  # every attempt's output passes through
    assert result.stderr == "ERROR: attempt 1 broke\nERROR: attempt 2 broke\n"
    [row] = executions(db_path)
    assert (row["status"], row["exit_code"], row["retry_count"], row["self_healed"], row["error_message"]) == (
        "completed", 0, 2, 1, None)
    assert row["duration_ms"] >= 100  # from the first start to the last end, backoff included
    told = events(db_path, row["agent_session_id"])
    assert [e["type"] for e in told] == ["started", "attempt", "exit", "retry", "attempt", "exit", "retry",
                                         "attempt", "exit"]
    assert [e["message"] for e in told if e["type"] == "exit"] == [
        "attempt 1 exited with code 3: ERROR: attempt 1 broke", "attempt 2 exited with code 3: ERROR: attempt 2 broke",
        "attempt 3 exited with code 0"]
    assert told[1]["message"].startswith("attempt 1 of 4 started (pid ")
    assert [e["payload"]["attempt"] for e in told if e["type"] == "retry"] == [2, 3]
    assert all(0.05 <= e["payload"]["delay_s"] <= 0.2 for e in told if e["type"] == "retry")
    assert {e["session_id"] for e in told} == {"ci-1"}
    # the session's log tells the same story
    assert [e["type"] for e in events(db_path, "ci-1")] == [e["type"] for e in told]


def test_when_every_attempt_fails_the_last_one_decides(db_path, tmp_path):
    counter = tmp_path / "count"
    result = monitor(db_path, "run", "--agent", "broken", "--retries", "2", "--backoff", "0.05s", "--",
                     PY, "-c", flaky(counter, 99, code=5))
    assert result.returncode == 5
    assert counter.read_text() == "3"
    [row] = executions(db_path)
    assert (row["status"], row["exit_code"], row["retry_count"], row["self_healed"], row["error_message"]) == (
        "failed", 5, 2, 0, "ERROR: attempt 3 broke")
    table = monitor(db_path, "executions")
    assert "failed" in table.stdout and "ERROR: attempt 3 broke" in table.stdout


def test_a_run_without_retries_still_tells_its_events(db_path):
    result = monitor(db_path, "run", "--agent", "once", "--", PY, "-c", "print('hi')")
    assert result.returncode == 0 and result.stdout == "hi\n"
    [row] = executions(db_path)
    assert (row["retry_count"], row["self_healed"]) == (0, 0)
    assert [e["type"] for e in events(db_path, row["agent_session_id"])] == ["started", "attempt", "exit"]


def test_a_command_that_cannot_start_is_not_retried(db_path):
    result = monitor(db_path, "run", "--agent", "ghost", "--retries", "3", "--backoff", "0.05s", "--",
                     "no-such-command-xyz")
    assert result.returncode == 127
    [row] = executions(db_path)
    assert (row["status"], row["retry_count"]) == ("failed", 0)


def test_backoff_doubles_is_capped_and_jittered():
    policy = Policy(retries=10, backoff=2.0, backoff_max=10.0)
    rng = random.Random(7)
    delays = [backoff_delay(policy, n, rng) for n in (1, 2, 3, 4, 5)]
    for delay, full in zip(delays, (2, 4, 8, 10, 10)):
        assert full / 2 <= delay <= full
    assert len(set(delays)) == 5  # jittered: never the same wait twice here


# -- time limit ------------------------------------------------------------------------------

SPAWNER = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open(sys.argv[1], "w").write(str(grandchild.pid))
print("spawned", flush=True)
time.sleep(60)
"""


def gone(pid: int) -> bool:
    """The process has ended (a zombie nobody reaped yet counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_timeout_stops_the_whole_process_group_and_exits_124(db_path, tmp_path):
    pid_file = tmp_path / "grandchild"
    started = time.monotonic()
    result = monitor(db_path, "run", "--agent", "slow", "--timeout", "0.5s", "--kill-after", "30s", "--",
                     PY, "-c", SPAWNER, str(pid_file))
    assert result.returncode == 124, result.stderr
    assert time.monotonic() - started < 20  # the group ended on SIGTERM: no waiting for the grace
    grandchild = int(pid_file.read_text())
    assert wait_until(lambda: gone(grandchild))
    [row] = executions(db_path)
    assert (row["status"], row["exit_code"]) == ("failed", 124)
    assert row["error_message"].splitlines()[0] == "timed out after 0.5s"
    told = events(db_path, row["agent_session_id"])
    assert [e["type"] for e in told] == ["started", "attempt", "timeout"]
    assert told[-1]["message"] == "attempt 1 timed out after 0.5s: its process group got SIGTERM (SIGKILL after 30s)"
    assert "timed out after 0.5s" in monitor(db_path, "executions").stdout


def test_a_command_that_ignores_sigterm_gets_sigkill_after_the_grace(db_path, tmp_path):
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True);"
                " time.sleep(60)")
    started = time.monotonic()
    result = monitor(db_path, "run", "--agent", "stubborn", "--timeout", "0.3s", "--kill-after", "0.3s", "--",
                     PY, "-c", stubborn)
    assert result.returncode == 124
    assert time.monotonic() - started < 20
    assert executions(db_path)[0]["error_message"] == "timed out after 0.3s"


def test_a_timed_out_attempt_is_retried(db_path, tmp_path):
    counter = tmp_path / "count"
    script = (f"import pathlib, time; p = pathlib.Path({str(counter)!r}); n = int(p.read_text()) if p.exists() else 0;"
              f" p.write_text(str(n + 1))\nif n == 0: time.sleep(60)")
    result = monitor(db_path, "run", "--agent", "hangs-once", "--timeout", "0.5s", "--retries", "1", "--backoff",
                     "0.05s", "--", PY, "-c", script)
    assert result.returncode == 0
    [row] = executions(db_path)
    assert (row["status"], row["retry_count"], row["self_healed"]) == ("completed", 1, 1)


@pytest.mark.parametrize("bad", ["0s", "soon"])
def test_a_bad_timeout_is_a_usage_error(db_path, bad):
    result = monitor(db_path, "run", "--agent", "x", "--timeout", bad, "--", "true")
    assert result.returncode == 2
    assert "--timeout" in result.stderr and "Traceback" not in result.stderr


# -- circuit breaker -------------------------------------------------------------------------

def test_the_breaker_refuses_after_n_failures_with_exit_75_and_an_event(db_path, tmp_path):
    with Tracker(db_path) as t:  # 3 failures of deploy just now, and others' (the real clock: monitor reads it)
        for n in range(3):
            t.start_agent_execution(f"deploy-{n}", "deploy", orchestration="ci-9")
            t.complete_agent_execution(f"deploy-{n}", "failed", error_message="boom")
        t.start_agent_execution("other-0", "other", orchestration="ci-9")
        t.complete_agent_execution("other-0", "failed", error_message="boom")
    marker = tmp_path / "ran"
    command = ["--", PY, "-c", f"open({str(marker)!r}, 'w').write('ran')"]
    allowed = monitor(db_path, "run", "--agent", "deploy", "--breaker", "4/30m", *command)
    assert allowed.returncode == 0 and marker.exists()  # 3 failures: under 4
    marker.unlink()
    assert monitor(db_path, "run", "--agent", "deploy", "--session", "ci-9", "--", "false").returncode == 1
    refused = monitor(db_path, "run", "--agent", "deploy", "--session", "ci-9", "--breaker", "4/30m", *command)
    assert refused.returncode == 75
    assert not marker.exists()
    [line] = refused.stderr.splitlines()
    assert line.startswith("monitor: circuit breaker open for agent 'deploy': 4 failed executions within the last"
                           " 30m (--breaker 4/30m); not starting it before ")
    assert len(executions(db_path)) == 6  # the refusal is not an execution
    told = [e for e in events(db_path, "ci-9") if e["type"] == "breaker-open"]
    assert len(told) == 1 and told[0]["payload"]["failures"] == 4
    # other agents' failures are their own, and a higher limit needs more failures
    assert monitor(db_path, "run", "--agent", "other", "--breaker", "2/30m", "--", "true").returncode == 0
    assert monitor(db_path, "run", "--agent", "deploy", "--breaker", "5/30m", "--", "true").returncode == 0


def test_a_refusal_without_a_session_is_told_on_the_latest_failure(db_path):
    assert monitor(db_path, "run", "--agent", "solo", "--", "false").returncode == 1
    refused = monitor(db_path, "run", "--agent", "solo", "--breaker", "1/1h", "--", "true")
    assert refused.returncode == 75
    [row] = executions(db_path)
    assert [e["type"] for e in events(db_path, row["agent_session_id"])][-1] == "breaker-open"


@pytest.mark.parametrize("bad", ["5", "0/30m", "5/soon", "x/30m"])
def test_a_bad_breaker_is_a_usage_error(db_path, bad):
    result = monitor(db_path, "run", "--agent", "x", "--breaker", bad, "--", "true")
    assert result.returncode == 2
    assert "--breaker" in result.stderr and "5/30m" in result.stderr


def test_breaker_state_opens_until_the_oldest_failure_leaves_the_window(tracker):
    base = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    with tracker.db.transaction() as conn:
        for minute, status in ((0, "failed"), (5, "completed"), (10, "failed"), (20, "failed"), (50, "failed")):
            at = (base + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            conn.execute("INSERT INTO agent_executions (agent_session_id, agent_name, status, started_at,"
                         " completed_at) VALUES (?, 'a', ?, ?, ?)", (f"a-{minute}", status, at, at))
    breaker = Breaker.parse("3/30m")
    assert str(breaker) == "3/30m" and spoken(5400) == "1h30m" and spoken(0.2) == "0.2s"
    at_25 = breaker_state(tracker.db, "a", breaker, base + timedelta(minutes=25))
    assert (at_25.failures, at_25.open_until) == (3, "2026-11-20T12:30:00.000Z")
    at_35 = breaker_state(tracker.db, "a", breaker, base + timedelta(minutes=35))
    assert (at_35.failures, at_35.open_until) == (2, None)
    at_55 = breaker_state(tracker.db, "a", breaker, base + timedelta(minutes=55))
    assert (at_55.failures, at_55.open_until) == (1, None)
    at_20 = breaker_state(tracker.db, "a", Breaker.parse("2/15m"), base + timedelta(minutes=20))
    assert (at_20.failures, at_20.open_until) == (2, "2026-11-20T12:25:00.000Z")
    assert breaker_state(tracker.db, "b", breaker, base).open_until is None


def test_the_breaker_query_uses_the_failed_executions_index(tracker):
    plan = " ".join(row[3] for row in tracker.db.execute("EXPLAIN QUERY PLAN " + FAILURES_SQL,
                                                         ("a", "2026-11-20T12:00:00.000Z", "2026-11-20T12:30:00.000Z", 5)))
    assert "idx_executions_agent_failed" in plan and "TEMP B-TREE" not in plan


# -- what the error message keeps ------------------------------------------------------------

PYTEST_LIKE = """
import sys
print("F" + " " * 70 + "[100%]")
print("=" * 30 + " FAILURES " + "=" * 30)
print("    def test_login():")
print(">       assert 2 == 3")
print("E       assert 2 == 3")
print("test_x.py:2: AssertionError")
print("=" * 20 + " short test summary info " + "=" * 20)
print("FAILED test_x.py::test_login - assert 2 == 3")
print("1 failed in 0.01s")
sys.exit(1)
"""


@pytest.mark.parametrize("capture, kept", [
    ("stderr", None), ("stdout", "FAILED test_x.py::test_login - assert 2 == 3"),
    ("both", "FAILED test_x.py::test_login - assert 2 == 3")])
def test_capture_chooses_the_streams_the_error_message_keeps(db_path, capture, kept):
    result = monitor(db_path, "run", "--agent", "tests", "--capture", capture, "--", PY, "-c", PYTEST_LIKE)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "1 failed in 0.01s"  # stdout still passes through
    [row] = executions(db_path)
    if kept is None:
        assert row["error_message"] == "exited with code 1"
    else:
        assert row["error_message"].splitlines()[-1] == "1 failed in 0.01s"
        table = monitor(db_path, "executions").stdout
        assert table.splitlines()[-1].endswith(kept)  # the failure line, not the last one


def test_captured_output_keeps_secrets_out(db_path):
    secret = "sk-ant-api03-" + "x" * 40
    result = monitor(db_path, "run", "--agent", "leaky", "--capture", "both", "--",
                     PY, "-c", f"print('token {secret}'); raise SystemExit(2)")
    assert result.returncode == 2 and secret in result.stdout  # passed through untouched
    [row] = executions(db_path)
    assert secret not in row["error_message"] and "token" in row["error_message"]


@pytest.mark.parametrize("text, line", [
    ("line 1\nline 2", "line 2"),
    ("Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad value\n", "ValueError: bad value"),
    ("compiling\nsrc/a.c:3:1: error: expected ';'\n1 error generated.", "src/a.c:3:1: error: expected ';'"),
    ("timed out after 10m\nFAILED t.py::a - x", "timed out after 10m"),
    ("PASS a.test.js\nFAIL b.test.js\nTests: 1 failed", "FAIL b.test.js"),
    ("", ""),
])
def test_failure_line_picks_what_went_wrong(text, line):
    assert failure_line(text) == line


def test_last_lines_reads_terminal_output_as_shown():
    assert last_lines("\x1b[31mFAILED\x1b[0m a\r\n10%\r50%\r100%\r\n") == "FAILED a\n100%"


AWS = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("text, cut, open_end, kept", [
    # the relay's tail starts inside a line: that line is left out, even when it is the only one
    (f"_ACCESS_KEY={AWS} rejected", True, False, ""),
    (f"CCESS_KEY={AWS} rejected\nError: access denied\n", True, False, "Error: access denied"),
    # ... and so is the rest of a private key whose BEGIN line was cut off
    ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\nError: bad key\n",
     True, False, "Error: bad key"),
    # the output had not ended (a process left behind still writes): its last, unended line is left out
    ("Error: push rejected\nusing token ghp_R8nK2vX7mQ4pL9", False, True, "Error: push rejected"),
    ("Error: push rejected\n", False, True, "Error: push rejected"),
    # a whole output keeps its last line, ended or not
    ("Error: push rejected\nretry later", False, False, "Error: push rejected\nretry later"),
    # a name coloured apart from its value is an assignment as shown
    (f"\x1b[1mAWS_SECRET_ACCESS_KEY\x1b[0m={AWS}\n", False, False,
     "AWS_SECRET_ACCESS_KEY=[REDACTED:secret_assignment]"),
])
def test_last_lines_keeps_no_secret_by_halves(text, cut, open_end, kept):
    assert last_lines(text, cut=cut, open_end=open_end) == kept


# -- a real terminal -------------------------------------------------------------------------

def under_terminal(argv: list[str], env: dict, typed: bytes = b"", ctrl_c_after: bytes | None = None,
                   timeout: float = 30) -> tuple[int, str]:
    """Run argv with a pseudo-terminal as its stdin, stdout and stderr (as in a terminal emulator),
    typing `typed`, and Ctrl-C once the terminal shows `ctrl_c_after`: its exit code and everything
    the terminal showed."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(argv[0], argv, env)
    if typed:
        os.write(fd, typed)
    shown, deadline, status = b"", time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if ctrl_c_after is not None and ctrl_c_after in shown:
            time.sleep(0.3)  # the relay has put the terminal in raw mode by then
            os.write(fd, b"\x03")
            ctrl_c_after = None
        if not select.select([fd], [], [], 0.5)[0]:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            status = None
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    else:
        os.kill(pid, signal.SIGKILL)
    if status is None:
        status = os.waitpid(pid, 0)[1]
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


TTY_CHILD = ("import sys; print('tty', sys.stdin.isatty(), sys.stdout.isatty(), sys.stderr.isatty(), flush=True);"
             " line = input(); print('read', line.upper(), flush=True); print('Error: it broke', file=sys.stderr);"
             " sys.exit(4)")


def test_on_a_terminal_the_command_keeps_one(db_path):
    env = {**os.environ, "MONITOR_DB": str(db_path)}
    code, shown = under_terminal([PY, "-m", "monitor", "run", "--agent", "tty", "--", PY, "-c", TTY_CHILD], env,
                                 typed=b"hello\r")
    assert code == 4, shown
    assert "tty True True True" in shown  # stdin, stdout and stderr are a terminal to the command
    assert "read HELLO" in shown  # and what was typed reached it
    assert "Error: it broke" in shown
    [row] = executions(db_path)
    assert (row["status"], row["exit_code"], row["error_message"]) == ("failed", 4, "Error: it broke")


def test_without_a_terminal_the_command_gets_none(db_path):
    result = monitor(db_path, "run", "--agent", "pipe", "--", PY, "-c", TTY_CHILD, input="hello\n")
    assert result.returncode == 4
    assert result.stdout == "tty False False False\nread HELLO\n"
    assert result.stderr == "Error: it broke\n"


def test_on_a_terminal_ctrl_c_reaches_the_command_and_is_not_retried(db_path):
    env = {**os.environ, "MONITOR_DB": str(db_path)}
    sleeper = "import time; print('ready', flush=True); time.sleep(30)"
    code, shown = under_terminal([PY, "-m", "monitor", "run", "--agent", "ctrl-c", "--retries", "3", "--",
                                  PY, "-c", sleeper], env, ctrl_c_after=b"ready")
    assert code == 130, shown
    assert "KeyboardInterrupt" in shown
    [row] = executions(db_path)
    assert (row["status"], row["exit_code"], row["retry_count"]) == ("failed", 130, 0)
    assert row["error_message"].startswith("killed by SIGINT")


def test_a_signal_to_monitor_alone_reaches_the_commands_whole_group(db_path, tmp_path):
    pid_file = tmp_path / "grandchild"
    wrapper = subprocess.Popen([PY, "-m", "monitor", "run", "--agent", "term", "--retries", "2", "--",
                                PY, "-c", SPAWNER, str(pid_file)],
                               env={**os.environ, "MONITOR_DB": str(db_path)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert wrapper.stdout.readline() == "spawned\n"
    grandchild = int(pid_file.read_text())
    wrapper.send_signal(signal.SIGTERM)  # monitor alone, as a supervisor stopping it would
    assert wrapper.wait(timeout=30) == 143
    assert wait_until(lambda: gone(grandchild))
    [row] = executions(db_path)
    assert (row["status"], row["exit_code"], row["retry_count"]) == ("failed", 143, 0)
    assert row["error_message"] == "interrupted by SIGTERM"
    told = events(db_path, row["agent_session_id"])
    assert [e["type"] for e in told] == ["started", "attempt", "signal"]
    assert told[-1]["message"] == "attempt 1: monitor run got SIGTERM, passed on to the command"


CHATTY = """
import sys, time
print('tty', sys.stdout.isatty(), flush=True)
for i in range(20):
    print(f"line {i}", flush=True)
    time.sleep(0.05)
open(sys.argv[1], "w").write("finished")
"""


def test_on_a_terminal_killing_monitor_run_leaves_the_command_running(db_path, tmp_path):
    """kill -9 of `monitor run` alone: the command keeps its pseudo-terminal, its output still reaches
    the terminal through the relay, and the next command records the run killed."""
    import pty
    import select

    done = tmp_path / "done"
    env = {**os.environ, "MONITOR_DB": str(db_path)}
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(PY, [PY, "-m", "monitor", "run", "--agent", "chatty", "--", PY, "-c", CHATTY, str(done)], env)
    shown, deadline, killed = b"", time.monotonic() + 30, False
    while time.monotonic() < deadline:
        if not killed and b"line 2" in shown and executions(db_path):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            killed = True
        try:
            if select.select([fd], [], [], 0.5)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                shown += chunk
            elif done.exists():
                break
        except OSError:
            break
    os.close(fd)
    assert killed, shown
    assert wait_until(done.exists)
    assert b"tty True" in shown and b"line 19" in shown
    assert monitor(db_path, "executions").returncode == 0  # a new command catches up
    [row] = executions(db_path)
    assert (row["status"], row["error_message"]) == ("failed", "monitor run was killed")


def test_the_started_event_redacts_the_command_line_and_metadata_mode_keeps_only_its_name(db_path):
    secret = "sk-ant-api03-" + "y" * 40
    assert monitor(db_path, "run", "--agent", "keyed", "--", PY, "-c", "pass", f"--key={secret}").returncode == 0
    [row] = executions(db_path)
    started = events(db_path, row["agent_session_id"])[0]
    assert started["type"] == "started" and "-c pass --key=" in started["message"]
    assert secret not in json.dumps(started)
    result = subprocess.run([PY, "-m", "monitor", "run", "--agent", "quiet", "--capture", "both", "--",
                             PY, "-c", "print('private'); raise SystemExit(3)"],
                            env={**os.environ, "MONITOR_DB": str(db_path), "MONITOR_CAPTURE": "metadata"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and result.stdout == "private\n"
    row = next(r for r in executions(db_path) if r["agent_name"] == "quiet")
    assert row["error_message"] == "exited with code 3"
    told = events(db_path, row["agent_session_id"])
    assert told[0]["message"] == f"monitor run: {os.path.basename(PY)}"
    assert "private" not in json.dumps(told)


def test_without_a_usable_database_retries_and_the_time_limit_still_hold(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 20)
    counter = tmp_path / "count"
    healed = monitor(junk, "run", "--agent", "a", "--retries", "2", "--backoff", "0.05s", "--",
                     PY, "-c", flaky(counter, 1))
    assert healed.returncode == 0 and healed.stdout == "run 1\nrun 2\n"
    assert "running without recording" in healed.stderr
    slow = monitor(junk, "run", "--agent", "a", "--timeout", "0.3s", "--", PY, "-c", "import time; time.sleep(30)")
    assert slow.returncode == 124
    assert junk.read_text() == "not a database\n" * 20


def test_on_a_terminal_the_window_size_follows_the_terminal(db_path):
    import fcntl
    import pty
    import select
    import struct
    import termios

    resizer = ("import os, signal, time; signal.signal(signal.SIGWINCH, lambda *a: print('now', tuple(os.get_terminal_size()),"
               " flush=True)); print('size', tuple(os.get_terminal_size()), flush=True); time.sleep(30)")
    env = {**os.environ, "MONITOR_DB": str(db_path)}
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.execve(PY, [PY, "-m", "monitor", "run", "--agent", "resize", "--timeout", "30s", "--",
                       PY, "-c", resizer], env)
    shown, deadline, resized = b"", time.monotonic() + 30, False
    while b"now (120, 40)" not in shown and time.monotonic() < deadline:  # the whole line, not its start
        if b"size" in shown and not resized:
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # the user resizes the window
            resized = True
        if select.select([fd], [], [], 0.5)[0]:
            shown += os.read(fd, 65536)
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
    os.close(fd)
    assert b"size (100, 30)" in shown and b"now (120, 40)" in shown, shown
