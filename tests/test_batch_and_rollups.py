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


@pytest.fixture
def history(db_path):
    """Executions over five days, every hour, some with tokens, some priced, some moved or deleted."""
    rnd = random.Random(7)
    clock = Clock(T0)
    with Tracker(db_path, clock=clock) as t:
        for n in range(120):
            name = f"e{n}"
            t.start_agent_execution(name, rnd.choice(["coder", "tester"]), rnd.choice(["s1", "s2", None]),
                                    model=rnd.choice(["opus", "haiku", None]))
            usage = rnd.choice([{}, {"input_tokens": rnd.randrange(1000)},
                                {"input_tokens": 10, "output_tokens": 5, "cost_usd": rnd.random()}])
            t.complete_agent_execution(name, rnd.choice(["completed", "failed"]), **usage)
            clock.advance(hours=1)
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
