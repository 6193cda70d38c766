"""`monitor run` through real processes: exit codes, pass-through, interruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from monitor import open_db
from monitor.read.queries import get_orchestration, list_executions


def monitor(db_path, *args, **kwargs):
    return subprocess.run([sys.executable, "-m", "monitor", *args], env={**os.environ, "MONITOR_DB": str(db_path)},
                          capture_output=True, text=True, timeout=60, **kwargs)


def executions(db_path):
    with open_db(db_path, create=False) as db:
        return list_executions(db)


def test_success_passes_output_through_and_records_completion(db_path):
    result = monitor(db_path, "run", "--agent", "echoer", "--task-id", "T-7", "--",
                     sys.executable, "-c", "import sys; print(sys.stdin.read().upper()); print('note', file=sys.stderr)",
                     input="hello")
    assert result.returncode == 0
    assert result.stdout == "HELLO\n"
    assert result.stderr == "note\n"
    [row] = executions(db_path)
    assert (row["agent_name"], row["task_id"], row["status"], row["exit_code"], row["error_message"]) == (
        "echoer", "T-7", "completed", 0, None)
    assert row["duration_ms"] >= 0 and row["session_id"] is None


def test_failure_returns_the_exit_code_and_keeps_the_last_stderr_lines(db_path):
    script = "import sys\nfor i in range(50): print(f'line {i}', file=sys.stderr)\nsys.exit(3)"
    result = monitor(db_path, "run", "--agent", "broken", "--", sys.executable, "-c", script)
    assert result.returncode == 3
    assert result.stderr.count("line") == 50  # everything passed through
    [row] = executions(db_path)
    assert (row["status"], row["exit_code"]) == ("failed", 3)
    lines = row["error_message"].splitlines()
    assert lines[0] == "line 30" and lines[-1] == "line 49"


def test_runs_in_a_session_make_one_orchestration_that_follows_its_executions(db_path):
    assert monitor(db_path, "run", "--agent", "lint", "--session", "ci-1", "--", "true").returncode == 0
    with open_db(db_path, create=False) as db:
        assert get_orchestration(db, "ci-1")["status"] == "completed"
    assert monitor(db_path, "run", "--agent", "test", "--session", "ci-1", "--", "false").returncode == 1
    with open_db(db_path, create=False) as db:
        row = get_orchestration(db, "ci-1")
        assert (row["status"], row["completed_tasks"], row["failed_tasks"], row["total_tasks"]) == ("partial", 1, 1, 2)
        assert [e["agent_name"] for e in list_executions(db, "ci-1")] == ["lint", "test"]


def test_command_not_found_is_recorded_and_exits_127(db_path):
    result = monitor(db_path, "run", "--agent", "x", "--", "no-such-command-xyz")
    assert result.returncode == 127
    assert result.stderr == "monitor: cannot run 'no-such-command-xyz': command not found\n"
    [row] = executions(db_path)
    assert (row["status"], row["exit_code"], row["error_message"]) == (
        "failed", 127, "cannot run 'no-such-command-xyz': command not found")


def test_a_command_that_is_not_executable_says_why_and_exits_126(db_path, tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(0o644)
    result = monitor(db_path, "run", "--agent", "x", "--", str(script))
    assert result.returncode == 126 and result.stdout == ""
    assert result.stderr == f"monitor: cannot run {str(script)!r}: permission denied: not executable\n"
    [row] = executions(db_path)
    assert (row["status"], row["exit_code"]) == ("failed", 126)
    assert row["error_message"] == f"cannot run {str(script)!r}: permission denied: not executable"


def test_a_command_that_cannot_start_unrecorded_still_says_why(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 20)
    result = monitor(junk, "run", "--agent", "x", "--", "no-such-command-xyz")
    assert result.returncode == 127
    assert result.stderr.splitlines()[-1] == "monitor: cannot run 'no-such-command-xyz': command not found"


def test_missing_command_or_agent_is_a_usage_error(db_path):
    assert monitor(db_path, "run", "--agent", "x").returncode == 2
    assert monitor(db_path, "run", "--", "true").returncode == 2
    assert not db_path.exists()


def test_options_after_the_command_belong_to_the_command(db_path):
    result = monitor(db_path, "run", "--agent", "x", sys.executable, "-c", "import sys; print(sys.argv[1:])", "--json",
                     "--db", "y")
    assert result.stdout.strip() == "['--json', '--db', 'y']"


def CTRL_C_WORKS() -> None:  # noqa: N802 (a constant, in effect)
    """SIGINT as a terminal gives it: where the suite itself was started in the background by a script
    (`pytest &`: SIGINT ignored, and so in every process it starts), monitor would never see Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_records_failed_and_still_exits(db_path, sig, code):
    quiet_sleeper = ("import signal, sys, time; signal.signal(signal.SIGINT, lambda *a: sys.exit(130));"
                     " print('started', flush=True); time.sleep(60)")
    child = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--agent", "sleeper", "--session", "s", "--",
         sys.executable, "-c", quiet_sleeper],
        env={**os.environ, "MONITOR_DB": str(db_path)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=CTRL_C_WORKS,
    )
    assert child.stdout.readline() == "started\n"
    os.killpg(child.pid, sig)  # like Ctrl-C in a terminal: the whole process group gets it
    assert child.wait(timeout=30) == code
    assert "Traceback" not in child.stderr.read()
    [row] = executions(db_path)
    assert row["status"] == "failed"
    assert row["error_message"].startswith(f"interrupted by {sig.name}")
    with open_db(db_path, create=False) as db:
        assert get_orchestration(db, "s")["status"] == "failed"


