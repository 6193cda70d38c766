"""`monitor reap`: stale executions end as failed, their orchestrations follow, in short batches
that writers running at the same time do not notice; idempotent; cron-friendly."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import Tracker, open_db
from monitor.cli import cli
from monitor.cli.options import Settings
from monitor.ops import reap as reaper
from monitor.ops.reap import reap
from monitor.timeutil import format_timestamp, parse_timestamp, utcnow

from conftest import Clock, dump


#: A writer process: WORKER N COUNT DB records COUNT executions in orchestration orch-N. By task
#: number modulo 10: 0 fails; 3 starts 3 hours ago and is left in progress (its process died: stale);
#: 5 starts now and is left in progress (still running: not stale); 7 starts 3 hours ago and completes
#: now (its real end replaces a reaper's failure if one got to it first); the others complete.
WORKER = """
import sys
from datetime import timedelta
from monitor import Tracker
from monitor.timeutil import utcnow

worker, count, db = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
late = [False]
with Tracker(db, clock=lambda: utcnow() - timedelta(hours=3 if late[0] else 0)) as t:
    session = f"orch-{worker}"
    t.start_orchestration(session, total_tasks=count)
    for i in range(count):
        name = f"w{worker}-e{i}"
        late[0] = i % 10 in (3, 7)
        t.start_agent_execution(name, f"agent-{i % 5}", session, task_number=i)
        late[0] = False
        if i % 10 in (3, 5):
            continue
        t.complete_agent_execution(name, "failed" if i % 10 == 0 else "completed", files_created=i)
"""


@pytest.fixture
def stuck(db_path: Path, clock: Clock) -> Path:
    """At 12:00 'all-stuck' starts two executions and 'mixed' one, plus a lone one; at 13:30 'mixed'
    gets a completed execution and one still running; the clock ends at 15:00."""
    with Tracker(db_path, clock=clock) as t:
        t.start_orchestration("all-stuck")
        t.start_agent_execution("a1", "coder", "all-stuck")
        t.start_agent_execution("a2", "tester", "all-stuck")
        t.start_orchestration("mixed")
        t.start_agent_execution("m1", "coder", "mixed")
        t.start_agent_execution("lone", "lint")
        clock.advance(minutes=90)
        t.start_agent_execution("m2", "coder", "mixed")
        t.complete_agent_execution("m2", "completed")
        t.start_agent_execution("m3", "tester", "mixed")
        clock.advance(minutes=90)
    return db_path


def statuses(db_path: Path) -> dict[str, tuple]:
    with open_db(db_path, create=False) as db:
        found = {r[0]: tuple(r[1:]) for r in db.execute(
            "SELECT agent_session_id, status, error_message FROM agent_executions")}
        found.update({r[0]: tuple(r[1:]) for r in db.execute(
            "SELECT session_id, status, completed_tasks, failed_tasks, completed_at IS NOT NULL FROM orchestrations")})
    return found


def test_stale_executions_fail_and_their_orchestrations_follow(stuck, clock):
    with open_db(stuck) as db:
        result = reap(db, timedelta(hours=2), now=clock())
    assert (result.executions, result.orchestrations, result.cutoff) == (4, 2, "2026-11-20T13:00:00.000Z")
    assert [r["agent_session_id"] for r in result.ended] == ["a1", "a2", "m1", "lone"]
    stale = ("failed", "no completion after 2h 00m")
    assert statuses(stuck) == {
        "a1": stale, "a2": stale, "m1": stale, "lone": stale,
        "m2": ("completed", None), "m3": ("in_progress", None),  # 90 minutes: not stale at 2h
        "all-stuck": ("failed", 0, 2, 1),
        "mixed": ("running", 1, 1, 0),  # m3 still runs
    }
    with open_db(stuck) as db:
        events = db.execute("SELECT e.agent_session_id, v.type, v.message FROM events v"
                            " JOIN agent_executions e ON e.id = v.execution_id ORDER BY e.agent_session_id").fetchall()
    assert events == [(name, "status_changed", "failed by monitor reap: no completion after 2h 00m")
                      for name in ("a1", "a2", "lone", "m1")]


def test_reaping_the_last_running_execution_finishes_its_orchestration(stuck, clock):
    with open_db(stuck) as db:
        reap(db, timedelta(hours=1), now=clock())
    assert statuses(stuck)["mixed"] == ("partial", 1, 2, 1)


def test_reap_is_idempotent_and_a_dry_run_changes_nothing(stuck, clock):
    before = dump(stuck)
    with open_db(stuck) as db:
        dry = reap(db, timedelta(hours=2), now=clock(), dry_run=True)
    assert (dry.executions, dry.orchestrations, len(dry.ended), dry.dry_run) == (4, 2, 4, True)
    assert dump(stuck) == before
    with open_db(stuck) as db:
        assert reap(db, timedelta(hours=2), now=clock()).executions == 4
    after = dump(stuck)
    clock.advance(minutes=5)
    with open_db(stuck) as db:
        again = reap(db, timedelta(hours=2), now=clock())
    assert (again.executions, again.orchestrations, again.ended) == (0, 0, [])
    assert dump(stuck) == after


def test_many_stale_executions_go_in_batches(db_path, clock, monkeypatch):
    monkeypatch.setattr(reaper, "BATCH", 7)
    with Tracker(db_path, clock=clock) as t:
        for i in range(50):
            t.start_agent_execution(f"e{i:02}", "a", f"s{i % 4}")
    clock.advance(hours=3)
    with open_db(db_path) as db:
        result = reap(db, timedelta(hours=2), now=clock())
    assert (result.executions, result.orchestrations, len(result.ended)) == (50, 4, reaper.SHOWN)
    assert [r["agent_session_id"] for r in result.ended] == [f"e{i:02}" for i in range(20)]
    assert {s for s, *_ in statuses(db_path).values()} == {"failed"}


def invoke(clock: Clock, db_path: Path, *args: str):
    return CliRunner().invoke(cli, [*args, "--db", str(db_path)], obj=Settings(now=clock))


def test_the_command(stuck, clock):
    dry = invoke(clock, stuck, "reap", "--older-than", "2h", "--dry-run")
    assert (dry.exit_code, dry.output) == (0, """\
