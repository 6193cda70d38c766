"""`monitor otel`: spans decoded with the official OTLP definitions, from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from monitor import Tracker, open_db
from monitor.cli import cli
from monitor.errors import InvalidInput
from monitor.exporters import otel, otel_push, otlp_http
from monitor.ops.export import export_to_file
from monitor.ops.import_ import import_file

from conftest import Clock

QUICK = otlp_http.Policy(attempts=4, base=0.01, cap=0.05)
RESOURCE = otel.resource_attributes("tests", environ={})


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


class Collector:
    """An OTLP/HTTP endpoint on 127.0.0.1 that keeps every request and answers from a script of
    statuses (then 200): [503, 200] fails once."""

    def __init__(self, statuses: list[int] | None = None, retry_after: str | None = None,
                 body: bytes = b"") -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        self.retry_after = retry_after
        self.body = body
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                data = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                status = outer.statuses.pop(0) if outer.statuses else 200
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": data,
                                       "status": status})
                self.send_response(status)
                if status != 200 and outer.retry_after is not None:
                    self.send_header("Retry-After", outer.retry_after)
                payload = outer.body if status == 200 else b"try later"
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/traces"

    def accepted(self) -> list[ExportTraceServiceRequest]:
        return [decode(r) for r in self.requests if r["status"] == 200]

    def spans(self) -> list[Span]:
        return [span for request in self.accepted() for rs in request.resource_spans
                for ss in rs.scope_spans for span in ss.spans]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def decode(request: dict[str, Any]) -> ExportTraceServiceRequest:
    if request["headers"]["Content-Type"] == "application/json":
        return otel.parse_json(request["body"])
    assert request["headers"]["Content-Type"] == "application/x-protobuf"
    return ExportTraceServiceRequest.FromString(request["body"])


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    yield server
    server.close()


def attributes(span: Span) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        found[kv.key] = getattr(kv.value, kind)
    return found


def record(db_path: Path, clock: Clock) -> None:
    """A finished orchestration (a success with an LLM request and a tool call, a failure), a
    stand-alone execution, one still in progress, and a running orchestration."""
    with Tracker(db_path, clock=clock) as t:
        t.start_orchestration("ci-1", task_description="build", total_tasks=2)
        t.start_agent_execution("planner-1", "planner", orchestration="ci-1", model="claude-sonnet-4-5")
        clock.advance(seconds=1)
        t.record_llm_call("planner-1", "claude-sonnet-4-5", 1000, 200, cache_read_tokens=300, cache_write_tokens=50)
        t.record_service_call("planner-1", "github", "create_issue", duration_ms=250)
        clock.advance(seconds=1)
        t.complete_agent_execution("planner-1")
        t.start_agent_execution("tests-1", "tests", orchestration="ci-1")
        clock.advance(seconds=3)
        t.complete_agent_execution("tests-1", status="failed", error_message="2 tests failed", exit_code=1)
        t.complete_orchestration("ci-1")
        t.start_agent_execution("lone-1", "lint")
        clock.advance(seconds=1)
        t.complete_agent_execution("lone-1")
        t.start_orchestration("ci-2")
        t.start_agent_execution("slow-1", "deploy", orchestration="ci-2")


@pytest.fixture
def recorded(db_path: Path, clock: Clock) -> Path:
    record(db_path, clock)
    return db_path


def push(db_path: Path, url: str, **options: Any) -> otel_push.PushResult:
    with open_db(db_path) as db:
        return otel_push.push(db, otlp_http.target(url, environ={}, protocol=options.pop("protocol", None)),
                              resource=RESOURCE, policy=options.pop("policy", QUICK), **options)


def by_name(spans: list[Span]) -> dict[str, Span]:
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), [s.name for s in spans]
    return named


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_push_sends_the_span_tree_with_genai_attributes(recorded: Path, collector: Collector, protocol: str) -> None:
    result = push(recorded, collector.url, protocol=protocol)
    assert (result.executions, result.orchestrations, result.spans) == (3, 1, 6)
    assert collector.requests[0]["path"] == "/v1/traces"
    [resource] = {tuple(sorted(attributes(rs.resource).items())) for r in collector.accepted() for rs in r.resource_spans}
    assert dict(resource)["service.name"] == "tests"
    assert {ss.scope.name for r in collector.accepted() for rs in r.resource_spans for ss in rs.scope_spans} == {"monitor"}

    spans = by_name(collector.spans())
    assert set(spans) == {"invoke_workflow", "invoke_agent planner", "execute_tool create_issue",
                          "chat claude-sonnet-4-5", "invoke_agent tests", "invoke_agent lint"}
    workflow, planner, tool, chat = (spans[n] for n in ("invoke_workflow", "invoke_agent planner",
                                                         "execute_tool create_issue", "chat claude-sonnet-4-5"))
    failed, lone = spans["invoke_agent tests"], spans["invoke_agent lint"]
    # The tree: the workflow is the root of its trace; executions under it; calls under their execution.
    assert workflow.parent_span_id == b""
    assert planner.parent_span_id == failed.parent_span_id == workflow.span_id
    assert tool.parent_span_id == chat.parent_span_id == planner.span_id
    assert {s.trace_id for s in (workflow, planner, tool, chat, failed)} == {workflow.trace_id}
    assert lone.parent_span_id == b"" and lone.trace_id != workflow.trace_id
    assert len(workflow.trace_id) == 16 and len(workflow.span_id) == 8

    assert attributes(workflow)["gen_ai.operation.name"] == "invoke_workflow"
    assert attributes(workflow)["gen_ai.conversation.id"] == "ci-1"
    assert attributes(workflow)["monitor.status"] == "partial"
    assert workflow.status.code == Status.STATUS_CODE_UNSET
    got = attributes(planner)
    assert {k: got[k] for k in ("gen_ai.operation.name", "gen_ai.agent.name", "gen_ai.conversation.id",
                                "gen_ai.request.model", "gen_ai.provider.name", "gen_ai.usage.input_tokens",
                                "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens")} == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner", "gen_ai.conversation.id": "ci-1",
        "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.provider.name": "anthropic",
        "gen_ai.usage.input_tokens": 1350, "gen_ai.usage.output_tokens": 200,
        "gen_ai.usage.cache_read.input_tokens": 300}
    assert planner.kind == Span.SPAN_KIND_INTERNAL and chat.kind == Span.SPAN_KIND_CLIENT
    assert planner.end_time_unix_nano - planner.start_time_unix_nano == 2_000_000_000
    assert "error.type" not in got and planner.status.code == Status.STATUS_CODE_UNSET
    assert attributes(failed)["error.type"] == "exit_code_1"
    assert failed.status.code == Status.STATUS_CODE_ERROR and failed.status.message == "2 tests failed"
    assert attributes(tool) == {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "create_issue",
                                "gen_ai.conversation.id": "ci-1", "monitor.tool.server": "github",
                                "monitor.tool.outcome": "ok"}
    assert tool.end_time_unix_nano - tool.start_time_unix_nano == 250_000_000
    assert attributes(chat)["gen_ai.operation.name"] == "chat"
    assert attributes(chat)["gen_ai.usage.output_tokens"] == 200
    assert attributes(lone)["gen_ai.conversation.id"] == "lone-1"


def test_in_progress_and_running_rows_wait_until_they_finish(recorded: Path, collector: Collector,
                                                             clock: Clock) -> None:
    push(recorded, collector.url)
    names = [s.name for s in collector.spans()]
    assert "invoke_agent deploy" not in names and names.count("invoke_workflow") == 1
    assert push(recorded, collector.url).requests == 0  # nothing new: nothing sent
    assert len(collector.requests) == 2  # the first push: a request of executions, one of orchestrations

    with Tracker(recorded, clock=clock) as t:
        clock.advance(minutes=5)
        t.complete_agent_execution("slow-1")
        t.complete_orchestration("ci-2")
    again = push(recorded, collector.url)
    assert (again.executions, again.orchestrations) == (1, 1)
    new = collector.spans()[-2:]
    assert [s.name for s in new] == ["invoke_agent deploy", "invoke_workflow"]
    assert new[0].parent_span_id == new[1].span_id


def test_rows_finishing_out_of_order_are_each_sent_once(db_path: Path, clock: Clock, collector: Collector) -> None:
    with Tracker(db_path, clock=clock) as t:
        for name in ("a", "b", "c"):
            t.start_agent_execution(f"{name}-1", name)
        t.complete_agent_execution("c-1")
        push(db_path, collector.url)
        t.complete_agent_execution("a-1")
        push(db_path, collector.url)
        t.complete_agent_execution("b-1")
        push(db_path, collector.url)
    assert [[s.name for s in r.resource_spans[0].scope_spans[0].spans] for r in collector.accepted()] == [
        ["invoke_agent c"], ["invoke_agent a"], ["invoke_agent b"]]


def test_an_execution_reopened_and_finished_again_is_sent_again_under_the_same_id(
        recorded: Path, collector: Collector, clock: Clock) -> None:
    from monitor.store import writes

    push(recorded, collector.url)
    first = by_name(collector.spans())["invoke_agent lint"]
    with open_db(recorded) as db, db.transaction() as conn:  # a subagent given a new task (the hook does this)
        writes.reopen_execution(conn, db.execute("SELECT id FROM agent_executions"
                                                 " WHERE agent_session_id = 'lone-1'").fetchone()[0])
    assert push(recorded, collector.url).requests == 0  # in progress again: nothing to send
    with Tracker(recorded, clock=clock) as t:
        clock.advance(minutes=10)
        t.complete_agent_execution("lone-1", status="failed", error_message="second task failed")
    again = push(recorded, collector.url)
    assert (again.executions, again.orchestrations) == (1, 0)
    second = collector.spans()[-1]
    assert (second.trace_id, second.span_id) == (first.trace_id, first.span_id)
    assert second.end_time_unix_nano > first.end_time_unix_nano
    assert second.status.message == "second task failed"
    assert push(recorded, collector.url).requests == 0


def test_a_request_closes_at_max_spans_without_splitting_an_execution(recorded: Path) -> None:
    with open_db(recorded) as db:
        sizes = [(len(b.spans), b.execution_ids) for b in otel.batches(db, RESOURCE, max_spans=2)]
    # planner's tree (3 spans) passes the limit alone; tests and lint (1 span each) share one; then the workflow
    assert [n for n, _ in sizes] == [3, 2, 1]
    assert [len(ids) for _, ids in sizes] == [1, 2, 0]


def test_ids_are_derived_from_identities_and_survive_an_export_and_import(recorded: Path, tmp_path: Path) -> None:
    first, second = Collector(), Collector()
    try:
        push(recorded, first.url)
        with open_db(recorded) as db:
            export_to_file(db, tmp_path / "export.json")
        copy = tmp_path / "copy.db"
        with open_db(copy) as db:
            import_file(db, str(tmp_path / "export.json"))
        push(copy, second.url)
        # (the copy has no llm_usage or tool_calls rows: the export holds executions only)
        ids = {(s.name, s.trace_id, s.span_id, s.parent_span_id) for s in first.spans()}
        again = {(s.name, s.trace_id, s.span_id, s.parent_span_id) for s in second.spans()}
        assert again and again <= ids
        assert {s[0] for s in ids - again} == {"execute_tool create_issue", "chat claude-sonnet-4-5"}
    finally:
        first.close()
        second.close()


def test_a_503_is_retried_after_retry_after_and_the_rows_are_marked_once(recorded: Path) -> None:
    server = Collector([503, 429], retry_after="0")
    waits: list[float] = []
    try:
        result = push(recorded, server.url, policy=otlp_http.Policy(attempts=3, base=5, sleep=waits.append))
        assert [r["status"] for r in server.requests] == [503, 429, 200, 200]
        assert waits == [0.0, 0.0]  # the server's Retry-After, not the 5 s backoff
        assert result.requests == 2 and result.spans == 6
        assert push(recorded, server.url).requests == 0
    finally:
        server.close()


@pytest.mark.parametrize("statuses", [[503] * 4, [400]], ids=["retries run out", "refused"])
def test_a_failed_push_marks_nothing_and_the_next_one_sends_everything(recorded: Path, statuses: list[int]) -> None:
    server = Collector(statuses)
    try:
        with pytest.raises(otlp_http.SendError, match="400 Bad Request" if statuses == [400] else "after 4 attempts"):
            push(recorded, server.url)
        assert len(server.requests) == len(statuses)  # a 400 is final: no retry
        with open_db(recorded) as db:
            assert db.execute("SELECT count(*) FROM otel_sent_executions").fetchone()[0] == 0
            assert db.execute("SELECT count(*) FROM otel_sent_orchestrations").fetchone()[0] == 0
        result = push(recorded, server.url)
        assert (result.executions, result.orchestrations) == (3, 1)
    finally:
        server.close()


def test_a_push_that_fails_half_way_keeps_what_was_accepted(recorded: Path) -> None:
    server = Collector([200, 400])
    try:
        with pytest.raises(otlp_http.SendError, match=r"the 1 requests before it were accepted and stay sent \(3 spans\)"):
            push(recorded, server.url, batch_size=1)
        result = push(recorded, server.url, batch_size=1)
        # planner's tree (3 spans) was accepted first; tests, lint and the workflow come now
        assert (result.executions, result.orchestrations) == (2, 1)
        sent = [s.name for s in server.spans()]
        assert sorted(sent) == sorted(set(sent))  # nothing twice
        assert len(sent) == 6
    finally:
        server.close()


def test_a_network_error_is_retried_then_reported(recorded: Path) -> None:
    server = Collector()
    url = server.url
    server.close()  # nothing listens there any more
    waits: list[float] = []
    with pytest.raises(otlp_http.SendError, match="after 3 attempts"):
        push(recorded, url, policy=otlp_http.Policy(attempts=3, base=0.5, cap=1, sleep=waits.append))
    assert len(waits) == 2 and 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0


def test_partial_success_is_counted(recorded: Path) -> None:
    body = ExportTraceServiceResponse()
    body.partial_success.rejected_spans = 2
    body.partial_success.error_message = "too old"
    server = Collector(body=body.SerializeToString())
    try:
        result = push(recorded, server.url)
        assert (result.rejected_spans, result.rejected_message) == (4, "too old")
    finally:
        server.close()


@pytest.mark.parametrize("given, environ, url", [
    ("http://c:4318", {}, "http://c:4318/v1/traces"),
    ("http://c:4318/", {}, "http://c:4318/v1/traces"),
    ("http://c:6006/v1/traces", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:1"}, "http://c:6006/v1/traces"),
    (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/traces"),
    (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/base/"}, "http://c:4318/base/v1/traces"),
    (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/custom"},
     "http://t:1/custom"),
    (None, {}, "http://localhost:4318/v1/traces"),
])
def test_the_endpoint_follows_the_otlp_exporter_rules(given: str | None, environ: dict[str, str], url: str) -> None:
    assert otlp_http.target(given, environ=environ).url == url


def test_headers_protocol_and_timeout_come_from_the_environment() -> None:
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "api-key=s%20ecret,x=1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x=2",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_TIMEOUT": "2500"}
    got = otlp_http.target(None, {"x": "3"}, environ=env)
    assert got.headers == {"api-key": "s ecret", "x": "3"}
    assert (got.protocol, got.timeout) == ("http/json", 2.5)
    assert otlp_http.target(None, environ={"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}).compression == "gzip"
    with pytest.raises(InvalidInput, match="compression 'zstd'"):
        otlp_http.target(None, environ={"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"})
    with pytest.raises(InvalidInput, match="grpc"):
        otlp_http.target(None, environ={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    with pytest.raises(InvalidInput, match="not a header"):
        otlp_http.target(None, environ={"OTEL_EXPORTER_OTLP_HEADERS": "novalue"})


def test_retry_after_reads_seconds_and_dates() -> None:
    assert otlp_http.retry_after("7") == 7.0
    assert otlp_http.retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now=1792567670.0) == 10.0
    assert otlp_http.retry_after("soon") is None and otlp_http.retry_after(None) is None


def test_service_name_from_option_environment_or_default() -> None:
    assert otel.resource_attributes(None, {})["service.name"] == "monitor"
    env = {"OTEL_SERVICE_NAME": "agents", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci,team=a%2Cb"}
    got = otel.resource_attributes(None, env)
    assert (got["service.name"], got["deployment.environment"], got["team"]) == ("agents", "ci", "a,b")
    assert otel.resource_attributes("mine", env)["service.name"] == "mine"


# -- the command line ---------------------------------------------------------------------------

def test_otel_export_writes_otlp_json_that_the_official_parser_reads(recorded: Path, collector: Collector,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "traces.json"
    result = CliRunner().invoke(cli, ["--db", str(recorded), "otel", "export", "-o", str(out),
                                      "--service-name", "ci"])
    assert result.exit_code == 0, result.output
    assert result.output == f"Exported to {out}: 6 spans (3 executions, 1 orchestration).\n"
    raw = json.loads(out.read_text())
    first = raw["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(first["traceId"]) == 32 and len(first["spanId"]) == 16  # hex, as OTLP/JSON says
    int(first["traceId"], 16)
    parsed = otel.parse_json(out.read_text())
    exported = [s for rs in parsed.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert attributes(parsed.resource_spans[0].resource)["service.name"] == "ci"
    push(recorded, collector.url)
    assert sorted(s.SerializeToString(deterministic=True) for s in exported) == \
        sorted(s.SerializeToString(deterministic=True) for s in collector.spans())

    one = CliRunner().invoke(cli, ["--db", str(recorded), "otel", "export", "ci-1"])
    assert one.exit_code == 0, one.output
    assert len(otel.parse_json(one.output).resource_spans[0].scope_spans[0].spans) == 5
    missing = CliRunner().invoke(cli, ["--db", str(recorded), "otel", "export", "nope"])
    assert missing.exit_code == 1 and missing.output.startswith("Error: no orchestration with session id 'nope'")


def test_otel_push_command(recorded: Path, collector: Collector) -> None:
    args = ["--db", str(recorded), "otel", "push", "--endpoint", collector.url, "--header", "Authorization=Bearer t",
            "--compression", "gzip"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Sent 6 spans (3 executions, 1 orchestration) to {collector.url} in 2 requests.\n")
    assert collector.requests[0]["headers"]["Authorization"] == "Bearer t"
    assert collector.requests[0]["headers"]["Content-Encoding"] == "gzip"
    assert len(collector.spans()) == 6  # (the server decompressed them)
    again = CliRunner().invoke(cli, [*args, "--json"])
    assert json.loads(again.output)["spans"] == 0


@pytest.mark.parametrize("args, code, message", [
    (["--header", "novalue"], 2, "is not KEY=VALUE"),
    (["--protocol", "grpc"], 2, "Invalid value for '--protocol'"),
    (["--endpoint", "ftp://x/y"], 2, "not an http(s) URL"),
    (["--batch-size", "0"], 2, "--batch-size"),
])
def test_otel_push_refuses_bad_input(recorded: Path, args: list[str], code: int, message: str) -> None:
    result = CliRunner().invoke(cli, ["--db", str(recorded), "otel", "push", *args])
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_otel_push_to_a_server_that_refuses_is_one_error_line(recorded: Path) -> None:
    server = Collector([401])
    try:
        result = CliRunner().invoke(cli, ["--db", str(recorded), "otel", "push", "--endpoint", server.url])
        assert result.exit_code == 1
        assert result.output == f"Error: {server.url} refused the spans: HTTP 401 Unauthorized (try later)\n"
    finally:
        server.close()


def test_otel_push_missing_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.db"), "otel", "push"])
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert not (tmp_path / "none.db").exists()


@pytest.mark.slow
def test_otel_push_follow_sends_what_finishes_until_interrupted(recorded: Path, collector: Collector,
                                                                 clock: Clock) -> None:
    process = subprocess.Popen([sys.executable, "-m", "monitor", "--db", str(recorded), "otel", "push", "--follow",
                                "--interval", "0.2", "--endpoint", collector.url],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OTEL_SERVICE_NAME": "follow"})
    try:
        deadline = time.monotonic() + 20
        while len(collector.spans()) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        with Tracker(recorded, clock=clock) as t:
            clock.advance(seconds=30)
            t.complete_agent_execution("slow-1")
        while len(collector.spans()) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    # slow-1 was ci-2's only execution: its end ends ci-2 too
    assert [s.name for s in collector.spans()][-2:] == ["invoke_agent deploy", "invoke_workflow"]
    # in 4 requests, or 5 when slow-1 ends between a round's read of executions and of orchestrations
    assert out.startswith(f"Sent 8 spans (4 executions, 2 orchestrations) to {collector.url} in "), out
    assert "Pushing to" in err and "Traceback" not in err
    assert attributes(collector.accepted()[0].resource_spans[0].resource)["service.name"] == "follow"


def test_the_follow_loop_survives_a_failing_round(recorded: Path) -> None:
    server = Collector([400])
    errors: list[str] = []
    try:
        with open_db(recorded) as db:
            total = otel_push.follow(db, otlp_http.target(server.url, environ={}), resource=RESOURCE, rounds=3,
                                     policy=QUICK, sleep=lambda s: None, on_error=errors.append)
        assert len(errors) == 1 and "HTTP 400" in errors[0]
        assert (total.executions, total.orchestrations) == (3, 1)
    finally:
        server.close()



def test_a_time_nobody_can_read_is_no_traceback(recorded: Path):
    with open_db(recorded, create=False) as db, db.transaction() as conn:  # as another program might store it
        conn.execute("UPDATE agent_executions SET started_at = 'yesterday-ish' WHERE agent_name = 'tests'")
    result = CliRunner().invoke(cli, ["--db", str(recorded), "otel", "export", "ci-1"])
    assert result.exit_code == 0, result.output
    spans = {s.name: s for s in otel.parse_json(result.output).resource_spans[0].scope_spans[0].spans}
    assert spans["invoke_agent tests"].start_time_unix_nano == 0  # unknown, not made up
    assert otel.nanos("2026-11-23T09:14:28.123Z") == 1795425268123000000


# -- a push with nothing new reads nothing old (issue 10) ---------------------------------------

def steps(db_path: Path, url: str) -> tuple[int, otel_push.PushResult]:
    """What one push costs in SQLite virtual-machine steps (per 100: rows read, not time), and its result."""
    counted = [0]

    def count() -> int:
        counted[0] += 1
        return 0

    with open_db(db_path) as db:
        target = otlp_http.target(url, environ={})
        db.conn.set_progress_handler(count, 100)
        result = otel_push.push(db, target, resource=RESOURCE, policy=QUICK)
        db.conn.set_progress_handler(None, 100)
    return counted[0], result


def finish(db_path: Path, clock: Clock, names: range, prefix: str = "run") -> None:
    with Tracker(db_path, clock=clock) as t:
        for n in names:
            t.start_agent_execution(f"{prefix}-{n}", "worker")
            clock.advance(seconds=1)
            t.complete_agent_execution(f"{prefix}-{n}")


def test_a_push_with_nothing_new_reads_only_what_is_new(db_path: Path, clock: Clock, collector: Collector) -> None:
    finish(db_path, clock, range(100))
    assert steps(db_path, collector.url)[1].executions == 100
    small, idle = steps(db_path, collector.url)
    assert idle.requests == 0
    finish(db_path, clock, range(100, 2000))
    assert steps(db_path, collector.url)[1].executions == 1900
    large, idle = steps(db_path, collector.url)
    assert idle.requests == 0
    assert large <= small + 2  # 20 times the history, the same cost (reading every row: ~20 times)
    with open_db(db_path) as db:
        assert db.execute("SELECT executions_checked_through, executions_recheck_from FROM otel_endpoints"
                          ).fetchone() == (2000, None)
    with open_db(db_path) as db:  # and writes nothing
        before = db.conn.total_changes
        otel_push.push(db, otlp_http.target(collector.url, environ={}), resource=RESOURCE, policy=QUICK)
        assert db.conn.total_changes == before
    finish(db_path, clock, range(2000, 2003))
    again = steps(db_path, collector.url)[1]
    assert again.executions == 3 and len(collector.spans()) == 2003


def test_a_row_in_progress_during_a_push_is_sent_once_it_ends(db_path: Path, clock: Clock,
                                                              collector: Collector) -> None:
    finish(db_path, clock, range(3), "early")
    with Tracker(db_path, clock=clock) as t:
        t.start_agent_execution("slow-1", "deploy")  # id 4, in progress
    finish(db_path, clock, range(3), "late")  # ids 5..7, finished: checked_through stops below slow-1
    assert push(db_path, collector.url).executions == 6
    with open_db(db_path) as db:
        assert db.execute("SELECT executions_checked_through FROM otel_endpoints").fetchone()[0] == 3
    with Tracker(db_path, clock=clock) as t:
        t.complete_agent_execution("slow-1")
    again = push(db_path, collector.url)
    assert again.executions == 1 and collector.spans()[-1].name == "invoke_agent deploy"
    assert push(db_path, collector.url).requests == 0
    with open_db(db_path) as db:
        assert db.execute("SELECT executions_checked_through FROM otel_endpoints").fetchone()[0] == 7


def _reopen_execution(db_path: Path, clock: Clock) -> None:  # a subagent given a new task (the hook)
    from monitor.store import writes

    with open_db(db_path) as db, db.transaction() as conn:
        writes.reopen_execution(conn, db.execute("SELECT id FROM agent_executions"
                                                 " WHERE agent_session_id = 'tests-1'").fetchone()[0])


def _resume_session(db_path: Path, clock: Clock) -> None:  # a resumed session (the hook's SessionStart)
    from monitor.store import writes

    with open_db(db_path) as db, db.transaction() as conn:
        ids = db.execute("SELECT o.id, e.id FROM orchestrations o JOIN agent_executions e ON e.orchestration_id = o.id"
                         " WHERE e.agent_session_id = 'tests-1'").fetchone()
        writes.reopen(conn, *ids)


@pytest.mark.parametrize("reopen", [_reopen_execution, _resume_session], ids=["reopen_execution", "resume"])
def test_a_row_reopened_after_it_was_sent_is_sent_again(recorded: Path, collector: Collector, clock: Clock,
                                                         reopen: Callable[[Path, Clock], None]) -> None:
    push(recorded, collector.url)
    finish(recorded, clock, range(3))  # later rows, sent: checked_through is past tests-1
    push(recorded, collector.url)
    sent = len(collector.spans())
    reopen(recorded, clock)
    assert push(recorded, collector.url).requests == 0  # in progress again: nothing to send
    with Tracker(recorded, clock=clock) as t:
        clock.advance(minutes=10)
        t.complete_agent_execution("tests-1", status="failed", error_message="second try failed")
        if reopen is _resume_session:
            t.complete_orchestration("ci-1")
    again = push(recorded, collector.url)
    assert again.executions == 1  # (and ci-1, whose end moved with its execution's)
    assert again.orchestrations == 1
    assert "second try failed" in [s.status.message for s in collector.spans()[sent:]]
    assert push(recorded, collector.url).requests == 0


def test_a_reaped_execution_that_ends_late_is_sent_again(db_path: Path, clock: Clock, collector: Collector) -> None:
    from monitor.ops import reap

    with Tracker(db_path, clock=clock) as t:
        t.start_agent_execution("stuck-1", "build")
    clock.advance(hours=2)
    with open_db(db_path) as db:
        assert reap.reap(db, timedelta(hours=1), now=clock()).executions == 1
    finish(db_path, clock, range(2))
    assert push(db_path, collector.url).executions == 3
    with Tracker(db_path, clock=clock) as t:  # its real end arrives: the reaper's guess is replaced
        t.complete_agent_execution("stuck-1")
    again = push(db_path, collector.url)
    assert again.executions == 1
    reaped, ended = [s for s in collector.spans() if s.name == "invoke_agent build"]
    assert (reaped.status.code, ended.status.code) == (Status.STATUS_CODE_ERROR, Status.STATUS_CODE_UNSET)
    assert reaped.span_id == ended.span_id


def test_a_push_that_fails_leaves_the_changed_rows_for_the_next(recorded: Path, clock: Clock) -> None:
    server = Collector()
    try:
        push(recorded, server.url)
        finish(recorded, clock, range(2))
        push(recorded, server.url)
        _reopen_execution(recorded, clock)
        with Tracker(recorded, clock=clock) as t:
            clock.advance(minutes=10)
            t.complete_agent_execution("tests-1", error_message="second try")
        finish(recorded, clock, range(2, 4))
        server.statuses = [503] * 4  # the push reads tests-1 and gives up
        with pytest.raises(otlp_http.SendError):
            push(recorded, server.url)
        again = push(recorded, server.url)
        assert (again.executions, again.orchestrations) == (3, 1)  # tests-1, the two new ones, and ci-1
        assert push(recorded, server.url).requests == 0
    finally:
        server.close()


def test_an_import_that_changes_a_sent_row_sends_it_again(recorded: Path, collector: Collector, clock: Clock,
                                                           tmp_path: Path) -> None:
    push(recorded, collector.url)
    finish(recorded, clock, range(2))
    push(recorded, collector.url)
    other = tmp_path / "other.db"  # another CI job's half of session ci-1, which ended later
    with Tracker(other, clock=clock) as t:
        t.start_orchestration("ci-1")
        clock.advance(hours=1)
        t.start_agent_execution("docs-1", "docs", orchestration="ci-1")
        clock.advance(seconds=5)
        t.complete_agent_execution("docs-1")
        t.complete_orchestration("ci-1")
    with open_db(other) as db:
        export_to_file(db, tmp_path / "other.json")
    with open_db(recorded) as db:
        before = db.execute("SELECT completed_at FROM orchestrations WHERE session_id = 'ci-1'").fetchone()[0]
        import_file(db, str(tmp_path / "other.json"))
        after = db.execute("SELECT completed_at FROM orchestrations WHERE session_id = 'ci-1'").fetchone()[0]
    assert after > before
    sent = len(collector.spans())
    again = push(recorded, collector.url)
    assert (again.executions, again.orchestrations) == (1, 1)
    workflow = [s for s in collector.spans()[sent:] if s.name == "invoke_workflow"]
    assert len(workflow) == 1 and workflow[0].end_time_unix_nano > workflow[0].start_time_unix_nano
    assert push(recorded, collector.url).requests == 0


def test_an_upgrade_from_version_14_keeps_the_endpoints_and_their_marks(recorded: Path, collector: Collector) -> None:
    import sqlite3

    push(recorded, collector.url)
    conn = sqlite3.connect(recorded, isolation_level=None)  # back to version 14's otel_endpoints
    conn.executescript("""
        BEGIN;
        DROP TRIGGER otel_recheck_executions; DROP TRIGGER otel_recheck_orchestrations;
        ALTER TABLE otel_endpoints RENAME TO old_endpoints;
        CREATE TABLE otel_endpoints (id INTEGER PRIMARY KEY, url TEXT NOT NULL UNIQUE, first_push_at TEXT NOT NULL);
        INSERT INTO otel_endpoints SELECT id, url, first_push_at FROM old_endpoints;
        DROP TABLE old_endpoints;
        PRAGMA user_version = 14;
        COMMIT;""")
    conn.close()
    with open_db(recorded) as db:
        assert db.execute("SELECT count(*) FROM otel_sent_executions").fetchone()[0] == 3
        assert db.execute("SELECT url, executions_checked_through FROM otel_endpoints").fetchall() == [
            (collector.url, 0)]
    assert push(recorded, collector.url).requests == 0  # read against the marks once: nothing sent twice
    with open_db(recorded) as db:
        assert db.execute("SELECT executions_checked_through, orchestrations_checked_through FROM otel_endpoints"
                          ).fetchone() == (3, 1)
