"""`monitor import`: exports of many runs (monitor's and the reference tool's) merge into one
database; a second import changes nothing; a bad file changes nothing and says where it is bad."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import T0, Clock, dump
from legacy import make_reference_db, reference_export

from monitor import Tracker, open_db
from monitor.errors import DatabaseError, InvalidInput
from monitor.ops import import_, jsonstream
from monitor.ops.export import export_to_file
from monitor.ops.import_ import EXECUTION_COLUMNS, ORCHESTRATION_COLUMNS, import_file, import_stream


def ci_export(path: Path, tmp_path: Path, record) -> Path:
    """An export file made by a real database that `record(tracker, clock)` filled."""
    db = tmp_path / f"{path.stem}.db"
    clock = Clock()
    with Tracker(db, clock=clock) as t:
        record(t, clock)
        export_to_file(t.db, path)
    return path


def job_a(t: Tracker, clock: Clock) -> None:
    """CI job A: lint passed; tests still running when A exported; a lone execution."""
    t.start_agent_execution("ci-1-lint", "lint", orchestration="ci-1")
    clock.advance(seconds=2)
    t.complete_agent_execution("ci-1-lint", "completed", exit_code=0)
    t.start_agent_execution("ci-1-tests", "tests", orchestration="ci-1")
    t.start_agent_execution("a-lone", "deploy")
    clock.advance(seconds=1)
    t.complete_agent_execution("a-lone", "completed")


def job_b(t: Tracker, clock: Clock) -> None:
    """CI job B: the same session; tests finished (failed, with tokens); a build; and session ci-2."""
    t.start_agent_execution("ci-1-tests", "tests", orchestration="ci-1")
    clock.advance(seconds=30)
    t.complete_agent_execution("ci-1-tests", "failed", error_message="1 failed", exit_code=1,
                               model="claude-sonnet-4-5", input_tokens=100, output_tokens=10, cost_usd=0.01)
    t.start_agent_execution("ci-1-build", "build", orchestration="ci-1")
    clock.advance(seconds=5)
    t.complete_agent_execution("ci-1-build", "completed")
    t.start_agent_execution("ci-2-lint", "lint", orchestration="ci-2")
    clock.advance(seconds=1)
    t.complete_agent_execution("ci-2-lint", "completed")


@pytest.fixture
def exports(tmp_path: Path) -> list[Path]:
    a = ci_export(tmp_path / "a.json", tmp_path, job_a)
    b = ci_export(tmp_path / "b.json", tmp_path, job_b)
    ref_db = tmp_path / "reference.db"
    make_reference_db(ref_db, T0)
    ref = tmp_path / "reference.json"
    ref.write_text(json.dumps(reference_export(ref_db), indent=2))
    return [a, b, ref]


def table(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def executions(path: Path) -> list[tuple]:
    """Every execution by identity, with its orchestration's session instead of a local id."""
    columns = ", ".join(f"e.{c}" for c in EXECUTION_COLUMNS if c != "orchestration_id")
    return table(path, f"SELECT o.session_id, {columns} FROM agent_executions e"
                       " LEFT JOIN orchestrations o ON o.id = e.orchestration_id ORDER BY e.agent_session_id")


def orchestrations(path: Path) -> list[tuple]:
    return table(path, f"SELECT {', '.join(ORCHESTRATION_COLUMNS)} FROM orchestrations ORDER BY session_id")


