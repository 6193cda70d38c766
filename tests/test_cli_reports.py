from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from monitor import Tracker
from monitor.cli import cli
from monitor.cli.options import Settings
from monitor.timeutil import utcnow

from conftest import Clock, dump

COMMANDS_ON_SESSION = [["show", "s1"], ["executions", "s1"], ["export", "s1"]]
TABULAR = [["list"], ["executions", "s1"], ["executions"], ["performance"], ["failures"],
           ["failures", "--executions"]]
RECORDS = [["show", "s1"], ["agent", "coder"], ["health", "24"]]


@pytest.fixture
def populated(db_path):
    """Fixed data, recorded 'now' so that health's real-clock window sees it."""
    with Tracker(db_path) as t:
        t.start_orchestration("s1", "build", total_tasks=2, git_commit_hash="abc")
        t.start_agent_execution("a1", "coder", "s1", task_id="T1")
        t.complete_agent_execution("a1", "completed", files_created=1, input_tokens=100, output_tokens=20,
                                   cost_usd=0.01)
        t.start_agent_execution("a2", "tester", "s1")
        t.complete_agent_execution("a2", "failed", "2 tests failed", exit_code=1)
        t.complete_orchestration("s1")
    return db_path


#: What each list command returns on the populated database: its key column and the keys, sorted.
EXPECTED_ROWS = {
    ("list",): ("session_id", ["s1"]),
    ("executions", "s1"): ("agent_session_id", ["a1", "a2"]),
    ("executions",): ("agent_session_id", ["a1", "a2"]),
    ("performance",): ("agent_name", ["coder", "tester"]),
    ("failures",): ("session_id", ["s1"]),
    ("failures", "--executions"): ("agent_session_id", ["a2"]),
}


