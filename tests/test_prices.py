"""Prices from the genai-prices snapshot and package, the user's file, and pricing what was recorded unpriced."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from monitor import open_db
from monitor.capture.claude.hook import handle_payload
from monitor.cli import cli
from monitor.read.pricing import GenaiPrices, load_prices


def transcript_line(message_id: str, model: str, output: int) -> str:
    return json.dumps({"type": "assistant", "requestId": f"req_{message_id}", "timestamp": "2026-11-20T12:00:00.000Z",
                       "message": {"id": message_id, "model": model, "role": "assistant", "content": [],
                                   "usage": {"input_tokens": 1_000_000, "output_tokens": output,
                                             "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}}) + "\n"


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """A session whose transcript names a model the snapshot does not know (deepseek-chat: only the
    installed genai-prices does) and one nobody knows (house-model-1)."""
    monkeypatch.setenv("MONITOR_HOOK_LOG", str(tmp_path / "hook.log"))
    monkeypatch.delenv("MONITOR_PRICES", raising=False)
    transcript = tmp_path / "t.jsonl"
    transcript.write_text(transcript_line("msg_1", "deepseek-chat", 1_000_000)
                          + transcript_line("msg_2", "house-model-1", 1000))
    db = tmp_path / "m.db"
    assert handle_payload(json.dumps({"session_id": "s1", "hook_event_name": "Stop",
                                      "transcript_path": str(transcript)}), db)
    return db


def usage(db) -> list[tuple]:
    with open_db(db, create=False) as conn:
        return conn.execute("SELECT model, round(cost_usd, 6) FROM llm_usage ORDER BY message_id").fetchall()


def cost_of_execution(db):
    with open_db(db, create=False) as conn:
        return conn.execute("SELECT cost_usd FROM agent_executions").fetchone()[0]


def test_the_hook_leaves_unknown_models_unpriced_and_the_next_command_prices_what_genai_prices_knows(recorded):
    assert usage(recorded) == [("deepseek-chat", None), ("house-model-1", None)]  # the hook does not import it
    deepseek = GenaiPrices().cost("deepseek-chat", 1_000_000, 1_000_000, 0, 0, 0, when="2026-11-20T12:00:00.000Z")
    assert deepseek is not None and deepseek > 0
    result = CliRunner().invoke(cli, ["cost", "--by", "model", "--json", "--db", str(recorded)])
    assert result.exit_code == 0, result.output
    assert usage(recorded) == [("deepseek-chat", round(deepseek, 6)), ("house-model-1", None)]
    rows = {r["model"]: r for r in json.loads(result.output)}
    assert rows["deepseek-chat"]["cost_usd"] == pytest.approx(deepseek) and rows["deepseek-chat"]["unpriced"] == 0
    assert rows["house-model-1"]["unpriced"] == 1 and cost_of_execution(recorded) is None  # never $0


def test_a_price_file_given_later_prices_the_rest(recorded, tmp_path, monkeypatch):
    CliRunner().invoke(cli, ["list", "--db", str(recorded)])
    with open_db(recorded, create=False) as conn:  # tried once with these sources: not again
        tried = conn.execute("SELECT priced_with FROM llm_usage WHERE cost_usd IS NULL").fetchone()[0]
    assert tried and "genai-prices" in tried
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"date": "2026-11-21", "models": {"house-model-1": {"input": 0.5, "output": 2}}}))
    result = CliRunner().invoke(cli, ["prices", "refresh", "--prices", str(prices), "--db", str(recorded)])
    assert result.exit_code == 0, result.output
    assert result.output == "Priced 1 request; 0 requests still without a price.\n"
    assert usage(recorded)[1] == ("house-model-1", 0.502)
    assert cost_of_execution(recorded) == pytest.approx(0.502 + usage(recorded)[0][1])


def test_a_changed_price_file_is_tried_automatically(recorded, tmp_path, monkeypatch):
    CliRunner().invoke(cli, ["list", "--db", str(recorded)])
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": {"house-model-1": {"input": 1, "output": 1}}}))
    monkeypatch.setenv("MONITOR_PRICES", str(prices))
    CliRunner().invoke(cli, ["show", "s1", "--db", str(recorded)])
    assert usage(recorded)[1] == ("house-model-1", 1.001)


def test_prices_command_lists_sources(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["prices", "--model", "claude-opus-4-6-20260101", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    assert (row["input_per_mtok_usd"], row["cache_write_per_mtok_usd"], row["cache_write_1h_per_mtok_usd"]) == (
        5.0, 6.25, 10.0)
    assert row["source"] == f"genai-prices 0.2.3 ({load_prices().date})" or row["source"].startswith("genai-prices")
    assert "the bundled snapshot of genai-prices" in result.stderr
    listed = json.loads(runner.invoke(cli, ["prices", "--json"]).stdout)
    assert len(listed) > 150 and {"claude-opus-4-6", "claude-haiku-4-5", "gemini-2.5-pro", "gpt-4o"} <= {
        r["model"] for r in listed}
    assert runner.invoke(cli, ["prices", "--model", "house-model-1"]).stdout == "No price known for 'house-model-1'.\n"