def test_overlapping_ci_exports_and_a_reference_export_merge_once(exports, invoke, db_path):
    result = invoke("import", *map(str, exports), "--json")
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    a, b, ref = (f for f in files)
    assert a["orchestrations"] == {"inserted": 1, "updated": 0, "unchanged": 0}
    assert a["executions"] == {"inserted": 3, "updated": 0, "unchanged": 0}
    assert b["orchestrations"] == {"inserted": 1, "updated": 1, "unchanged": 0}  # ci-1: finished over running
    assert b["executions"] == {"inserted": 2, "updated": 1, "unchanged": 0}  # tests: failed over in_progress
    assert b["recounted"] == 1  # ci-1 now holds A's and B's executions
    assert ref["orchestrations"]["inserted"] == 6 and ref["executions"]["inserted"] == 9

    ci_1 = table(db_path, "SELECT status, completed_tasks, failed_tasks, total_tasks, completed_at IS NOT NULL"
                          " FROM orchestrations WHERE session_id = 'ci-1'")
    assert ci_1 == [("partial", 2, 1, 3, 1)]
    tests = table(db_path, "SELECT status, error_message, exit_code, input_tokens, cost_usd FROM agent_executions"
                           " WHERE agent_session_id = 'ci-1-tests'")
    assert tests == [("failed", "1 failed", 1, 100, 0.01)]
    assert table(db_path, "SELECT count(*) FROM agent_executions WHERE uuid IS NOT NULL") == [(9,)]
    assert table(db_path, "SELECT * FROM agent_totals") == table(db_path, "SELECT * FROM agent_totals_recount")

    before = dump(db_path)
    again = invoke("import", *map(str, exports), "--json")
    assert again.exit_code == 0, again.output
    for f in json.loads(again.stdout)["files"]:
        assert f["orchestrations"]["inserted"] == f["orchestrations"]["updated"] == 0
        assert f["executions"]["inserted"] == f["executions"]["updated"] == f["recounted"] == 0
    assert dump(db_path) == before


def test_the_order_of_the_files_does_not_change_the_result(exports, tmp_path):
    forward, backward = tmp_path / "forward.db", tmp_path / "backward.db"
    for target, files in ((forward, exports), (backward, exports[::-1])):
        with open_db(target) as db:
            for path in files:
                import_file(db, str(path))
    assert executions(forward) == executions(backward)
    assert orchestrations(forward) == orchestrations(backward)


def test_a_reference_export_imports_as_the_adoption_of_its_database_does(tmp_path):
    source = tmp_path / "reference.db"
    make_reference_db(source, T0)
    export = tmp_path / "reference.json"
    export.write_text(json.dumps(reference_export(source)))
    imported = tmp_path / "imported.db"
    with open_db(imported) as db:
        import_file(db, str(export))
    open_db(source).close()  # adopted in place
    # the reference export has orchestrations only: its lone executions are not in it
    assert executions(imported) == [r for r in executions(source) if r[0] is not None]
    assert orchestrations(imported) == orchestrations(source)
    created = "SELECT uuid, created_at FROM orchestrations ORDER BY uuid"
    assert table(imported, created) == table(source, created)


def test_the_reference_form_for_one_session(tmp_path, db_path):
    source = tmp_path / "reference.db"
    make_reference_db(source, T0)
    document = reference_export(source, "ref-fail")
    with open_db(db_path) as db:
        result = import_stream(db, io.StringIO(json.dumps(document)), "one")
        assert (result.orchestrations.inserted, result.executions.inserted) == (1, 2)
        # executions before their orchestration in the object: read all the same
        swapped = {"executions": document["executions"], "orchestration": document["orchestration"]}
        result = import_stream(db, io.StringIO(json.dumps(swapped)), "swapped")
        assert (result.orchestrations.unchanged, result.executions.unchanged) == (1, 2)
    assert table(db_path, "SELECT status, failed_tasks FROM orchestrations") == [("failed", 1)]


