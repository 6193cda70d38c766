"""Secrets stay out of the database and the hook log, MONITOR_CAPTURE=metadata keeps no tool input or
output, and deleted rows leave no text behind in the file. Real processes, real files: what is
checked is the bytes on disk and what the commands print."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor import Tracker, open_db
from monitor.ops.retention import cleanup

MONITOR = Path(sys.executable).with_name("monitor")
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ANTHROPIC = "sk-ant-api03-Xq7vB2mK9pL4nR8tW1yZ3cF6hJ0dS5aG-qE2uI7oP4kL9mN1bV3cX6zA8sD0fG-AbCdEfAA"
GITHUB = "ghp_R8nK2vX7mQ4pL9wT1yZ6cB3hJ0dS5aF8gE2u"
BEARER = "7f3a9c2e1b4d8f6a0e5c3b2a1d9f8e7c"
URL_PASSWORD = "Tr0ub4dor-and-3"
SECRETS = [AWS_SECRET, ANTHROPIC, GITHUB, BEARER, URL_PASSWORD]


def on_disk(db: Path) -> bytes:
    """Every byte of the database and its -wal."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


def monitor(db: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(MONITOR), *args, "--db", str(db)] if args[0] != "run" else
                          [str(MONITOR), "run", "--db", str(db), *args[1:]],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def test_a_failing_commands_secrets_are_stored_nowhere(tmp_path):
    db = tmp_path / "m.db"
    leak = (f"import sys; print('AWS_SECRET_ACCESS_KEY={AWS_SECRET}', '{ANTHROPIC}', '{GITHUB}', file=sys.stderr);"
            f" print('Authorization: Bearer {BEARER}', file=sys.stderr);"
            f" print('cannot reach postgres://admin:{URL_PASSWORD}@db:5432/app', file=sys.stderr); sys.exit(3)")
    result = monitor(db, "run", "--agent", "deploy", "--session", "ci-1", "--", sys.executable, "-c", leak)
    assert result.returncode == 3
    assert AWS_SECRET in result.stderr  # the command's own stderr passes through untouched
    with open_db(db, create=False) as conn:
        (error,) = conn.execute("SELECT error_message FROM agent_executions").fetchone()
    assert error == ("AWS_SECRET_ACCESS_KEY=[REDACTED:secret_assignment] [REDACTED:anthropic_api_key]"
                     " [REDACTED:github_token]\nAuthorization: Bearer [REDACTED:bearer_token]\n"
                     "cannot reach postgres://admin:[REDACTED:url_password]@db:5432/app")
    shown = "".join(monitor(db, *args).stdout for args in (
        ("search", "reach"), ("failures", "--json"), ("failures", "--executions", "--json"), ("export",),
        ("executions", "--json")))
    assert "REDACTED" in shown
    assert not [s for s in SECRETS if s in shown or s.encode() in on_disk(db)]


LOCK_HOLDER = ("import select, sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
               " c.execute('BEGIN IMMEDIATE'); print('locked', flush=True);"
               " select.select([sys.stdin], [], [], 30)")


def stored_run(db: Path) -> tuple:
    """The error message and the events' messages and payloads of the one execution in db."""
    with open_db(db, create=False) as conn:
        (error,) = conn.execute("SELECT error_message FROM agent_executions").fetchone()
        events = conn.execute("SELECT type, message, payload FROM events ORDER BY id").fetchall()
    return error, [(t, re.sub(r"pid \d+|\d+ ms", "", m), re.sub(r'"(pid|duration_ms)":\d+', "", p or ""))
                   for t, m, p in events]


@pytest.mark.slow
def test_a_run_spooled_while_the_database_is_locked_keeps_no_secret_in_the_spool_and_stores_the_same(tmp_path):
    """The database locked: the run's records wait in the spool (a file on disk) until the next
    command records them. The spool holds no secret, neither from the output nor from the command
    line the started event tells, and what is recorded from it is what a direct write records."""
    leak = (f"import sys; print('AWS_SECRET_ACCESS_KEY={AWS_SECRET}', '{GITHUB}', file=sys.stderr);"
            f" print('Authorization: Bearer {BEARER}', file=sys.stderr); sys.exit(3)")
    command = ("run", "--agent", "deploy", "--id", "run-1", "--", sys.executable, "-c", leak)
    direct, spooled = tmp_path / "direct" / "m.db", tmp_path / "spooled" / "m.db"
    for db in (direct, spooled):
        db.parent.mkdir()
        open_db(db).close()  # created, so that the lock can be held
    assert monitor(direct, *command).returncode == 3
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(spooled)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        result = monitor(spooled, *command)
        waiting = b"".join(p.read_bytes() for p in spooled.parent.glob("m.db.spool*"))
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert result.returncode == 3 and AWS_SECRET in result.stderr
    assert b'"run_start"' in waiting and b'"started"' in waiting and b"REDACTED" in waiting
    assert [s for s in (AWS_SECRET, GITHUB, BEARER) if s.encode() in waiting] == []
    assert monitor(spooled, "executions").returncode == 0  # records the spool
    assert not list(spooled.parent.glob("m.db.spool*"))
    assert stored_run(spooled) == stored_run(direct)
    error, events = stored_run(spooled)
    assert error.startswith("AWS_SECRET_ACCESS_KEY=[REDACTED:secret_assignment] [REDACTED:github_token]")
    assert "[REDACTED:secret_assignment]" in events[0][1] and "[REDACTED:github_token]" in events[0][2]
    assert [s for s in (AWS_SECRET, GITHUB, BEARER) if s.encode() in on_disk(spooled)] == []


