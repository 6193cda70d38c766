"""Prometheus metrics for `monitor metrics`: a custom collector over the database, exposed with the
official prometheus-client (text format, an HTTP /metrics endpoint, or a node_exporter textfile).

Only this module imports prometheus_client, and only `monitor metrics` imports this module. Each
scrape opens the database read-only and reads the roll-ups (see monitor.read.metrics), so a scrape
costs the same on a database of any size. Labels are low-cardinality: agent, model, status, kind;
never a session id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from threading import Thread
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest, start_http_server, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.errors import MonitorError
from monitor.read.metrics import DURATION_BUCKETS, TOKEN_KINDS, Metrics, collect
from monitor.store.db import open_db
from monitor.store.files import cannot_write

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

#: The model label of executions that name no model.
NO_MODEL = "unknown"


class MonitorCollector(Collector):
    """Reads the database at every scrape."""

    def __init__(self, path: str | os.PathLike[str] | None, stale_after: timedelta = timedelta(hours=1)) -> None:
        self.path = path
        self.stale_after = stale_after

    def collect(self) -> Iterator[Metric]:
        began = time.perf_counter()
        with open_db(self.path, create=False, readonly=True) as db:
            metrics = collect(db, self.stale_after)
        yield from families(metrics)
        scrape = GaugeMetricFamily("monitor_scrape_duration_seconds",
                                   "Time this scrape took to read the monitor database.")
        scrape.add_metric([], time.perf_counter() - began)
        yield scrape


def families(m: Metrics) -> Iterator[Metric]:
    """The metric families of one reading."""
    agents = sorted(m.agents.items())
    executions = CounterMetricFamily("monitor_executions", "Finished agent executions, by agent and status.",
                                     labels=["agent", "status"])
    in_progress = GaugeMetricFamily("monitor_executions_in_progress", "Agent executions still in progress.",
                                    labels=["agent"])
    stale = GaugeMetricFamily("monitor_executions_stale", "Executions in progress for longer than"
                              f" {m.stale_after_seconds:g} seconds (their process probably died).", labels=["agent"])
    unpriced = GaugeMetricFamily("monitor_executions_unpriced", "Executions with tokens whose model has no known"
                                 " price (not counted in monitor_cost_usd_total).", labels=["agent"])
    durations = HistogramMetricFamily("monitor_execution_duration_seconds",
                                      "Duration of finished agent executions.", labels=["agent"])
    last_success = GaugeMetricFamily("monitor_last_success_timestamp_seconds",
                                     "When the agent's latest completed execution finished (Unix time).",
                                     labels=["agent"])
    for name, a in agents:
        executions.add_metric([name, "completed"], a.completed)
        executions.add_metric([name, "failed"], a.failed)
        in_progress.add_metric([name], a.in_progress)
        stale.add_metric([name], a.stale)
        unpriced.add_metric([name], a.unpriced)
        bounds = [*(f"{float(b)}" for b in DURATION_BUCKETS), "+Inf"]
        durations.add_metric([name], list(zip(bounds, a.buckets)), a.duration_seconds)
        if a.last_success is not None:
            last_success.add_metric([name], a.last_success)
    tokens = CounterMetricFamily("monitor_tokens", "LLM tokens used, by agent, model and kind"
                                 " (input, output, cache_read, cache_write).", labels=["agent", "model", "kind"])
    cost = CounterMetricFamily("monitor_cost_usd", "Cost of the priced LLM usage in US dollars, by agent and model.",
                               labels=["agent", "model"])
    for (name, model), counts in sorted(m.tokens.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        for kind in TOKEN_KINDS:
            tokens.add_metric([name, model or NO_MODEL, kind], counts[kind])
        cost.add_metric([name, model or NO_MODEL], m.cost_usd[(name, model)])
    orchestrations = CounterMetricFamily("monitor_orchestrations", "Finished orchestrations, by status.",
                                         labels=["status"])
    for status in ("completed", "partial", "failed"):
        orchestrations.add_metric([status], m.orchestrations[status])
    running = GaugeMetricFamily("monitor_orchestrations_running", "Orchestrations still running.",
                                value=m.orchestrations["running"])
    yield from (executions, in_progress, stale, unpriced, durations, last_success, tokens, cost, orchestrations,
                running)


def registry(path: str | os.PathLike[str] | None, stale_after: timedelta = timedelta(hours=1)) -> CollectorRegistry:
    found = CollectorRegistry(auto_describe=False)
    found.register(MonitorCollector(path, stale_after))
    return found


def exposition(path: str | os.PathLike[str] | None, stale_after: timedelta = timedelta(hours=1)) -> str:
    """The Prometheus text format of the database's metrics."""
    return generate_latest(registry(path, stale_after)).decode("utf-8")


def write_textfile(path: str | os.PathLike[str] | None, target: str | os.PathLike[str],
                   stale_after: timedelta = timedelta(hours=1)) -> None:
    """Write the metrics to target atomically (a temporary file renamed over it), for node_exporter's
    textfile collector."""
    try:
        write_to_textfile(str(Path(target)), registry(path, stale_after))
    except OSError as exc:
        raise cannot_write(target, exc) from None
    except ValueError as exc:  # a NUL in the name
        raise MonitorError(f"cannot write {target}: {exc}") from None


def serve(path: str | os.PathLike[str] | None, host: str, port: int,
          stale_after: timedelta = timedelta(hours=1)) -> tuple[WSGIServer, Thread]:
    """Serve /metrics on host:port in a daemon thread (port 0: any free port, see server.server_port)."""
    try:
        return start_http_server(port, host, registry(path, stale_after))
    except (OSError, ValueError) as exc:  # a host that does not resolve, a port in use or not allowed
        raise MonitorError(f"cannot serve on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