def test_secrets_in_an_imported_file_are_stored_redacted_as_recorded_ones_are(db_path, tmp_path):
    secret, token = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    row = {"agent_session_id": "x-1", "agent_name": "deploy", "started_at": "2026-11-20T12:00:00.000Z",
           "status": "failed", "completed_at": "2026-11-20T12:00:05.000Z",
           "error_message": f"AWS_SECRET_ACCESS_KEY={secret} rejected"}
    event = {"session_id": None, "agent_session_id": "x-1", "timestamp": "2026-11-20T12:00:01.000Z",
             "type": "tool_call", "message": f"gh auth with {token}", "payload": {"env": {"GITHUB_TOKEN": token}}}
    document = tmp_path / "leaky.json"
    document.write_text(json.dumps({"orchestrations": [], "unassigned_executions": [row], "events": [event]}))
    with open_db(db_path) as db:
        import_file(db, str(document))
        before = dump(db_path)
        again = import_file(db, str(document))  # a second import finds the same (redacted) rows
    assert (again.executions.unchanged, again.events.unchanged) == (1, 1) and dump(db_path) == before
    stored = table(db_path, "SELECT error_message FROM agent_executions") + table(
        db_path, "SELECT message, payload FROM events")
    assert "[REDACTED:" in repr(stored) and secret not in repr(stored) and token not in repr(stored)
    assert not [p for p in (db_path, Path(f"{db_path}-wal")) if p.exists() and secret.encode() in p.read_bytes()]


def test_a_conflict_keeps_the_more_complete_record(db_path):
    def document(**execution) -> str:
        row = {"agent_session_id": "x-1", "agent_name": "coder", "started_at": "2026-11-20T12:00:00.000Z",
               **execution}
        return json.dumps({"orchestrations": [], "unassigned_executions": [row]})

    done = document(status="completed", completed_at="2026-11-20T12:00:05.000Z", duration_ms=5000)
    running = document(status="in_progress", model="claude-sonnet-4-5")
    richer = document(status="completed", completed_at="2026-11-20T12:00:05.000Z", duration_ms=5000,
                      files_created=3, input_tokens=10)
    with open_db(db_path) as db:
        steps = [import_stream(db, io.StringIO(text), "f").executions for text in (done, running, richer, done)]
    assert [(c.inserted, c.updated, c.unchanged) for c in steps] == [(1, 0, 0), (0, 1, 0), (0, 1, 0), (0, 0, 1)]
    # the in-progress record lost, but the model only it knew was kept
    assert table(db_path, "SELECT status, model, files_created, input_tokens FROM agent_executions") == [
        ("completed", "claude-sonnet-4-5", 3, 10)]


def _big_export(count: int) -> str:
    rows = [{"agent_session_id": f"e-{i}", "agent_name": "a", "status": "completed",
             "started_at": "2026-11-20T12:00:00.000Z"} for i in range(count)]
    return json.dumps({"orchestrations": [{"session_id": "s", "status": "completed",
                                           "started_at": "2026-11-20T12:00:00.000Z", "executions": rows}]},
                      indent=1)


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.999])
def test_a_truncated_file_is_refused_whole_with_its_position(db_path, invoke, tmp_path, monkeypatch, cut):
    monkeypatch.setattr(import_, "BATCH", 5)  # several batches written before the end is found
    text = _big_export(50)
    truncated = tmp_path / "cut.json"
    truncated.write_text(text[:int(len(text) * cut)])
    open_db(db_path).close()
    before = dump(db_path)
    result = invoke("import", str(truncated))
    assert result.exit_code == 1
    lines = text[:int(len(text) * cut)].count("\n") + 1
    assert f"Error: {truncated}: not imported: " in result.stderr
    assert f"at line {lines} column" in result.stderr
    assert dump(db_path) == before


@pytest.mark.parametrize("bad, message", [
    ('"status": "done"', "status must be one of in_progress, completed, failed, not 'done'"),
    ('"status": "completed", "retry_count": -1', "retry_count must not be negative, not -1"),
    ('"status": "completed", "started_at": "yesterday"', "started_at is not a time: 'yesterday'"),
])
def test_an_invalid_record_is_refused_with_where_it_starts(db_path, monkeypatch, bad, message):
    monkeypatch.setattr(import_, "BATCH", 5)
    rows = [f'{{"agent_session_id": "e-{i}", "agent_name": "a", "started_at": "2026-11-20T12:00:00Z",'
            f' "status": "completed"}}' for i in range(20)]
    rows[17] = f'{{"agent_session_id": "e-17", "agent_name": "a", "started_at": "2026-11-20T12:00:00Z", {bad}}}'
    text = '{"orchestrations": [],\n "unassigned_executions": [\n' + ",\n".join(rows) + "\n]}"
    with open_db(db_path) as db:
        with pytest.raises(InvalidInput) as error:
            import_stream(db, io.StringIO(text), "bad.json")
    assert str(error.value) == f"bad.json: not imported: {message} at line 20 column 1 (char {text.index(rows[17])})"
    assert table(db_path, "SELECT count(*) FROM agent_executions") == [(0,)]


