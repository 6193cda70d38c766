from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest

from monitor import InvalidInput, NotFound, Tracker, open_db
from monitor.ops.reap import reap
from monitor.read.queries import get_orchestration, list_executions


def execution(tracker: Tracker, agent_session_id: str) -> dict:
    row = tracker.db.execute(
        "SELECT * FROM agent_executions WHERE agent_session_id = ?", (agent_session_id,)
    )
    names = [d[0] for d in row.description]
    return dict(zip(names, row.fetchone()))


def test_lifecycle_records_timestamps_and_durations(tracker, clock):
    orchestration_id = tracker.start_orchestration("s1", "Build and deploy", total_tasks=2,
                                                   git_commit_hash="abc123")
    tracker.start_agent_execution("a1", "backend", orchestration="s1", task_id="T-1", task_number=1)
    clock.advance(seconds=12, milliseconds=345)
    tracker.complete_agent_execution("a1", "completed", files_created=3, files_modified=5)
    clock.advance(minutes=1)
    tracker.complete_orchestration("s1", "completed", completed_tasks=2, failed_tasks=0)

    row = get_orchestration(tracker.db, "s1")
    assert row["id"] == orchestration_id
    assert row["status"] == "completed"
    assert row["started_at"] == "2026-11-20T12:00:00.000Z"
    assert row["completed_at"] == "2026-11-20T12:01:12.345Z"
    assert row["duration_ms"] == 72_345
    assert (row["total_tasks"], row["completed_tasks"], row["failed_tasks"]) == (2, 2, 0)
    assert row["git_commit_hash"] == "abc123"
    a1 = execution(tracker, "a1")
    assert a1["orchestration_id"] == orchestration_id
    assert (a1["status"], a1["duration_ms"], a1["files_created"], a1["files_modified"]) == (
        "completed", 12_345, 3, 5)
    assert (a1["task_id"], a1["task_number"]) == ("T-1", 1)


def test_tokens_cost_model_and_exit_code_are_stored(tracker):
    tracker.start_agent_execution("a1", "coder", model="claude-sonnet-4-5")
    tracker.complete_agent_execution("a1", "failed", "boom", retry_count=2, self_healed=True,
                                     input_tokens=1000, output_tokens=200, cache_read_tokens=50,
                                     cache_write_tokens=10, cost_usd=0.0123, exit_code=3)
    a1 = execution(tracker, "a1")
    assert a1["model"] == "claude-sonnet-4-5"  # kept from the start when not given again
    assert (a1["input_tokens"], a1["output_tokens"], a1["cache_read_tokens"], a1["cache_write_tokens"]) == (
        1000, 200, 50, 10)
    assert a1["cost_usd"] == pytest.approx(0.0123)
    assert (a1["status"], a1["error_message"], a1["exit_code"], a1["retry_count"], a1["self_healed"]) == (
        "failed", "boom", 3, 2, 1)
    assert a1["orchestration_id"] is None


def test_starting_twice_returns_the_existing_rows_unchanged(tracker, clock):
    first = tracker.start_orchestration("s1", "original", total_tasks=3)
    clock.advance(hours=1)
    assert tracker.start_orchestration("s1", "again", total_tasks=9) == first
    row = get_orchestration(tracker.db, "s1")
    assert (row["task_description"], row["total_tasks"], row["started_at"]) == (
        "original", 3, "2026-11-20T12:00:00.000Z")
    a = tracker.start_agent_execution("a1", "x", "s1")
    assert tracker.start_agent_execution("a1", "x", "s1") == a
    assert len(list_executions(tracker.db, "s1")) == 1


@pytest.mark.parametrize("call", [
    lambda t: t.complete_orchestration("nope"),
    lambda t: t.complete_agent_execution("nope"),
    lambda t: t.sync_orchestration("nope"),
])
def test_unknown_ids_raise_not_found(tracker, call):
    with pytest.raises(NotFound):
        call(tracker)


