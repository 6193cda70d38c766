"""The CLI contract of issue 7, part 4: options, --db, -h, limits, formats, messages.

Every test here runs the real CLI (CliRunner, in-process) on a real SQLite file. Reports read "now"
from the test Clock, given to the CLI as CliRunner().invoke(cli, args, obj=Settings(now=clock)).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from monitor import Tracker
from monitor.cli import cli
from monitor.cli.options import Settings

from conftest import T0, Clock


def command_paths(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under `monitor`, as the words that name it."""
    paths = []
    for name, command in group.commands.items():
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
    return paths


ALL_COMMANDS = command_paths()


def run(clock: Clock, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env={"COLUMNS": "120", **(env or {})}).invoke(cli, list(args), input=input,
                                                                  obj=Settings(now=clock), prog_name="monitor")


def copy_of(recorded: tuple[Path, datetime], db_path: Path, clock: Clock) -> Path:
    """A test's own copy of a database recorded once for the module, and the clock where the
    recording left it."""
    path, clock.now = recorded
    shutil.copyfile(path, db_path)
    return db_path


@pytest.fixture(scope="module")
def sessions_recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime]:
    path, clock = tmp_path_factory.mktemp("sessions") / "sessions.db", Clock()
    record_sessions(path, clock)
    return path, clock.now


@pytest.fixture
def sessions(sessions_recorded: tuple[Path, datetime], db_path: Path, clock: Clock) -> Path:
    return copy_of(sessions_recorded, db_path, clock)


def record_sessions(db_path: Path, clock: Clock) -> None:
    """Two orchestrations, 's1' (partial: a completed coder, a failed tester) and 's2' (failed), an
    hour apart, and a lone execution; the clock ends at 14:00:03."""
    with Tracker(db_path, clock=clock) as t:
        for session, statuses in (("s1", ("completed", "failed")), ("s2", ("failed",))):
            t.start_orchestration(session, f"build {session}", total_tasks=len(statuses), git_commit_hash="abc")
            for i, status in enumerate(statuses):
                t.start_agent_execution(f"{session}-{i}", ("coder", "tester")[i], session)
                clock.advance(seconds=1)
                t.complete_agent_execution(f"{session}-{i}", status, "boom" if status == "failed" else None)
            t.complete_orchestration(session)
            t.event("error", f"{session} went wrong", orchestration=session)
            clock.advance(hours=1)
        t.start_agent_execution("lone", "lint")
        t.complete_agent_execution("lone")


# --- mistyped options, negative numbers ------------------------------------------------------

def test_every_command_is_covered():
    assert {"list", "show", "agent", "executions", "health", "performance", "failures", "export", "import",
            "cleanup", "run", "logs", "search", "cost", "tools", "prices", "prices refresh", "hook", "hook install",
            "hook uninstall", "check", "reap", "alert", "metrics", "otel", "otel export", "otel push", "report", "ui",
            "watch"} == {
        " ".join(p) for p in ALL_COMMANDS}


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_a_mistyped_option_gets_no_such_option_with_a_suggestion_on_every_command(clock, path):
    result = run(clock, *path, "--dbb", "x.db")
    assert result.exit_code == 2, result.output
    error = result.output.splitlines()[-1]  # one suggestion, or several: "(Did you mean one of: '--by', '--db'?)"
    assert error.startswith("Error: No such option '--dbb'.") and "Did you mean" in error and "'--db'" in error


@pytest.mark.parametrize("args, option, suggestion", [
    (["health", "--stricct"], "--stricct", "--strict"),
    (["health", "24", "--stricct"], "--stricct", "--strict"),
    (["cleanup", "30", "--dry-rnu"], "--dry-rnu", "--dry-run"),
    (["failures", "--executoins"], "--executoins", "--executions"),
    (["list", "--agnet", "coder"], "--agnet", "--agent"),
    (["run", "--agnet", "x", "--", "true"], "--agnet", "--agent"),
])
def test_a_mistyped_option_is_never_taken_for_an_argument(sessions, clock, args, option, suggestion):
    result = run(clock, *args, "--db", str(sessions))
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1] == f"Error: No such option '{option}'. Did you mean '{suggestion}'?"


@pytest.mark.parametrize("args, message", [
    (["cleanup", "-1"], "Invalid value for 'DAYS': -1 is not in the range x>=0."),
    (["failures", "-5"], "Invalid value for '[LIMIT]': -5 is not in the range 0<=x<=1000000000000."),
    (["health", "-3"], "Invalid value for '[HOURS]': -3 is not a positive number of hours"),
    (["list", "--limit", "-1"], "Invalid value for '--limit': -1 is not in the range 0<=x<=1000000000000."),
])
def test_negative_numbers_get_their_range_error(sessions, clock, args, message):
    result = run(clock, *args, "--db", str(sessions))
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1] == f"Error: {message}"


