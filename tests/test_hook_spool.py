"""The hook never blocks the agent: with the database locked (a long cleanup, an upgrade), each
`python -m monitor.hooks` returns within about a second and spools its payload, which the next
hook call or command records, in order, exactly once, at the time it arrived. Real processes,
real payloads (tests/payloads), real SQLite locks."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor import open_db
from monitor.capture.claude.hook import handle_payload
from monitor.store.migrations import LATEST
from monitor.timeutil import format_timestamp
from legacy import make_monitor_db

PAYLOADS = Path(__file__).parent / "payloads"
TOOL_PAYLOADS = ["pre_write", "post_write", "post_edit", "sub_pre_bash", "sub_post_bash_failure",
                 "sub_post_multiedit"]
#: Holds the write lock, as a long `cleanup --vacuum` or an upgrade does, until its stdin closes (30 s at most).
LOCK_HOLDER = ("import select, sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
               " c.execute('BEGIN IMMEDIATE'); print('locked', flush=True);"
               " select.select([sys.stdin], [], [], 30)")


@pytest.fixture
def env(tmp_path):
    for name in ("main_transcript.jsonl", "sub_transcript.jsonl"):
        (tmp_path / name).write_bytes((PAYLOADS / name).read_bytes())
    return tmp_path


def payload(env: Path, name: str, tool_use_id: str | None = None) -> bytes:
    text = (PAYLOADS / f"{name}.json").read_text()
    text = (text.replace("SUBTRANSCRIPT", str(env / "sub_transcript.jsonl"))
            .replace("TRANSCRIPT", str(env / "main_transcript.jsonl")).replace("CWD", str(env)))
    data = json.loads(text)
    if tool_use_id is not None:
        data["tool_use_id"] = tool_use_id
    return json.dumps(data).encode()


def hook_env(env: Path) -> dict:
    environment = {**os.environ, "MONITOR_HOOK_LOG": str(env / "hook.log"), "HOME": str(env)}
    environment.pop("MONITOR_DB", None)
    return environment


def start_hook(env: Path, db: Path, data: bytes, extra_env: dict | None = None) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "monitor.hooks", "--db", str(db)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**hook_env(env), **(extra_env or {})},
                               cwd=env)
    process.stdin.write(data)
    process.stdin.close()
    return process


def lock(db: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    return holder


def release(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    assert holder.wait(timeout=10) == 0


def send_all(env: Path, db: Path, payloads: list[bytes], at_once: int) -> list[float]:
    """Send the payloads, `at_once` hook processes at a time (Claude Code runs a tool's hooks in
    parallel); how long each took."""
    took = []
    for first in range(0, len(payloads), at_once):
        began = time.monotonic()
        running = [start_hook(env, db, data) for data in payloads[first:first + at_once]]
        for process in running:
            assert process.wait(timeout=30) == 0
            assert process.stdout.read() == b"" and process.stderr.read() == b""
            took.append(time.monotonic() - began)
    return took


def tool_events(db: Path) -> list[tuple[str, str]]:
    with open_db(db, create=False) as conn:
        return conn.execute("SELECT dedup_key, timestamp FROM events WHERE dedup_key LIKE 'sess-1:%ToolUse%'"
                            " ORDER BY id").fetchall()


def monitor_list(db: Path, env: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", "list", "--db", str(db), "--json"], capture_output=True,
                          text=True, env=hook_env(env), timeout=60)


def user_version(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def spool_files(db: Path) -> list[str]:
    return [p.name for p in db.parent.iterdir() if ".spool" in p.name]


AT_ONCE = 10


@pytest.mark.slow
def test_fifty_hooks_against_a_held_lock_each_return_at_once_and_all_are_recorded_once(env):
    db = env / "m.db"
    send_all(env, db, [payload(env, "session_start")], 1)
    payloads = [payload(env, TOOL_PAYLOADS[i % len(TOOL_PAYLOADS)], f"toolu_{i:03d}") for i in range(50)]
    # What a call takes on this machine now, with no lock (a loaded CI machine starts Python slowly), on
    # a database of its own in a folder of its own (on a loaded machine its calls may spool too).
    unlocked = env / "unlocked" / "m.db"
    unlocked.parent.mkdir()
    send_all(env, unlocked, [payload(env, "session_start")], 1)
    usual = max(send_all(env, unlocked, payloads[:AT_ONCE], AT_ONCE))
    holder = lock(db)
    try:
        took = send_all(env, db, payloads, AT_ONCE)
        assert max(took) < min(2.0 + usual, 10), (usual, took)  # a second's wait more, at most
        assert len((db.parent / "m.db.spool").read_bytes().splitlines()) == 50
        released_at = format_timestamp(datetime.now(timezone.utc))
    finally:
        release(holder)
    assert tool_events(db) == []  # nothing could be written meanwhile
    result = monitor_list(db, env)  # one more command, any command
    assert result.returncode == 0, result.stderr
    recorded = tool_events(db)
    assert sorted(key.rsplit(":", 1)[1] for key, _ in recorded) == [f"toolu_{i:03d}" for i in range(50)]
    assert all(at < released_at for _, at in recorded)  # each keeps the moment it arrived
    assert spool_files(db) == []
    assert not (env / "hook.log").exists()
    assert monitor_list(db, env).stdout == result.stdout  # nothing more the second time


@pytest.mark.slow
def test_hooks_during_an_upgrade_by_another_process_are_spooled_then_recorded(env):
    db = env / "m.db"
    make_monitor_db(db, 3, datetime.now(timezone.utc))
    holder = lock(db)  # the process upgrading it holds the write lock throughout
    try:
        took = send_all(env, db, [payload(env, name, f"toolu_{i}") for i, name in enumerate(TOOL_PAYLOADS[:3])], 3)
        assert max(took) < 10, took  # not the lock's 30 s (see the test above for the bound)
        assert user_version(db) == 3
    finally:
        release(holder)
    result = monitor_list(db, env)
    assert result.returncode == 0, result.stderr
    assert user_version(db) == LATEST
    keys = sorted(key for key, _ in tool_events(db))
    assert keys == ["sess-1:PostToolUse:toolu_1", "sess-1:PostToolUse:toolu_2", "sess-1:PreToolUse:toolu_0"]
    assert spool_files(db) == []


def test_a_spooled_payload_is_recorded_before_the_next_one_in_order_at_its_time(env, db_path):
    began = time.monotonic()

    def clock() -> datetime:  # real time passing, from a fixed moment
        return datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc) + timedelta(seconds=time.monotonic() - began)

    open_db(db_path).close()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    assert handle_payload(payload(env, "pre_write"), db_path, clock=clock) is True
    assert 0.9 < time.monotonic() - began < 2.0  # it waited its second, no more
    holder.execute("ROLLBACK")
    assert handle_payload(payload(env, "post_write"), db_path, clock=clock) is True
    with open_db(db_path, create=False) as db:
        rows = [tuple(r) for r in db.execute("SELECT type, message, timestamp FROM events WHERE type = 'tool_call'"
                                             " ORDER BY id")]
    assert rows[0][:2] == ("tool_call", f"Write: {env}/new_file.py")  # the spooled one first
    assert re.fullmatch(rf"Write: {re.escape(str(env))}/new_file.py done in 1\d\d\d ms", rows[1][1])
    assert rows[0][2] < "2026-11-20T12:00:00.300Z"  # when it arrived, not when it was recorded (1 s later)
    assert rows[1][2] >= "2026-11-20T12:00:01.000Z"
    assert spool_files(db_path) == []


@pytest.mark.parametrize("where", ["command", "key", "session"])
def test_a_payload_with_a_lone_surrogate_is_recorded_with_a_replacement_character(env, where):
    db = env / "m.db"
    data = json.loads(payload(env, "sub_pre_bash"))
    if where == "command":
        data["tool_input"]["command"] = "echo \udc80 done"
    elif where == "key":
        data["tool_input"]["\ud800"] = "x"
    else:
        data["session_id"] = "sess-\udfff"
    raw = json.dumps(data).encode()  # ensure_ascii: the JSON escape "\\udc80", as Claude Code may send
    assert b"\\ud" in raw
    send_all(env, db, [raw], 1)
    with open_db(db, create=False) as conn:
        (message, stored, session) = conn.execute(
            "SELECT e.message, e.payload, o.session_id FROM events e JOIN orchestrations o"
            " ON o.id = e.orchestration_id WHERE e.type = 'tool_call'").fetchone()
    assert "\ufffd" in message + stored + session
    assert not (env / "hook.log").exists()


@pytest.mark.parametrize("raw, recorded", [
    (b'{"session_id": "sess-1", "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "t1",'
     b' "tool_input": {"command": "cat caf\xe9.txt \xff\xfe"}}', True),  # Latin-1 bytes, not UTF-8
    (b'{"session_id": "sess-1", "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "t2",'
     b' "transcript_path": "/tmp/a\\u0000b.jsonl"}', True),  # a NUL in a path: tokens unknown, the call recorded
    (b'{"session_id": "sess-1", "hook_event_name": "Stop", "transcript_path": "/tmp/a\\u0000b.jsonl"}', True),
    (b"[" * 100_000 + b"]" * 100_000, False),  # deeper than Python's stack: refused in the log, not a crash
    (b'{"session_id": "sess-1", "hook_event_name": "Custom", "deep": ' + b"[" * 900 + b"]" * 900 + b"}", True),
])
def test_hostile_payloads_never_disturb_the_agent(env, raw, recorded):
    db = env / "m.db"
    send_all(env, db, [raw], 1)  # exit 0, nothing on stdout or stderr
    if recorded:
        with open_db(db, create=False) as conn:
            assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    assert (env / "hook.log").exists() == (not recorded or b"\\u0000" in raw)  # a NUL path: said in the log


FORBIDDEN = ("click", "tabulate", "sqlite_utils", "dateutil", "logging")


def imported(env: Path, db: Path, data: bytes) -> set[str]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "monitor.hooks", "--db", str(db)],
                            input=data, capture_output=True, env=hook_env(env), cwd=env, timeout=30)
    assert result.returncode == 0
    return {line.split("|")[-1].strip() for line in result.stderr.decode().splitlines() if "|" in line}


def test_the_hook_stays_light_when_it_spools_and_when_it_drains(env):
    db = env / "m.db"
    send_all(env, db, [payload(env, "session_start")], 1)
    holder = lock(db)
    try:
        spooling = imported(env, db, payload(env, "pre_write"))
    finally:
        release(holder)
    assert (db.parent / "m.db.spool").exists()
    draining = imported(env, db, payload(env, "post_write"))
    assert not (db.parent / "m.db.spool").exists()
    for modules in (spooling, draining):
        assert not {m for m in modules if m.split(".")[0] in FORBIDDEN}


SECRET = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


@pytest.mark.parametrize("capture", ["full", "metadata"])
def test_what_waits_in_the_spool_keeps_no_secret_and_honours_the_capture_mode(env, capture):
    db = env / "m.db"
    command = {"command": f"gh release create --token {SECRET} && cat private-notes.md"}
    payloads = [json.dumps({"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash",
                            "tool_use_id": "t1", "tool_input": command}).encode(),
                json.dumps({"session_id": "s", "hook_event_name": "PostToolUse", "tool_name": "Write",
                            "tool_use_id": "t2", "tool_input": {"file_path": f"{env}/a.py", "content": "secret plan"},
                            "tool_response": {"type": "create", "content": "secret plan"}}).encode()]
    send_all(env, db, [payloads[0]], 1)  # the database exists
    holder = lock(db)
    try:
        for data in payloads:
            process = start_hook(env, db, data, {"MONITOR_CAPTURE": capture})
            assert process.wait(timeout=30) == 0
        waiting = (db.parent / "m.db.spool").read_bytes()
    finally:
        release(holder)
    assert SECRET.encode() not in waiting
    assert (b"private-notes" in waiting, b"secret plan" in waiting) == ((True, True) if capture == "full" else
                                                                        (False, False))
    assert monitor_list(db, env).returncode == 0  # recorded by a command whose own capture mode is full
    with open_db(db, create=False) as conn:
        rows = conn.execute("SELECT type, message, payload FROM events WHERE dedup_key LIKE 's:%:t2'"
                            " OR type = 'file' ORDER BY id").fetchall()
        files = conn.execute("SELECT files_created FROM agent_executions").fetchone()[0]
    if capture == "metadata":
        assert [(t, re.sub(r" in \d+ ms$", "", m)) for t, m, _ in rows] == [("tool_call", "Write done"),
                                                                          ("file", "created a file")]
        assert json.loads(rows[0][2])["tool_response_bytes"] == len(json.dumps(
            {"type": "create", "content": "secret plan"}))
    else:
        assert rows[1][1] == f"created {env}/a.py"
    assert files == 1