@pytest.mark.parametrize("call", [
    lambda t: t.start_orchestration(""),
    lambda t: t.start_orchestration("s", total_tasks=-1),
    lambda t: t.start_agent_execution("a", ""),
    lambda t: t.complete_agent_execution("a", "done"),
    lambda t: t.complete_agent_execution("a", "completed", files_created=-2),
    lambda t: t.complete_agent_execution("a", "completed", cost_usd=-1.0),
    lambda t: t.complete_orchestration("s", "running"),
])
def test_bad_values_raise_invalid_input_and_store_nothing(tracker, call):
    with pytest.raises(InvalidInput):
        call(tracker)
    assert tracker.db.execute("SELECT count(*) FROM orchestrations").fetchone()[0] == 0
    assert tracker.db.execute("SELECT count(*) FROM agent_executions").fetchone()[0] == 0


@pytest.mark.parametrize("statuses, expected", [
    (["completed", "completed"], ("completed", 2, 0)),
    (["completed", "failed"], ("partial", 1, 1)),
    (["failed", "failed"], ("failed", 0, 2)),
    ([], ("completed", 0, 0)),
])
def test_status_and_counts_are_derived_from_executions(tracker, statuses, expected):
    tracker.start_orchestration("s1")
    for i, status in enumerate(statuses):
        tracker.start_agent_execution(f"a{i}", "agent", "s1")
        tracker.complete_agent_execution(f"a{i}", status)
    tracker.complete_orchestration("s1")
    row = get_orchestration(tracker.db, "s1")
    assert (row["status"], row["completed_tasks"], row["failed_tasks"]) == expected
    assert row["total_tasks"] == len(statuses)


def test_sync_keeps_running_while_an_execution_is_in_progress(tracker, clock):
    tracker.start_orchestration("s1")
    tracker.start_agent_execution("a1", "lint", "s1")
    tracker.start_agent_execution("a2", "test", "s1")
    tracker.complete_agent_execution("a1", "completed")
    assert tracker.sync_orchestration("s1") == "running"
    assert get_orchestration(tracker.db, "s1")["completed_at"] is None
    clock.advance(seconds=5)
    tracker.complete_agent_execution("a2", "failed", "tests failed")
    assert tracker.sync_orchestration("s1") == "partial"
    row = get_orchestration(tracker.db, "s1")
    assert (row["completed_at"], row["duration_ms"]) == ("2026-11-20T12:00:05.000Z", 5000)


def test_execution_block_records_completion_with_what_it_filled_in(tracker, clock):
    with tracker.orchestration("s1", task_description="demo"):
        with tracker.execution("coder", "a1", orchestration="s1") as run:
            clock.advance(seconds=2)
            run.files_created = 4
            run.input_tokens, run.output_tokens, run.cost_usd = 10, 20, 0.5
    a1 = execution(tracker, "a1")
    assert (a1["status"], a1["duration_ms"], a1["files_created"], a1["output_tokens"]) == (
        "completed", 2000, 4, 20)
    assert get_orchestration(tracker.db, "s1")["status"] == "completed"


def test_execution_block_that_raises_is_recorded_failed_and_reraises(tracker):
    with pytest.raises(ValueError, match="bad plan"):
        with tracker.orchestration("s1"):
            with tracker.execution("planner", "a1", orchestration="s1"):
                raise ValueError("bad plan")
    a1 = execution(tracker, "a1")
    assert (a1["status"], a1["error_message"]) == ("failed", "ValueError: bad plan")
    assert get_orchestration(tracker.db, "s1")["status"] == "failed"


def test_run_fail_marks_failed_without_raising(tracker):
    with tracker.execution("checker", "a1") as run:
        run.fail("3 checks failed")
    assert (execution(tracker, "a1")["status"], execution(tracker, "a1")["error_message"]) == (
        "failed", "3 checks failed")


