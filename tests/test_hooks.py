"""Claude Code hook payloads -> orchestrations, executions, events, files, tokens and cost.

The payloads are the files in tests/payloads/, with TRANSCRIPT, SUBTRANSCRIPT and CWD filled in.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from monitor import open_db
from monitor.read.logs import EventFilter, list_events
from monitor.capture.claude.hook import handle_payload
from monitor.capture.claude.transcript import read_transcript

from conftest import T0, Clock

PAYLOADS = Path(__file__).parent / "payloads"
FULL_SESSION = ["session_start", "pre_write", "post_write", "post_edit", "subagent_start", "sub_pre_bash",
                "sub_post_bash_failure", "sub_post_multiedit", "subagent_stop", "stop", "session_end"]


def payload_clock() -> Clock:
    """Each payload a quarter second after the last."""
    return Clock(step=timedelta(milliseconds=250))


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_HOOK_LOG", str(tmp_path / "hook.log"))
    monkeypatch.delenv("MONITOR_PRICES", raising=False)
    for name in ("main_transcript.jsonl", "sub_transcript.jsonl"):
        (tmp_path / name).write_bytes((PAYLOADS / name).read_bytes())
    return tmp_path


def payload(env: Path, name: str, **changes) -> str:
    text = (PAYLOADS / f"{name}.json").read_text()
    text = (text.replace("SUBTRANSCRIPT", str(env / "sub_transcript.jsonl"))
            .replace("TRANSCRIPT", str(env / "main_transcript.jsonl")).replace("CWD", str(env)))
    if changes:
        data = json.loads(text)
        data.update(changes)
        text = json.dumps({k: v for k, v in data.items() if v is not None})
    return text


def feed(env: Path, names, clock=None, **changes) -> list[bool]:
    clock = clock or payload_clock()
    return [handle_payload(payload(env, n, **changes), env / "m.db", clock=clock) for n in names]


def state(env: Path) -> dict:
    """Every row monitor made, but for created_at (the real time of the insert)."""
    with open_db(env / "m.db", create=False) as db:
        tables = {}
        for table in ("orchestrations", "agent_executions", "events", "transcript_offsets", "llm_usage"):
            cursor = db.execute(f"SELECT * FROM {table} ORDER BY 1, 2")
            names = [d[0] for d in cursor.description]
            tables[table] = [tuple(v for n, v in zip(names, r) if n != "created_at") for r in cursor]
        return tables


def executions(env: Path) -> list[tuple]:
    with open_db(env / "m.db", create=False) as db:
        return [tuple(r) for r in db.execute(
            "SELECT agent_session_id, agent_name, status, files_created, files_modified, model, input_tokens,"
            " output_tokens, cache_read_tokens, cache_write_tokens, round(cost_usd, 6) FROM agent_executions"
            " ORDER BY id")]


def log_text(env: Path) -> str:
    path = env / "hook.log"
    return path.read_text() if path.exists() else ""


def test_a_whole_session_is_recorded(env):
    assert all(feed(env, FULL_SESSION))
    assert executions(env) == [
        ("sess-1", "claude-code", "completed", 1, 1, "claude-sonnet-4-5-20250929", 2000, 210, 23000, 3000, 0.0273),
        ("sess-1:agent-a1", "code-reviewer", "completed", 0, 1, "claude-haiku-4-5-20251001", 5000, 400, 0, 1000,
         0.00825),
    ]
    with open_db(env / "m.db", create=False) as db:
        orchestration = db.execute("SELECT session_id, status, completed_tasks, failed_tasks, task_description,"
                                   " started_at, completed_at, duration_ms FROM orchestrations").fetchone()
        events = [(e["agent_name"], e["type"], e["message"]) for e in list_events(db, EventFilter("sess-1"))]
    assert tuple(orchestration) == ("sess-1", "completed", 2, 0, f"Claude Code session in {env}",
                                    "2026-11-20T12:00:00.250Z", "2026-11-20T12:00:02.750Z", 2500)
    assert events == [  # the transcript is all there at the first hook (here): counted then
        ("claude-code", "llm_call", "claude-sonnet-4-5-20250929: 2 calls, 2,000 in, 210 out, 23,000 cache read, "
                                    "3,000 cache write tokens, $0.0273"),
        ("claude-code", "started", "session started (startup)"),
        ("claude-code", "tool_call", f"Write: {env}/new_file.py"),
        ("claude-code", "tool_call", f"Write: {env}/new_file.py done in 250 ms"),
        ("claude-code", "file", f"created {env}/new_file.py"),
        ("claude-code", "tool_call", f"Edit: {env}/README.md done"),
        ("claude-code", "file", f"modified {env}/README.md"),
        ("code-reviewer", "started", "subagent code-reviewer started"),
        ("code-reviewer", "tool_call", "Bash: pytest -q"),
        ("code-reviewer", "error", "Bash: pytest -q failed: Command failed with exit code 1: 2 tests failed"),
        ("code-reviewer", "tool_call", f"MultiEdit: {env}/src/app.py done"),
        ("code-reviewer", "file", f"modified {env}/src/app.py"),
        ("code-reviewer", "llm_call", "claude-haiku-4-5-20251001: 5,000 in, 400 out, 0 cache read, "
                                      "1,000 cache write tokens, $0.0083"),
        ("code-reviewer", "status_changed", "subagent code-reviewer stopped"),
        ("claude-code", "status_changed", "turn finished"),
        ("claude-code", "status_changed", "session ended (prompt_input_exit)"),
    ]
    assert log_text(env) == ""


class RepeatingClock(Clock):
    """Each time twice: a payload and its replay are recorded at the same moment (the payload
    clock's times)."""

    def __init__(self) -> None:
        super().__init__(step=timedelta(milliseconds=250))
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        return super().__call__() if self.calls % 2 else self.now


def test_replaying_every_payload_changes_nothing(env):
    """A hook run twice (a retry) records its payload once."""
    feed(env, FULL_SESSION)
    once = state(env)
    (env / "m.db").unlink()
    clock = RepeatingClock()
    for name in FULL_SESSION:
        feed(env, [name, name], clock)
    assert state(env) == once


def test_payloads_in_reverse_order_are_still_recorded(env):
    assert all(feed(env, list(reversed(FULL_SESSION))))
    rows = executions(env)
    assert [(r[0], r[1], r[2]) for r in rows] == [("sess-1", "claude-code", "completed"),
                                                  ("sess-1:agent-a1", "code-reviewer", "completed")]
    assert rows[0][6:10] == (2000, 210, 23000, 3000) and rows[1][6:10] == (5000, 400, 0, 1000)
    with open_db(env / "m.db", create=False) as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 16


def test_a_stop_before_any_start_creates_the_session(env):
    assert feed(env, ["subagent_stop"]) == [True]
    assert [(r[0], r[1], r[2], r[6]) for r in executions(env)] == [
        ("sess-1:agent-a1", "code-reviewer", "completed", 5000), ("sess-1", "claude-code", "in_progress", 2000)]


def test_transcripts_are_read_incrementally(env):
    feed(env, ["session_start", "stop"])
    with open(env / "main_transcript.jsonl", "a") as f:
        f.write(json.dumps({"type": "assistant", "message": {
            "id": "msg_3", "model": "claude-sonnet-4-5-20250929",
            "usage": {"input_tokens": 100, "output_tokens": 10}}}) + "\n")
        f.write('{"type":"assistant","message":{"id":"msg_4","usage":{"input_tok')  # still being written
    feed(env, ["stop"])
    assert executions(env)[0][6:8] == (2100, 220)
    with open(env / "main_transcript.jsonl", "a") as f:
        f.write('ens":7,"output_tokens":1},"model":"claude-sonnet-4-5"}}\n')
    feed(env, ["stop", "stop"])
    assert executions(env)[0][6:8] == (2107, 221)
    with open_db(env / "m.db", create=False) as db:
        stops = db.execute("SELECT count(*) FROM events WHERE message = 'turn finished'").fetchone()[0]
        offset = db.execute("SELECT offset FROM transcript_offsets WHERE path LIKE '%main_transcript.jsonl'"
                            ).fetchone()[0]
    assert stops == 3 and offset == (env / "main_transcript.jsonl").stat().st_size


def test_read_transcript_skips_what_it_must(env):
    found = read_transcript(str(env / "main_transcript.jsonl"), skip_sidechain=True)
    assert [(m.id, m.model, m.counts()) for m in found.messages.values()] == [
        ("msg_1", "claude-sonnet-4-5-20250929", (1200, 150, 10000, 3000, 0)),
        ("msg_2", "claude-sonnet-4-5-20250929", (800, 60, 13000, 0, 0))]  # no sidechain, no <synthetic>
    everything = read_transcript(str(env / "main_transcript.jsonl"))
    assert [m.id for m in everything.messages.values()] == ["msg_1", "msg_2", "msg_side"]
    again = read_transcript(str(env / "main_transcript.jsonl"), found.offset)
    assert again.messages == {} and again.offset == found.offset == (env / "main_transcript.jsonl").stat().st_size


def test_a_missing_transcript_is_logged_and_the_stop_still_recorded(env):
    assert feed(env, ["session_start", "session_end"], transcript_path=str(env / "gone.jsonl")) == [True, True]
    assert executions(env)[0][:3] == ("sess-1", "claude-code", "completed")
    assert executions(env)[0][6] is None
    assert "cannot read transcript" in log_text(env) and "gone.jsonl" in log_text(env)


def test_an_unpriced_model_leaves_the_cost_unknown(env):
    (env / "sub_transcript.jsonl").write_text(json.dumps({"type": "assistant", "message": {
        "id": "m1", "model": "some-future-model", "usage": {"input_tokens": 10, "output_tokens": 5}}}) + "\n")
    feed(env, ["subagent_stop"])
    assert executions(env)[0][5:] == ("some-future-model", 10, 5, 0, 0, None)


def test_a_user_price_file_prices_a_new_model(env, monkeypatch):
    prices = env / "prices.json"
    prices.write_text(json.dumps({"date": "2026-11-01", "models": {"some-future-model": {
        "input": 1.0, "output": 2.0, "cache_read": 0.1, "cache_write": 1.5}}}))
    monkeypatch.setenv("MONITOR_PRICES", str(prices))
    (env / "sub_transcript.jsonl").write_text(json.dumps({"type": "assistant", "message": {
        "id": "m1", "model": "some-future-model", "usage": {"input_tokens": 1_000_000, "output_tokens": 1000}}}) + "\n")
    assert handle_payload(payload(env, "subagent_stop"), env / "m.db", prices=str(prices))
    assert executions(env)[0][-1] == pytest.approx(1.002)


@pytest.mark.parametrize("raw, logged", [
    ((PAYLOADS / "malformed.json").read_text(), "not JSON"),
    ("", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ((PAYLOADS / "missing_session.json").read_text(), "no session_id"),
    ('{"session_id": "", "hook_event_name": "Stop"}', "no session_id"),
    (b"\xff\xfe not utf-8", "not JSON"),
])
def test_bad_payloads_are_logged_not_raised(env, raw, logged):
    assert handle_payload(raw, env / "m.db") is False
    assert logged in log_text(env)


def test_unknown_events_and_missing_fields_are_recorded_as_far_as_they_go(env):
    assert feed(env, ["unknown_event"]) == [True]
    bare = [{"session_id": "s2", "hook_event_name": name} for name in
            ("PreToolUse", "PostToolUse", "PostToolUseFailure", "SubagentStart", "SubagentStop", "SessionStart",
             "Stop", "SessionEnd")]
    assert all(handle_payload(json.dumps(p), env / "m.db") for p in bare)
    with open_db(env / "m.db", create=False) as db:
        assert [e["message"] for e in list_events(db, EventFilter("sess-1")) if e["type"] != "llm_call"] == [
            "UserPromptSubmit"]
        messages = [e["message"] for e in list_events(db, EventFilter("s2"))]
    assert messages == ["tool", "tool done", "tool failed: failed", "subagent ? started", "subagent ? stopped",
                        "session started (startup)", "turn finished", "session ended (other)"]
    assert "no transcript path" in log_text(env)


def test_a_database_that_cannot_be_opened_is_logged(env):
    (env / "not-a-db").write_text("hello, I am a text file" * 100)
    assert handle_payload(payload(env, "session_start"), env / "not-a-db") is False
    assert "not a monitor database" in log_text(env)


def test_a_file_written_twice_counts_once(env):
    feed(env, ["pre_write", "post_write"])
    feed(env, ["post_write"], tool_use_id="toolu_again")
    assert executions(env)[0][3:5] == (1, 0)


def test_write_over_an_existing_file_is_a_modification(env):
    (env / "new_file.py").write_text("old\n")
    feed(env, ["pre_write", "post_write"], tool_response={"filePath": "x"})
    assert executions(env)[0][3:5] == (0, 1)


def test_a_resumed_session_runs_again_until_it_ends(env):
    feed(env, ["session_start", "session_end"])
    feed(env, ["session_start"], source="resume")
    with open_db(env / "m.db", create=False) as db:
        assert db.execute("SELECT status, completed_at FROM orchestrations").fetchone() == ("running", None)
    feed(env, ["session_end"], reason="logout")
    with open_db(env / "m.db", create=False) as db:
        assert db.execute("SELECT status FROM orchestrations").fetchone()[0] == "completed"


def status(env: Path) -> tuple:
    with open_db(env / "m.db", create=False) as db:
        return tuple(db.execute("SELECT o.status, e.status FROM orchestrations o"
                                " JOIN agent_executions e ON e.orchestration_id = o.id AND e.agent_name = 'claude-code'"
                                ).fetchone())


def test_claude_codes_identical_payloads_end_resume_and_end_a_session_again(env):
    """Claude Code sends the same SessionStart payload on every resume and the same SessionEnd on every end."""
    clock = payload_clock()
    feed(env, ["session_start", "session_end"], clock)
    assert status(env) == ("completed", "completed")
    feed(env, ["session_start"], clock, source="resume")
    assert status(env) == ("running", "in_progress")
    feed(env, ["session_end"], clock)
    assert status(env) == ("completed", "completed")
    feed(env, ["session_start"], clock, source="resume")
    assert status(env) == ("running", "in_progress")
    feed(env, ["session_end"], clock)
    assert status(env) == ("completed", "completed")
    with open_db(env / "m.db", create=False) as db:
        messages = [e["message"] for e in list_events(db, EventFilter("sess-1")) if e["type"] != "llm_call"]
        assert db.execute("SELECT completed_at, duration_ms FROM orchestrations").fetchone() == (
            "2026-11-20T12:00:01.500Z", 1250)
    assert messages == ["session started (startup)", "session ended (prompt_input_exit)",
                        "session started (resume)", "session ended (prompt_input_exit)",
                        "session started (resume)", "session ended (prompt_input_exit)"]


@pytest.mark.parametrize("history, replayed", [
    (["session_start"], "session_start"),
    (["session_start", "session_end"], "session_end"),
    (["session_start", "session_end"], "session_start"),
    (["session_start", "session_end", "resume"], "resume"),
    (["session_start", "session_end", "resume", "session_end"], "session_end"),
    (["session_start", "compact"], "compact"),
])
def test_a_lifecycle_payload_replayed_in_the_same_state_changes_nothing(env, history, replayed):
    def send(name: str) -> None:
        if name in ("resume", "compact"):
            feed(env, ["session_start"], clock, source=name)
        else:
            feed(env, [name], clock)

    clock = payload_clock()
    for name in history:
        send(name)
    before = state(env)
    send(replayed)
    assert state(env) == before


def test_the_time_is_read_with_the_write_lock_held(env):
    """Hook processes race for the lock: a time read before it would give a later event a lower id."""
    feed(env, ["session_start"])
    locked = []

    def clock() -> datetime:
        other = sqlite3.connect(env / "m.db", timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            locked.append(False)
        except sqlite3.OperationalError as exc:
            locked.append("locked" in str(exc))
        finally:
            other.close()
        return T0

    for name in ("pre_write", "stop", "session_end"):
        assert handle_payload(payload(env, name), env / "m.db", clock=clock)
    assert locked == [True, True, True]


def test_session_end_fails_subagents_that_never_stopped(env):
    feed(env, ["session_start", "subagent_start", "session_end"])
    with open_db(env / "m.db", create=False) as db:
        rows = db.execute("SELECT agent_name, status, error_message FROM agent_executions ORDER BY id").fetchall()
        status = db.execute("SELECT status FROM orchestrations").fetchone()[0]
    assert rows == [("claude-code", "completed", None),
                    ("code-reviewer", "failed", "the session ended (prompt_input_exit) before this subagent stopped")]
    assert status == "partial"


@pytest.mark.parametrize("cwd, expected", [
    ("project/src/deep", "project/monitoring.db"),      # the top of its git work tree
    ("project", "project/monitoring.db"),
    ("loose/folder", "loose/folder/monitoring.db"),    # no project around it: the folder itself
    ("gone", "here/monitoring.db"),                     # no such folder: ./monitoring.db
    ("relative", "here/monitoring.db"),                 # not an absolute path
    (None, "here/monitoring.db"),                       # no cwd in the payload
])
def test_a_hook_without_db_records_in_the_database_of_the_payloads_project(env, monkeypatch, cwd, expected):
    (env / "project" / ".git").mkdir(parents=True)
    (env / "project" / "src" / "deep").mkdir(parents=True)
    (env / "loose" / "folder").mkdir(parents=True)
    (env / "here").mkdir()
    monkeypatch.chdir(env / "here")
    folder = "relative" if cwd == "relative" else (str(env / cwd) if cwd else None)
    assert handle_payload(payload(env, "session_start", cwd=folder), None, clock=payload_clock())
    assert [p.relative_to(env).as_posix() for p in env.rglob("*.db")] == [expected]
    monkeypatch.setenv("MONITOR_DB", str(env / "env.db"))  # $MONITOR_DB wins over the payload
    assert handle_payload(payload(env, "post_write", cwd=folder), None, clock=payload_clock())
    assert (env / "env.db").exists()


def test_a_session_recorded_before_per_request_usage_keeps_its_earlier_tokens(env):
    """Totals an older monitor recorded (no llm_usage rows) are carried into the sums, not lost."""
    feed(env, ["session_start"], transcript_path=str(env / "none.jsonl"))
    with open_db(env / "m.db") as db, db.transaction() as conn:
        conn.execute("UPDATE agent_executions SET model = 'claude-sonnet-4-5', input_tokens = 500,"
                     " output_tokens = 50, cache_read_tokens = 0, cache_write_tokens = 0, cost_usd = 0.00225")
    feed(env, ["stop"])
    assert executions(env)[0][5:] == ("claude-sonnet-4-5-20250929", 2500, 260, 23000, 3000, 0.02955)
