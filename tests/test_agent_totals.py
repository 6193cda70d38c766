"""The agent_totals roll-up behind the all-time `performance` report always equals a full count."""

from __future__ import annotations

import math
import random
import sqlite3

import pytest

from monitor import open_db
from monitor.store.migrations import refill_agent_totals
from monitor.read.reports import performance
from monitor.ops.retention import cleanup

BEGINNING = "0001-01-01T00:00:00.000Z"  # a --since that includes everything: the counting path


def assert_totals_match_a_full_count(db):
    from_totals = performance(db)
    counted = performance(db, since=BEGINNING)
    assert [r["agent_name"] for r in from_totals] == [r["agent_name"] for r in counted]
    for a, b in zip(from_totals, counted):
        assert a.pop("cost_usd") == pytest.approx(b.pop("cost_usd")), a["agent_name"]
        assert a == b
    kept = db.execute("SELECT * FROM agent_totals ORDER BY agent_name").fetchall()
    recount = db.execute("SELECT * FROM agent_totals_recount ORDER BY agent_name").fetchall()
    assert [row[:-3] for row in kept] == [row[:-3] for row in recount]  # all but cost and unpriced
    assert [round(row[-3], 6) for row in kept] == [round(row[-3], 6) for row in recount]
    assert [row[-2:] for row in kept] == [row[-2:] for row in recount]
    by_model = "SELECT * FROM {} ORDER BY agent_name, model"
    kept = db.execute(by_model.format("agent_model_totals")).fetchall()
    recount = db.execute(by_model.format("agent_model_totals_recount")).fetchall()
    assert [row[:-2] + row[-1:] for row in kept] == [row[:-2] + row[-1:] for row in recount]  # all but cost
    assert [round(row[-2], 6) for row in kept] == [round(row[-2], 6) for row in recount]
    assert (db.execute("SELECT * FROM orchestration_totals ORDER BY status").fetchall()
            == db.execute("SELECT * FROM orchestration_totals_recount ORDER BY status").fetchall())
    assert (db.execute("SELECT * FROM agent_durations ORDER BY agent_name, bucket").fetchall()
            == db.execute("SELECT * FROM agent_durations_recount ORDER BY agent_name, bucket").fetchall())


@pytest.mark.parametrize("seed", range(3))
def test_totals_follow_inserts_completions_updates_and_deletes(tracker, clock, seed):
    rng = random.Random(seed)
    agents = ["planner", "coder", "tester", "reviewer"]
    started: list[str] = []
    for i in range(120):
        clock.advance(minutes=rng.randint(1, 600))
        session = f"s{i // 6}"
        tracker.start_orchestration(session)
        name = f"e{i}"
        tracker.start_agent_execution(name, rng.choice(agents), session if rng.random() < 0.8 else None)
        started.append(name)
        clock.advance(seconds=rng.randint(0, 300))
        if rng.random() < 0.85:
            priced = rng.random() < 0.6
            tokens = rng.random() < 0.8
            tracker.complete_agent_execution(
                name, rng.choice(["completed", "completed", "failed"]), retry_count=rng.randint(0, 2),
                self_healed=rng.random() < 0.2, files_created=rng.randint(0, 3),
                input_tokens=rng.randint(0, 5000) if tokens else None,
                output_tokens=rng.randint(0, 900) if tokens else None,
                cost_usd=rng.random() if priced else None, model=rng.choice([None, "m1", "m2"]))
    with tracker.db.transaction() as conn:  # a foreign writer renames an agent and edits a row
        conn.execute("UPDATE agent_executions SET agent_name = 'renamed' WHERE id % 7 = 0")
        conn.execute("UPDATE agent_executions SET duration_ms = NULL, cost_usd = 1.5 WHERE id % 11 = 0")
        conn.execute("UPDATE agent_executions SET model = 'm3', duration_ms = 4500 WHERE id % 5 = 0")
        conn.execute("UPDATE agent_executions SET status = 'failed' WHERE id % 13 = 0")
    assert_totals_match_a_full_count(tracker.db)
    with tracker.db.transaction() as conn:  # cascades delete executions too
        conn.execute("DELETE FROM orchestrations WHERE id % 3 = 0")
    assert_totals_match_a_full_count(tracker.db)
    cleanup(tracker.db, 30, now=clock.now)
    assert_totals_match_a_full_count(tracker.db)
    cleanup(tracker.db, 0, now=clock.now)
    assert tracker.db.execute("SELECT count(*) FROM agent_totals").fetchone()[0] == 0
    assert tracker.db.execute("SELECT count(*) FROM agent_durations").fetchone()[0] == 0
    assert performance(tracker.db) == []