def hook(tmp_path: Path, payload: dict | bytes, env: dict | None = None) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    environment = {**os.environ, "MONITOR_HOOK_LOG": str(tmp_path / "hook.log"), "HOME": str(tmp_path), **(env or {})}
    result = subprocess.run([sys.executable, "-m", "monitor.hooks", "--db", str(tmp_path / "m.db")], input=data,
                            capture_output=True, env=environment, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def tool_calls(tmp_path: Path) -> list[dict]:
    """A Bash command with secrets, a Read of a .env file and a Write: each as PreToolUse and PostToolUse."""
    base = {"session_id": "sess-1", "cwd": str(tmp_path)}
    calls = [
        ("Bash", {"command": f"GITHUB_TOKEN={GITHUB} gh release create v1 && curl -H 'Authorization: Bearer {BEARER}'"},
         {"stdout": f"uploaded with {GITHUB}", "stderr": ""}),
        ("Read", {"file_path": str(tmp_path / ".env")}, {"file": {"content": "STRIPE=sk_live_4eC39HqLyjWDarjtT1zdp7dc\n"
                                                                             "NOT_NAMED_SECRETLY=plain-but-private\n"}}),
        ("Write", {"file_path": str(tmp_path / "notes.md"), "content": "Meeting notes: the launch date is Friday"},
         {"type": "create"}),
    ]
    payloads = []
    for n, (tool, tool_input, response) in enumerate(calls):
        common = {**base, "tool_name": tool, "tool_input": tool_input, "tool_use_id": f"toolu_{n}"}
        payloads += [{**common, "hook_event_name": "PreToolUse"},
                     {**common, "hook_event_name": "PostToolUse", "tool_response": response}]
    return payloads


def test_the_hook_redacts_commands_and_keeps_no_secret_files_content(tmp_path):
    for payload in tool_calls(tmp_path):
        hook(tmp_path, payload)
    with open_db(tmp_path / "m.db", create=False) as db:
        messages = [m for (m,) in db.execute("SELECT message FROM events WHERE type = 'tool_call' ORDER BY id")]
        read = json.loads(db.execute("SELECT payload FROM events WHERE message LIKE 'Read: % done%'").fetchone()[0])
    assert messages[0] == ("Bash: GITHUB_TOKEN=[REDACTED:github_token] gh release create v1 &&"
                           " curl -H 'Authorization: Bearer [REDACTED:bearer_token]'")
    response = tool_calls(tmp_path)[3]["tool_response"]
    assert read == {"tool_use_id": "toolu_1", "tool": "Read", "duration_ms": read["duration_ms"], "is_interrupt": False,
                    "tool_response_bytes": len(json.dumps(response))}
    stored = on_disk(tmp_path / "m.db")
    assert GITHUB.encode() not in stored and BEARER.encode() not in stored
    assert b"sk_live_" not in stored and b"plain-but-private" not in stored
    assert b"Meeting notes" in stored  # an ordinary file's content is kept (clipped)


def test_the_hook_log_keeps_no_secret_from_a_payload_it_could_not_read(tmp_path):
    hook(tmp_path, f'{{"session_id": "s", "tool_input": "export ANTHROPIC_API_KEY={ANTHROPIC}"'.encode())
    logged = (tmp_path / "hook.log").read_text()
    assert "payload is not JSON" in logged and "REDACTED" in logged and ANTHROPIC[:20] not in logged


def test_metadata_capture_keeps_only_names_times_status_and_sizes(tmp_path):
    for payload in tool_calls(tmp_path):
        hook(tmp_path, payload, env={"MONITOR_CAPTURE": "metadata"})
    hook(tmp_path, {"session_id": "sess-1", "hook_event_name": "PostToolUseFailure", "tool_name": "Bash",
                    "tool_input": {"command": "make deploy"}, "tool_use_id": "toolu_9",
                    "error": "deploy failed: quota exceeded for project acme-prod"},
         env={"MONITOR_CAPTURE": "metadata"})
    with open_db(tmp_path / "m.db", create=False) as db:
        events = db.execute("SELECT type, message, payload FROM events ORDER BY id").fetchall()
        files = db.execute("SELECT files_created FROM agent_executions").fetchone()[0]
    assert [(t, re.sub(r" in \d+ ms$", "", m)) for t, m, _ in events] == [
        ("tool_call", "Bash"), ("tool_call", "Bash done"), ("tool_call", "Read"), ("tool_call", "Read done"),
        ("tool_call", "Write"), ("tool_call", "Write done"), ("file", "created a file"), ("error", "Bash failed")]
    command = tool_calls(tmp_path)[0]["tool_input"]
    assert json.loads(events[0][2]) == {"tool_use_id": "toolu_0", "tool_input_bytes": len(json.dumps(command))}
    assert json.loads(events[-1][2]) == {"tool_use_id": "toolu_9", "tool": "Bash", "error_bytes": 51,
                                         "duration_ms": None, "is_interrupt": False}
    assert files == 1
    stored = on_disk(tmp_path / "m.db")
    for text in (b"gh release", b"plain-but-private", b"Meeting notes", b"notes.md", b".env", b"quota exceeded",
                 b"make deploy"):
        assert text not in stored, text


def test_metadata_capture_in_the_event_api_and_monitor_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_CAPTURE", "metadata")
    db = tmp_path / "m.db"
    with Tracker(db) as t:
        t.start_agent_execution("e1", "agent")
        t.event("output", "wrote the quarterly numbers", {"rows": [1, 2, 3]}, execution="e1")
        t.record_llm_call("e1", "claude-sonnet-4-5", input_tokens=100, output_tokens=10)
    result = monitor(db, "run", "--agent", "a", "--", sys.executable, "-c",
                     "import sys; print('customer list: alice, bob', file=sys.stderr); sys.exit(2)")
    assert result.returncode == 2
    with open_db(db, create=False) as conn:
        events = conn.execute("SELECT type, message, payload FROM events ORDER BY id").fetchall()
        errors = [e for (e,) in conn.execute("SELECT error_message FROM agent_executions ORDER BY id")]
    assert events[0] == ("output", None, '{"message_bytes":27,"payload_bytes":19}')
    assert events[1][0] == "llm_call" and events[1][1].startswith("claude-sonnet-4-5: 100 in, 10 out")
    assert errors == [None, "exited with code 2"]
    assert b"quarterly" not in on_disk(db) and b"customer list" not in on_disk(db)


def test_deleted_rows_leave_no_text_in_the_file(tmp_path, clock):
    db_path = tmp_path / "m.db"
    with Tracker(db_path, clock=clock) as t:
        for n in range(40):
            t.start_agent_execution(f"old-{n}", "agent", orchestration=f"old-{n}")
            t.event("output", f"Zanzibarquokka{n} left the building", {"detail": "Plumbusfizzle"}, execution=f"old-{n}")
            t.complete_agent_execution(f"old-{n}", "failed", error_message="Quuxblorf engine exploded")
        clock.advance(days=40)
        t.start_agent_execution("new", "agent", orchestration="new")
        t.event("output", "Marmalade kept", execution="new")
    with open_db(db_path) as db:
        assert cleanup(db, 30, now=clock()).orchestrations == 40
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        assert db.execute("SELECT count(*) FROM events_fts WHERE events_fts MATCH 'marmalade'").fetchone()[0] == 1
    stored = on_disk(db_path).lower()
    assert b"marmalade" in stored
    for word in (b"zanzibarquokka", b"plumbusfizzle", b"quuxblorf"):
        assert word not in stored, word


def test_a_command_that_cannot_start_keeps_no_secret_from_its_name(tmp_path):
    """A command line passed as one word (`monitor run -- "API_KEY=... ./deploy"`) is not found: the
    error message that names it is redacted like everything else."""
    db = tmp_path / "m.db"
    result = monitor(db, "run", "--agent", "deploy", "--", f"API_KEY={BEARER} ./deploy")
    assert result.returncode == 127 and BEARER in result.stderr
    with open_db(db, create=False) as conn:
        (error,) = conn.execute("SELECT error_message FROM agent_executions").fetchone()
    assert error == "cannot run 'API_KEY=[REDACTED:secret_assignment] ./deploy': command not found"
    assert BEARER.encode() not in on_disk(db)


@pytest.mark.slow
def test_a_secret_half_written_when_the_command_exits_is_not_kept_by_halves(tmp_path):
    """The command exits while a process it left behind still holds its stderr, half-way through
    a line with a token: the relay hands back the last lines without waiting for the rest, and the
    line's first half (a token too short for its pattern) is left out, not stored."""
    db = tmp_path / "m.db"
    script = ("printf 'Error: push rejected\\nusing %s' \"$HEAD\" >&2;"
              " (sleep 2; printf '%s\\n' \"$REST\" >&2) & exit 4")  # the token is not in the command line
    result = monitor(db, "run", "--agent", "deploy", "--", "sh", "-c", script,
                     env={"HEAD": GITHUB[:18], "REST": GITHUB[18:]})
    assert result.returncode == 4 and f"using {GITHUB}\n" in result.stderr  # passed through whole
    with open_db(db, create=False) as conn:
        (error,) = conn.execute("SELECT error_message FROM agent_executions").fetchone()
    assert error == "Error: push rejected"
    assert GITHUB[:18].encode() not in on_disk(db)
