"""The event log: appends that never fail the caller, reads in time order, search, retention."""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest

from monitor import Tracker, open_db
from monitor.capture.events import EventWarning
from monitor.cli.output import render_log
from monitor.read.logs import EVENT_COLUMNS, EventFilter, follow_events, fts_query, list_events, search
from monitor.store.migrations import LATEST
from monitor.ops.retention import cleanup

from conftest import T0
from legacy import make_monitor_db


@pytest.fixture
def t(tmp_path, clock):
    tracker = Tracker(tmp_path / "events.db", clock=clock)
    tracker.start_orchestration("s1", git_commit_hash="")
    tracker.start_agent_execution("a1", "coder", "s1")
    tracker.start_agent_execution("a2", "tester", "s1")
    yield tracker
    tracker.close()


def messages(rows):
    return [(r["agent_name"], r["type"], r["message"]) for r in rows]


def test_events_come_back_in_time_order_with_their_payload(t, clock):
    assert t.event("started", "coding", execution="a1") is not None
    clock.advance(seconds=1)
    t.event("tool_call", "Bash: pytest", {"command": "pytest", "exit": 1}, execution="a2")
    clock.advance(seconds=1)
    t.event("custom", "plan approved", orchestration="s1")
    rows = list_events(t.db, EventFilter("s1"))
    assert messages(rows) == [("coder", "started", "coding"), ("tester", "tool_call", "Bash: pytest"),
                              (None, "custom", "plan approved")]
    assert rows[1]["payload"] == {"command": "pytest", "exit": 1}
    assert rows[1]["timestamp"] == "2026-11-20T12:00:01.000Z"
    assert rows[1]["session_id"] == "s1" and rows[1]["agent_session_id"] == "a2"


@pytest.mark.parametrize("where, expected", [
    (dict(agent="tester"), ["b"]),
    (dict(type="output"), ["a", "c"]),
    (dict(since="2026-11-20T12:00:01.000Z"), ["b", "c"]),
    (dict(after_id=2), ["c"]),
    (dict(limit=1), ["a"]),
])
def test_logs_filters(t, clock, where, expected):
    t.event("output", "a", execution="a1")
    clock.advance(seconds=1)
    t.event("error", "b", execution="a2")
    clock.advance(seconds=1)
    t.event("output", "c", execution="a1")
    assert [r["message"] for r in list_events(t.db, EventFilter("s1", **where))] == expected


def test_following_gives_every_event_once_when_ids_and_times_disagree(t, clock):
    """A hook process can take its time, lose the race for the lock, and write after a later one."""
    t.event("output", "first", execution="a1")
    clock.advance(seconds=2)
    t.event("output", "later time, lower id", execution="a1")
    clock.advance(seconds=-1)
    t.event("output", "earlier time, higher id", execution="a2")
    batches = follow_events(t.db, EventFilter("s1"), interval=0)
    assert [e["message"] for e in next(batches)] == ["first", "earlier time, higher id", "later time, lower id"]
    t.event("output", "new", execution="a1")
    assert [e["message"] for e in next(batches)] == ["new"]


@pytest.mark.parametrize("fmt", ["json", "nl", "csv", "table"])
def test_following_the_log_streams_rows_and_prints_the_header_once(t, clock, fmt):
    t.event("output", "before", execution="a1")
    chunks = render_log(t.db, EventFilter("s1"), fmt, follow=True, interval=0)
    first = next(chunks)
    clock.advance(seconds=1)
    t.event("error", "after, one", execution="a2")
    t.event("output", "after, two", execution="a1")
    lines = [*first.splitlines(), *next(chunks).splitlines()]
    if fmt in ("json", "nl"):
        assert [json.loads(line)["message"] for line in lines] == ["before", "after, one", "after, two"]
    elif fmt == "csv":
        rows = list(csv.reader(lines))
        assert rows[0] == EVENT_COLUMNS and [r[6] for r in rows[1:]] == ["before", "after, one", "after, two"]
    else:
        assert lines[0].split() == ["timestamp", "agent", "name", "type", "message"] and set(lines[1]) == {"-", " "}
        assert [line.split(None, 5)[3:] for line in lines[2:]] == [
            ["coder", "output", "before"], ["tester", "error", "after, one"], ["coder", "output", "after, two"]]


