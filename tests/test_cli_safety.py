"""The CLI on a terminal: cleanup asks before deleting a whole history (or most of it), and stored
text cannot act on the terminal it is printed on, while JSON, CSV and JSON lines keep it exact."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from monitor import Tracker, open_db
from monitor.timeutil import utcnow

from conftest import Clock

MONITOR = Path(sys.executable).with_name("monitor")


def history(db_path: Path, old: int, new: int) -> None:
    """old orchestrations from 60 days ago and new ones from now, one execution each (the
    commands run as processes, on the real clock)."""
    clock = Clock(utcnow() - timedelta(days=60))
    with Tracker(db_path, clock=clock) as t:
        for n in range(old + new):
            if n == old:
                clock.advance(days=60)
            t.start_agent_execution(f"run-{n}", "agent", orchestration=f"s-{n}")


def rows(db_path: Path) -> int:
    with open_db(db_path, create=False) as db:
        return db.execute("SELECT count(*) FROM orchestrations").fetchone()[0]


def on_a_terminal(argv: list[str], answer: str | None) -> tuple[int, str]:
    """Run argv with a terminal for its stdin, stdout and stderr; type answer once it has asked.
    Returns its exit code and everything it showed."""
    master, slave = pty.openpty()
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    shown, deadline = b"", time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the process has ended: its terminal is gone
                break
            if not chunk:
                break
            shown += chunk
            if answer is not None and b"Continue?" in shown:
                os.write(master, answer.encode() + b"\n")
                answer = None
        elif process.poll() is not None:
            break
    os.close(master)
    return process.wait(timeout=60), shown.decode(errors="replace").replace("\r\n", "\n")


def cleanup_argv(db_path: Path, *args: str) -> list[str]:
    return [str(MONITOR), "cleanup", *args, "--db", str(db_path)]


@pytest.mark.parametrize("old, new, asked", [(4, 0, "every row"), (3, 1, "75% of the rows"), (1, 3, None)])
def test_cleanup_on_a_terminal_asks_before_deleting_all_or_most_rows(db_path, clock, old, new, asked):
    history(db_path, old, new)
    code, shown = on_a_terminal(cleanup_argv(db_path, "30"), "n")
    if asked is None:
        assert code == 0 and "Continue?" not in shown and rows(db_path) == new
        return
    assert f"This deletes {asked} of {db_path} ({old * 2:,} of {(old + new) * 2:,} orchestrations and executions)." \
           " Continue? [y/N]: n\nAborted!" in shown
    assert code == 1 and rows(db_path) == old + new
    code, shown = on_a_terminal(cleanup_argv(db_path, "30"), "y")
    assert code == 0 and f"Deleted {old} orchestration" in shown and rows(db_path) == new


def test_cleanup_yes_and_no_terminal_do_not_ask(db_path, clock):
    history(db_path, 2, 0)
    code, shown = on_a_terminal(cleanup_argv(db_path, "0", "--dry-run"), None)
    assert code == 0 and "Would delete 2 orchestrations" in shown and rows(db_path) == 2
    code, shown = on_a_terminal(cleanup_argv(db_path, "0", "--yes"), None)
    assert code == 0 and "Continue?" not in shown and rows(db_path) == 0
    history(db_path, 2, 0)
    piped = subprocess.run(cleanup_argv(db_path, "0"), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)  # cron, CI: as before
    assert piped.returncode == 0 and rows(db_path) == 0


HOSTILE = "build \x1b]0;owned\x07ok \x1b[2Jcleared\rFAKE\x9b31m"
SHOWN = "build \\x1b]0;owned\\x07ok \\x1b[2Jcleared\\rFAKE\\x9b31m"


@pytest.fixture
def hostile(db_path, clock):
    with Tracker(db_path, clock=clock) as t:
        t.start_agent_execution("e1", "agent", orchestration="s1")
        t.event("output", HOSTILE, execution="e1")
        t.complete_agent_execution("e1", "failed", error_message=HOSTILE)
    return db_path


@pytest.mark.parametrize("args", [["logs", "s1"], ["executions", "s1"], ["failures", "--executions"],
                                  ["search", "build"], ["agent", "agent"]])
def test_control_characters_in_stored_text_are_printed_escaped(hostile, invoke, args, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # wide enough that no text is shortened
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert SHOWN in result.output and "\x1b" not in result.output and "\x07" not in result.output
    assert "\r" not in result.output and "\x9b" not in result.output


def test_json_csv_and_json_lines_keep_the_exact_text(hostile, invoke):
    as_json = json.loads(invoke("logs", "s1", "--json").output)
    assert [e["message"] for e in as_json] == [HOSTILE]
    (line,) = invoke("logs", "s1", "--nl").output.splitlines()
    assert json.loads(line)["message"] == HOSTILE
    table = list(csv.DictReader(io.StringIO(invoke("executions", "s1", "--csv").output, newline="")))
    assert [r["error_message"] for r in table] == [HOSTILE]
