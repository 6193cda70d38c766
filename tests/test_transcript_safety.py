"""Issue 8: a transcript path that is a FIFO, a device, a folder or a huge file never hangs or bloats the hook.

Each case runs the real hook process (`python -m monitor.hooks`) and measures its wall time and
peak memory (wait4's ru_maxrss). The limits asserted are the contract's (a hook call finishes, in
well under a second, under 100 MB), with room for a slow machine: a hang shows as the 20-second
guard, not as a slow test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor import open_db
from monitor.capture.claude.transcript import LINE_LIMIT, READ_BUDGET, NotRegularFile, read_transcript

SESSION = "safety-1"


def line(message_id: str, output: int, content: str = "ok", model: str = "claude-haiku-4-5-20251001") -> bytes:
    return json.dumps({"type": "assistant", "isSidechain": False, "requestId": f"req_{message_id}",
                       "message": {"id": message_id, "model": model, "role": "assistant",
                                   "content": [{"type": "text", "text": content}],
                                   "usage": {"input_tokens": 10, "output_tokens": output,
                                             "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}},
                       "timestamp": "2026-11-20T12:00:00.000Z"}).encode() + b"\n"


#: Runs argv with this process's stdin and prints the child's peak memory in bytes.
MEASURE = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode;"
           " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024); sys.exit(code)")


def run_hook(tmp_path: Path, transcript: str, event: str = "Stop", **extra) -> tuple[float, int, str]:
    """(seconds, peak memory in bytes, hook log) of one hook process."""
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_PRICES"}
    env["MONITOR_HOOK_LOG"] = str(tmp_path / "hook.log")
    payload = {"session_id": SESSION, "hook_event_name": event, "transcript_path": transcript,
               "cwd": str(tmp_path), **extra}
    started = time.monotonic()
    # Through a small parent process: a child forked straight from pytest counts pytest's own
    # (large) memory in its ru_maxrss until it execs.
    proc = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "monitor.hooks", "--db",
                           str(tmp_path / "m.db")], input=json.dumps(payload).encode(), capture_output=True,
                          env=env, timeout=20)
    assert proc.returncode == 0, proc.stderr
    maxrss = int(proc.stdout)
    log = (tmp_path / "hook.log").read_text() if (tmp_path / "hook.log").exists() else ""
    return time.monotonic() - started, maxrss, log


def output_tokens(tmp_path: Path) -> int | None:
    with open_db(tmp_path / "m.db", create=False) as db:
        row = db.execute("SELECT output_tokens FROM agent_executions WHERE agent_session_id = ?", (SESSION,)).fetchone()
    return row[0] if row else None


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/urandom", "symlink to /dev/zero", "folder"])
def test_a_transcript_that_is_not_a_regular_file_is_refused_at_once(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "transcript.jsonl"
        os.mkfifo(path)
    elif kind == "symlink to /dev/zero":
        path = tmp_path / "transcript.jsonl"
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path = tmp_path / "transcript.jsonl"
        path.mkdir()
    else:
        path = Path(kind)
    if not path.exists():
        pytest.skip(f"{kind} does not exist here")
    seconds, memory, log = run_hook(tmp_path, str(path))
    assert seconds < 5 and memory < 100 << 20
    assert "not a regular file" in log or "Is a directory" in log
    assert output_tokens(tmp_path) is None  # recorded (the turn), without tokens
    with pytest.raises(OSError):
        read_transcript(str(path))


def test_read_transcript_refuses_a_fifo_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    started = time.monotonic()
    with pytest.raises(NotRegularFile, match="a FIFO"):
        read_transcript(str(tmp_path / "fifo"))
    assert time.monotonic() - started < 5


def test_a_1_gb_file_without_newlines_is_read_in_bounded_steps(tmp_path):
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GB of zero bytes, no newline
    seconds, memory, log = run_hook(tmp_path, str(path))
    assert seconds < 5 and memory < 100 << 20
    assert f"skipped a {READ_BUDGET:,}-byte line at byte 0" in log and "is not counted" in log
    with open_db(tmp_path / "m.db", create=False) as db:
        assert db.execute("SELECT offset FROM transcript_offsets").fetchone()[0] == READ_BUDGET


def test_a_large_transcript_is_counted_across_calls_within_the_budget(tmp_path):
    """48 MB of real lines: each call reads at most READ_BUDGET bytes; every message is counted once."""
    path = tmp_path / "big.jsonl"
    padding = "x" * 4000
    with open(path, "wb") as f:
        for i in range(12_000):
            f.write(line(f"msg_{i}", 1, padding))
    size = path.stat().st_size
    calls = 0
    while True:
        seconds, memory, _ = run_hook(tmp_path, str(path), event="PostToolUse", tool_name="Bash",
                                      tool_use_id=f"toolu_{calls}")
        calls += 1
        assert seconds < 5 and memory < 100 << 20
        with open_db(tmp_path / "m.db", create=False) as db:
            offset = db.execute("SELECT offset FROM transcript_offsets").fetchone()[0]
        if offset == size:
            break
        assert offset <= calls * READ_BUDGET
    assert calls == -(-size // READ_BUDGET) and output_tokens(tmp_path) == 12_000


def test_an_over_long_line_is_skipped_said_in_the_log_and_its_usage_recovered(tmp_path):
    path = tmp_path / "t.jsonl"
    big = line("msg_big", 777, "y" * (LINE_LIMIT + 10))  # usage after 1 MB of content, as in a real line
    tool_result = json.dumps({"type": "user", "message": {"role": "user", "content": "z" * (2 * LINE_LIMIT)}})
    path.write_bytes(line("msg_a", 5) + big + tool_result.encode() + b"\n" + line("msg_b", 7))
    seconds, memory, log = run_hook(tmp_path, str(path))
    assert output_tokens(tmp_path) == 5 + 777 + 7
    assert log.count("skipped a ") == 2
    assert f"skipped a {len(big):,}-byte line" in log and "its usage was recovered" in log
    assert "its usage is not counted" in log  # the user line had none


def test_a_line_still_being_written_waits_and_a_truncated_file_is_read_again(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(line("msg_a", 5) + line("msg_b", 7)[:40])
    found = read_transcript(str(path))
    assert list(found.messages) == ["msg_a"] and found.offset == len(line("msg_a", 5))
    path.write_bytes(line("msg_c", 9))  # replaced by a shorter file
    again = read_transcript(str(path), found.offset + 1000)
    assert list(again.messages) == ["msg_c"]