def test_git_commit_defaults_to_head_of_the_enclosing_repository(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    with Tracker(tmp_path / "m.db") as t:
        t.start_orchestration("s1")
        t.start_orchestration("s2", git_commit_hash="given")
        assert get_orchestration(t.db, "s1")["git_commit_hash"] == head
        assert get_orchestration(t.db, "s2")["git_commit_hash"] == "given"


def test_git_commit_is_none_outside_a_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Tracker(tmp_path / "m.db") as t:
        t.start_orchestration("s1")
        assert get_orchestration(t.db, "s1")["git_commit_hash"] is None


def test_deleting_an_orchestration_cascades_to_its_executions(tracker):
    tracker.start_orchestration("s1")
    tracker.start_agent_execution("a1", "x", "s1")
    tracker.start_agent_execution("a2", "x")
    with tracker.db.transaction() as conn:
        conn.execute("DELETE FROM orchestrations WHERE session_id = 's1'")
    remaining = [r[0] for r in tracker.db.execute("SELECT agent_session_id FROM agent_executions")]
    assert remaining == ["a2"]


def test_unicode_and_sql_metacharacters_are_stored_verbatim(tracker):
    name = "agent'; DROP TABLE agent_executions; -- ünïcødé 🚀"
    tracker.start_orchestration("s'1\"")
    tracker.start_agent_execution("id%_*", name, "s'1\"")
    rows = list_executions(tracker.db, "s'1\"")
    assert [r["agent_name"] for r in rows] == [name]


def test_reopening_with_a_new_tracker_sees_committed_rows(db_path, clock):
    Tracker(db_path, clock=clock).start_orchestration("s1")
    with open_db(db_path, create=False) as db:
        assert get_orchestration(db, "s1")["status"] == "running"


def test_completing_without_counts_keeps_what_was_recorded_during_the_run(tracker):
    tracker.start_agent_execution("a1", "coder")
    with tracker.db.transaction() as conn:  # as a hook recording files while the agent works
        conn.execute("UPDATE agent_executions SET files_created = 3, retry_count = 1 WHERE agent_session_id = 'a1'")
    tracker.complete_agent_execution("a1", "completed", files_modified=2)
    a1 = execution(tracker, "a1")
    assert (a1["files_created"], a1["files_modified"], a1["retry_count"], a1["self_healed"]) == (3, 2, 1, 0)


def test_completing_an_execution_twice_is_refused_and_changes_nothing(tracker):
    tracker.start_agent_execution("a1", "coder")
    tracker.complete_agent_execution("a1", "failed", "boom", exit_code=3)
    with pytest.raises(InvalidInput, match="'a1' is already failed .* completed once"):
        tracker.complete_agent_execution("a1", "completed", files_created=1)
    a1 = execution(tracker, "a1")
    assert (a1["status"], a1["error_message"], a1["exit_code"], a1["files_created"]) == ("failed", "boom", 3, 0)


def test_a_late_end_replaces_what_monitor_reap_guessed(tracker, clock):
    tracker.start_orchestration("s1")
    tracker.start_agent_execution("slow", "coder", "s1")
    clock.advance(hours=3)
    assert reap(tracker.db, timedelta(hours=2), now=clock()).executions == 1
    assert get_orchestration(tracker.db, "s1")["status"] == "failed"
    clock.advance(minutes=30)
    tracker.complete_agent_execution("slow", "completed", files_created=2)
    slow = execution(tracker, "slow")
    assert (slow["status"], slow["error_message"], slow["files_created"], slow["duration_ms"]) == (
        "completed", None, 2, 3.5 * 3600 * 1000)
    s1 = get_orchestration(tracker.db, "s1")
    assert (s1["status"], s1["completed_tasks"], s1["failed_tasks"]) == ("completed", 1, 0)
    with pytest.raises(InvalidInput, match="completed once"):  # a real end is not replaced
        tracker.complete_agent_execution("slow", "failed", "late again")


def test_an_execution_starts_its_orchestration_as_monitor_run_does(tracker, clock):
    with tracker.execution("planner", "p1", orchestration="fresh") as run:
        run.files_created = 2
    orchestration = get_orchestration(tracker.db, "fresh")
    assert (orchestration["status"], orchestration["completed_tasks"], orchestration["failed_tasks"],
            orchestration["total_tasks"]) == ("completed", 1, 0, 1)


def test_an_orchestrations_status_and_counts_follow_its_executions(tracker, clock):
    tracker.start_orchestration("s1", total_tasks=3)
    tracker.start_agent_execution("a", "coder", "s1")
    assert get_orchestration(tracker.db, "s1")["status"] == "running"
    clock.advance(seconds=5)
    tracker.complete_agent_execution("a", "completed")
    tracker.start_agent_execution("b", "tester", "s1")
    assert get_orchestration(tracker.db, "s1")["status"] == "running"
    assert get_orchestration(tracker.db, "s1")["completed_at"] is None
    clock.advance(seconds=5)
    tracker.complete_agent_execution("b", "failed", "red")
    found = get_orchestration(tracker.db, "s1")
    assert (found["status"], found["completed_tasks"], found["failed_tasks"], found["total_tasks"],
            found["duration_ms"]) == ("partial", 1, 1, 3, 10_000)
