"""`monitor metrics`: Prometheus text format, parsed back with prometheus_client's own parser; served
over real HTTP; written atomically as a textfile; checked by promtool when it is installed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import T0
from prometheus_client.parser import text_string_to_metric_families

from monitor import Tracker, open_db
from monitor.read.metrics import collect


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of an exposition, as Prometheus reads it."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def recorded(db_path, clock) -> Path:
    with Tracker(db_path, clock=clock) as t:
        for seconds, status in ((0.5, "completed"), (7, "completed"), (45, "failed"), (4000, "completed")):
            run = f"coder-{seconds}"
            t.start_agent_execution(run, "coder", orchestration="s1")
            clock.advance(seconds=seconds)
            t.complete_agent_execution(run, status, model="claude-sonnet-4-5", input_tokens=1000, output_tokens=50,
                                       cost_usd=0.01)
        t.start_agent_execution("tests-1", "tests", orchestration="s2")
        clock.advance(seconds=2)
        t.complete_agent_execution("tests-1", "completed", input_tokens=10)  # no model: unpriced
        t.start_agent_execution("tests-2", "tests", orchestration="s3")  # left in progress
        clock.advance(hours=2)
        t.start_agent_execution("tests-3", "tests")  # in progress, recent
    return db_path


def test_every_metric_parses_with_the_values_of_the_database(recorded, clock):
    with open_db(recorded, create=False) as db:
        reading = collect(db, timedelta(hours=1), now=clock.now + timedelta(minutes=1))
    from monitor.exporters.prometheus import families
    from prometheus_client import CollectorRegistry, generate_latest

    class Fixed:
        def collect(self):
            return families(reading)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())  # type: ignore[arg-type]
    got = samples(generate_latest(registry).decode())
    coder, tests = (("agent", "coder"),), (("agent", "tests"),)
    assert got[("monitor_executions_total", (("agent", "coder"), ("status", "completed")))] == 3
    assert got[("monitor_executions_total", (("agent", "coder"), ("status", "failed")))] == 1
    assert got[("monitor_executions_in_progress", tests)] == 2
    assert got[("monitor_executions_stale", tests)] == 1  # tests-2: in progress for 2 hours
    assert got[("monitor_executions_stale", coder)] == 0
    assert got[("monitor_executions_unpriced", tests)] == 1
    buckets = {dict(labels)["le"]: value for (name, labels), value in got.items()
               if name == "monitor_execution_duration_seconds_bucket" and dict(labels)["agent"] == "coder"}
    assert buckets == {"1.0": 1, "5.0": 1, "10.0": 2, "30.0": 2, "60.0": 3, "120.0": 3, "300.0": 3, "600.0": 3,
                       "1800.0": 3, "3600.0": 3, "+Inf": 4}
    assert got[("monitor_execution_duration_seconds_count", coder)] == 4
    assert got[("monitor_execution_duration_seconds_sum", coder)] == pytest.approx(4052.5)
    sonnet = (("agent", "coder"), ("kind", "input"), ("model", "claude-sonnet-4-5"))
    assert got[("monitor_tokens_total", sonnet)] == 4000
    assert got[("monitor_tokens_total", (("agent", "tests"), ("kind", "input"), ("model", "unknown")))] == 10
    assert got[("monitor_cost_usd_total", (("agent", "coder"), ("model", "claude-sonnet-4-5")))] == pytest.approx(0.04)
    last = T0 + timedelta(seconds=0.5 + 7 + 45 + 4000)
    assert got[("monitor_last_success_timestamp_seconds", coder)] == pytest.approx(last.timestamp())
    assert got[("monitor_orchestrations_total", (("status", "partial"),))] == 1  # s1
    assert got[("monitor_orchestrations_total", (("status", "completed"),))] == 1  # s2
    assert got[("monitor_orchestrations_running", ())] == 1  # s3
    labels = {k for (_, labels) in got for k, _ in labels}
    assert labels == {"agent", "status", "model", "kind", "le"}  # never a session id


def test_the_cli_prints_what_prometheus_and_promtool_accept(recorded, invoke):
    result = invoke("metrics")
    assert result.exit_code == 0, result.output
    got = samples(result.stdout)
    assert got[("monitor_executions_total", (("agent", "coder"), ("status", "completed")))] == 3
    assert ("monitor_scrape_duration_seconds", ()) in got
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    check = subprocess.run([promtool, "check", "metrics"], input=result.stdout, capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_textfile_is_written_atomically(recorded, invoke, tmp_path):
    target = tmp_path / "textfile" / "monitor.prom"
    target.parent.mkdir()
    target.write_text("old\n")
    result = invoke("metrics", "--textfile", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert samples(target.read_text())[("monitor_orchestrations_running", ())] == 1
    assert [p.name for p in target.parent.iterdir()] == ["monitor.prom"]


def test_serve_answers_a_real_scrape_and_reads_new_rows(recorded, clock):
    server = subprocess.Popen([sys.executable, "-m", "monitor", "metrics", "--serve", "127.0.0.1:0",
                               "--db", str(recorded)], stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()  # "Serving metrics on http://127.0.0.1:PORT/metrics (Ctrl-C to stop)."
        assert line.startswith("Serving metrics on http://127.0.0.1:"), line
        url = line.split()[3]

        def scrape() -> dict:
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                return samples(response.read().decode())

        key = ("monitor_executions_total", (("agent", "coder"), ("status", "failed")))
        assert scrape()[key] == 1
        with Tracker(recorded, clock=clock) as t:
            t.start_agent_execution("coder-again", "coder")
            t.complete_agent_execution("coder-again", "failed")
        assert scrape()[key] == 2
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize("args, error", [
    (["--serve", "localhost"], "'localhost' is not HOST:PORT"),
    (["--serve", "127.0.0.1:9464", "--textfile", "x.prom"], "--serve and --textfile do not go together"),
])
def test_bad_arguments(recorded, invoke, args, error):
    result = invoke("metrics", *args)
    assert result.exit_code == 2
    assert error in result.output


@pytest.mark.parametrize("args, error", [
    (["--textfile", "/no/such/dir/m.prom"], "Error: cannot write /no/such/dir/m.prom: No such file or directory (no directory /no/such/dir)"),
    (["--textfile", "a\x00b"], "Error: cannot write a\x00b: embedded null byte"),
])
def test_a_textfile_that_cannot_be_written_is_an_error(recorded, invoke, args, error):
    result = invoke("metrics", *args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(error)


def test_an_address_in_use_is_an_error(recorded, invoke):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("metrics", "--serve", f"127.0.0.1:{port}")
    assert result.exit_code == 1, result.output
    assert result.output == f"Error: cannot serve on 127.0.0.1:{port}: Address already in use\n"


def test_a_missing_database_is_an_error(invoke, db_path):
    result = invoke("metrics")
    assert result.exit_code == 1
    assert "no monitor database" in result.output
