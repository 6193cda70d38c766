"""Recording in batches, what a commit waits for, the cost roll-up, statistics at close, and the
reads whose cost follows the answer (a count stopped at its limit, whole words first)."""

from __future__ import annotations

import random
import sqlite3

import pytest
from conftest import T0, Clock

from monitor import NotFound, Tracker, open_db
from monitor.read import queries
from monitor.read.costs import cost_report, first_whole_day
from monitor.read.logs import search

# -- batches and durability ----------------------------------------------------------------------


def stored(db_path) -> list[str]:
    """What another process sees: the committed executions."""
    conn = sqlite3.connect(db_path)
    try:
        return [r[0] for r in conn.execute("SELECT agent_session_id FROM agent_executions ORDER BY id")]
    finally:
        conn.close()


def test_a_batch_commits_once_at_its_end(tracker, db_path):
    with tracker.batch():
        tracker.start_agent_execution("a", "importer")
        tracker.complete_agent_execution("a", "completed")
        tracker.start_agent_execution("b", "importer")
        assert stored(db_path) == []  # nothing committed yet
    assert stored(db_path) == ["a", "b"]


def test_a_failed_call_in_a_batch_undoes_only_itself(tracker, db_path):
    with tracker.batch():
        tracker.start_agent_execution("a", "importer")
        with pytest.raises(NotFound):
            tracker.complete_agent_execution("nobody", "completed")
        tracker.complete_agent_execution("a", "completed")
    assert stored(db_path) == ["a"]
    assert tracker.db.execute("SELECT status FROM agent_executions").fetchall() == [("completed",)]


def test_a_batch_that_raises_records_nothing(tracker, db_path):
    with pytest.raises(RuntimeError), tracker.batch():
        tracker.start_agent_execution("a", "importer")
        raise RuntimeError("the import broke")
    assert stored(db_path) == []
    tracker.start_agent_execution("b", "importer")  # the tracker is usable afterwards
    assert stored(db_path) == ["b"]