@pytest.mark.slow  # monitor gives the child 2 s to get the terminal's Ctrl-C itself
def test_signal_to_monitor_alone_still_stops_the_child(db_path):
    child = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--agent", "sleeper", "--",
         sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"],
        env={**os.environ, "MONITOR_DB": str(db_path)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=CTRL_C_WORKS,
    )
    assert child.stdout.readline() == "started\n"
    started = time.monotonic()
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=30) == 130, child.stderr.read()
    assert time.monotonic() - started < 20
    assert executions(db_path)[0]["status"] == "failed"


def test_report_after_run_end_to_end(db_path):
    monitor(db_path, "run", "--agent", "a", "--", "true")
    result = monitor(db_path, "health", "24", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["executions"]["completed"] == 1


def test_a_command_that_cannot_be_started_is_recorded_not_raised(db_path):
    from monitor.capture.runner import run_command

    assert run_command(db_path, ["bad\x00name"], "x") == 126
    assert run_command(db_path, [str(db_path.parent)], "x") == 126  # a directory: permission denied
    assert [e["status"] for e in executions(db_path)] == ["failed", "failed"]


def test_reusing_an_execution_id_is_refused_before_running(db_path, tmp_path):
    marker = tmp_path / "ran"
    assert monitor(db_path, "run", "--agent", "a", "--session", "S1", "--id", "dup", "--", "true").returncode == 0
    result = monitor(db_path, "run", "--agent", "a", "--session", "S2", "--id", "dup", "--",
                     sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    assert result.returncode == 2 and "already recorded" in result.stderr
    assert not marker.exists()
    [row] = executions(db_path)
    assert (row["session_id"], row["status"]) == ("S1", "completed")


def test_a_database_that_cannot_be_opened_does_not_stop_the_command(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 20)
    result = monitor(junk, "run", "--agent", "a", "--", sys.executable, "-c", "print('work done'); raise SystemExit(4)")
    assert result.returncode == 4
    assert result.stdout == "work done\n"
    assert "running without recording" in result.stderr and "Traceback" not in result.stderr
    assert junk.read_text() == "not a database\n" * 20


def test_a_signal_that_comes_while_the_start_is_recorded_reaches_the_command():
    from monitor.capture.child import held_signals, spawn, wait

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even under `pytest &`
    with held_signals() as held:
        child, relay = spawn([sys.executable, "-c", "import time; time.sleep(60)"], "stderr", False)
        os.kill(os.getpid(), signal.SIGINT)  # before wait() took over: held, not a KeyboardInterrupt
        assert held == [signal.SIGINT]
        returncode, received, timed_out = wait(child, None, 5.0, held)
    relay.lines(1.0)
    # passed on at once: the child ends by it (killed, or exit 1 from a KeyboardInterrupt once Python runs)
    assert (received, timed_out) == (signal.SIGINT, False) and returncode in (-signal.SIGINT, 1)
    assert signal.signal(signal.SIGINT, before) is signal.default_int_handler  # put back


def test_output_of_a_single_question_mark_passes_through_and_is_kept(db_path):
    result = monitor(db_path, "run", "--agent", "asks", "--", "sh", "-c", "printf '?' >&2; printf '?'; exit 1")
    assert (result.returncode, result.stdout, result.stderr) == (1, "?", "?")
    assert executions(db_path)[0]["error_message"] == "?"