def test_after_double_dash_an_option_like_word_is_an_argument(sessions, clock):
    result = run(clock, "search", "--db", str(sessions), "--", "-zebra")
    assert result.exit_code == 0, result.output
    assert result.output == "Nothing matches '-zebra'.\n"


# --- --db before and after the command, -h ----------------------------------------------------

#: A command line that works on `sessions` for every command; its database comes from --db.
WORKING = {
    "list": ["list"], "show": ["show", "s1"], "agent": ["agent", "coder"], "executions": ["executions", "s1"],
    "health": ["health", "24", "--fail-below", "0", "--warn-below", "0"], "performance": ["performance"], "failures": ["failures"],
    "export": ["export", "s1"], "cleanup": ["cleanup", "1000", "--dry-run"], "logs": ["logs", "s1"],
    "search": ["search", "wrong"], "cost": ["cost"], "run": ["run", "--agent", "ci", "--", "true"],
    "check": ["check", "--rule", "success_rate=off"], "reap": ["reap", "--dry-run"],
    "alert": ["alert", "--rule", "success_rate=off"],
    "tools": ["tools", "--by", "server"],
}


@pytest.mark.parametrize("name", sorted(WORKING))
def test_db_is_accepted_before_and_after_the_command(sessions, clock, tmp_path, name):
    command, *rest = WORKING[name]
    absent = str(tmp_path / "absent.db")
    after = run(clock, command, "--db", str(sessions), *rest)
    before = run(clock, "--db", str(sessions), command, *rest)
    assert after.exit_code == before.exit_code == 0, (after.output, before.output)
    if name != "run":
        assert after.output == before.output
    # The command's own --db wins over the group's, which wins over $MONITOR_DB.
    assert run(clock, "--db", absent, command, "--db", str(sessions), *rest).exit_code == 0
    assert run(clock, "--db", str(sessions), command, *rest, env={"MONITOR_DB": absent}).exit_code == 0
    if name not in ("run",):  # run creates its database; the reports refuse a missing one
        refused = run(clock, "--db", str(sessions), command, "--db", absent, *rest)
        assert refused.exit_code == 1 and refused.output.startswith("Error: no monitor database at")
        assert run(clock, command, *rest, env={"MONITOR_DB": str(sessions)}).exit_code == 0


@pytest.mark.parametrize("before", [True, False])
def test_db_before_or_after_hook_install_and_uninstall(clock, tmp_path, monkeypatch, before):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    monkeypatch.chdir(project)
    db = str(tmp_path / "pinned.db")
    install = ["--db", db, "hook", "install"] if before else ["hook", "install", "--db", db]
    installed = run(clock, *install)
    assert installed.exit_code == 0, installed.output
    assert db in (project / ".claude" / "settings.local.json").read_text()
    uninstall = ["--db", db, "hook", "uninstall"] if before else ["hook", "uninstall", "--db", db]
    removed = run(clock, *uninstall)
    assert removed.exit_code == 0, removed.output
    assert removed.output.startswith("Removed monitor's hook from ")
    assert db not in (project / ".claude" / "settings.local.json").read_text()


@pytest.mark.parametrize("path", [(), *ALL_COMMANDS], ids=lambda p: " ".join(p) or "monitor")
def test_h_is_help_everywhere(clock, path):
    short, long = run(clock, *path, "-h"), run(clock, *path, "--help")
    assert short.exit_code == long.exit_code == 0
    assert short.output == long.output and short.output.startswith(f"Usage: monitor {' '.join(path)}".rstrip())
    assert "-h, --help" in short.output


# --- machine-readable output is never cut; cut tables say so ----------------------------------

@pytest.fixture(scope="module")
def many_recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime]:
    """55 orchestrations (more than list's table shows by default), each with two failed executions
    (110: more than executions' 100) whose error says 'boom'; recorded once for the module (330
    transactions), with the time the clock had reached."""
    path = tmp_path_factory.mktemp("many") / "many.db"
    clock = Clock()
    with Tracker(path, clock=clock) as t:
        for i in range(55):
            t.start_orchestration(f"o{i:02d}", git_commit_hash="abc")
            for j in range(2):
                t.start_agent_execution(f"o{i:02d}-{j}", "worker", f"o{i:02d}")
                clock.advance(seconds=1)
                t.complete_agent_execution(f"o{i:02d}-{j}", "failed", "boom")
            t.complete_orchestration(f"o{i:02d}")
    return path, clock.now


