"""`monitor alert`: check's rules, notified on change (fire, repeat, escalate, resolve) to a real
HTTP server on 127.0.0.1, Slack's shape, a command or stdout; failed deliveries retried, reported
and sent again by the next run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor import Tracker, open_db
from monitor.alerts.notify import claim, give_back
from monitor.cli import cli
from monitor.cli.options import Settings

from conftest import Clock, Hook


def record(db_path: Path, clock: Clock, completed: int = 0, failed: int = 0) -> None:
    with Tracker(db_path, clock=clock) as t:
        for status, count in (("completed", completed), ("failed", failed)):
            for _ in range(count):
                record.n = getattr(record, "n", 0) + 1  # type: ignore[attr-defined]
                name = f"e{record.n}"  # type: ignore[attr-defined]
                t.start_agent_execution(name, "agent")
                clock.advance(seconds=1)
                t.complete_agent_execution(name, status)


def alert(clock: Clock, db_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["alert", *args, "--db", str(db_path), "--backoff", "0.01s"],
                              obj=Settings(now=clock))


def sent(hook: Hook) -> list[tuple[str, str, str]]:
    """(kind, rule, status) of every alert the hook received, then forgets them."""
    found = [(a["kind"], a["rule"], a["status"]) for body in hook.bodies() for a in body["alerts"]]
    hook.received.clear()
    return found


def test_fire_repeat_escalate_and_resolve(db_path, clock, hook):
    record(db_path, clock, completed=19)
    assert alert(clock, db_path, "--webhook", hook.url).exit_code == 0
    assert sent(hook) == []  # everything passes: nothing to say
    record(db_path, clock, failed=2)  # 19 of 21: 90.5%, warn
    assert alert(clock, db_path, "--webhook", hook.url).exit_code == 0
    assert sent(hook) == [("firing", "success_rate", "warn")]
    assert alert(clock, db_path, "--webhook", hook.url).exit_code == 0
    assert sent(hook) == []  # the same alert, within --repeat
    clock.advance(minutes=61)
    alert(clock, db_path, "--webhook", hook.url)
    assert sent(hook) == [("repeated", "success_rate", "warn")]
    record(db_path, clock, failed=4)  # 19 of 25: 76%, fail
    alert(clock, db_path, "--webhook", hook.url)
    assert sent(hook) == [("escalated", "success_rate", "fail")]
    record(db_path, clock, completed=200)
    alert(clock, db_path, "--webhook", hook.url)
    assert sent(hook) == [("resolved", "success_rate", "pass")]
    clock.advance(hours=5)
    alert(clock, db_path, "--webhook", hook.url)
    assert sent(hook) == []  # resolved once


def test_the_generic_json_and_the_slack_shape(db_path, clock, hook):
    record(db_path, clock, completed=1, failed=1)
    result = alert(clock, db_path, "--webhook", f"{hook.url}/generic", "--slack", f"{hook.url}/slack")
    assert result.exit_code == 0, result.output
    (generic_path, generic), (slack_path, slack) = hook.received
    assert (generic_path, slack_path) == ("/generic", "/slack")
    assert {k: generic[k] for k in ("source", "verdict", "scope", "session")} == {
        "source": "monitor", "verdict": "fail", "scope": "window", "session": None}
    assert generic["alerts"] == [{
        "kind": "firing", "key": "window success_rate", "rule": "success_rate", "status": "fail",
        "previous": "pass", "message": "success rate 50% is below 80%", "value": 50.0, "warn": 95, "fail": 80,
        "scope": "window", "session": None, "at": "2026-11-20T12:00:02.000Z"}]
    assert slack == {"text": "monitor: FAIL (last 24h)", "attachments": [
        {"color": "danger", "text": "FAIL (firing) success_rate: success rate 50% is below 80%"}]}


def test_a_failing_webhook_is_retried_with_backoff(db_path, clock, hook):
    record(db_path, clock, failed=1)
    hook.codes = [500, 503]
    result = alert(clock, db_path, "--webhook", hook.url)
    assert result.exit_code == 0, result.output
    assert len(hook.received) == 3 and sent(hook) == [("firing", "success_rate", "fail")] * 3


def test_an_undelivered_alert_is_reported_and_sent_by_the_next_run(db_path, clock, hook):
    record(db_path, clock, failed=1)
    hook.codes = [500] * 3
    failed = alert(clock, db_path, "--webhook", hook.url, "--retries", "2")
    assert failed.exit_code == 1
    assert failed.output == (f"Error: webhook {hook.url} failed after 3 attempts: HTTP 500 Internal Server Error"
                             " (the alerts will be sent again by the next run)\n")
    assert len(sent(hook)) == 3
    assert alert(clock, db_path, "--webhook", hook.url).exit_code == 0
    assert sent(hook) == [("firing", "success_rate", "fail")]


def test_a_refused_request_is_not_retried(db_path, clock, hook):
    record(db_path, clock, failed=1)
    hook.codes = [400]
    result = alert(clock, db_path, "--webhook", hook.url)
    assert result.exit_code == 1 and "failed after 1 attempt: HTTP 400 Bad Request" in result.output
    assert len(hook.received) == 1


def test_exec_gets_the_alerts_on_stdin(db_path, clock, tmp_path):
    record(db_path, clock, failed=1)
    out = tmp_path / "alert.json"
    command = f"{sys.executable} -c \"import sys; open(sys.argv[1], 'w').write(sys.stdin.read())\" {out}"
    assert alert(clock, db_path, "--exec", command).exit_code == 0
    assert [a["rule"] for a in json.loads(out.read_text())["alerts"]] == ["success_rate"]
    failing = alert(clock, db_path, "--exec", "false", "--repeat", "0s")
    assert failing.exit_code == 1 and failing.output.startswith("Error: --exec 'false' failed after 4 attempts: exit code 1")


def test_stdout_when_no_destination_is_given(db_path, clock):
    record(db_path, clock, completed=1, failed=1)
    first = alert(clock, db_path, "--rule", "stale=off")
    assert (first.exit_code, first.output) == (0, "FAIL (firing) success_rate: success rate 50% is below 80%\n")
    assert alert(clock, db_path).output == ""
    as_json = alert(clock, db_path, "--json", "--repeat", "0s")
    assert json.loads(as_json.output)["alerts"][0]["kind"] == "repeated"


def test_a_session_has_alerts_of_its_own(db_path, clock, hook):
    with Tracker(db_path, clock=clock) as t:
        t.start_agent_execution("x", "a", "ci-1")
        t.complete_agent_execution("x", "failed")
    alert(clock, db_path, "--webhook", hook.url)
    alert(clock, db_path, "--webhook", hook.url, "--session", "ci-1")
    assert [a["key"] for body in hook.bodies() for a in body["alerts"]] == [
        "window success_rate", "session ci-1 success_rate"]


def test_a_failed_delivery_gives_back_only_what_no_later_run_has_claimed(db_path, clock):
    """Run A claims 'firing warn' and its webhook fails; meanwhile run B has claimed and sent
    'escalated fail'. A gives back nothing of B's: the next run has nothing new to send."""
    def report(status: str) -> dict:
        return {"session": None, "scope": "window", "rules": [
            {"rule": "success_rate", "status": status, "message": f"success rate is {status}", "value": 1.0,
             "warn": 95, "fail": 80}]}

    record(db_path, clock, completed=1)
    with open_db(db_path) as db:
        a = claim(db, report("warn"), clock(), timedelta(hours=1))
        b = claim(db, report("fail"), clock.advance(seconds=1), timedelta(hours=1))
        assert [[(x["kind"], x["status"]) for x in alerts] for alerts, _ in (a, b)] == [
            [("firing", "warn")], [("escalated", "fail")]]
        give_back(db, *a)
        assert claim(db, report("fail"), clock.advance(seconds=1), timedelta(hours=1))[0] == []
        give_back(db, *b)  # B's own claim, given back: sent again by the next run
        assert [x["kind"] for x in claim(db, report("fail"), clock(), timedelta(hours=1))[0]] == ["escalated"]