@pytest.mark.parametrize("fmt, expected", [
    ("table", ["timestamp", "-", "2026-11-20 12:00:00 UTC  coder         error   boom"]),
    ("nl", ["{"]),
    ("csv", [",".join(EVENT_COLUMNS), "1,2026-11-20T12:00:00.000Z,s1,coder,a1,error,boom,"]),
])
def test_following_an_empty_log_waits_for_its_first_rows(t, monkeypatch, fmt, expected):
    """Nothing to show yet: the table waits to print its header with the first rows; a CSV is its header."""
    waits = []

    def sleep(seconds: float) -> None:  # an event is recorded while the follower waits
        if not waits:
            t.event("error", "boom", execution="a1")
        waits.append(seconds)

    monkeypatch.setattr("monitor.read.logs.time.sleep", sleep)
    following = render_log(t.db, EventFilter("s1", type="error"), fmt, follow=True)
    chunks = [next(following) for _ in range(2 if fmt == "csv" else 1)]
    lines = "\n".join(chunks).splitlines()
    assert [line[:len(e)] for line, e in zip(lines, expected)] == expected and len(lines) == len(expected)
    assert waits == [0.5]


def test_following_since_a_time_never_shows_older_events(t, clock):
    t.event("output", "old", execution="a1")
    clock.advance(hours=1)
    chunks = follow_events(t.db, EventFilter("s1", since="2026-11-20T12:30:00.000Z"), interval=0)
    t.event("output", "new", execution="a1")
    assert [e["message"] for e in next(chunks)] == ["new"]


def test_logs_of_a_standalone_execution_by_its_id(t):
    t.start_agent_execution("solo", "lint")
    t.event("output", "clean", execution="solo")
    assert messages(list_events(t.db, EventFilter("solo"))) == [("lint", "output", "clean")]


@pytest.mark.parametrize("call", [
    lambda t: t.event("output", "x", execution="no-such-execution"),
    lambda t: t.event("output", "x", orchestration="no-such-session"),
    lambda t: t.event("output", "x"),
    lambda t: t.event("Not A Type", "x", execution="a1"),
    lambda t: t.record_llm_call("no-such-execution", "claude-sonnet-4-5", 1, 1),
    lambda t: t.record_llm_call("a1", "claude-sonnet-4-5", -5, 1),
])
def test_a_failed_append_warns_and_never_raises(t, call):
    with pytest.warns(EventWarning, match="could not record"):
        assert call(t) is None
    assert t.db.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def test_an_append_on_a_read_only_database_warns(tmp_path, t):
    t.close()
    path = tmp_path / "events.db"
    ro = Tracker(open_db(path, readonly=True))
    with pytest.warns(EventWarning, match="read-only"):
        assert ro.event("output", "x", execution="a1") is None
    ro.close()


def test_unserialisable_and_huge_payloads_are_stored_anyway(t):
    t.event("output", "x" * 5000, {"when": T0, "blob": "y" * 100_000}, execution="a1")
    row = list_events(t.db, EventFilter("s1"))[0]
    assert len(row["message"]) == 2000 and row["message"].endswith("...")
    assert row["payload"]["truncated"] is True and row["payload"]["size"] > 100_000


