"""`monitor check`: rules with warn and fail levels, from defaults, config files and flags; its
verdict as exit codes, a table, JSON, Markdown and JUnit XML; `health` judging alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor import Tracker, open_db
from monitor.alerts.check import check
from monitor.alerts.rules import Config, load_config, parse_flags
from monitor.cli import cli
from monitor.cli.options import Settings

from conftest import T0, Clock


def invoke_at(clock: Clock, db_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env={"GITHUB_STEP_SUMMARY": None, **(env or {})}).invoke(  # type: ignore[dict-item]
        cli, [*args, "--db", str(db_path)], obj=Settings(now=clock))


def record(t: Tracker, clock: Clock, agent: str, status: str = "completed", *, seconds: float = 1,
           session: str | None = None, cost: float | None = None, name: str | None = None) -> None:
    """One execution of `agent` that takes `seconds`, ending `status`."""
    record.count = getattr(record, "count", 0) + 1  # type: ignore[attr-defined]
    execution = name or f"{agent}-{record.count}"  # type: ignore[attr-defined]
    t.start_agent_execution(execution, agent, orchestration=session)
    clock.advance(seconds=seconds)
    t.complete_agent_execution(execution, status, "boom" if status == "failed" else None, cost_usd=cost)


@pytest.fixture
def mixed(db_path: Path, clock: Clock) -> Path:
    """Session 'ci-1': coder 2 completed (10s, 20s, $0.50 each), tester 1 completed (5s) and 1 failed
    (30s); a lone lint execution 1s; and one 'stuck' execution started 3h before the end."""
    with Tracker(db_path, clock=clock) as t:
        t.start_agent_execution("stuck", "coder")
        clock.advance(hours=3)
        t.start_orchestration("ci-1", "build", total_tasks=4)
        record(t, clock, "coder", seconds=10, session="ci-1", cost=0.5)
        record(t, clock, "coder", seconds=20, session="ci-1", cost=0.5)
        record(t, clock, "tester", seconds=5, session="ci-1")
        record(t, clock, "tester", "failed", seconds=30, session="ci-1")
        t.complete_orchestration("ci-1")
        record(t, clock, "lint", seconds=1)
    return db_path


def results(report: dict) -> dict[str, str]:
    return {r["rule"]: r["status"] for r in report["rules"]}


def run_check(db_path: Path, clock: Clock, *flags: str, session: str | None = None) -> dict:
    with open_db(db_path, create=False) as db:
        return check(db, parse_flags(Config(), flags), session=session, now=clock())


# --- the rules --------------------------------------------------------------------------------

def test_defaults_are_healths_rules(mixed, clock):
    report = run_check(mixed, clock)
    assert results(report) == {"stale": "warn", "success_rate": "warn"}  # 4 of 5: 80%, not below 80
    assert report["verdict"] == "warn" and report["exit_code"] == 3
    assert [r["message"] for r in report["rules"]] == ["stale executions 1 is above 0",
                                                       "success rate 80% is below 95%"]


@pytest.mark.parametrize("flag, status, message", [
    ("success_rate=90/85", "fail", "success rate 80% is below 85%"),
    ("success_rate=90/70", "warn", "success rate 80% is below 90%"),
    ("success_rate=80/70", "pass", "success rate 80%"),
    ("p95_duration=20s/40s", "warn", "p95 duration 30.0s is above 20.0s"),
    ("p95_duration=10s/25s", "fail", "p95 duration 30.0s is above 25.0s"),
    ("p95_duration=30s", "pass", "p95 duration 30.0s"),
    ("cost=0.5/2", "warn", "cost $1 is above $0.5"),
    ("cost=/0.99", "fail", "cost $1 is above $0.99"),
    ("stale=/0", "fail", "stale executions 1 is above 0"),
    ("stale=1/2", "pass", "stale executions 1"),
    ("failed_executions=0/3", "warn", "failed executions 1 is above 0"),
    ("failed_orchestrations=/0", "fail", "failed orchestrations 1 is above 0"),
    ("activity=0/1h", "warn", "time since the last execution 1.0s is above 0ms"),
    ("activity=1m", "pass", "time since the last execution 1.0s"),
])
def test_each_rule_at_each_level(mixed, clock, flag, status, message):
    report = run_check(mixed, clock, "success_rate=off", "stale=off", flag)
    assert [(r["status"], r["message"]) for r in report["rules"]] == [(status, message)]
    assert report["verdict"] == status


def test_activity_is_a_dead_mans_switch(db_path, clock):
    with Tracker(db_path, clock=clock) as t:
        t.start_orchestration("empty")  # an orchestration is no execution
    assert results(run_check(db_path, clock, "activity=6h/24h")) == {
        "activity": "fail", "stale": "pass", "success_rate": "pass"}
    with Tracker(db_path, clock=clock) as t:
        record(t, clock, "a")
    clock.advance(hours=7)
    assert results(run_check(db_path, clock, "activity=6h/24h"))["activity"] == "warn"
    clock.advance(hours=20)
    report = run_check(db_path, clock, "activity=6h/24h")
    assert report["verdict"] == "fail" and report["rules"][0]["message"] == (
        "time since the last execution 1d 03h is above 1d 00h")


def test_rules_per_agent_and_for_each_agent(mixed, clock):
    report = run_check(mixed, clock, "success_rate=off", "stale=off", "agents.tester.success_rate=90/60",
                       "agents.*.p95_duration=15s/25s", "agents.nobody.cost=/1")
    assert [(r["rule"], r["status"], r["message"]) for r in report["rules"]] == [
        ("agents.coder.p95_duration", "warn", "coder: p95 duration 20.0s is above 15.0s"),
        ("agents.lint.p95_duration", "pass", "lint: p95 duration 1.0s"),
        ("agents.tester.p95_duration", "fail", "tester: p95 duration 30.0s is above 25.0s"),
        ("agents.nobody.cost", "pass", "nobody: cost: nothing to measure"),
        ("agents.tester.success_rate", "fail", "tester: success rate 50% is below 60%"),
    ]


def test_a_session_is_checked_on_its_own(mixed, clock):
    report = run_check(mixed, clock, "cost=/0.9", "duration=2m/5m", "failed_executions=/0", "activity=1h",
                       "agents.*.success_rate=/60", session="ci-1")
    assert (report["scope"], report["session"], report["verdict"]) == ("session", "ci-1", "fail")
    assert [(r["rule"], r["status"], r["value"]) for r in report["rules"]] == [
        ("activity", "skip", None),  # a window's rule: not for a session
        ("cost", "fail", 1.0),
        ("duration", "pass", 65000),
        ("failed_executions", "fail", 1),
        ("stale", "pass", 0),  # the stuck execution is not this session's
        ("success_rate", "fail", 75.0),
        ("agents.coder.success_rate", "pass", 100.0),
        ("agents.tester.success_rate", "fail", 50.0),
    ]


def test_health_and_check_reach_the_same_verdict(db_path, clock):
    def verdicts() -> tuple[str, int, int]:
        health = invoke_at(clock, db_path, "health", "--json")
        checked = invoke_at(clock, db_path, "check", "--json")
        return json.loads(health.output)["status"], health.exit_code, checked.exit_code

    with Tracker(db_path, clock=clock) as t:
        for _ in range(19):
            record(t, clock, "a")
        assert verdicts() == ("healthy", 0, 0)
        record(t, clock, "a", "failed")  # 95%: not below
        record(t, clock, "a", "failed")  # 90.5%
        assert verdicts() == ("degraded", 3, 3)
        for _ in range(4):
            record(t, clock, "a", "failed")
        assert verdicts() == ("unhealthy", 4, 4)


def test_health_warns_on_stale_executions_as_check_does(db_path, clock):
    with Tracker(db_path, clock=clock) as t:
        t.start_agent_execution("stuck", "a")
    clock.advance(hours=2)
    assert invoke_at(clock, db_path, "health").exit_code == invoke_at(clock, db_path, "check").exit_code == 3


# --- config files and flags -------------------------------------------------------------------

CONFIG = """\
window = "7d"
stale_after = "2h"