def test_a_database_conflict_mid_file_leaves_nothing_of_it(db_path, monkeypatch):
    """sqlite-utils writes inside monitor's transaction: an error after several batches rolls all back."""
    monkeypatch.setattr(import_, "BATCH", 5)
    with open_db(db_path) as db:
        import_stream(db, io.StringIO(json.dumps({"orchestrations": [], "unassigned_executions": [
            {"uuid": "U-1", "agent_session_id": "old", "agent_name": "a", "status": "completed",
             "started_at": "2026-11-20T12:00:00Z"}]})), "first")
        before = dump(db_path)
        document = json.loads(_big_export(30))
        document["orchestrations"][0]["executions"][27]["uuid"] = "U-1"  # another row's uuid
        with pytest.raises(DatabaseError, match="conflicts with the database"):
            import_stream(db, io.StringIO(json.dumps(document)), "second")
    assert dump(db_path) == before


def test_stdin_and_files_that_are_not_exports(invoke, db_path, exports, tmp_path):
    result = invoke("import", "-", input=exports[0].read_text())
    assert result.exit_code == 0, result.output
    assert result.stdout == ("<stdin>: orchestrations 1 inserted, 0 updated, 0 unchanged;"
                             " executions 3 inserted, 0 updated, 0 unchanged.\n")
    other = tmp_path / "other.json"
    for text, error in [("", "not an export: expected a JSON object or array, found the end of the file"
                             " at line 1 column 1 (char 0)"),
                        ('{"rows": []}', "not an export: the object has no orchestrations, orchestration or"
                                         " executions at line 1 column 13 (char 12)"),
                        ('[] []', "extra data after the document: '[' at line 1 column 4 (char 3)"),
                        ('{"orchestrations": [1]}', "an orchestration must be an object at line 1 column 21"
                                                    " (char 20)")]:
        other.write_text(text)
        result = invoke("import", str(other))
        assert result.exit_code == 1
        assert result.stderr == f"Error: {other}: not imported: {error}\n"


@pytest.mark.parametrize("name, error", [("missing.json", "No such file or directory"),
                                         (".", "Is a directory"), ("a\x00b", "embedded null byte")])
def test_a_file_that_cannot_be_read_is_named(invoke, tmp_path, monkeypatch, name, error):
    monkeypatch.chdir(tmp_path)
    result = invoke("import", name)
    assert result.exit_code == 1
    assert result.stderr == f"Error: cannot read {name}: {error}\n"


def test_the_stream_reader_reads_across_any_chunk_boundary(monkeypatch):
    text = json.dumps({"a": [1.25, 123456789, "x" * 40, {"b": [True, None]}], "c": -7e3}, indent=2)
    for size in (1, 2, 3, 7, 64):
        monkeypatch.setattr(jsonstream, "CHUNK", size)
        stream = jsonstream.JsonStream(io.StringIO(text))
        seen = {}
        for key in stream.iter_object():
            if key == "a":
                seen[key] = [stream.value() for _ in stream.iter_array()]
            else:
                seen[key] = stream.value()
        stream.end()
        assert seen == json.loads(text)


