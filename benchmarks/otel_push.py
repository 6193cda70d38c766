"""Figures for docs/scale.md: `monitor otel push` throughput (spans/s) to a local OTLP sink.

    python benchmarks/otel_push.py --executions 100000
    python benchmarks/otel_push.py --executions 100000 --protocol http/json --batch-size 1000

A database from benchmarks/generate.py, plus --tool-calls tool_calls rows per finished execution
(the generated file has tool_call events but no tool_calls rows), so that each execution is a small
span tree. A sink on 127.0.0.1 (a separate process: Python's http.server, reading each request
whole and answering 200, as a collector's receiver does before its pipeline) takes the requests. Then,
each as a real `monitor otel push` process with its wall time:

- the first push: every finished execution and orchestration (spans/s = spans / wall time);
- a second push: nothing new to send (the cost of each --follow round when idle);
- `monitor otel export` of the same database to an OTLP/JSON file, for comparison (--no-export: not).

--verify keeps every request the sink received and decodes them afterwards with the official
definitions: every finished execution, orchestration and tool call is one span, no span id twice,
each span's parent is in the same trace with the right operation (execute_tool under invoke_agent,
invoke_agent under invoke_workflow), and the only parents missing are those of executions whose
orchestration is still running (sent when it finishes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from monitor import open_db  # noqa: E402

MONITOR = [sys.executable, "-m", "monitor"]
SINK = textwrap.dedent("""
    import itertools, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    keep = sys.argv[1] if len(sys.argv) > 1 else None
    numbers = itertools.count()

    class Sink(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if keep:
                with open(f"{keep}/{next(numbers):06d}.bin", "wb") as f:
                    f.write(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    print(server.server_port, flush=True)
    server.serve_forever()
""")


def add_tool_calls(db: Path, per_execution: int) -> int:
    """per_execution tool_calls rows for each finished execution, in its last seconds."""
    with open_db(db) as opened, opened.transaction() as conn:
        for i in range(per_execution):
            conn.execute(
                "INSERT INTO tool_calls (execution_id, timestamp, tool, server, outcome, duration_ms, dedup_key)"
                " SELECT id, completed_at, ?, NULL, iif(id % 50 = 0, 'failed', 'ok'), 800 + id % 900,"
                " 'bench:' || id || ':' || ? FROM agent_executions WHERE status != 'in_progress'",
                (("Bash", "Edit", "Read", "Write")[i % 4], i))
        return int(conn.execute("SELECT count(*) FROM tool_calls").fetchone()[0])


def verify(db: Path, kept: Path) -> None:
    """Decode what the sink received and check it against the database (see the module docstring)."""
    from collections import Counter

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans = {}
    for path in sorted(kept.glob("*.bin")):
        request = ExportTraceServiceRequest.FromString(path.read_bytes())
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    assert span.span_id not in spans, f"span {span.span_id.hex()} sent twice"
                    spans[span.span_id] = span

    def operation(span) -> str:  # type: ignore[no-untyped-def]
        return next(a.value.string_value for a in span.attributes if a.key == "gen_ai.operation.name")

    operations = Counter(operation(s) for s in spans.values())
    parents = {"execute_tool": "invoke_agent", "chat": "invoke_agent", "invoke_agent": "invoke_workflow"}
    orphans = 0
    for span in spans.values():
        if not span.parent_span_id:
            assert operation(span) in ("invoke_workflow", "invoke_agent")
            continue
        parent = spans.get(span.parent_span_id)
        if parent is None:
            assert operation(span) == "invoke_agent"
            orphans += 1
            continue
        assert parent.trace_id == span.trace_id and operation(parent) == parents[operation(span)]
    with open_db(db, create=False) as opened:
        def one(sql: str) -> int:
            return int(opened.execute(sql).fetchone()[0])

        finished = "(SELECT id FROM agent_executions WHERE status != 'in_progress')"
        expected = {"invoke_agent": one(f"SELECT count(*) FROM {finished}"),
                    "invoke_workflow": one("SELECT count(*) FROM orchestrations WHERE status != 'running'"),
                    "execute_tool": one(f"SELECT count(*) FROM tool_calls WHERE execution_id IN {finished}"),
                    "chat": one(f"SELECT count(*) FROM llm_usage WHERE execution_id IN {finished}")}
        waiting = one("SELECT count(*) FROM agent_executions e JOIN orchestrations o ON o.id = e.orchestration_id"
                      " WHERE e.status != 'in_progress' AND o.status = 'running'")
    assert {k: v for k, v in operations.items()} == {k: v for k, v in expected.items() if v}, (operations, expected)
    assert orphans == waiting, (orphans, waiting)
    print(f"verified: {len(spans):,} spans decoded, {dict(operations)}; the tree is whole"
          f" ({orphans:,} executions of still-running orchestrations wait for their parent)")


def timed(argv: list[str]) -> tuple[float, str]:
    began = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    return seconds, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--tool-calls", type=int, default=1, help="tool_calls rows per finished execution")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--protocol", default="http/protobuf", choices=["http/protobuf", "http/json"])
    parser.add_argument("--verify", action="store_true", help="decode and check every request the sink got")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the files (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        db = Path(folder) / "bench.db"
        built = generate.generate(db, args.executions, events=0)
        tools = add_tool_calls(db, args.tool_calls)
        print(f"generated {built['executions']:,} executions + {built['orchestrations']:,} orchestrations"
              f" + {tools:,} tool calls in {built['seconds']:.1f} s")
        kept = Path(folder) / "requests"
        kept.mkdir()
        sink = subprocess.Popen([sys.executable, "-c", SINK, *([str(kept)] if args.verify else [])],
                                stdout=subprocess.PIPE, text=True)
        try:
            port = int(sink.stdout.readline())  # type: ignore[union-attr]
            push = [*MONITOR, "--db", str(db), "otel", "push", "--endpoint", f"http://127.0.0.1:{port}/v1/traces",
                    "--batch-size", str(args.batch_size), "--protocol", args.protocol, "--json"]
            seconds, out = timed(push)
            sent = json.loads(out)
            print(f"push ({args.protocol}, batches of {args.batch_size}): {sent['spans']:,} spans"
                  f" ({sent['executions']:,} executions, {sent['orchestrations']:,} orchestrations)"
                  f" in {sent['requests']:,} requests, {seconds:.1f} s wall = {sent['spans'] / seconds:,.0f} spans/s"
                  f" (in-process send loop: {sent['spans per second']:,} spans/s)")
            seconds, out = timed(push)
            print(f"push again (nothing new): {json.loads(out)['spans']} spans, {seconds:.2f} s")
        finally:
            sink.terminate()
            sink.wait(timeout=10)
        if args.verify:
            verify(db, kept)
        if args.no_export:
            return
        export = Path(folder) / "traces.json"
        seconds, _ = timed([*MONITOR, "--db", str(db), "otel", "export", "-o", str(export)])
        print(f"otel export: {seconds:.1f} s, {export.stat().st_size / 2**20:,.0f} MiB of OTLP/JSON")


if __name__ == "__main__":
    main()
