"""Sending OTLP trace requests over HTTP (the OTLP/HTTP exporter's rules, with the standard library).

Configuration, as the OpenTelemetry SDKs read it (the specification's "OTLP Exporter Configuration"):

- the URL: --endpoint, else $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is), else
  $OTEL_EXPORTER_OTLP_ENDPOINT (a base URL: `v1/traces` is appended to its path), else
  http://localhost:4318/v1/traces. An --endpoint with no path (http://collector:4318) gets
  /v1/traces too; one with a path is used as is.
- headers: $OTEL_EXPORTER_OTLP_HEADERS, then $OTEL_EXPORTER_OTLP_TRACES_HEADERS, then --header
  (later ones win): key=value pairs separated by commas, values percent-encoded.
- the protocol: --protocol, else $OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else $OTEL_EXPORTER_OTLP_PROTOCOL,
  else http/protobuf; http/json sends OTLP/JSON. grpc is not spoken.
- compression: --compression, else $OTEL_EXPORTER_OTLP_TRACES_COMPRESSION, else
  $OTEL_EXPORTER_OTLP_COMPRESSION: gzip or none (the default).
- the timeout: $OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, else $OTEL_EXPORTER_OTLP_TIMEOUT (milliseconds),
  else 10 s.

Retries follow the OTLP/HTTP specification: 429, 502, 503 and 504 are retried, after the
Retry-After the server gives, else after an exponential backoff with jitter (1 s, 2 s, 4 s ...,
at most 30 s); so are network errors (refused connection, reset, timeout). Any other status is
final. A 2xx may carry a partial success (spans the server rejected): it is counted, not retried.
"""

from __future__ import annotations

import email.utils
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timezone
from urllib.parse import unquote, urlsplit, urlunsplit

from monitor.errors import InvalidInput, MonitorError
from monitor.timeutil import backoff

DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"
PROTOCOLS = ("http/protobuf", "http/json")
COMPRESSIONS = ("gzip", "none")
RETRYABLE = (429, 502, 503, 504)
DEFAULT_TIMEOUT = 10.0
#: Attempts per request before giving up (the first one included), and the backoff's bounds.
ATTEMPTS = 6
BACKOFF_BASE = 1.0
BACKOFF_MAX = 30.0


class SendError(MonitorError):
    """The endpoint did not accept a request (after the retries it allows)."""


@dataclass(frozen=True)
class Target:
    url: str
    protocol: str = "http/protobuf"
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    compression: str = "none"


def _with_traces_path(base: str) -> str:
    parts = urlsplit(base)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit(parts._replace(path=path + "v1/traces"))


def parse_headers(text: str) -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_HEADERS' format: key=value,key=value with percent-encoded values."""
    headers: dict[str, str] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"not a header (key=value): {pair.strip()!r}")
        headers[unquote(key.strip())] = unquote(value.strip())
    return headers


def target(endpoint: str | None = None, headers: Mapping[str, str] | None = None, protocol: str | None = None,
           environ: Mapping[str, str] | None = None, compression: str | None = None) -> Target:
    """Where and how to send, from the options given and the OTEL_EXPORTER_OTLP_* variables."""
    env = os.environ if environ is None else environ
    if endpoint:
        url = endpoint if urlsplit(endpoint).path.strip("/") else _with_traces_path(endpoint)
    elif env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        url = env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        url = _with_traces_path(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    else:
        url = DEFAULT_ENDPOINT
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"not an http(s) URL: {url!r}")
    merged = {**parse_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS", "")),
              **parse_headers(env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "")), **(headers or {})}
    chosen = (protocol or env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
              or "http/protobuf")
    if chosen not in PROTOCOLS:
        raise InvalidInput(f"protocol {chosen!r} is not spoken: use {' or '.join(PROTOCOLS)}")
    squeeze = (compression or env.get("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION")
               or env.get("OTEL_EXPORTER_OTLP_COMPRESSION") or "none").strip().lower()
    if squeeze not in COMPRESSIONS:
        raise InvalidInput(f"compression {squeeze!r} is not supported: use {' or '.join(COMPRESSIONS)}")
    timeout = env.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or env.get("OTEL_EXPORTER_OTLP_TIMEOUT")
    try:
        seconds = int(timeout) / 1000 if timeout else DEFAULT_TIMEOUT
    except ValueError:
        raise InvalidInput(f"OTEL_EXPORTER_OTLP_TIMEOUT must be milliseconds, not {timeout!r}") from None
    return Target(url, chosen, merged, seconds if seconds > 0 else DEFAULT_TIMEOUT, squeeze)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date), None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class Policy:
    """How often and how long to retry (tests make it quick)."""

    attempts: int = ATTEMPTS
    base: float = BACKOFF_BASE
    cap: float = BACKOFF_MAX
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, server_says: float | None) -> float:
        if server_says is not None:
            return min(server_says, self.cap * 4)
        return backoff(self.base, self.cap, attempt)


def send(target: Target, body: bytes, policy: Policy = Policy()) -> bytes:
    """POST one encoded request; return the response body of the 2xx that accepted it. Raises
    SendError when the endpoint refuses it, or when the retries run out."""
    content_type = "application/json" if target.protocol == "http/json" else "application/x-protobuf"
    headers = {"User-Agent": "monitor-otlp", **target.headers, "Content-Type": content_type}
    if target.compression == "gzip":
        import gzip

        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    problem = ""
    for attempt in range(policy.attempts):
        waited: float | None = None
        try:
            request = urllib.request.Request(target.url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=target.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            detail = _detail(exc)
            if exc.code not in RETRYABLE:
                raise SendError(f"{target.url} refused the spans: HTTP {exc.code} {exc.reason}{detail}") from None
            problem = f"HTTP {exc.code} {exc.reason}{detail}"
            waited = retry_after(exc.headers.get("Retry-After"))
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            problem = f"{reason}"
        if attempt + 1 < policy.attempts:
            policy.sleep(policy.delay(attempt, waited))
    raise SendError(f"{target.url} did not accept the spans after {policy.attempts} attempts: {problem}")


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(300).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f" ({' '.join(text.split())[:200]})" if text else ""

