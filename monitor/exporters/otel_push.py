"""`monitor otel push`: send what an endpoint has not accepted yet, a batch at a time, and remember it.

Each batch (the spans of up to batch_size finished executions, or of finished orchestrations) is
one OTLP request. Only after the endpoint answered 2xx are its rows marked sent to that endpoint
(otel_sent_*, one transaction per batch); a request that fails after its retries stops the push
with nothing of it marked, so the next push sends it again. A push killed half-way resends at most
the batch in flight: the same span ids, which a tracing backend recognises as the same spans.

Unsent rows are found by their marks, not by a high-water mark, so an execution that finishes
after later ones is still sent. Two pushes to the same endpoint at once may both send a batch (the
marks are idempotent); nothing is lost either way.

So that a push with nothing new reads nothing old (a `--follow` round costs the same at any size
of history), each endpoint keeps how far every finished row is known accepted
(otel_endpoints.*_checked_through): a push reads only ids above it, and after its last request was
accepted moves it to the highest id it began with, below the first row then still in progress
(rows recorded later get higher ids: AUTOINCREMENT). A finished row that changes later (reopened,
finished again, its end rewritten by an import) lowers it through a trigger (*_recheck_from), which
the next push folds in before it reads. A push that fails or is killed moves nothing forward.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from monitor.exporters import otel
from monitor.exporters.otlp_http import Policy, SendError, Target, send
from monitor.store import writes
from monitor.store.db import Database
from monitor.timeutil import format_timestamp, utcnow


@dataclass
class PushResult:
    """What one push sent. rejected_spans: spans the endpoint accepted the request of but refused
    (an OTLP partial success), with its message."""

    endpoint: str
    requests: int = 0
    spans: int = 0
    executions: int = 0
    orchestrations: int = 0
    rejected_spans: int = 0
    rejected_message: str | None = None
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def add(self, other: PushResult) -> None:
        for name in ("requests", "spans", "executions", "orchestrations", "rejected_spans", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejected_message = other.rejected_message or self.rejected_message

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "requests": self.requests, "spans": self.spans,
                "executions": self.executions, "orchestrations": self.orchestrations,
                "rejected spans": self.rejected_spans, "rejected message": self.rejected_message,
                "spans per second": round(self.spans / self.seconds) if self.seconds else None}


def encode(target: Target, batch: otel.Batch) -> bytes:
    message = batch.request
    if target.protocol == "http/json":
        import json

        return json.dumps(otel.to_json(message), separators=(",", ":")).encode()
    return message.SerializeToString()


def _partial(target: Target, body: bytes) -> tuple[int, str | None]:
    """The rejected spans and message of a response's partial success (0 when it has none or
    the body is not a response: an empty 200 is a success)."""
    if not body:
        return 0, None
    try:
        if target.protocol == "http/json":
            import json

            from google.protobuf import json_format

            response = json_format.ParseDict(json.loads(body), ExportTraceServiceResponse(),
                                             ignore_unknown_fields=True)
        else:
            response = ExportTraceServiceResponse.FromString(body)
    except Exception:  # noqa: BLE001 - a body we cannot read says nothing about rejected spans
        return 0, None
    partial = response.partial_success
    return partial.rejected_spans, partial.error_message or None


def push(db: Database, target: Target, *, resource: otel.Attributes, batch_size: int = otel.BATCH,
         policy: Policy = Policy(), progress: Callable[[PushResult], None] | None = None) -> PushResult:
    """Send every finished execution and orchestration the endpoint has not accepted yet; mark
    each batch once accepted. Raises SendError (with what was sent before counted in the
    database, not in the exception) when a batch is not accepted."""
    result = PushResult(target.url)
    began = time.perf_counter()
    with db.transaction() as conn:
        endpoint_id = writes.otel_endpoint_id(conn, target.url, format_timestamp(utcnow()))
        reading = writes.begin_otel_pass(conn, endpoint_id)
    for batch in otel.batches(db, resource, batch_size=batch_size, unsent_for=endpoint_id,
                              executions_after=reading["executions"][0],
                              orchestrations_after=reading["orchestrations"][0]):
        body = encode(target, batch)
        try:
            answer = send(target, body, policy)
        except SendError as exc:
            if result.requests:
                raise SendError(f"{exc}; the {result.requests} requests before it were accepted and stay"
                                f" sent ({result.spans} spans)") from None
            raise
        with db.transaction() as conn:
            writes.mark_otel_sent(conn, endpoint_id, format_timestamp(utcnow()), batch.executions,
                                  batch.orchestrations)
        rejected, message = _partial(target, answer)
        result.add(PushResult(target.url, 1, len(batch.spans), len(batch.execution_ids),
                              len(batch.orchestration_ids), rejected, message))
        result.seconds = time.perf_counter() - began
        if progress is not None:
            progress(result)
    with db.transaction() as conn:  # every request accepted: the next push starts after what this one covered
        writes.end_otel_pass(conn, endpoint_id, reading)
    return result


def follow(db: Database, target: Target, *, resource: otel.Attributes, batch_size: int = otel.BATCH,
           interval: float = 2.0, policy: Policy = Policy(), rounds: int | None = None,
           on_round: Callable[[PushResult], None] | None = None,
           on_error: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep) -> PushResult:
    """push() again and again, every `interval` seconds, until interrupted (or `rounds` rounds):
    a round that fails is reported to on_error and tried again at the next one."""
    total = PushResult(target.url)
    done = 0
    while rounds is None or done < rounds:
        try:
            result = push(db, target, resource=resource, batch_size=batch_size, policy=policy)
            total.add(result)
            if on_round is not None and result.spans:
                on_round(result)
        except SendError as exc:
            total.errors.append(str(exc))
            if on_error is not None:
                on_error(str(exc))
        done += 1
        if rounds is None or done < rounds:
            sleep(interval)
    return total