Would fail 4 stale executions (no completion after 2h 00m), in 2 orchestrations.
agent session id    agent name    session id    started at
------------------  ------------  ------------  -----------------------
a1                  coder         all-stuck     2026-11-20 12:00:00 UTC
a2                  tester        all-stuck     2026-11-20 12:00:00 UTC
m1                  coder         mixed         2026-11-20 12:00:00 UTC
lone                lint                        2026-11-20 12:00:00 UTC
""")
    done = invoke(clock, stuck, "reap", "--older-than", "2h", "--json")
    assert done.exit_code == 0
    assert json.loads(done.output) | {"ended": None} == {
        "cutoff": "2026-11-20T13:00:00.000Z", "older_than_ms": 7_200_000, "message": "no completion after 2h 00m",
        "dry_run": False, "executions": 4, "orchestrations": 2, "ended": None}
    assert json.loads(done.output)["ended"][3] == {"agent_session_id": "lone", "agent_name": "lint",
                                                   "session_id": None, "started_at": "2026-11-20T12:00:00.000Z"}
    assert invoke(clock, stuck, "reap", "--older-than", "2h").output == (
        "No stale executions: none has been in progress for over 2h 00m.\n")
    bad = invoke(clock, stuck, "reap", "--older-than", "soon")
    assert bad.exit_code == 2 and "'soon' is not a duration" in bad.output


def test_health_and_check_count_what_is_stale_until_it_is_reaped(stuck, clock):
    health = invoke(clock, stuck, "health", "--json")
    assert (health.exit_code, json.loads(health.output)["stale"]["count"]) == (3, 5)  # stale at 1h: degraded
    assert invoke(clock, stuck, "check", "--rule", "success_rate=off").exit_code == 3
    assert invoke(clock, stuck, "reap").exit_code == 0
    assert json.loads(invoke(clock, stuck, "health", "--json").output)["stale"]["count"] == 0
    assert invoke(clock, stuck, "check", "--rule", "success_rate=off").exit_code == 0


@pytest.mark.slow
def test_reap_check_and_alert_while_eight_writers_record(db_path, hook):
    """300 executions stale for 3 hours; 8 writer processes record 100 executions each (failing, left
    stale, left running, completing 3 hours late: see WORKER) while `monitor reap`, `check` and two
    `alert`s at once run again and again, each a process of its own. The writers lose nothing and meet
    no lock error; reap ends what was stale and in progress only, each execution once (its runs'
    counts add up to the rows it ended), and nothing more when run again; check's counts are a
    recount's; the webhook receives one chain of changes per rule: none sent twice, none lost."""
    with Tracker(db_path, clock=Clock(utcnow() - timedelta(hours=3))) as t:
        for i in range(300):
            t.start_agent_execution(f"stale-{i}", "old", f"old-{i % 10}")
    env = {**os.environ, "MONITOR_DB": str(db_path)}
    rules = ["--stale-after", "2h", "--rule", "success_rate=45/25"]
    alert = ["alert", *rules, "--repeat", "24h", "--webhook", hook.url]

    def monitor(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "monitor", *args], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def finish(*runs: subprocess.Popen) -> list[str]:
        outs = []
        for run in runs:
            out, err = run.communicate(timeout=120)
            assert run.returncode in (0, 3, 4) and "Error" not in err and "Traceback" not in err, err
            outs.append(out)
        return outs

    writers = [subprocess.Popen([sys.executable, "-c", WORKER, str(w), "100", str(db_path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(8)]
    reaped = []
    while any(w.poll() is None for w in writers) or len(reaped) < 2:
        out, _, _, _ = finish(monitor("reap", "--older-than", "2h", "--json"), monitor("check", *rules, "--json"),
                              monitor(*alert), monitor(*alert))
        reaped.append(json.loads(out)["executions"])
    for w in writers:
        out, err = w.communicate(timeout=240)
        assert (w.returncode, out, err) == (0, "", "")

    # Nothing writes now: check's counts are a recount's.
    out, = finish(monitor("check", *rules, "--rule", "failed_executions=9999", "--rule", "failed_orchestrations=9999",
                          "--json"))
    checked = json.loads(out)
    stale_before = format_timestamp(parse_timestamp(checked["generated_at"]) - timedelta(hours=2))
    with open_db(db_path, create=False) as db:
        assert db.execute("SELECT min(started_at) FROM agent_executions").fetchone()[0] > checked["since"]
        completed, failed, stale = db.execute(
            "SELECT sum(status = 'completed'), sum(status = 'failed'), sum(status = 'in_progress' AND started_at < ?)"
            " FROM agent_executions", (stale_before,)).fetchone()
        failed_orchestrations = db.execute(
            "SELECT count(*) FROM orchestrations WHERE status IN ('failed', 'partial')").fetchone()[0]
    assert {r["rule"]: r["value"] for r in checked["rules"]} == {
        "success_rate": round(100 * completed / (completed + failed), 1), "stale": stale, "failed_executions": failed,
        "failed_orchestrations": failed_orchestrations}

    # The last reap ends what became stale after the one before; one more ends nothing, changes nothing.
    out, = finish(monitor("reap", "--older-than", "2h", "--json"))
    reaped.append(json.loads(out)["executions"])
    before = dump(db_path)
    out, = finish(monitor("reap", "--older-than", "2h", "--json"))
    assert json.loads(out)["executions"] == 0 and dump(db_path) == before

    message = "no completion after 2h 00m"
    with open_db(db_path, create=False) as db:
        rows = {name: (task, status, error) for name, task, status, error in db.execute(
            "SELECT agent_session_id, task_number, status, error_message FROM agent_executions")}
        reap_events = db.execute("SELECT execution_id, count(*) FROM events WHERE message = ?"
                                 " GROUP BY 1 HAVING count(*) > 1", (f"failed by monitor reap: {message}",)).fetchall()
        reaped_rows = {name for name, in db.execute(
            "SELECT e.agent_session_id FROM events v JOIN agent_executions e ON e.id = v.execution_id"
            " WHERE v.message = ?", (f"failed by monitor reap: {message}",))}
        orchestrations = db.execute(
            "SELECT o.session_id, o.status, o.completed_tasks, o.failed_tasks, sum(e.status = 'completed'),"
            " sum(e.status = 'failed') FROM orchestrations o JOIN agent_executions e ON e.orchestration_id = o.id"
            " GROUP BY o.id").fetchall()
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert set(rows) == {f"stale-{i}" for i in range(300)} | {f"w{w}-e{i}" for w in range(8) for i in range(100)}
    ended = stale_ones = 0
    for name, (task, status, error) in rows.items():
        kind = "stale" if task is None or task % 10 == 3 else task % 10
        expected = {"stale": ("failed", message), 5: ("in_progress", None), 0: ("failed", None)}.get(
            kind, ("completed", None))
        assert (status, error) == expected, name
        ended += error == message
        stale_ones += kind == "stale"
        # started 3 hours ago, a 7 may be reaped before its writer ends it: the real end replaced the guess
        assert (name in reaped_rows) == (kind == "stale") or kind == 7, name
    assert sum(reaped) == len(reaped_rows) and ended == stale_ones and reap_events == []
    assert ended >= 380  # the 300, and the 80 the writers left stale
    assert all((done, failures) == (done_rows, failed_rows) for _, _, done, failures, done_rows, failed_rows in
               orchestrations), orchestrations
    assert sorted({(name.split("-")[0], status) for name, status, *_ in orchestrations}) == [
        ("old", "failed"), ("orch", "running")]

    # One more pair of alerts: what the webhook received is, for each rule, one chain of changes from
    # pass to the rule's status now (each edge previous -> status: leaving each status as often as entering
    # it, but at the ends), in whatever order the two racing runs delivered them.
    finish(monitor(*alert), monitor(*alert))
    out, = finish(monitor("check", *rules, "--json"))
    now = {f"window {r['rule']}": r["status"] for r in json.loads(out)["rules"]}
    alerts = [a for body in hook.bodies() for a in body["alerts"]]
    assert alerts and {a["kind"] for a in alerts} <= {"firing", "escalated", "de-escalated", "resolved"}
    with open_db(db_path, create=False) as db:
        states = dict(db.execute("SELECT key, status FROM alert_state"))
    for key, status in now.items():
        assert states.get(key, "pass") == status, key
        net = Counter()
        for a in alerts:
            if a["key"] == key:
                net[a["previous"]] += 1
                net[a["status"]] -= 1
        net["pass"] -= 1
        net[status] += 1
        assert set(net.values()) <= {0}, (key, [(a["previous"], a["status"]) for a in alerts if a["key"] == key])


#: How cron runs a command: an empty environment but these, the home directory as working directory.
def cron_environment(home: Path) -> list[str]:
    return ["env", "-i", "PATH=/usr/bin:/bin", "SHELL=/bin/sh", f"HOME={home}", "LOGNAME=cron"]


@pytest.fixture
def script() -> Path:
    found = Path(sys.executable).parent / "monitor"
    if not found.exists():
        pytest.skip("monitor's console script is not installed next to this Python")
    return found


@pytest.mark.slow
def test_reap_check_and_cleanup_under_cron(stuck, tmp_path, script):
    """As the README's crontab runs them: absolute paths, --db, cron's bare environment (env -i
    PATH=/usr/bin:/bin: no MONITOR_DB, no virtualenv) and another working directory."""
    home = tmp_path / "home"
    home.mkdir()

    def cron(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*cron_environment(home), str(script), *args, "--db", str(stuck)], cwd=home,
                              capture_output=True, text=True, timeout=60)

    reaped = cron("reap", "--older-than", "2h")
    assert reaped.returncode == 0, reaped.stderr
    assert reaped.stdout.startswith("Failed 5 stale executions (no completion after 2h 00m); 2 orchestrations")
    checked = cron("check", "--rule", "activity=6h/24h")
    assert checked.returncode == 4, checked.stderr  # the data is days old: the dead man's switch trips
    assert "FAIL  time since the last execution" in checked.stdout
    cleaned = cron("cleanup", "30")
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout.startswith("Deleted 0 orchestrations")
    assert sorted(p.name for p in home.iterdir()) == []  # nothing written where cron happens to run it


def readme_crontab() -> tuple[dict[str, str], list[str]]:
    """The README's crontab: its variables, and each entry's command."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("```cron\n", 1)[1].split("```", 1)[0]
    variables, commands = {}, []
    for line in block.splitlines():
        if re.fullmatch(r"[A-Z_]+=\S+", line):
            name, value = line.split("=", 1)
            variables[name] = value
        else:
            fields = line.split(None, 5)
            assert len(fields) == 6 and all(re.fullmatch(r"[0-9*/,-]+", f) for f in fields[:5]), line
            commands.append(fields[5])
    return variables, commands


@pytest.mark.slow
def test_the_readmes_crontab_works_as_written(stuck, tmp_path, script, hook):
    """Each line of the README's crontab, run as cron would (/bin/sh -c, cron's environment plus the
    crontab's variables, from the home directory). Only what stands for the reader's own places
    changes: the paths of monitor, the database, the log files and the notifier, and Slack's URL."""
    variables, commands = readme_crontab()
    assert variables["MON"].startswith("/") and variables["DB"].startswith("/")
    assert [c.split()[:2] for c in commands] == [["$MON", "reap"], ["$MON", "check"], ["$MON", "cleanup"],
                                                  ["$MON", "alert"]]
    home = tmp_path / "home"
    home.mkdir()
    notifier = tmp_path / "notify-team"
    notifier.write_text(f"#!/bin/sh\ncp \"$1\" {tmp_path}/notified.json\n")
    notifier.chmod(0o755)
    places = {"/var/log/monitor.log": str(tmp_path / "monitor.log"), "/tmp/monitor-check.json":
              str(tmp_path / "check.json"), "/usr/local/bin/notify-team": str(notifier)}
    variables |= {"MON": str(script), "DB": str(stuck)}
    for command in commands:
        assert "%" not in command  # cron would turn it into a newline
        for place, ours in places.items():
            command = command.replace(place, ours)
        command = re.sub(r"https://hooks\.slack\.com/\S+", f"{hook.url}/slack", command)
        done = subprocess.run([*cron_environment(home), *(f"{k}={v}" for k, v in variables.items()), "/bin/sh", "-c",
                               command], cwd=home, capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stderr) == (0, ""), command
    log = (tmp_path / "monitor.log").read_text()
    assert log.startswith("Failed 5 stale executions (no completion after 2h 00m); 2 orchestrations")
    assert "Deleted 0 orchestrations" in log
    checked = json.loads((tmp_path / "check.json").read_text())
    assert checked["verdict"] == "fail"  # the data is days old: the dead man's switch trips, so the team hears of it
    assert json.loads((tmp_path / "notified.json").read_text()) == checked
    [(path, slack)] = hook.received
    assert path == "/slack" and slack["text"] == "monitor: FAIL (last 24h)"
    assert [a["text"].split(":")[0] for a in slack["attachments"]] == ["FAIL (firing) activity"]
    assert sorted(p.name for p in home.iterdir()) == []