def test_import_runs_as_a_real_process_from_a_pipe(exports, db_path):
    text = exports[1].read_bytes()
    run = subprocess.run([sys.executable, "-m", "monitor", "import", "--db", str(db_path), "-"], input=text,
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert b"executions 3 inserted" in run.stdout


# -- the event log (export --events) -----------------------------------------------------------

def _events(db_path: Path) -> list[tuple]:
    with open_db(db_path, create=False) as db:
        return db.execute(
            "SELECT o.session_id, e.agent_session_id, ev.timestamp, ev.type, ev.message, ev.payload, ev.dedup_key"
            " FROM events ev LEFT JOIN orchestrations o ON o.id = ev.orchestration_id"
            " LEFT JOIN agent_executions e ON e.id = ev.execution_id ORDER BY ev.timestamp, ev.id").fetchall()


def _with_events(db_path: Path) -> None:
    clock = Clock()
    with Tracker(db_path, clock=clock) as t:
        t.start_agent_execution("ci-1-lint", "lint", orchestration="ci-1")
        clock.advance(seconds=1)
        t.event("output", "lint ok", {"lines": 3}, execution="ci-1-lint")
        t.event("note", "orchestration-wide", orchestration="ci-1")
        t.event("output", "", None, execution="ci-1-lint")  # an empty message stays empty
        t.complete_agent_execution("ci-1-lint")
        t.start_agent_execution("lone", "deploy")
        t.event("error", "disk full", execution="lone")
        t.start_agent_execution("ci-2-x", "x", orchestration="ci-2")
        t.event("output", "other session", execution="ci-2-x")
    with open_db(db_path) as db, db.transaction() as conn:  # a hook's event carries a dedup key
        conn.execute("INSERT INTO events (execution_id, timestamp, type, message, dedup_key)"
                     " SELECT id, '2026-11-20T12:00:05.000Z', 'tool_call', 'Bash done', 'hook:abc'"
                     " FROM agent_executions WHERE agent_session_id = 'ci-1-lint'")


def test_export_with_events_imports_back_and_twice_changes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    _with_events(source)
    export = tmp_path / "export.json"
    with open_db(source) as db:
        counts = export_to_file(db, export, events=True)
    assert counts["events"] == len(_events(source)) > 5
    target = tmp_path / "target.db"
    with open_db(target) as db:
        first = import_file(db, str(export))
        second = import_file(db, str(export))
    assert first.as_dict()["events"] == {"inserted": counts["events"], "unchanged": 0}
    assert second.as_dict()["events"] == {"inserted": 0, "unchanged": counts["events"]}
    assert _events(target) == _events(source)
    with open_db(source) as db:  # and back into the database it came from: nothing new
        assert import_file(db, str(export)).events.inserted == 0
    assert _events(target) == _events(source)


def test_a_session_export_with_events_holds_that_session_s_events(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    _with_events(source)
    with open_db(source) as db:
        export_to_file(db, tmp_path / "one.json", "ci-1", events=True)
    messages = {e["message"] for e in json.loads((tmp_path / "one.json").read_text())["events"]}
    assert messages == {"lint ok", "orchestration-wide", "", "Bash done"}


def test_an_event_naming_an_unknown_execution_refuses_the_file(tmp_path: Path) -> None:
    document = {"orchestrations": [], "unassigned_executions": [],
                "events": [{"agent_session_id": "nobody", "timestamp": "2026-11-20T12:00:00.000Z", "type": "x"}]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    with open_db(tmp_path / "t.db") as db:
        with pytest.raises(InvalidInput, match="an event names execution 'nobody', which is neither in the file"):
            import_file(db, str(bad))
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def test_export_events_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from monitor.cli import cli

    source = tmp_path / "source.db"
    _with_events(source)
    out = tmp_path / "e.json"
    result = CliRunner().invoke(cli, ["--db", str(source), "export", "--events", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == f"Exported 2 orchestrations and 3 executions with 6 events to {out}.\n"
    imported = CliRunner().invoke(cli, ["--db", str(tmp_path / "t.db"), "import", str(out)])
    assert imported.output.endswith("; events 6 inserted, 0 unchanged.\n")
    plain = CliRunner().invoke(cli, ["--db", str(source), "export"])
    assert "events" not in json.loads(plain.output)