@pytest.mark.slow
def test_alert_end_to_end_as_processes(tmp_path, hook):
    db = str(tmp_path / "m.db")
    env = {**os.environ, "MONITOR_DB": db}

    def monitor(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "monitor", *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)

    assert monitor("run", "--agent", "a", "--", "false").returncode == 1
    for _ in range(2):
        done = monitor("alert", "--webhook", hook.url, "--slack", hook.url, "--rule", "success_rate=/80")
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert len(hook.received) == 2  # once to each, the second run had nothing new
    for _ in range(6):
        monitor("run", "--agent", "a", "--", "true")
    assert monitor("alert", "--webhook", hook.url, "--rule", "success_rate=/80").returncode == 0  # 6 of 7
    assert [a["kind"] for a in hook.bodies()[-1]["alerts"]] == ["resolved"]


@pytest.mark.slow
def test_two_alert_processes_at_once_send_each_alert_once(tmp_path, hook):
    """The alert-state race: two `monitor alert` processes started together, against a slow receiver
    (were the state written after sending, both would send), notify each change once between them."""
    db = tmp_path / "m.db"
    clock = Clock()
    hook.delay = 0.5

    def race() -> list[tuple[str, str, str]]:
        command = [sys.executable, "-m", "monitor", "alert", "--session", "ci-1", "--db", str(db),
                   "--webhook", hook.url]
        runs = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
        assert [(*run.communicate(timeout=60), run.returncode) for run in runs] == [("", "", 0)] * 2
        return sent(hook)

    def session(completed: int = 0, failed: int = 0) -> None:
        with Tracker(db, clock=clock) as t:
            for status, count in (("completed", completed), ("failed", failed)):
                for _ in range(count):
                    name = f"e{clock.advance(seconds=1).timestamp()}"
                    t.start_agent_execution(name, "agent", "ci-1")
                    t.complete_agent_execution(name, status)

    session(failed=1)
    assert race() == [("firing", "success_rate", "fail")]
    assert race() == []
    session(completed=5)  # 5 of 6: 83%
    assert race() == [("de-escalated", "success_rate", "warn")]
    session(completed=20)  # 25 of 26: 96%
    assert race() == [("resolved", "success_rate", "pass")]
    assert race() == []


@pytest.mark.parametrize("args, error", [
    (["--webhook", "ftp://x"], "Invalid value for '--webhook': 'ftp://x' is not an http:// or https:// URL"),
    (["--slack", "hooks.slack.com"], "Invalid value for '--slack': 'hooks.slack.com' is not an http:// or https:// URL"),
    (["--exec", "no-such-program-x"], "Invalid value for '--exec': 'no-such-program-x': no such command"),
    (["--exec", "'unclosed"], "Invalid value for '--exec': \"'unclosed\": No closing quotation"),
])
def test_bad_destinations_are_usage_errors(db_path, clock, args, error):
    record(db_path, clock, completed=1)
    result = alert(clock, db_path, *args)
    assert (result.exit_code, result.output.splitlines()[-1]) == (2, f"Error: {error}")
