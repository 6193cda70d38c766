"""Daily roll-ups: exact against the executions before cleanup, and still there after it."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from monitor import open_db
from monitor.ops.retention import cleanup
from monitor.read.daily import count_days, daily, finish
from monitor.read.reports import execution_stats

from conftest import T0

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from generate import generate  # noqa: E402  (the benchmarks' generator: agents, models, tokens, cost)

COMPARED = ["executions", "completed", "failed", "in_progress", "success_rate", "avg_duration_ms",
            "p50_duration_ms", "p95_duration_ms", "input_tokens", "output_tokens", "cache_read_tokens",
            "cache_write_tokens", "cost_usd", "unpriced"]


@pytest.fixture
def history(tmp_path):
    """3000 executions over 60 days up to T0, plus the odd ones a generator does not make: in
    progress, without a model, without a duration, tokens without a price."""
    path = tmp_path / "history.db"
    generate(path, 3000, days=60, now=T0, seed=3, events=0)
    db = open_db(path)
    odd = [("odd-1", "coder", "in_progress", None, None, None, None), ("odd-2", "coder", "failed", 1234, None, 10, None),
           ("odd-3", "<script>alert(1)</script>", "completed", 99, "m-x", 5, None)]
    with db.transaction() as conn:
        for i, (sid, agent, status, duration, model, tokens, cost) in enumerate(odd):
            conn.execute("INSERT INTO agent_executions (agent_session_id, agent_name, status, started_at,"
                         " duration_ms, model, input_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (sid, agent, status, f"2026-10-{10 + i:02d}T08:00:00.000Z", duration, model, tokens, cost))
    yield db
    db.close()


def recount(db, row: dict) -> dict:
    """The same figures as `performance` counts them, with its own queries (execution_stats)."""
    start = row["day"] + "T00:00:00.000Z"
    end = (T0.replace(year=int(row["day"][:4]), month=int(row["day"][5:7]), day=int(row["day"][8:10]))
           + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00.000Z")
    where, params = "started_at >= ? AND started_at < ?", [start, end]
    if row["scope"] != "day":
        where, params = where + " AND agent_name = ?", [*params, row["agent_name"]]
    if row["scope"] == "model":
        where, params = where + " AND coalesce(model, '') = ?", [*params, row["model"]]
    return execution_stats(db, where, tuple(params))


def test_roll_ups_equal_performance_counted_from_the_executions(history):
    counted = count_days(history, "1", ())
    assert {r["scope"] for r in counted} == {"day", "agent", "model"}
    assert sum(r["executions"] for r in counted if r["scope"] == "day") == 3003
    for row in counted:
        expected = recount(history, row)
        assert {c: finish(row)[c] for c in COMPARED} == {c: expected[c] for c in COMPARED}, row


def test_cleanup_rolls_up_the_days_it_deletes_and_trends_survive_it(history):
    before = {(r["day"], r["agent_name"]): r for r in daily(history, scope="agent")}
    days_before = {r["day"]: r for r in daily(history, scope="day")}
    assert min(days_before) == "2026-09-21"  # 60 days before T0

    result = cleanup(history, 30, now=T0)

    assert result.executions > 1000 and result.rolled_up_days >= 30
    assert history.execute("SELECT min(started_at) >= '2026-10-21' FROM agent_executions"
                           " WHERE orchestration_id IS NULL").fetchone()[0]
    stored = history.execute("SELECT count(DISTINCT day) FROM daily_rollup").fetchone()[0]
    assert stored == result.rolled_up_days
    # Every day reads the same after the cleanup: rolled-up days from daily_rollup, the rest raw.
    assert {(r["day"], r["agent_name"]): r for r in daily(history, scope="agent")} == before
    assert {r["day"]: r for r in daily(history, scope="day")} == days_before
    # Counted again, nothing changes: a day is rolled up once.
    again = cleanup(history, 30, now=T0)
    assert again.rolled_up_days == 0
    assert history.execute("SELECT count(DISTINCT day) FROM daily_rollup").fetchone()[0] == stored


def test_performance_by_day_reaches_back_past_cleanup_and_all_removes_the_roll_ups(history, invoke, db_path):
    history.close()
    Path(history.path).rename(db_path)
    for suffix in ("-wal", "-shm"):
        Path(str(history.path) + suffix).unlink(missing_ok=True)
    result = invoke("performance", "--by", "day", "--agent", "coder", "--json")
    assert result.exit_code == 0, result.output
    full = json.loads(result.output)
    assert full[0]["day"] > full[-1]["day"]  # newest first
    assert all(r["agent_name"] == "coder" for r in full)

    result = invoke("cleanup", "30", "--yes")
    assert result.exit_code == 0, result.output
    assert "Rolled up" in result.output
    result = invoke("performance", "--by", "day", "--agent", "coder", "--json")
    assert json.loads(result.output) == full

    result = invoke("cleanup", "30", "--yes", "--all")
    assert result.exit_code == 0, result.output
    assert "daily roll-up rows" in result.output
    result = invoke("performance", "--by", "day", "--agent", "coder", "--json")
    left = json.loads(result.output)
    assert left == [r for r in full if r["day"] >= "2026-10-21"]


@pytest.mark.parametrize("agent", [None, "backend"])
def test_trends_from_indexes_and_cost_rollup_equal_the_counted_days(history, agent):
    """report's fast path (status index, cost_rollup) gives daily()'s figures, before and after cleanup."""
    from monitor.read.daily import TREND_DAY_COLUMNS, TREND_USAGE_COLUMNS, daily_scopes, trends

    def expected() -> tuple[list[dict], list[dict]]:
        found = daily_scopes(history, "2026-09-30T10:00:00.000Z", ("day", "model"), agent=agent, percentiles=False)
        usage = [{c: r[c] for c in TREND_USAGE_COLUMNS} for r in found["model"]
                 if any(r[c] is not None for c in TREND_USAGE_COLUMNS[3:])]
        return [{c: r[c] for c in TREND_DAY_COLUMNS} for r in found["day"]], sorted(
            usage, key=lambda r: (r["day"], r["agent_name"], r["model"]))

    def rounded(found: tuple[list[dict], list[dict]]) -> tuple[list[dict], list[dict]]:
        days, usage = found
        return days, [{**r, "cost_usd": None if r["cost_usd"] is None else round(r["cost_usd"], 6)} for r in usage]

    first = rounded(trends(history, "2026-09-30T10:00:00.000Z", agent))
    assert first == rounded(expected())
    assert first[0][0]["day"] == "2026-09-30" and sum(d["executions"] for d in first[0]) > (1000 if agent is None else 50)
    cleanup(history, 30, now=T0)
    assert rounded(trends(history, "2026-09-30T10:00:00.000Z", agent)) == first
