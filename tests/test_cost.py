"""Prices, costs stored when usage is recorded, the cost report, and the logs/search/cost commands."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import InvalidInput, Tracker
from monitor.cli import cli
from monitor.read.costs import cost_report
from monitor.read.pricing import Price, load_prices
from monitor.read.reports import agent_report, health, performance

from conftest import T0

@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "cost.db"


@pytest.fixture
def t(db_path, clock):
    tracker = Tracker(db_path, clock=clock)
    yield tracker
    tracker.close()


def test_the_bundled_table_has_a_date_and_prices_per_million_tokens():
    table = load_prices()
    assert table.date and table.date[:2] == "20" and table.sources == ["bundled"]
    assert table.cost("claude-sonnet-4-5", 1_000_000, 1_000_000, 1_000_000, 1_000_000) == pytest.approx(
        3 + 15 + 0.3 + 3.75)


@pytest.mark.parametrize("model, known", [
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("claude-opus-4-20250514", "claude-opus-4-0"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("anthropic/claude-haiku-4-5", "claude-haiku-4-5"),
    ("CLAUDE-SONNET-4-5", "claude-sonnet-4-5"),
    ("claude-opus-4-6", "claude-opus-4-6"),
    ("claude-opus-4-9", None),
    ("llama3:8b", None),
    ("", None),
    (None, None),
])
def test_model_lookup_never_guesses(model, known):
    table = load_prices()
    ids = {m["id"]: m["price"] for p in table.providers for m in p["models"]}
    assert table.lookup(model) == (ids[known] if known else None)


def test_the_snapshot_follows_genai_prices_match_rules_and_knows_current_models():
    table = load_prices()
    assert table.lookup("claude-opus-4-6") == Price(5.0, 25.0, 0.5, 6.25, 10.0, source=table.lookup("claude-opus-4-6").source)
    assert table.lookup("claude-opus-4-6").source.startswith("genai-prices ")
    assert table.lookup("claude-3.5-haiku-20241022") is table.lookup("claude-3-5-haiku-latest")
    assert table.lookup("gemini-2.5-pro").input == 1.25 and table.lookup("claude-opus-4-9") is None
    # 1-hour cache writes at 2x input, 5-minute ones at 1.25x
    assert table.cost("claude-opus-4-6", 0, 0, 0, 1_000_000, 1_000_000) == 6.25 + 10.0


def test_a_user_file_overrides_and_extends(tmp_path, monkeypatch):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"date": "2026-11-01", "models": {
        "claude-sonnet-4-5": {"input": 1, "output": 2, "cache_read": 0, "cache_write": 0},
        "llama3": {"input": 0, "output": 0}}}))
    monkeypatch.setenv("MONITOR_PRICES", str(path))
    table = load_prices()
    assert table.date == "2026-11-01" and table.sources == ["bundled", str(path)]
    assert table.cost("claude-sonnet-4-5", 1_000_000, 1_000_000) == 3.0
    assert table.cost("llama3", 5000, 5000) == 0.0  # priced at zero on purpose: $0, not unknown
    assert table.cost("claude-opus-4-5", 1_000_000) == 5.0


@pytest.mark.parametrize("content, message", [
    ("{", "is not a price file"),
    ('{"models": []}', "is not a price file"),
    ('{"models": {"m": {"input": "cheap"}}}', "is not a price file"),
    ('{"models": {"m": {"input": -1}}}', "negative price"),
])
def test_a_broken_user_file_is_an_invalid_input(tmp_path, content, message):
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(InvalidInput, match=message):
        load_prices(path)
    with pytest.raises(InvalidInput, match="cannot read"):
        load_prices(tmp_path / "missing.json")


def test_completion_with_tokens_computes_and_stores_the_cost(t):
    t.start_agent_execution("a", "coder", model="claude-haiku-4-5-20251001")
    t.complete_agent_execution("a", input_tokens=1_000_000, output_tokens=1_000_000)
    t.start_agent_execution("b", "coder")
    t.complete_agent_execution("b", model="unknown-model", input_tokens=10)
    t.start_agent_execution("c", "coder", model="claude-haiku-4-5")
    t.complete_agent_execution("c", input_tokens=10, cost_usd=1.25)  # an explicit cost wins
    assert t.db.execute("SELECT agent_session_id, cost_usd FROM agent_executions ORDER BY id").fetchall() == [
        ("a", 6.0), ("b", None), ("c", 1.25)]


def test_a_stored_cost_does_not_change_when_prices_do(t, tmp_path):
    t.start_agent_execution("a", "coder")
    t.record_llm_call("a", "claude-sonnet-4-5", 1_000_000)
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"claude-sonnet-4-5": {"input": 100, "output": 100}}}))
    later = Tracker(t.db, prices=str(path))
    later.start_agent_execution("b", "coder")
    later.record_llm_call("b", "claude-sonnet-4-5", 1_000_000)
    assert t.db.execute("SELECT cost_usd FROM agent_executions ORDER BY id").fetchall() == [(3.0,), (100.0,)]


@pytest.fixture
def recorded(t):
    t.start_orchestration("s1", git_commit_hash="")
    t.start_agent_execution("a1", "coder", "s1")
    t.record_llm_call("a1", "claude-sonnet-4-5", 1_000_000, 100_000)  # $4.50
    t.start_agent_execution("a2", "tester", "s1")
    t.record_llm_call("a2", "local-llama", 5000, 500)  # unpriced
    t.start_agent_execution("a3", "coder")
    t.record_llm_call("a3", "claude-haiku-4-5", 1_000_000)  # $1.00
    t.start_agent_execution("a4", "idle")  # no usage at all: not in the cost report
    return t


@pytest.mark.parametrize("by, expected", [
    ("agent", [("coder", 2, 5.5, 0), ("tester", 1, None, 1)]),
    ("model", [("claude-sonnet-4-5", 1, 4.5, 0), ("claude-haiku-4-5", 1, 1.0, 0), ("local-llama", 1, None, 1)]),
    ("session", [("s1", 2, 4.5, 1), (None, 1, 1.0, 0)]),
])
def test_cost_report_groups(recorded, by, expected):
    found = cost_report(recorded.db, by=by)
    assert [(r[by], r["executions"], r["cost_usd"], r["unpriced"]) for r in found] == expected


def test_cost_report_with_a_total_row(recorded):
    found = cost_report(recorded.db, by="model", with_total=True)
    assert found[-1] == {"model": "total", "executions": 3, "input_tokens": 2_005_000, "output_tokens": 100_500,
                         "cache_read_tokens": 0, "cache_write_tokens": 0, "cost_usd": 5.5, "unpriced": 1}
    assert found[:-1] == cost_report(recorded.db, by="model")
    assert cost_report(recorded.db, since="2026-11-21T00:00:00.000Z", with_total=True) == []


def test_cost_report_since_and_bad_grouping(recorded):
    assert cost_report(recorded.db, since="2026-11-21T00:00:00.000Z") == []
    assert cost_report(recorded.db, since="9999-12-31T23:59:59.000Z") == []  # no day after the last one
    with pytest.raises(InvalidInput):
        cost_report(recorded.db, by="colour")


def test_reports_count_unpriced_executions(recorded):
    by_agent = {r["agent_name"]: r for r in performance(recorded.db)}
    assert (by_agent["tester"]["cost_usd"], by_agent["tester"]["unpriced"]) == (None, 1)
    assert (by_agent["coder"]["cost_usd"], by_agent["coder"]["unpriced"]) == (5.5, 0)
    assert agent_report(recorded.db, "tester")["unpriced"] == 1
    assert health(recorded.db, now=T0)["executions"]["unpriced"] == 1


def invoke(db_path: Path, *args: str):
    result = CliRunner().invoke(cli, [*args, "--db", str(db_path)])
    return result


def test_cost_command_table_has_a_total_row(recorded, db_path):
    result = invoke(db_path, "cost")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "agent      executions    tokens in    tokens out    cache read    cache write    cost $    unpriced",
        "-------  ------------  -----------  ------------  ------------  -------------  --------  ----------",
        "coder               2    2,000,000       100,000             0              0    5.5000           0",
        "tester              1        5,000           500             0              0                     1",
        "total               3    2,005,000       100,500             0              0    5.5000           1",
    ]


@pytest.mark.parametrize("fmt", ["--json", "--csv", "--nl"])
def test_cost_command_machine_formats_have_no_total(recorded, db_path, fmt):
    result = invoke(db_path, "cost", "--by", "model", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "--csv":
        rows = list(csv.reader(io.StringIO(result.output)))
        assert rows[0][0] == "model" and len(rows) == 4
    else:
        rows = json.loads(result.output) if fmt == "--json" else [json.loads(x) for x in result.output.splitlines()]
        assert [r["model"] for r in rows] == ["claude-sonnet-4-5", "claude-haiku-4-5", "local-llama"]


def test_cost_command_empty_and_bad_by(t, db_path):
    assert invoke(db_path, "cost").output == "No tokens or cost recorded yet.\n"
    assert invoke(db_path, "cost", "--json").output == "[]\n"
    assert invoke(db_path, "cost", "--by", "colour").exit_code == 2


def test_logs_and_search_commands(recorded, db_path):
    recorded.event("error", "disk full on /tmp", execution="a2")
    result = invoke(db_path, "logs", "s1", "--type", "error")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2].split(None, 5)[3:] == ["tester", "error", "disk full on /tmp"]
    assert invoke(db_path, "logs", "s1", "--type", "retry").output == "No events for 's1' with type 'retry'.\n"
    missing = invoke(db_path, "logs", "nope")
    assert missing.exit_code == 1 and "no orchestration or execution with id 'nope'" in missing.output
    assert json.loads(invoke(db_path, "search", "disk full", "--json").output)[0]["agent_session_id"] == "a2"
    assert invoke(db_path, "search", '"unbalanced (quote').exit_code == 0
    assert invoke(db_path, "search", "   ").exit_code == 2


@pytest.mark.parametrize("fmt", ["--nl", "--json"])
def test_logs_follow_prints_new_events_and_stops_cleanly_on_ctrl_c(recorded, db_path, fmt):
    """Following streams JSON lines for --json too: an array cannot be added to."""
    monitor = Path(sys.executable).with_name("monitor")
    proc = subprocess.Popen([str(monitor), "logs", "s1", "--follow", fmt, "--db", str(db_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = [json.loads(proc.stdout.readline()) for _ in range(2)]
    assert [e["type"] for e in first] == ["llm_call", "llm_call"]
    recorded.event("output", "arrived while following", execution="a1")
    assert json.loads(proc.stdout.readline())["message"] == "arrived while following"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err and out == ""


def test_cost_rounding_is_stable_in_json(t, db_path):
    t.start_agent_execution("a", "coder")
    for _ in range(3):
        t.record_llm_call("a", "claude-sonnet-4-5", 1, 1)
    assert json.loads(invoke(db_path, "cost", "--json").output)[0]["cost_usd"] == 0.000054
