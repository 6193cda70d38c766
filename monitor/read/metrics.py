"""What `monitor metrics` exposes, read cheaply enough for a scrape on any size of database.

Everything comes from the roll-ups kept by triggers (agent_totals: one row per agent;
agent_model_totals: one per agent and model; orchestration_totals: one per status) plus one
indexed read: stale executions (idx_executions_status_started reaches only those in progress). No read is proportional to the number of executions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.read.reports import stale_clause
from monitor.store.db import ORCHESTRATION_STATUSES, Database
from monitor.timeutil import format_timestamp, parse_timestamp, utcnow

#: The duration histogram's upper bounds in seconds: agent_model_totals' le_<N>s columns.
DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")


@dataclass
class AgentMetrics:
    completed: int = 0
    failed: int = 0
    in_progress: int = 0
    stale: int = 0
    unpriced: int = 0
    #: cumulative counts of finished executions per DURATION_BUCKETS bound, then all of them (+Inf)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    duration_seconds: float = 0.0
    last_success: float | None = None  # seconds since 1970


@dataclass
class Metrics:
    agents: dict[str, AgentMetrics]
    #: (agent, model or None) -> tokens by TOKEN_KINDS, and cost in USD
    tokens: dict[tuple[str, str | None], dict[str, int]]
    cost_usd: dict[tuple[str, str | None], float]
    orchestrations: dict[str, int]
    stale_after_seconds: float


def _epoch(timestamp: str | None) -> float | None:
    return None if timestamp is None else parse_timestamp(timestamp).timestamp()


def collect(db: Database, stale_after: timedelta = timedelta(hours=1), now: datetime | None = None) -> Metrics:
    """One consistent reading of every metric (a single read transaction)."""
    cutoff = format_timestamp((now or utcnow()) - stale_after)
    with db.snapshot() as conn:
        agents: dict[str, AgentMetrics] = {}
        for name, completed, failed, in_progress, timed, duration_ms, unpriced in conn.execute(
                "SELECT agent_name, completed, failed, in_progress, timed, duration_ms, unpriced FROM agent_totals"):
            agent = agents[name] = AgentMetrics(completed, failed, in_progress, unpriced=unpriced)
            agent.buckets[-1] = timed
            agent.duration_seconds = duration_ms / 1000
        tokens: dict[tuple[str, str | None], dict[str, int]] = {}
        cost: dict[tuple[str, str | None], float] = {}
        bounds = ", ".join(f"le_{b}s" for b in DURATION_BUCKETS)
        for row in conn.execute(
                f"SELECT agent_name, model, {bounds}, input_tokens, output_tokens, cache_read_tokens,"
                " cache_write_tokens, cost_usd, last_success_at FROM agent_model_totals"):
            name, model, rest = row[0], row[1] or None, row[2:]
            agent = agents.setdefault(name, AgentMetrics())
            for i in range(len(DURATION_BUCKETS)):
                agent.buckets[i] += rest[i]
            rest = rest[len(DURATION_BUCKETS):]
            tokens[(name, model)] = dict(zip(TOKEN_KINDS, rest[:4]))
            cost[(name, model)] = rest[4]
            success = _epoch(rest[5])
            if success is not None and (agent.last_success is None or success > agent.last_success):
                agent.last_success = success
        for name, count in conn.execute(
                f"SELECT agent_name, count(*) FROM agent_executions WHERE {stale_clause()}"
                " GROUP BY agent_name", (cutoff,)):
            agents.setdefault(name, AgentMetrics()).stale = count
        orchestrations = dict.fromkeys(ORCHESTRATION_STATUSES, 0)
        orchestrations.update(conn.execute("SELECT status, orchestrations FROM orchestration_totals"))
    return Metrics(agents, tokens, cost, orchestrations, stale_after.total_seconds())