@pytest.fixture
def many(many_recorded: tuple[Path, datetime], db_path: Path, clock: Clock) -> Path:
    return copy_of(many_recorded, db_path, clock)


def rows_of(result: Result, fmt: str) -> int:
    if fmt == "--json":
        return len(json.loads(result.stdout))
    if fmt == "--csv":
        return len(list(csv.reader(io.StringIO(result.stdout)))) - 1
    if fmt == "--nl":
        return len(result.stdout.splitlines())
    return len(result.stdout.splitlines()) - 2  # the header and its rule


@pytest.mark.parametrize("args, total, shown, note", [
    (["list"], 55, 50, "Showing 50 of 55 orchestrations; --limit 0 for all."),
    (["executions"], 110, 100, "Showing 100 of 110 executions; --limit 0 for all."),
    (["failures"], 55, 50, "Showing 50 of 55 failed or partial orchestrations; --limit 0 for all."),
    (["failures", "--executions"], 110, 50, "Showing 50 of 110 failed executions; --limit 0 for all."),
    (["search", "boom"], 110, 50, "Showing 50 of 110 matches; --limit 0 for all."),
])
def test_the_default_limit_cuts_only_the_table_and_says_so(many, clock, args, total, shown, note):
    table = run(clock, *args, "--db", str(many))
    assert table.exit_code == 0, table.output
    assert rows_of(table, "--table") == shown
    assert table.stderr == note + "\n"
    for fmt in ("--json", "--csv", "--nl"):
        result = run(clock, *args, fmt, "--db", str(many))
        assert (rows_of(result, fmt), result.stderr) == (total, ""), fmt
    everything = run(clock, *args, "--limit", "0", "--db", str(many))
    assert (rows_of(everything, "--table"), everything.stderr) == (total, "")


@pytest.mark.parametrize("fmt", ["--json", "--csv", "--nl", "--table"])
def test_an_explicit_limit_applies_to_every_format(many, clock, fmt):
    result = run(clock, "list", "--limit", "3", fmt, "--db", str(many))
    assert rows_of(result, fmt) == 3
    assert result.stderr == ("Showing 3 of 55 orchestrations; --limit 0 for all.\n" if fmt == "--table" else "")


def test_failures_takes_limit_as_an_option_or_an_argument(many, clock):
    def count(*args: str) -> int:
        result = run(clock, "failures", *args, "--json", "--db", str(many))
        assert result.exit_code == 0, result.output
        return len(json.loads(result.stdout))

    assert (count("--limit", "2"), count("2"), count("2", "--limit", "2"), count("--limit", "0"), count("0")) == (
        2, 2, 2, 55, 55)
    disagree = run(clock, "failures", "2", "--limit", "3", "--db", str(many))
    assert disagree.exit_code == 2 and disagree.output.splitlines()[-1] == (
        "Error: Invalid value for '--limit': LIMIT 2 and --limit 3 disagree: give one")


def test_a_table_that_fits_says_nothing_on_stderr(sessions, clock):
    result = run(clock, "list", "--db", str(sessions))
    assert result.exit_code == 0 and result.stderr == ""


# --- formats ----------------------------------------------------------------------------------

LISTS = [["list", "--status", "failed"], ["executions"], ["performance"], ["failures"], ["failures", "--executions"],
         ["cost"], ["tools"], ["logs", "s0"], ["search", "anything"]]


@pytest.mark.parametrize("args", LISTS, ids=" ".join)
def test_nl_with_no_rows_prints_nothing(db_path, clock, args):
    with Tracker(db_path, clock=clock) as t:
        t.start_orchestration("s0", git_commit_hash="abc")
    result = run(clock, *args, "--nl", "--db", str(db_path))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_fmt_draws_the_table_in_a_tabulate_format(sessions, clock):
    result = run(clock, "executions", "s1", "--fmt", "github", "--db", str(sessions))
    assert result.exit_code == 0, result.output
    assert result.output == """\
| agent session id   | agent name   | status    |   duration |   retries | started at              | error message   |
|--------------------|--------------|-----------|------------|-----------|-------------------------|-----------------|
| s1-0               | coder        | completed |       1.0s |         0 | 2026-11-20 12:00:00 UTC |                 |
| s1-1               | tester       | failed    |       1.0s |         0 | 2026-11-20 12:00:01 UTC | boom            |
"""
    assert run(clock, "executions", "s1", "-t", "--db", str(sessions)).output == \
        run(clock, "executions", "s1", "--db", str(sessions)).output


