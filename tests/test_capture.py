"""Issue 9's proof: a session built like the real ones, replayed through `python -m monitor.hooks`
as separate processes, counts the tokens and dollars of an independent per-message count.

See tests/claude_session.py for the session and what is real about its shape.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import open_db
from monitor.cli import cli
from monitor.read.logs import EventFilter, list_events

import claude_session as cs

sys.path.insert(0, str(Path(__file__).parent))


def hook(env: dict, db: Path, payload: dict) -> None:
    done = subprocess.run([sys.executable, "-m", "monitor.hooks", "--db", str(db)], input=json.dumps(payload),
                          capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0 and done.stdout == "", done.stderr


def execution_rows(db: Path) -> dict:
    with open_db(db, create=False) as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT agent_session_id, agent_name, status, input_tokens, output_tokens, cache_read_tokens,"
            " cache_write_tokens, cost_usd FROM agent_executions")}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """The session replayed hook by hook: (builder, database, executions before the next command)."""
    root = tmp_path_factory.mktemp("session")
    b = cs.Builder(root)
    b.cwd.mkdir(parents=True)
    b.subagents.mkdir(parents=True)
    db = root / "monitoring.db"
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_PRICES"}
    env["MONITOR_HOOK_LOG"] = str(root / "hook.log")
    checks = {}
    for step in cs.steps(b):
        if step[0] == "write":
            with open(step[1], "a") as f:
                f.write("".join(line + "\n" for line in step[2]))
        elif step[0] == "hook":
            hook(env, db, step[1])
        else:
            checks[step[1]] = execution_rows(db)
    return b, db, execution_rows(db), checks, root


def key(agent: str | None) -> str:
    return cs.SESSION_ID if agent is None else f"{cs.SESSION_ID}:{agent}"


NAMES = {"main": None, "code-reviewer": cs.REVIEWER, "compact": cs.COMPACT, "tester": cs.TEAMMATE}


def test_tokens_and_cost_per_execution_match_an_independent_count(replayed):
    b, db, _, _, root = replayed
    result = CliRunner().invoke(cli, ["cost", "--json", "--db", str(db)])  # the next command reads the tail
    assert result.exit_code == 0, result.output
    rows = execution_rows(db)
    want = cs.expected(b)["executions"]
    for name, agent in NAMES.items():
        agent_name, status, inp, out, read, write, cost = rows[key(agent)]
        assert (agent_name, status) == ("claude-code" if agent is None else name, "completed")
        assert (inp, out, read, write) == want[name][:4], name
        assert cost == pytest.approx(want[name][4], abs=1e-9), name
    assert len(rows) == 4  # no invented "subagent" row
    assert not (root / "hook.log").exists()  # nothing went wrong


def test_the_figures(replayed):
    """The exact numbers, for the record (and the docs)."""
    b, db, _, _, _ = replayed
    CliRunner().invoke(cli, ["cost", "--db", str(db)])
    rows = execution_rows(db)
    assert {name: rows[key(agent)][2:6] for name, agent in NAMES.items()} == {
        "main": (26, 441 + 230 + 77 + 812 + 509, 5200 + 30000 + 38000, 5200 + 900 + 2000 + 1500 + 700),
        "code-reviewer": (5, 1 + 485, 4922, 4922 + 2521),
        "compact": (3, 1800, 52000, 0),
        "tester": (13, 23, 3000, 3600),
    }
    assert round(sum(r[6] for r in rows.values()), 6) == pytest.approx(round(sum(
        c for *_, c in cs.expected(b)["executions"].values()), 6))


def test_cost_by_model_follows_each_messages_model(replayed):
    b, db, _, _, _ = replayed
    result = CliRunner().invoke(cli, ["cost", "--by", "model", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    found = {r["model"]: r for r in json.loads(result.output)}
    want = cs.expected(b)["models"]
    assert set(found) == set(want) == {cs.OPUS, cs.HAIKU, cs.SONNET}
    for model, (inp, out, read, write, cost) in want.items():
        r = found[model]
        assert (r["input_tokens"], r["output_tokens"], r["cache_read_tokens"], r["cache_write_tokens"]) == (
            inp, out, read, write), model
        assert r["cost_usd"] == pytest.approx(cost, abs=1e-6) and r["unpriced"] == 0
    assert found[cs.HAIKU]["executions"] == 2  # the main agent's haiku turn and the teammate
    assert found[cs.OPUS]["executions"] == 2  # the main agent and the compaction


def test_the_transcript_tail_that_came_after_session_end_is_counted_by_the_next_command(replayed):
    b, db, before, _, _ = replayed
    main = before[key(None)]
    assert main[3] == 441 + 230 + 77 + 812 + 64  # msg_05E's last line was not there yet
    CliRunner().invoke(cli, ["list", "--db", str(db)])
    assert execution_rows(db)[key(None)][3] == 441 + 230 + 77 + 812 + 509


def test_the_subagent_counts_its_last_request_once_with_the_tool_results_count(replayed):
    _, db, _, _, _ = replayed
    with open_db(db, create=False) as conn:
        rows = conn.execute("SELECT u.message_id, u.output_tokens, u.source FROM llm_usage u JOIN agent_executions e"
                            " ON e.id = u.execution_id WHERE e.agent_name = 'code-reviewer' ORDER BY 1").fetchall()
    assert rows == [("msg_S1", 1, "transcript"), ("msg_S2", 485, "agent_result")]


def test_lifecycle_events_of_the_session(replayed):
    _, db, _, checks, _ = replayed
    assert checks["teammate running"][key(cs.TEAMMATE)][:2] == ("tester", "in_progress")
    with open_db(db, create=False) as conn:
        events = [(e["agent_name"], e["type"], e["message"]) for e in list_events(conn, EventFilter(cs.SESSION_ID))
                  if e["type"] != "llm_call"]
    assert ("tester", "started", "subagent tester started again") in events
    assert [e for e in events if e[0] == "tester"] == [
        ("tester", "started", "subagent tester started"), ("tester", "status_changed", "subagent tester stopped"),
        ("tester", "started", "subagent tester started again"), ("tester", "status_changed", "subagent tester stopped")]
    assert ("claude-code", "error", "turn failed: rate_limit") in events
    assert ("claude-code", "tool_call", "Bash: pytest -q done in 368 ms") in events
    assert ("claude-code", "started", "session started (compact)") in events


def test_the_hook_path_stays_light(replayed, tmp_path):
    """No click, tabulate, sqlite_utils, dateutil, logging or genai_prices on the hook's path."""
    b, db, _, _, _ = replayed
    payload = b.payload("Stop", stop_hook_active=False)
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_PRICES"}
    env["MONITOR_HOOK_LOG"] = str(tmp_path / "hook.log")
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "monitor.hooks", "--db", str(db)],
                          input=json.dumps(payload), capture_output=True, text=True, env=env, timeout=30)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert not imported & {"click", "tabulate", "sqlite_utils", "dateutil", "logging", "genai_prices", "pydantic"}
    assert "monitor" in imported


