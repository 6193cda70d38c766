"""monitor's rows as OpenTelemetry spans (the GenAI semantic conventions), in the official OTLP
messages of `opentelemetry-proto`, and as OTLP/JSON.

Only `monitor otel` imports this module (and so protobuf). The span tree of one orchestration:

    invoke_workflow                 the orchestration (gen_ai.operation.name invoke_workflow)
      invoke_agent {agent}          each execution
        execute_tool {tool}         each tool call (tool_calls)
        chat {model}                each LLM request (llm_usage)

An execution without an orchestration is the root of its own trace. The conventions (GenAI,
development status) merged the workflow span into the internal invoke_agent span, keeping
gen_ai.operation.name = invoke_workflow; monitor has no workflow name, so the workflow span carries
no gen_ai.agent.name and is named `invoke_workflow`.

Ids are derived from monitor's identities, which stay the same across databases merged by
`monitor import`: a trace id from the orchestration's session_id (a lone execution's
agent_session_id), a span id from the row's identity (session_id, agent_session_id, a tool
call's dedup key, an LLM request's message id). Pushing the same rows again sends the same spans.

gen_ai.usage.input_tokens counts every input token, cached ones included, as the conventions ask
(monitor's input_tokens column, like Anthropic's API, excludes them); the cached parts are also
given as gen_ai.usage.cache_read.input_tokens and gen_ai.usage.cache_creation.input_tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from monitor import __version__
from monitor.errors import InvalidInput
from monitor.read import traces
from monitor.read.queries import get_orchestration
from monitor.store.db import Database

DEFAULT_SERVICE_NAME = "monitor"
SCOPE_NAME = "monitor"
INTERNAL = Span.SpanKind.Value("SPAN_KIND_INTERNAL")
CLIENT = Span.SpanKind.Value("SPAN_KIND_CLIENT")
ERROR = Status.StatusCode.Value("STATUS_CODE_ERROR")
#: Executions read (and turned into spans) at a time: a request each.
BATCH = 500
#: A request is closed once it holds this many spans (executions with many tool calls): about
#: 5 MB of protobuf at most, well under what receivers accept (the collector's default: 20 MiB).
MAX_SPANS = 10_000

Attributes = dict[str, str | int | float | bool | None]
if TYPE_CHECKING:
    from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

    Spans = RepeatedCompositeFieldContainer[Span]


# -- the resource -------------------------------------------------------------------------------

def resource_attributes(service_name: str | None = None, environ: dict[str, str] | None = None) -> Attributes:
    """service.name (service_name, else $OTEL_SERVICE_NAME, else "monitor") and the attributes of
    $OTEL_RESOURCE_ATTRIBUTES (key=value,key=value, values percent-encoded), as the SDKs read them."""
    from urllib.parse import unquote

    env = os.environ if environ is None else environ
    attributes: Attributes = {}
    for pair in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = unquote(value.strip())
    attributes["service.name"] = (service_name or env.get("OTEL_SERVICE_NAME") or attributes.get("service.name")
                                  or DEFAULT_SERVICE_NAME)
    attributes.setdefault("telemetry.sdk.name", "monitor")
    attributes.setdefault("telemetry.sdk.language", "python")
    attributes.setdefault("telemetry.sdk.version", __version__)
    return attributes


# -- ids and times ------------------------------------------------------------------------------

def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(("monitor", *parts)).encode("utf-8", "surrogatepass")).digest()


def trace_id(session_id: str | None, agent_session_id: str) -> bytes:
    """16 bytes: the orchestration's trace, or a lone execution's own."""
    return _digest("trace", "o", session_id)[:16] if session_id is not None else \
        _digest("trace", "e", agent_session_id)[:16]


def span_id(kind: str, *identity: str) -> bytes:
    """8 bytes, never all zero (an invalid span id)."""
    digest = _digest("span", kind, *identity)
    return digest[:8] if any(digest[:8]) else digest[8:16]


def nanos(timestamp: str | None) -> int:
    """A stored timestamp ('2026-11-23T09:14:28.123Z') in nanoseconds since 1970 (0 for None, or
    for a time another program stored in a form nobody can read: the span is sent all the same)."""
    if not timestamp:
        return 0
    try:
        moment = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    whole = int(moment.replace(microsecond=0).timestamp())
    return whole * 1_000_000_000 + moment.microsecond * 1000


def _end(start: int, completed_at: str | None, duration_ms: int | None) -> int:
    if completed_at:
        return max(start, nanos(completed_at))
    return start + max(0, duration_ms or 0) * 1_000_000


def provider(model: str | None) -> str | None:
    """gen_ai.provider.name for a model name, where it is plain from the name."""
    name = (model or "").lower()
    for prefix, known in (("claude", "anthropic"), ("gpt", "openai"), ("o1", "openai"), ("o3", "openai"),
                          ("o4", "openai"), ("gemini", "gcp.gemini"), ("mistral", "mistral_ai"),
                          ("deepseek", "deepseek"), ("grok", "x_ai")):
        if name.startswith(prefix):
            return known
    return None


# -- spans --------------------------------------------------------------------------------------

def set_attributes(into: RepeatedCompositeFieldContainer[KeyValue], attributes: Attributes) -> None:
    """Append the attributes as KeyValues, leaving out the unknown (None) ones. (Built in place:
    twice as fast as making each KeyValue and AnyValue and copying them in.)"""
    add = into.add
    for key, value in attributes.items():
        if value is None:
            continue
        held = add(key=key).value
        if isinstance(value, bool):
            held.bool_value = value
        elif isinstance(value, int):
            held.int_value = value
        elif isinstance(value, float):
            held.double_value = value
        else:
            held.string_value = str(value)


def _span(into: Spans, trace: bytes, span: bytes, parent: bytes | None, name: str,
          kind: Span.SpanKind.ValueType, start: int, end: int, attributes: Attributes,
          error: str | None = None) -> None:
    message = into.add(trace_id=trace, span_id=span, name=name, kind=kind, start_time_unix_nano=start,
                       end_time_unix_nano=end)
    set_attributes(message.attributes, attributes)
    if parent is not None:
        message.parent_span_id = parent
    if error is not None:
        message.status.code = ERROR
        message.status.message = error


def _tokens(input_tokens: int | None, cache_read: int | None, cache_write: int | None) -> int | None:
    if input_tokens is None and cache_read is None and cache_write is None:
        return None
    return (input_tokens or 0) + (cache_read or 0) + (cache_write or 0)


def orchestration_span(into: Spans, row: dict[str, Any]) -> None:
    """Add the invoke_workflow span of a finished orchestration (ERROR when it failed)."""
    session = row["session_id"]
    start = nanos(row["started_at"])
    failed = row["status"] == "failed"
    attributes: Attributes = {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.conversation.id": session,
        "monitor.status": row["status"],
        "monitor.task_description": row["task_description"],
        "monitor.total_tasks": row["total_tasks"],
        "monitor.completed_tasks": row["completed_tasks"],
        "monitor.failed_tasks": row["failed_tasks"],
        "vcs.ref.head.revision": row["git_commit_hash"],
        "error.type": "_OTHER" if failed else None,
    }
    _span(into, trace_id(session, ""), span_id("o", session), None, "invoke_workflow", INTERNAL, start,
                 _end(start, row["completed_at"], row["duration_ms"]), attributes,
                 f"{row['failed_tasks']} of {row['total_tasks']} tasks failed" if failed else None)


def execution_spans(into: Spans, row: dict[str, Any], tools: Iterable[dict[str, Any]] = (),
                    llm: Iterable[dict[str, Any]] = ()) -> None:
    """Add the invoke_agent span of a finished execution, then its execute_tool and chat spans."""
    session, agent_session = row["session_id"], row["agent_session_id"]
    trace = trace_id(session, agent_session)
    own = span_id("e", agent_session)
    start = nanos(row["started_at"])
    end = _end(start, row["completed_at"], row["duration_ms"])
    failed = row["status"] == "failed"
    exit_code = row["exit_code"]
    attributes: Attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": row["agent_name"],
        "gen_ai.conversation.id": session if session is not None else agent_session,
        "gen_ai.provider.name": provider(row["model"]),
        "gen_ai.request.model": row["model"],
        "gen_ai.usage.input_tokens": _tokens(row["input_tokens"], row["cache_read_tokens"],
                                             row["cache_write_tokens"]),
        "gen_ai.usage.output_tokens": row["output_tokens"],
        "gen_ai.usage.cache_read.input_tokens": row["cache_read_tokens"],
        "gen_ai.usage.cache_creation.input_tokens": row["cache_write_tokens"],
        "error.type": (f"exit_code_{exit_code}" if exit_code not in (None, 0) else "_OTHER") if failed else None,
        "process.exit.code": exit_code,
        "monitor.agent_session_id": agent_session,
        "monitor.status": row["status"],
        "monitor.task_id": row["task_id"],
        "monitor.task_number": row["task_number"],
        "monitor.retry_count": row["retry_count"],
        "monitor.self_healed": bool(row["self_healed"]),
        "monitor.files_created": row["files_created"],
        "monitor.files_modified": row["files_modified"],
        "monitor.cost_usd": row["cost_usd"],
    }
    parent = span_id("o", session) if session is not None else None
    _span(into, trace, own, parent, f"invoke_agent {row['agent_name']}", INTERNAL, start, end, attributes,
                (row["error_message"] or "failed") if failed else None)
    for call in tools:
        finished = nanos(call["timestamp"]) or end
        took = max(0, call["duration_ms"] or 0) * 1_000_000
        outcome = call["outcome"]
        identity = call["dedup_key"] or f"{call['timestamp']}\x00{call['tool']}\x00{call['id']}"
        _span(into, trace, span_id("t", agent_session, identity), own, f"execute_tool {call['tool']}", INTERNAL,
                    finished - took, finished,
                    {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": call["tool"],
                     "gen_ai.conversation.id": attributes["gen_ai.conversation.id"],
                     "monitor.tool.server": call["server"], "monitor.tool.outcome": outcome,
                     "error.type": outcome if outcome != "ok" else None},
                    f"tool call {outcome}" if outcome != "ok" else None)
    for request in llm:
        at = nanos(request["timestamp"]) or start
        model = request["model"]
        _span(into, trace, span_id("c", agent_session, request["message_id"]), own,
                    f"chat {model}" if model else "chat", CLIENT, at, at,
                    {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider(model),
                     "gen_ai.request.model": model,
                     "gen_ai.conversation.id": attributes["gen_ai.conversation.id"],
                     "gen_ai.usage.input_tokens": _tokens(request["input_tokens"], request["cache_read_tokens"],
                                                          request["cache_write_tokens"]),
                     "gen_ai.usage.output_tokens": request["output_tokens"],
                     "gen_ai.usage.cache_read.input_tokens": request["cache_read_tokens"],
                     "gen_ai.usage.cache_creation.input_tokens": request["cache_write_tokens"],
                     "monitor.llm.calls": request["calls"], "monitor.cost_usd": request["cost_usd"]})


@dataclass
class Batch:
    """One request's worth of spans and the rows they came from."""

    request: ExportTraceServiceRequest
    executions: list[tuple[int, str | None]]  # (id, completed_at) of each row sent
    orchestrations: list[tuple[int, str | None]]

    @property
    def execution_ids(self) -> list[int]:
        return [i for i, _ in self.executions]

    @property
    def orchestration_ids(self) -> list[int]:
        return [i for i, _ in self.orchestrations]

    @property
    def spans(self) -> Spans:
        return self.request.resource_spans[0].scope_spans[0].spans