[rules]
success_rate = { warn = 99, fail = 50 }
stale = false
cost = 0.75

[rules.agents.tester]
p95_duration = { warn = "10s" }
"""


@pytest.mark.parametrize("name, text", [
    ("monitor.toml", CONFIG),
    ("pyproject.toml", "[project]\nname = 'x'\n\n[tool.monitor]\n" + CONFIG.replace("[rules", "[tool.monitor.rules")),
])
def test_rules_from_a_config_file(mixed, clock, tmp_path, monkeypatch, name, text):
    (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    result = invoke_at(clock, mixed, "check", "--json")
    report = json.loads(result.output)
    assert (result.exit_code, report["config"], report["window_hours"], report["stale_after_ms"]) == (
        4, str(Path(name)), 168, 7_200_000)
    assert {r["rule"]: (r["warn"], r["fail"], r["status"]) for r in report["rules"]} == {
        "cost": (None, 0.75, "fail"), "success_rate": (99, 50, "warn"),
        "agents.tester.p95_duration": (10_000, None, "warn")}
    flagged = invoke_at(clock, mixed, "check", "--json", "--rule", "cost=off", "12")  # flags win
    assert json.loads(flagged.output)["window_hours"] == 12 and flagged.exit_code == 3


def test_a_pyproject_without_tool_monitor_means_the_defaults(mixed, clock, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(tmp_path)
    assert json.loads(invoke_at(clock, mixed, "check", "--json").output)["config"] is None


@pytest.mark.parametrize("name, text, error", [
    ("monitor.toml", "[rules\n", "monitor.toml: not valid TOML: Expected ']' at the end of a table declaration"
                                 " (at line 1, column 7)"),
    ("monitor.toml", "windw = '1h'\n", "monitor.toml: windw: unknown key; allowed: window, stale_after, rules"),
    ("monitor.toml", "[rules]\nsucess_rate = 90\n", "monitor.toml: rules.sucess_rate: unknown rule; allowed:"
     " success_rate, p95_duration, cost, stale, failed_executions, failed_orchestrations, activity, duration,"
     " agents.NAME.RULE"),
    ("monitor.toml", "[rules]\nsuccess_rate = { warn = 90, fial = 80 }\n",
     "monitor.toml: rules.success_rate.fial: unknown key; allowed: warn, fail"),
    ("monitor.toml", "[rules]\nsuccess_rate = 120\n",
     "monitor.toml: rules.success_rate: 120 is not a percentage from 0 to 100"),
    ("monitor.toml", "[rules]\nsuccess_rate = { warn = 80, fail = 90 }\n",
     "monitor.toml: rules.success_rate: fail level 90% is above warn level 80%: a rule cannot fail before it warns"),
    ("monitor.toml", "[rules]\np95_duration = 'soon'\n",
     "monitor.toml: rules.p95_duration: 'soon' is not a duration; allowed: an age like '90s', '10m', '2h' or '7d'"),
    ("monitor.toml", "[rules]\nstale = 1.5\n", "monitor.toml: rules.stale: 1.5 is not a whole number, 0 or more"),
    ("monitor.toml", "[rules.agents.tests]\nactivity = '1h'\n", "monitor.toml: rules.agents.tests.activity:"
     " unknown rule for an agent; allowed: success_rate, p95_duration, cost, failed_executions"),
    ("pyproject.toml", "[tool.monitor.rules]\ncost = -1\n",
     "pyproject.toml: tool.monitor.rules.cost: -1 is not an amount of USD, 0 or more"),
    ("monitor.toml", "window = 0\n", "monitor.toml: window: the window must be longer than 0"),
])
def test_a_bad_config_is_a_one_line_usage_error(mixed, clock, tmp_path, monkeypatch, name, text, error):
    (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    result = invoke_at(clock, mixed, "check")
    assert (result.exit_code, result.output) == (2, f"Error: {error}\n")


@pytest.mark.parametrize("flag, error", [
    ("success_rate", "--rule: 'success_rate': write NAME=WARN/FAIL (e.g. success_rate=95/80, cost=/20,"
                     " agents.tests.p95_duration=5m/15m, stale=off)"),
    ("cost=abc", "--rule: cost: 'abc' is not an amount of USD, 0 or more"),
    ("agents.p95_duration=1s", "--rule: agents.p95_duration: an agent's rule is named agents.NAME.RULE"
                               " (NAME or \"*\": each agent)"),
    ("p95_duration=30m/10m", "--rule: p95_duration: fail level 10m 00s is below warn level 30m 00s: a rule"
                             " cannot fail before it warns"),
])
def test_a_bad_rule_flag_is_a_one_line_usage_error(mixed, clock, flag, error):
    result = invoke_at(clock, mixed, "check", "--rule", flag)
    assert (result.exit_code, result.output) == (2, f"Error: {error}\n")


def test_an_explicit_config_file_that_is_missing_is_a_usage_error(mixed, clock, tmp_path):
    result = invoke_at(clock, mixed, "check", "--config", str(tmp_path / "nope.toml"))
    assert result.exit_code == 2
    assert result.output == f"Error: {tmp_path / 'nope.toml'}: cannot read it (No such file or directory)\n"


def test_load_config_keeps_defaults_it_does_not_name(tmp_path):
    path = tmp_path / "monitor.toml"
    path.write_text("[rules]\ncost = 5\n")
    config = load_config(path)
    assert sorted(config.rules) == ["cost", "stale", "success_rate"]
    assert (config.window_hours, config.stale_after) == (24, timedelta(hours=1))


# --- exit codes and outputs -------------------------------------------------------------------

def test_exit_codes(mixed, clock, tmp_path):
    assert invoke_at(clock, mixed, "check", "--rule", "stale=off", "--rule", "success_rate=80/70").exit_code == 0
    assert invoke_at(clock, mixed, "check").exit_code == 3
    assert invoke_at(clock, mixed, "check", "--rule", "success_rate=/90").exit_code == 4
    missing = invoke_at(clock, tmp_path / "absent.db", "check")
    assert missing.exit_code == 1 and missing.output.startswith("Error: no monitor database at")
    unknown = invoke_at(clock, mixed, "check", "--session", "nope")
    assert unknown.exit_code == 1 and unknown.output.startswith("Error: ")


def test_the_table(mixed, clock):
    result = invoke_at(clock, mixed, "check", "--rule", "p95_duration=20s/1m")
    assert result.output == """\