def test_commits_wait_for_the_wal_not_for_the_disk(db_path):
    """synchronous=NORMAL (1) in WAL mode: the durability README's "The database" promises."""
    with open_db(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1


def test_monitor_sync_full_syncs_every_commit(db_path, monkeypatch):
    monkeypatch.setenv("MONITOR_SYNC", "full")
    with open_db(db_path) as db:
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_an_unknown_monitor_sync_is_an_error(tracker, invoke, monkeypatch):
    monkeypatch.setenv("MONITOR_SYNC", "sometimes")
    result = invoke("health")
    assert (result.exit_code, result.stderr) == (
        1, "Error: MONITOR_SYNC must be 'normal' (the default) or 'full', got 'sometimes'\n")


def test_closing_gathers_the_statistics_the_reads_missed(tracker, db_path):
    tracker.start_agent_execution("a", "coder")
    with open_db(db_path, create=False) as db:
        queries.list_executions(db, filters=queries.Filters(agent="coder", since="2026-11-01T00:00:00.000Z"))
    conn = sqlite3.connect(db_path)
    analyzed = {r[0] for r in conn.execute("SELECT tbl FROM sqlite_stat1")}
    conn.close()
    assert "agent_executions" in analyzed


# -- the cost roll-up ----------------------------------------------------------------------------

COST_BY_EXECUTION = """
    SELECT {key} AS {by}, count(*) AS executions, sum(e.input_tokens) AS input_tokens,
           sum(e.output_tokens) AS output_tokens, sum(e.cache_read_tokens) AS cache_read_tokens,
           sum(e.cache_write_tokens) AS cache_write_tokens, round(sum(e.cost_usd), 6) AS cost_usd,
           coalesce(sum(e.cost_usd IS NULL), 0) AS unpriced
    FROM agent_executions e LEFT JOIN orchestrations o ON o.id = e.orchestration_id
    WHERE (e.cost_usd IS NOT NULL OR coalesce(e.input_tokens, e.output_tokens, e.cache_read_tokens,
                                              e.cache_write_tokens) IS NOT NULL) AND e.started_at >= ?
    GROUP BY 1 ORDER BY coalesce(sum(e.cost_usd), 0) DESC, executions DESC, 1
"""
KEYS = {"agent": "e.agent_name", "model": "e.model", "session": "o.session_id"}


def record_random(t: Tracker, clock: Clock, rnd: random.Random, count: int) -> None:
    """count executions an hour apart, of random agents, sessions and models, with random usage and ends."""
    for n in range(count):
        name = f"e{n}"
        t.start_agent_execution(name, rnd.choice(["coder", "tester"]), rnd.choice(["s1", "s2", None]),
                                model=rnd.choice(["opus", "haiku", None]))
        usage = rnd.choice([{}, {"input_tokens": rnd.randrange(1000)},
                            {"input_tokens": 10, "output_tokens": 5, "cost_usd": rnd.random()}])
        t.complete_agent_execution(name, rnd.choice(["completed", "failed"]), **usage)
        clock.advance(hours=1)


@pytest.fixture
def history(db_path):
    """Executions over five days, every hour, some with tokens, some priced, some moved or deleted."""
    rnd = random.Random(7)
    clock = Clock(T0)
    with Tracker(db_path, clock=clock) as t:
        record_random(t, clock, rnd, 120)
        t.db.execute("UPDATE agent_executions SET agent_name = 'renamed' WHERE id % 7 = 0")
        t.db.execute("UPDATE agent_executions SET model = 'sonnet', cost_usd = NULL WHERE id % 11 = 0")
        t.db.execute("UPDATE agent_executions SET started_at = '2026-11-01 10:00:00' WHERE id % 13 = 0")
        t.db.execute("DELETE FROM agent_executions WHERE id % 17 = 0")
    return db_path


def test_the_roll_up_follows_every_change(history):
    with open_db(history, create=False) as db:
        rounded = ", ".join(f"round({c[1]}, 6)" for c in db.execute("PRAGMA table_info(cost_rollup)"))
        differ = [f"SELECT {rounded} FROM cost_rollup EXCEPT SELECT {rounded} FROM cost_rollup_recount",
                  f"SELECT {rounded} FROM cost_rollup_recount EXCEPT SELECT {rounded} FROM cost_rollup"]
        assert [db.execute(sql).fetchall() for sql in differ] == [[], []]
        assert db.execute("SELECT count(*) FROM cost_rollup WHERE executions = 0").fetchone()[0] == 0


@pytest.mark.parametrize("since", [None, "2026-11-20T00:00:00.000Z", "2026-11-21T13:30:00.000Z",
                                   "2026-11-22T00:00:00.001Z", "2026-12-01T00:00:00.000Z"])
@pytest.mark.parametrize("by", ["agent", "model", "session"])
def test_the_report_from_the_roll_up_is_the_sum_of_the_executions(history, by, since):
    with open_db(history, create=False) as db:
        expected = queries.rows(db, COST_BY_EXECUTION.format(key=KEYS[by], by=by), (since or "",))
        assert cost_report(db, since, by) == expected


@pytest.mark.parametrize("since, day", [("2026-11-20T00:00:00.000Z", "2026-11-20"),
                                        ("2026-11-20T00:00:00.001Z", "2026-11-21"),
                                        ("2026-12-31T23:59:59.999Z", "2027-01-01")])
def test_a_window_reads_whole_days_from_its_first_midnight(since, day):
    assert first_whole_day(since) == day


# -- cost by each request's model over all time (model_totals) -----------------------------------

BEGINNING = "0001-01-01T00:00:00.000Z"  # a window holding everything: the path that reads the rows


def assert_model_totals_match_a_full_count(db) -> None:
    rounded = ", ".join(f"round({c[1]}, 6)" for c in db.execute("PRAGMA table_info(model_totals)"))
    differ = [f"SELECT {rounded} FROM model_totals EXCEPT SELECT {rounded} FROM model_totals_recount",
              f"SELECT {rounded} FROM model_totals_recount EXCEPT SELECT {rounded} FROM model_totals"]
    assert [db.execute(sql).fetchall() for sql in differ] == [[], []]
    assert db.execute("SELECT count(*) FROM model_totals WHERE executions = 0").fetchone()[0] == 0
    from_totals = cost_report(db, None, "model")
    counted = cost_report(db, BEGINNING, "model")
    for row in from_totals + counted:
        row["cost_usd"] = row["cost_usd"] and round(row["cost_usd"], 4)
    assert from_totals == counted


def usage_row(rnd: random.Random, execution_id: int, message_id: str) -> tuple:
    priced = rnd.random() < 0.7
    return (execution_id, message_id, rnd.choice(["opus", "haiku", "sonnet", None]), T0.isoformat(),
            rnd.randrange(5000), rnd.randrange(900), rnd.randrange(100), rnd.randrange(50), rnd.randrange(20), 1,
            rnd.random() if priced else None, "transcript", None)


@pytest.mark.parametrize("seed", range(4))
def test_model_totals_follow_requests_and_executions_whatever_the_order(db_path, seed):
    """Executions recorded with totals only, with requests (llm_usage) added, replaced, priced,
    moved and deleted, the totals carried into a first request, foreign edits, cascades: after
    each round model_totals equals a recount, and `cost --by model` all time equals the same
    report read from every row."""
    from monitor.ops.retention import cleanup
    from monitor.store import writes

    rnd = random.Random(seed)
    clock = Clock(T0)
    with Tracker(db_path, clock=clock) as t:
        record_random(t, clock, rnd, 60)
        ids = [r[0] for r in t.db.execute("SELECT id FROM agent_executions")]
        for round_ in range(6):
            with t.db.transaction() as conn:
                for _ in range(40):
                    execution_id = rnd.choice(ids)
                    messages = [r[0] for r in conn.execute(
                        "SELECT message_id FROM llm_usage WHERE execution_id = ?", (execution_id,))]
                    action = rnd.random()
                    if action < 0.45 or not messages:
                        if rnd.random() < 0.3:
                            writes.carry_execution_totals(conn, execution_id)
                        writes.put_usage(conn, usage_row(rnd, execution_id, f"m{rnd.randrange(6)}"))
                    elif action < 0.6:
                        writes.delete_usage(conn, execution_id, rnd.choice(messages))
                    elif action < 0.7:
                        writes.price_usage(conn, execution_id, rnd.choice(messages), rnd.random(), "test")
                    elif action < 0.8:
                        conn.execute("UPDATE llm_usage SET model = ?, cost_usd = NULL WHERE execution_id = ?"
                                     " AND message_id = ?", (rnd.choice(["opus", "gpt", None]), execution_id,
                                                             rnd.choice(messages)))
                    elif action < 0.85:  # a request moved to another execution (a foreign writer)
                        conn.execute("UPDATE OR IGNORE llm_usage SET execution_id = ?, message_id = ?"
                                     " WHERE execution_id = ? AND message_id = ?",
                                     (rnd.choice(ids), f"moved{rnd.randrange(10**6)}", execution_id,
                                      rnd.choice(messages)))
                    else:
                        conn.execute("UPDATE agent_executions SET model = ?, input_tokens = ?, cost_usd = ?"
                                     " WHERE id = ?", (rnd.choice(["opus", None]), rnd.choice([None, 7]),
                                                       rnd.choice([None, 0.25]), execution_id))
                    if rnd.random() < 0.3:
                        writes.refresh_execution_usage(conn, execution_id)
            assert_model_totals_match_a_full_count(t.db)
        with t.db.transaction() as conn:  # cascades: an orchestration's executions and their requests
            conn.execute("DELETE FROM orchestrations WHERE session_id = 's1'")
            conn.execute("DELETE FROM agent_executions WHERE id % 5 = 0")
        assert_model_totals_match_a_full_count(t.db)
        cleanup(t.db, 1, now=clock.now)
        assert_model_totals_match_a_full_count(t.db)
        cleanup(t.db, 0, now=clock.advance(days=1))
        assert t.db.execute("SELECT count(*) FROM model_totals").fetchone()[0] == 0
        assert cost_report(t.db, None, "model") == []


# -- reads that stop early -------------------------------------------------------------------------

def test_a_cut_page_counts_up_to_its_limit(tracker, invoke, monkeypatch):
    for n in range(5):
        tracker.start_orchestration(f"s{n}", git_commit_hash="")
    monkeypatch.setattr(queries, "COUNT_LIMIT", 3)
    assert invoke("list", "--limit", "1").stderr == "Showing 1 of more than 3 orchestrations; --limit 0 for all.\n"
    monkeypatch.setattr(queries, "COUNT_LIMIT", 10)
    assert invoke("list", "--limit", "1").stderr == "Showing 1 of 5 orchestrations; --limit 0 for all.\n"


def test_search_finds_whole_words_first_and_prefixes_when_none(tracker):
    tracker.start_agent_execution("a", "coder")
    for message in ("tests done", "doneness reached", "all done"):
        tracker.event("output", message, execution="a")
    assert [r["message"] for r in search(tracker.db, "done")] == ["all done", "tests done"]
    assert [r["message"] for r in search(tracker.db, "don")] == ["all done", "doneness reached", "tests done"]
    assert [r["message"] for r in search(tracker.db, "done", use_fts=False)] == [
        "all done", "doneness reached", "tests done"]