def as_csv_text(value: object) -> str:
    """How a JSON value reads in a CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@pytest.mark.parametrize("args", TABULAR)
def test_every_tabular_command_gives_the_same_rows_as_json_csv_and_nl(populated, invoke, args):
    key, expected = EXPECTED_ROWS[tuple(args)]
    outputs = {fmt: invoke(*args, fmt) for fmt in ("--json", "--csv", "--nl", "--table")}
    assert {fmt: r.exit_code for fmt, r in outputs.items()} == dict.fromkeys(outputs, 0)
    rows = json.loads(outputs["--json"].output)
    assert sorted(r[key] for r in rows) == expected
    assert [json.loads(line) for line in outputs["--nl"].output.splitlines()] == rows
    cells = list(csv.DictReader(io.StringIO(outputs["--csv"].output)))
    assert cells == [{k: as_csv_text(v) for k, v in r.items()} for r in rows]
    assert "----" in outputs["--table"].output


@pytest.mark.parametrize("args", TABULAR + RECORDS)
def test_the_table_is_the_default_format(populated, args):
    now = utcnow()  # one "now" for both: health's table says how long ago things happened

    def table(*extra: str) -> str:
        return CliRunner().invoke(cli, [*args, *extra, "--db", str(populated)], obj=Settings(now=lambda: now)).output
    assert table() == table("--table")


@pytest.mark.parametrize("args, exit_code, expected", [
    (["show", "s1"], 0, {"session_id": "s1", "status": "partial", "completed_tasks": 1, "failed_tasks": 1}),
    (["agent", "coder"], 0, {"agent_name": "coder", "executions": 1, "completed": 1, "failed": 0}),
    (["health", "24"], 4, {"status": "unhealthy", "reasons": ["success rate 50.0% is below 80%"]}),  # 1 of 2
])
def test_record_commands_as_json_and_table(populated, invoke, args, exit_code, expected):
    as_json = invoke(*args, "--json")
    assert as_json.exit_code == exit_code, as_json.output
    report = json.loads(as_json.output)
    assert {k: report[k] for k in expected} == expected
    assert invoke(*args).exit_code == exit_code


def test_list_table_is_readable(populated, invoke):
    result = invoke("list")
    assert result.exit_code == 0
    header, rule, row = result.output.splitlines()
    assert header.split()[:6] == ["session", "id", "status", "tasks", "done", "failed"]
    assert row.split()[:6] == ["s1", "partial", "2", "1", "1", "2"]
    assert "0.0100" in row and "build" in row


def test_json_types_booleans_and_numbers(populated, invoke):
    rows = json.loads(invoke("executions", "s1", "--json").output)
    assert [r["agent_session_id"] for r in rows] == ["a1", "a2"]
    assert rows[0]["self_healed"] is False
    assert rows[0]["session_id"] == "s1"
    assert rows[1]["exit_code"] == 1 and rows[1]["error_message"] == "2 tests failed"


@pytest.mark.parametrize("args, message", [
    (["list"], "No orchestrations recorded yet."),
    (["performance"], "No executions recorded yet."),
    (["failures"], "No failed or partial orchestrations recorded yet."),
])
def test_empty_results(db_path, invoke, args, message):
    Tracker(db_path).close()
    assert invoke(*args).output.strip() == message
    assert json.loads(invoke(*args, "--json").output) == []
    header = invoke(*args, "--csv").output.strip()
    assert header.count(",") > 3 and "\n" not in header


def test_performance_shows_formatted_durations_not_raw_floats(db_path, invoke, clock):
    with Tracker(db_path, clock=clock) as t:
        for i, ms in enumerate([500, 700, 800]):
            t.start_agent_execution(f"e{i}", "coder")
            clock.advance(milliseconds=ms)
            t.complete_agent_execution(f"e{i}", "completed")
    out = invoke("performance").output
    assert "667ms" in out and "666.66" not in out


@pytest.mark.parametrize("args", [["show", "nope"], ["executions", "nope"], ["export", "nope"], ["agent", "nobody"]])
def test_unknown_ids_exit_1_with_one_line_error(populated, invoke, args):
    before = dump(populated)
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output
    assert dump(populated) == before


@pytest.mark.parametrize("args", [
    ["health", "0"], ["health", "abc"], ["health", "-3"], ["failures", "abc"], ["failures", "-1"],
    ["cleanup", "-1"], ["cleanup", "x"], ["list", "--since", "whenever"], ["list", "--limit", "-1"],
    ["list", "--status", "weird"], ["health", "--stale-after", "soon"], ["health", "--fail-below", "101"],
])
def test_bad_arguments_exit_2_with_a_clear_message(populated, invoke, args):
    before = dump(populated)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Error" in result.output and "Traceback" not in result.output
    assert dump(populated) == before


@pytest.mark.parametrize("args", [["list"], ["show", "s1"], ["health"], ["performance"], ["failures"],
                                  ["export"], ["cleanup", "30"], ["executions"], ["agent", "x"]])
def test_missing_database_is_an_error_and_no_file_is_created(tmp_path, args):
    from click.testing import CliRunner

    path = tmp_path / "absent.db"
    result = CliRunner().invoke(cli, [*args, "--db", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no monitor database at")
    assert not path.exists()


def test_not_a_database_is_an_error(tmp_path):
    from click.testing import CliRunner

    path = tmp_path / "junk.db"
    path.write_text("just text\n" * 50)
    result = CliRunner().invoke(cli, ["list", "--db", str(path)])
    assert result.exit_code == 1 and "not a monitor database" in result.output
    assert path.read_text() == "just text\n" * 50


def test_db_from_environment(populated, monkeypatch):
    from click.testing import CliRunner

    monkeypatch.setenv("MONITOR_DB", str(populated))
    result = CliRunner().invoke(cli, ["list", "--json"])
    assert [o["session_id"] for o in json.loads(result.output)] == ["s1"]


def test_health_exit_codes_follow_the_verdict(db_path, invoke):
    with Tracker(db_path) as t:
        for i in range(19):
            t.start_agent_execution(f"ok{i}", "a")
            t.complete_agent_execution(f"ok{i}", "completed")
    assert invoke("health", "24").exit_code == 0
    with Tracker(db_path) as t:
        t.start_agent_execution("bad", "a")
        t.complete_agent_execution("bad", "failed")
    degraded = invoke("health", "24", "--warn-below", "99", "--json")
    assert json.loads(degraded.output)["status"] == "degraded"
    assert degraded.exit_code == 3
    assert invoke("health", "24", "--warn-below", "99", "--strict").exit_code == 3  # kept for old scripts
    unhealthy = invoke("health", "24", "--warn-below", "99.5", "--fail-below", "99")
    assert unhealthy.exit_code == 4 and "unhealthy" in unhealthy.output


def test_health_shows_stale_executions(db_path, invoke):
    from monitor.timeutil import utcnow

    with Tracker(db_path, clock=Clock(utcnow() - timedelta(hours=3))) as t:
        t.start_agent_execution("stuck-1", "slowpoke")
    report = json.loads(invoke("health", "24", "--json").output)
    assert report["stale"]["count"] == 1
    assert report["stale"]["executions"][0]["agent_session_id"] == "stuck-1"
    assert "slowpoke" in invoke("health", "24").output


def test_export_writes_only_json_to_stdout_and_file_atomically(populated, invoke, tmp_path):
    result = invoke("export")
    data = json.loads(result.output)
    assert data["orchestrations"][0]["executions"][1]["error_message"] == "2 tests failed"
    target = tmp_path / "e.json"
    result = invoke("export", "--output", str(target))
    assert result.exit_code == 0
    assert json.loads(target.read_text())["orchestrations"][0]["session_id"] == "s1"


def test_cleanup_prints_what_it_deleted(populated, invoke):
    assert invoke("cleanup", "30").output.startswith("Deleted 0 orchestrations and 0 executions")
    result = invoke("cleanup", "0", "--dry-run", "--json")
    assert json.loads(result.output)["orchestrations"] == 1
    assert invoke("cleanup", "0").output.startswith("Deleted 1 orchestration and 2 executions")
    assert json.loads(invoke("list", "--json").output) == []


def test_every_command_has_help_with_an_example(invoke):
    from click.testing import CliRunner

    for name, command in cli.commands.items():
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example" in result.output, name
        assert "--db" in result.output or getattr(command, "commands", None), name


def test_version():
    from click.testing import CliRunner

    from monitor import __version__

    assert CliRunner().invoke(cli, ["--version"]).output.strip() == f"monitor, version {__version__}"


@pytest.mark.parametrize("args, exit_code, check", [
    # Ages and dates before year 1 reach back to the earliest time: everything is listed.
    (["list", "--since", "999999d"], 0, lambda out: [o["session_id"] for o in out] == ["s1"]),
    (["list", "--since", "0001-01-01T00:00:00+14:00"], 0, lambda out: [o["session_id"] for o in out] == ["s1"]),
    (["executions", "--since", "100000w"], 0, lambda out: len(out) == 2),
    # A date past the end of the calendar: nothing started after it.
    (["list", "--since", "9999-12-31T23:59:59-05:00"], 0, lambda out: out == []),
    # Nothing has been in progress for 2,700 years; health is unhealthy for its success rate alone.
    (["health", "24", "--stale-after", "999999d"], 4,
     lambda out: out["status"] == "unhealthy" and out["stale"]["count"] == 0),
    (["cleanup", "1000000", "--dry-run"], 0,
     lambda out: (out["cutoff"], out["orchestrations"], out["executions"]) == ("0001-01-01T00:00:00.000Z", 0, 0)),
])
def test_times_beyond_the_calendar_are_handled_without_a_traceback(populated, invoke, args, exit_code, check):
    result = invoke(*args, "--json")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == exit_code, result.output
    assert check(json.loads(result.output)), result.output


def test_export_to_a_missing_directory_is_a_one_line_error(populated, invoke, tmp_path):
    result = invoke("export", "-o", str(tmp_path / "nowhere" / "x.json"))
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot write") and result.output.count("\n") == 1


def test_negative_numbers_get_the_range_message(populated, invoke):
    result = invoke("cleanup", "-1")
    assert result.exit_code == 2 and "-1 is not in the range x>=0" in result.output


def test_status_with_failed_executions_is_refused(populated, invoke):
    assert invoke("failures", "--executions", "--status", "partial").exit_code == 2