def batches(db: Database, resource: Attributes, *, batch_size: int = BATCH, session_id: str | None = None,
            since: str | None = None, unsent_for: int | None = None, max_spans: int = MAX_SPANS,
            executions_after: int = 0, orchestrations_after: int = 0) -> Iterator[Batch]:
    """Requests holding the spans of the finished executions (each with its tool and LLM calls),
    batch_size executions at a time (fewer once a request holds max_spans spans; an execution's
    spans are never split), then those of the finished orchestrations, in id order; only rows with
    ids above executions_after / orchestrations_after."""
    after = executions_after
    while True:
        rows = traces.finished_executions(db, after_id=after, limit=batch_size, session_id=session_id, since=since,
                                          unsent_for=unsent_for)
        if not rows:
            break
        ids = [row["id"] for row in rows]
        tools, llm = traces.tool_calls(db, ids), traces.llm_calls(db, ids)
        batch = Batch(request((), resource), [], [])
        for row in rows:
            if batch.executions and len(batch.spans) >= max_spans:
                yield batch
                batch = Batch(request((), resource), [], [])
            execution_spans(batch.spans, row, tools.get(row["id"], ()), llm.get(row["id"], ()))
            batch.executions.append((row["id"], row["completed_at"]))
        yield batch
        after = ids[-1]
    after = orchestrations_after
    while True:
        orchestrations = traces.finished_orchestrations(db, after_id=after, limit=batch_size, session_id=session_id,
                                                        since=since, unsent_for=unsent_for)
        if not orchestrations:
            break
        ids = [row["id"] for row in orchestrations]
        batch = Batch(request((), resource), [], [(row["id"], row["completed_at"]) for row in orchestrations])
        for row in orchestrations:
            orchestration_span(batch.spans, row)
        yield batch
        after = ids[-1]