def test_record_llm_call_rolls_tokens_and_cost_into_the_execution(t):
    cost = t.record_llm_call("a1", "claude-sonnet-4-5-20250929", input_tokens=100_000,
                             output_tokens=10_000, cache_read_tokens=50_000,
                             cache_write_tokens=10_000, duration_ms=900)
    assert cost == pytest.approx(0.3 + 0.15 + 0.015 + 0.0375)
    t.record_llm_call("a1", "claude-sonnet-4-5", input_tokens=10, output_tokens=1)
    row = t.db.execute("SELECT model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
                       " cost_usd FROM agent_executions WHERE agent_session_id = 'a1'").fetchone()
    assert row[:5] == ("claude-sonnet-4-5-20250929", 100_010, 10_001, 50_000, 10_000)
    assert row[5] == pytest.approx(0.5025 + 0.000045)
    events = list_events(t.db, EventFilter("s1", type="llm_call"))
    assert events[0]["payload"]["duration_ms"] == 900
    assert events[0]["message"] == ("claude-sonnet-4-5-20250929: 100,000 in, 10,000 out, "
                                    "50,000 cache read, 10,000 cache write tokens, $0.5025")
    usage = t.db.execute("SELECT message_id, model, input_tokens, calls, round(cost_usd, 6), source FROM llm_usage"
                         " ORDER BY message_id").fetchall()
    assert usage == [(f"call:{events[0]['id']}", "claude-sonnet-4-5-20250929", 100_000, 1, 0.5025, "api"),
                     (f"call:{events[1]['id']}", "claude-sonnet-4-5", 10, 1, 0.000045, "api")]


def test_an_unpriced_model_makes_the_cost_unknown_never_zero(t):
    t.record_llm_call("a1", "claude-sonnet-4-5", 1000, 100)
    assert t.record_llm_call("a1", "home-made-model", 1000, 100) is None
    t.record_llm_call("a1", "claude-sonnet-4-5", 1000, 100)  # a priced call later: still unknown
    assert t.db.execute("SELECT input_tokens, cost_usd FROM agent_executions"
                        " WHERE agent_session_id = 'a1'").fetchone() == (3000, None)
    assert "unpriced" in list_events(t.db, EventFilter("s1"))[1]["message"]


def test_an_explicit_cost_is_kept(t):
    assert t.record_llm_call("a1", "home-made-model", 10, 10, cost_usd=0.5) == 0.5
    assert t.db.execute("SELECT cost_usd FROM agent_executions WHERE agent_session_id = 'a1'"
                        ).fetchone()[0] == 0.5


@pytest.mark.parametrize("use_fts", [True, False])
def test_search_finds_event_messages_and_execution_errors(t, clock, use_fts):
    t.event("error", "Bash failed: npm ERR! missing script", execution="a1")
    clock.advance(seconds=1)
    t.complete_agent_execution("a2", "failed", "AssertionError: expected 3 got 4")
    clock.advance(seconds=1)
    t.event("output", "all good", execution="a1")
    found = search(t.db, "missing script", use_fts=use_fts)
    assert [(r["kind"], r["agent_name"], r["message"]) for r in found] == [
        ("event", "coder", "Bash failed: npm ERR! missing script")]
    found = search(t.db, "AssertionError", use_fts=use_fts)
    assert [(r["kind"], r["session_id"], r["type"]) for r in found] == [("error", "s1", "failed")]
    assert search(t.db, "nothing like this", use_fts=use_fts) == []


SYMBOLS, NPM = "100% done under_score (col:val)", "npm ERR! near the end"


@pytest.mark.parametrize("text, with_fts, with_like", [
    # FTS5 syntax in the text is taken as words (each a required prefix), never as operators:
    ('"', [], []), ("npm OR", [], []), ("AND", [], []), ("a*b", [], []), ("-x", [], []),
    ("NEAR(", [NPM], []), ("'; DROP TABLE events; --", [], []),
    ("col:val", [SYMBOLS], [SYMBOLS]), ("100%", [SYMBOLS], [SYMBOLS]), ("under_score", [SYMBOLS], [SYMBOLS]),
    ("ERR!", [NPM], [NPM]), ("done 100", [SYMBOLS], []),
    ("(", [SYMBOLS], [SYMBOLS]),  # no word at all: a plain substring match
])
def test_search_text_never_breaks_the_query(t, text, with_fts, with_like):
    t.event("output", SYMBOLS, execution="a1")
    t.event("output", NPM, execution="a1")
    assert [r["message"] for r in search(t.db, text)] == with_fts
    assert [r["message"] for r in search(t.db, text, use_fts=False)] == with_like
    assert t.db.execute("SELECT count(*) FROM events").fetchone()[0] == 2