def test_health_as_a_github_step_summary(sessions, clock):
    result = run(clock, "health", "24", "--fmt", "github", "--db", str(sessions))
    lines = result.output.splitlines()
    assert result.exit_code == 4
    assert lines[:5] == ["| field        | value                           |",
                         "|--------------|---------------------------------|",
                         "| status       | unhealthy                       |",
                         "| reasons      | success rate 50.0% is below 80% |",
                         "| window hours | 24                              |"]
    assert lines[lines.index("Executions"):][:3] == ["Executions", "", "| field          | value   |"]
    assert "| success rate   | 50.0%   |" in lines


@pytest.mark.parametrize("args, message", [
    (["list", "--fmt", "gihtub"], "Error: Invalid value for '--fmt': 'gihtub' is not a table format"
                                  " (did you mean 'github'?); choose from "),
    (["list", "--json", "--fmt", "grid"], "Error: --fmt draws a table: it cannot go with --json"),
])
def test_bad_table_formats_are_refused(sessions, clock, args, message):
    result = run(clock, *args, "--db", str(sessions))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].startswith(message)


def test_long_text_is_shortened_to_the_terminal_and_empty_columns_dropped(db_path, clock):
    with Tracker(db_path, clock=clock) as t:
        t.start_agent_execution("e1", "coder")
        t.complete_agent_execution("e1", "failed", "first line\n" + "x" * 300)
    table = run(clock, "executions", "--db", str(db_path), env={"COLUMNS": "110"}).output.splitlines()
    assert max(len(line) for line in table) == 110 and table[2].endswith("x…")
    assert table[0].split() == ["agent", "session", "id", "agent", "name", "status", "duration", "retries",
                                "started", "at", "error", "message"]  # no task id, exit code, cost
    wide = run(clock, "executions", "--db", str(db_path), env={"COLUMNS": "500"}).output.splitlines()
    assert wide[2].endswith(" " + "x" * 300)
    assert "task_id" in json.loads(run(clock, "executions", "--json", "--db", str(db_path)).output)[0]


def test_tabulate_is_imported_only_to_draw_a_table(sessions):
    def imports(*args: str) -> str:
        return subprocess.run([sys.executable, "-X", "importtime", "-m", "monitor", *args, "--db", str(sessions)],
                              capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"}).stderr

    assert "tabulate" not in imports("health", "--json") and "wcwidth" not in imports("list", "--csv")
    assert "| tabulate" in imports("health")


# --- messages ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["list", "--status", "running"], "No orchestrations with status 'running'."),
    (["list", "--status", "failed", "--since", "2026-11-21"],
     "No orchestrations with status 'failed' since 2026-11-21 00:00:00 UTC."),
    (["list", "--agent", "nobody", "--since", "1h"], "No orchestrations with agent 'nobody' since 2026-11-20 13:00:03 UTC."),
    (["executions", "s1", "--status", "in_progress"], "No executions in 's1' with status 'in_progress'."),
    (["executions", "--agent", "nobody"], "No executions with agent 'nobody'."),
    (["performance", "--since", "2026-11-21"], "No executions since 2026-11-21 00:00:00 UTC."),
    (["failures", "--status", "partial", "--agent", "coder"], "No orchestrations with status 'partial' and agent 'coder'."),
    (["failures", "--since", "2026-11-21"], "No failed or partial orchestrations since 2026-11-21 00:00:00 UTC."),
    (["failures", "--executions", "--agent", "lint"], "No failed executions with agent 'lint'."),
    (["logs", "s1", "--type", "tool_call"], "No events for 's1' with type 'tool_call'."),
    (["search", "nothing like it"], "Nothing matches 'nothing like it'."),
    (["search", "boom", "--since", "2026-11-21"], "Nothing matches 'boom' since 2026-11-21 00:00:00 UTC."),
    (["cost"], "No tokens or cost recorded yet."),
    (["tools", "--since", "2026-11-21"], "No tool calls since 2026-11-21 00:00:00 UTC."),
])
def test_nothing_found_names_the_filters(sessions, clock, args, message):
    result = run(clock, *args, "--db", str(sessions))
    assert (result.exit_code, result.output) == (0, message + "\n")


def test_health_refuses_fail_below_above_warn_below(sessions, clock):
    result = run(clock, "health", "--warn-below", "80", "--fail-below", "90", "--db", str(sessions))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: Invalid value for '--fail-below': 90 is above --warn-below (80): a success rate cannot be"
        " unhealthy before it is degraded")
    assert run(clock, "health", "--warn-below", "90", "--fail-below", "90", "--db", str(sessions)).exit_code == 4