# -- the request, in protobuf and in OTLP/JSON --------------------------------------------------

def request(spans: Iterable[Span], resource: Attributes) -> ExportTraceServiceRequest:
    """One ExportTraceServiceRequest: one resource, monitor's instrumentation scope, the spans."""
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    set_attributes(resource_spans.resource.attributes, resource)
    scope = resource_spans.scope_spans.add(scope=InstrumentationScope(name=SCOPE_NAME, version=__version__))
    scope.spans.extend(spans)
    return message


_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _convert_ids(span: dict[str, Any], convert: Any) -> dict[str, Any]:
    """A span's ids (its own, and its links') converted in place."""
    for key in _ID_FIELDS:
        if key in span:
            span[key] = convert(span[key])
    for link in span.get("links", ()):
        for key in ("traceId", "spanId"):
            if key in link:
                link[key] = convert(link[key])
    return span


def _each_span(document: dict[str, Any], convert: Any) -> dict[str, Any]:
    """The ids of every span of a span (a dict with spanId) or of a whole request, converted in place."""
    if "spanId" in document:
        return _convert_ids(document, convert)
    for resource in document.get("resourceSpans", ()):
        for scope in resource.get("scopeSpans", ()):
            for span in scope.get("spans", ()):
                _convert_ids(span, convert)
    return document