WARN: 3 warnings; 3 rules checked over the last 24h (since 2026-11-19 15:01:06 UTC)

rule            value     warn      fail  status
------------  -------  -------  --------  --------
p95_duration    30.0s  > 20.0s  > 1m 00s  WARN
stale               1      > 0            WARN
success_rate      80%    < 95%     < 80%  WARN

WARN  p95 duration 30.0s is above 20.0s
WARN  stale executions 1 is above 0
WARN  success rate 80% is below 95%
"""


def test_markdown_goes_to_the_step_summary_and_to_a_file(mixed, clock, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    result = invoke_at(clock, mixed, "check", "--session", "ci-1", "--markdown", str(tmp_path / "check.md"),
                       env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 4
    written = (tmp_path / "check.md").read_text()
    assert summary.read_text() == "# earlier step\n" + written
    assert written == """\
### ❌ monitor check: FAIL: 1 rule failing; 2 rules checked over session ci-1 (since 2026-11-20 15:00:00 UTC)

| rule | value | warn | fail | status |
|---|---:|---:|---:|---|
| `stale` | 0 | > 0 |  | ✅ pass |
| `success_rate` | 75% | < 95% | < 80% | ❌ fail |
"""


def test_junit_xml_has_one_test_case_per_rule_and_failures_as_failures(mixed, clock, tmp_path):
    path = tmp_path / "check.xml"
    result = invoke_at(clock, mixed, "check", "--session", "ci-1", "--junit", str(path), "--rule", "cost=0.5/2",
                       "--rule", "activity=1h")
    assert result.exit_code == 4
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures")) == ("4", "1")
    [suite] = root
    assert suite.tag == "testsuite"
    assert {k: suite.get(k) for k in ("name", "tests", "failures", "errors", "skipped")} == {
        "name": "monitor check", "tests": "4", "failures": "1", "errors": "0", "skipped": "1"}
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == ["activity", "cost", "stale", "success_rate"]
    assert all(case.get("classname") == "monitor.check" for case in cases.values())
    [failure] = cases["success_rate"].findall("failure")
    assert failure.get("message") == "success rate 75% is below 80%"
    assert cases["activity"].find("skipped") is not None
    assert cases["cost"].find("failure") is None and cases["cost"].findtext("system-out") == "WARN: cost $1 is above $0.5"
    assert cases["stale"].findtext("system-out") == "PASS: stale executions 0"


def test_json(mixed, clock):
    report = json.loads(invoke_at(clock, mixed, "check", "--json", "--session", "ci-1").output)
    assert {k: report[k] for k in ("verdict", "exit_code", "scope", "session", "window_hours")} == {
        "verdict": "fail", "exit_code": 4, "scope": "session", "session": "ci-1", "window_hours": None}
    assert report["rules"][1] == {
        "rule": "success_rate", "agent": None, "measure": "success_rate", "unit": "percent", "value": 75.0,
        "warn": 95, "fail": 80, "status": "fail", "message": "success rate 75% is below 80%"}


# --- end to end -------------------------------------------------------------------------------

def monitor(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_a_ci_job_gates_on_its_session(tmp_path):
    """As the project's workflow does: record the steps, then `check --session` with the repository's
    monitor.toml, a step summary and a JUnit file, each a process of its own."""
    db = str(tmp_path / "ci.db")
    (tmp_path / "monitor.toml").write_text("[rules]\nfailed_executions = 0\nduration = '10m'\n")
    env = {"MONITOR_DB": db, "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    assert monitor("run", "--agent", "lint", "--session", "ci-9", "--", "true", cwd=tmp_path, env=env).returncode == 0
    passed = monitor("check", "--session", "ci-9", "--junit", "junit.xml", cwd=tmp_path, env=env)
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.startswith("PASS: 4 rules checked over session ci-9")
    assert monitor("run", "--agent", "tests", "--session", "ci-9", "--", "false", cwd=tmp_path, env=env).returncode == 1
    failed = monitor("check", "--session", "ci-9", "--junit", "junit.xml", cwd=tmp_path, env=env)
    assert failed.returncode == 4, failed.stderr
    assert "FAIL  failed executions 1 is above 0" in failed.stdout
    assert ET.parse(tmp_path / "junit.xml").getroot().get("failures") == "2"  # failed executions, success rate
    assert (tmp_path / "summary.md").read_text().count("monitor check") == 2


def test_the_projects_workflow_gates_on_its_own_session():
    workflow = (Path(__file__).resolve().parent.parent / ".github" / "workflows" / "ci.yml").read_text()
    assert 'monitor check --session "ci-${{ github.run_id }}-${{ matrix.python-version }}"' in workflow
    assert "--junit monitor-check.xml" in workflow


@pytest.mark.parametrize("option", ["--config", "--markdown", "--junit"])
def test_a_file_name_with_a_nul_is_a_one_line_error(mixed, clock, option):
    result = invoke_at(clock, mixed, "check", option, "a\x00b")
    assert (result.exit_code, result.output.splitlines()[-1]) == (
        2, f"Error: Invalid value for '{option}': 'a\\x00b' is not a file name (it holds a NUL character)")