@pytest.mark.parametrize("hours, window", [("24", 24), ("24h", 24), ("7d", 168), ("90m", 1.5), ("1.5", 1.5)])
def test_health_takes_hours_or_an_age(sessions, clock, hours, window):
    result = run(clock, "health", hours, "--json", "--db", str(sessions))
    report = json.loads(result.stdout)
    assert report["window_hours"] == window
    assert report["since"] == (clock.now - timedelta(hours=window)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.parametrize("hours, message", [
    ("soon", "'soon' is neither a number of hours nor an age like 24h, 7d or 90m"),
    ("0", "0 is not a positive number of hours"),
    ("6000w", "6000w is more than 100 years (876,000 hours)"),
])
def test_health_refuses_nonsense_hours_in_one_line(sessions, clock, hours, message):
    result = run(clock, "health", hours, "--db", str(sessions))
    assert result.exit_code == 2
    assert [line for line in result.output.splitlines() if line.startswith("Error")] == [
        f"Error: Invalid value for '[HOURS]': {message}"]


def test_singular_and_plural(sessions, clock, tmp_path):
    exported = run(clock, "export", "s2", "-o", str(tmp_path / "s2.json"), "--db", str(sessions))
    assert exported.output == f"Exported 1 orchestration and 1 execution to {tmp_path / 's2.json'}.\n"
    cut = run(clock, "list", "--limit", "1", "--db", str(sessions))
    assert cut.stderr == "Showing 1 of 2 orchestrations; --limit 0 for all.\n"
    clock.now = T0 + timedelta(days=1, hours=2, seconds=3)
    assert run(clock, "cleanup", "1", "--dry-run", "--db", str(sessions)).output == (
        "Would delete 2 orchestrations and 3 executions that started before 2026-11-20 14:00:03 UTC."
        " Would roll up 1 day first (kept for trends).\n")
    clock.now = T0 + timedelta(days=1, hours=1, seconds=2)  # s2 started at 13:00:02: not before
    assert run(clock, "cleanup", "1", "--db", str(sessions)).output == (
        "Deleted 1 orchestration and 2 executions that started before 2026-11-20 13:00:02 UTC."
        " Rolled up 1 day first (kept for trends).\n")


def test_export_to_dash_writes_to_stdout(sessions, clock, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    to_dash = run(clock, "export", "s1", "-o", "-", "--db", str(sessions))
    plain = run(clock, "export", "s1", "--db", str(sessions))
    assert to_dash.exit_code == 0 and to_dash.stderr == ""
    without_time = [{k: v for k, v in json.loads(r.stdout).items() if k != "exported_at"} for r in (to_dash, plain)]
    assert without_time[0] == without_time[1]
    assert without_time[0]["orchestrations"][0]["session_id"] == "s1"
    assert not (tmp_path / "-").exists()


def test_cost_by_model_names_executions_without_a_model_none(db_path, clock):
    with Tracker(db_path, clock=clock) as t:
        t.start_agent_execution("e1", "coder")
        t.complete_agent_execution("e1", input_tokens=10)
    table = run(clock, "cost", "--by", "model", "--db", str(db_path)).output.splitlines()
    assert [line.split()[0] for line in table[2:]] == ["(none)", "total"]
    assert json.loads(run(clock, "cost", "--by", "model", "--json", "--db", str(db_path)).output)[0]["model"] is None


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for word in path:
        assert isinstance(command, click.Group)
        command = command.commands[word]
    return command


FILE_OPTIONS = [(path, param.opts[-1]) for path in ALL_COMMANDS for param in _command(path).params
                if isinstance(param, click.Option) and isinstance(param.type, click.Path)]


def test_every_file_option_is_found():  # the list below is not empty by accident
    assert {(("report",), "--html"), (("export",), "--output"), (("check",), "--junit"),
            (("list",), "--db")} <= set(FILE_OPTIONS)


@pytest.mark.parametrize("path, option", FILE_OPTIONS, ids=[f"{' '.join(p)} {o}" for p, o in FILE_OPTIONS])
def test_a_file_name_with_a_nul_is_a_one_line_usage_error_for_every_file_option(clock, path, option):
    result = run(clock, *path, option, "a\x00b")
    last = result.output.splitlines()[-1]
    assert result.exit_code == 2 and last.startswith("Error: Invalid value for ") and last.endswith(
        f"'{option}': 'a\\x00b' is not a file name (it holds a NUL character)"), result.output