def _to_hex(text: str) -> str:
    return base64.b64decode(text).hex()


def _to_base64(text: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(text)).decode()
    except (TypeError, ValueError):
        raise InvalidInput(f"not a hex trace or span id: {text!r}") from None


def to_json(message: Any) -> dict[str, Any]:
    """A message in OTLP/JSON: protobuf's JSON mapping (lowerCamelCase names), enums as integers,
    trace and span ids as hex strings, as the OTLP specification requires."""
    return _each_span(json_format.MessageToDict(message, use_integers_for_enums=True), _to_hex)


def parse_json(document: str | bytes | dict[str, Any]) -> ExportTraceServiceRequest:
    """An OTLP/JSON ExportTraceServiceRequest read back with the official definitions."""
    data = json.loads(document) if isinstance(document, (str, bytes)) else document
    try:
        if not isinstance(data, dict):
            raise ValueError("the document is not a JSON object")
        return json_format.ParseDict(_each_span(data, _to_base64), ExportTraceServiceRequest())
    except (json_format.ParseError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"not an OTLP/JSON trace request: {exc}") from None


def write_json(db: Database, out: IO[str], *, resource: Attributes, session_id: str | None = None,
               since: str | None = None) -> dict[str, int]:
    """Write one ExportTraceServiceRequest in OTLP/JSON to out, a span a line, as the spans are
    read (memory stays flat), in one read transaction. Returns the counts written."""
    counts = {"spans": 0, "executions": 0, "orchestrations": 0}
    if session_id is not None:
        get_orchestration(db, session_id)  # NotFound before a byte is written
    head = to_json(request([], resource))
    scope = head["resourceSpans"][0]["scopeSpans"][0]
    head["resourceSpans"][0]["scopeSpans"][0] = {**scope, "spans": []}
    opening, closing = json.dumps(head, ensure_ascii=False).split('"spans": []')
    with db.snapshot():
        out.write(opening + '"spans": [')
        for batch in batches(db, resource, session_id=session_id, since=since):
            for span in batch.spans:
                out.write(",\n" if counts["spans"] else "\n")
                out.write(json.dumps(to_json(span), ensure_ascii=False))
                counts["spans"] += 1
            counts["executions"] += len(batch.execution_ids)
            counts["orchestrations"] += len(batch.orchestration_ids)
        out.write("\n]" + closing + "\n")
    return counts