def test_like_fallback_treats_wildcards_literally(t):
    t.event("output", "100% done", execution="a1")
    t.event("output", "1000 done", execution="a1")
    assert [r["message"] for r in search(t.db, "100%", use_fts=False)] == ["100% done"]


def test_fts_query_quotes_every_word():
    assert fts_query('npm "ERR" OR x*') == '"npm"* "ERR"* "OR"* "x"*'
    assert fts_query("!!!") is None


def test_search_index_follows_deletes_and_updates(t):
    t.event("output", "zebra crossing", execution="a1")
    t.complete_agent_execution("a2", "failed", "giraffe error")
    with t.db.transaction() as conn:  # another program corrects the message
        conn.execute("UPDATE agent_executions SET error_message = 'okapi error' WHERE agent_session_id = 'a2'")
    assert [r["message"] for r in search(t.db, "giraffe")] == []
    assert [r["message"] for r in search(t.db, "okapi")] == ["okapi error"]
    with t.db.transaction() as conn:
        conn.execute("DELETE FROM orchestrations")
    assert search(t.db, "zebra") == [] and search(t.db, "okapi") == []


def test_cleanup_removes_events_with_their_executions_and_orchestrations(t, clock):
    t.event("output", "in orchestration", execution="a1")
    t.event("custom", "orchestration level", orchestration="s1")
    t.start_agent_execution("solo", "lint")
    t.event("output", "stand-alone", execution="solo")
    clock.advance(days=40)
    t.start_orchestration("s2", git_commit_hash="")
    t.start_agent_execution("b1", "coder", "s2")
    t.event("output", "recent", execution="b1")
    result = cleanup(t.db, 30, now=clock.now)
    assert (result.orchestrations, result.executions) == (1, 3)
    assert [r[0] for r in t.db.execute("SELECT message FROM events")] == ["recent"]
    assert [r["message"] for r in search(t.db, "stand")] == []


def test_a_version_1_database_gets_the_event_log_and_its_errors_are_searchable(tmp_path):
    path = tmp_path / "v1.db"
    make_monitor_db(path, 1, T0)
    with open_db(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0
        assert [r["agent_session_id"] for r in search(db, "412")] == ["v-b"]


def test_a_new_database_has_the_event_tables_from_schema_sql(tmp_path):
    with open_db(tmp_path / "new.db") as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert {"events", "transcript_offsets", "idx_events_orchestration", "idx_events_execution",
            "events_fts", "errors_fts"} <= names


def test_search_words_match_as_prefixes(t):
    t.complete_agent_execution("a2", "failed", "TimeoutError: gave up after 30s")
    assert [r["agent_session_id"] for r in search(t.db, "timeout")] == ["a2"]
    assert [r["agent_session_id"] for r in search(t.db, "timeout", use_fts=False)] == ["a2"]


@pytest.mark.parametrize("where", [EventFilter("s1"), EventFilter("s1", agent="coder", type="error"),
                                   EventFilter("s1", after_id=5), EventFilter("a1", since="2026-01-01")])
def test_logs_queries_use_an_index(t, where):
    plans = []
    t.db.conn.set_trace_callback(lambda sql: plans.append(sql) if sql.lstrip().startswith("SELECT v.id") else None)
    list_events(t.db, where)
    t.db.conn.set_trace_callback(None)
    (sql,) = plans
    owner = "orchestration_id" if where.session == "s1" else "execution_id"
    detail = [r[3] for r in t.db.execute("EXPLAIN QUERY PLAN " + sql)]
    assert detail[0].startswith(f"SEARCH v USING INDEX idx_events_{owner.split('_')[0]} ({owner}=?")
    assert not any(d.startswith("SCAN") or "TEMP B-TREE" in d for d in detail), detail