def test_migration_counts_totals_for_rows_recorded_before_it(db_path, tracker):
    for i, agent in enumerate(["a", "b", "a"]):
        tracker.start_agent_execution(f"e{i}", agent)
        tracker.complete_agent_execution(f"e{i}", "completed", input_tokens=10 * i)
    tracker.close()
    conn = sqlite3.connect(db_path)  # back to schema version 2: no roll-up, no triggers
    for name in ("agent_totals_insert", "agent_totals_delete", "agent_totals_update"):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP TABLE agent_totals")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with open_db(db_path) as db:
        assert dict(db.execute("SELECT agent_name, executions FROM agent_totals")) == {"a": 2, "b": 1}
        assert_totals_match_a_full_count(db)


def test_refill_repairs_totals_after_a_load_that_bypassed_the_triggers(tracker):
    tracker.start_agent_execution("e1", "coder")
    tracker.start_agent_execution("e2", "coder")
    with tracker.db.transaction() as conn:
        conn.execute("UPDATE agent_totals SET executions = 99, completed = 5")
        refill_agent_totals(conn)
    assert dict(tracker.db.execute("SELECT agent_name, executions FROM agent_totals")) == {"coder": 2}
    assert_totals_match_a_full_count(tracker.db)


#: One column at a time, so that a column the update trigger does not watch is caught.
CHANGED_COLUMNS = [("status", "'failed'"), ("status", "'in_progress'"), ("duration_ms", "duration_ms + 250"),
                   ("duration_ms", "NULL"), ("retry_count", "3"), ("self_healed", "1"), ("files_created", "4"),
                   ("files_modified", "9"), ("input_tokens", "7"), ("output_tokens", "NULL"),
                   ("cache_read_tokens", "2"), ("cache_write_tokens", "NULL"), ("cost_usd", "NULL"),
                   ("agent_name", "'renamed'")]


@pytest.mark.parametrize("change", [
    *(f"UPDATE agent_executions SET {column} = {value} WHERE agent_session_id = 'e2'"
      for column, value in CHANGED_COLUMNS),
    "DELETE FROM agent_executions WHERE agent_session_id = 'e2'",
    "INSERT INTO agent_executions (agent_session_id, agent_name, status, started_at, duration_ms, cost_usd)"
    " VALUES ('foreign', 'coder', 'completed', '2026-11-20T12:00:00.000Z', 40, 0.25)",
])
def test_totals_follow_every_change_any_writer_makes(tracker, change):
    for name, agent in (("e1", "coder"), ("e2", "coder"), ("e3", "tester")):
        tracker.start_agent_execution(name, agent)
        tracker.complete_agent_execution(name, "completed", retry_count=1, files_created=2, files_modified=1,
                                         input_tokens=100, output_tokens=10, cache_read_tokens=5,
                                         cache_write_tokens=3, cost_usd=0.5)
    before = list(tracker.db.execute("SELECT * FROM agent_totals ORDER BY agent_name"))
    with tracker.db.transaction() as conn:
        assert conn.execute(change).rowcount > 0
    assert list(tracker.db.execute("SELECT * FROM agent_totals ORDER BY agent_name")) != before
    assert_totals_match_a_full_count(tracker.db)


@pytest.mark.parametrize("seed", range(3))
def test_all_time_percentiles_read_through_the_buckets_are_exact(tracker, seed):
    """Durations spread over every bucket size (1 ms to hours), many sharing a bucket, some equal,
    negative and fractional ones from a foreign writer: p50 and p95 of all time, found through
    agent_durations, are the exact nearest-rank values."""
    rng = random.Random(seed)
    with tracker.db.transaction() as conn:
        for i in range(rng.randint(1, 400)):
            duration = rng.choice([rng.randint(0, 120), rng.randint(100, 99_999), int(10 ** rng.uniform(0, 7)),
                                   rng.uniform(-5, 5), 1234])
            conn.execute("INSERT INTO agent_executions (agent_session_id, agent_name, status, started_at,"
                         " duration_ms) VALUES (?, ?, 'completed', '2026-11-20T12:00:00.000Z', ?)",
                         (f"e{i}", rng.choice(["a", "b"]), duration))
    for row in performance(tracker.db):
        durations = sorted(r[0] for r in tracker.db.execute(
            "SELECT duration_ms FROM agent_executions WHERE agent_name = ?", (row["agent_name"],)))
        for p in (50, 95):
            assert row[f"p{p}_duration_ms"] == durations[max(1, math.ceil(p / 100 * len(durations))) - 1]
    assert_totals_match_a_full_count(tracker.db)