def test_an_agent_result_before_the_subagent_transcript_is_absorbed_not_counted_twice(tmp_path, monkeypatch):
    """PostToolUse(Agent) can be recorded before the subagent's last line is read: its counts wait
    as a pending row, which that line's arrival absorbs (keeping the larger output count)."""
    from monitor.capture.claude.hook import handle_payload

    monkeypatch.setenv("MONITOR_HOOK_LOG", str(tmp_path / "hook.log"))
    b = cs.Builder(tmp_path)
    b.subagents.mkdir(parents=True)
    db = tmp_path / "m.db"
    final = (1, 485, 4922, 2521, 0)
    result = cs.agent_result(cs.REVIEWER, "code-reviewer", cs.SONNET, final)

    def send(payload: dict) -> None:
        assert handle_payload(json.dumps(payload), db)

    send(b.payload("PostToolUse", tool_name="Task", tool_use_id="toolu_9", tool_input={"subagent_type": "code-reviewer"},
                   tool_response=result))
    key = f"{cs.SESSION_ID}:{cs.REVIEWER}"
    assert execution_rows(db)[key][2:] == (1, 485, 4922, 2521, pytest.approx(cs.dollars(cs.SONNET, final)))
    b.path(cs.REVIEWER).write_text("\n".join(
        b.assistant(cs.REVIEWER, "msg_S1", cs.SONNET, [1], input=4, write_5m=4922)
        + b.assistant(cs.REVIEWER, "msg_S2", cs.SONNET, [3, 26], input=1, read=4922, write_5m=2521)) + "\n")
    for _ in range(2):  # and a replay
        send(b.payload("SubagentStop", agent_id=cs.REVIEWER, agent_type="code-reviewer",
                       agent_transcript_path=str(b.path(cs.REVIEWER))))
        send(b.payload("PostToolUse", tool_name="Task", tool_use_id="toolu_9",
                       tool_input={"subagent_type": "code-reviewer"}, tool_response=result))
    first = (4, 1, 0, 4922, 0)
    assert execution_rows(db)[key][2:] == (5, 486, 4922, 4922 + 2521, pytest.approx(
        cs.dollars(cs.SONNET, first) + cs.dollars(cs.SONNET, final)))
    with open_db(db, create=False) as conn:
        assert conn.execute("SELECT message_id, output_tokens, source FROM llm_usage ORDER BY 1").fetchall() == [
            ("msg_S1", 1, "transcript"), ("msg_S2", 485, "agent_result")]
