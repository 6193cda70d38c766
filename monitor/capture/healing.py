"""What `monitor run` does about failures: retries with backoff, a time limit, a circuit breaker.

A run is one execution, however many attempts it takes: its retry_count is the number of attempts
after the first, self_healed is set when an attempt succeeded after a failed one, its exit code,
status and error message are the last attempt's, its duration runs from the first start to the
last end; each attempt is told in the event log.

The circuit breaker reads what the database holds: the agent's executions that failed (ended
`failed`) within the window. With as many as the limit, the breaker is open until the oldest of
those leaves the window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.errors import InvalidInput
from monitor.store.db import Database
from monitor.timeutil import backoff, format_timestamp, parse_duration, parse_timestamp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from random import Random

#: exit codes: like timeout(1) for a command that ran out of time; EX_TEMPFAIL (sysexits.h) for a
#: run the circuit breaker refused.
TIMED_OUT = 124
BREAKER_OPEN = 75


@dataclass(frozen=True)
class Breaker:
    """Open once `failures` executions of an agent failed within `window`."""

    failures: int
    window: timedelta

    @classmethod
    def parse(cls, text: str) -> Breaker:
        """'5/30m': 5 failures within 30 minutes."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\S+)\s*", text)
        if not match or int(match.group(1)) < 1:
            raise InvalidInput(f"{text!r} is not a breaker: use FAILURES/WINDOW, like 5/30m (5 failures within 30"
                               " minutes)")
        try:
            window = parse_duration(match.group(2))
        except InvalidInput:
            raise InvalidInput(f"{text!r} is not a breaker: {match.group(2)!r} is not a window; use FAILURES/WINDOW,"
                               " like 5/30m (5 failures within 30 minutes)") from None
        if window <= timedelta(0):
            raise InvalidInput(f"{text!r} is not a breaker: its window must be longer than 0")
        return cls(int(match.group(1)), window)

    def __str__(self) -> str:
        return f"{self.failures}/{spoken(self.window.total_seconds())}"


@dataclass(frozen=True)
class Policy:
    """How a run heals: attempts after the first, backoff before the 1st retry (doubling, capped at
    backoff_max, with jitter), a time limit per attempt, the grace between SIGTERM and SIGKILL."""

    retries: int = 0
    backoff: float = 1.0
    backoff_max: float = 60.0
    timeout: float | None = None
    kill_after: float = 5.0
    breaker: Breaker | None = None


def backoff_delay(policy: Policy, retry: int, rng: Random | None = None) -> float:
    """Seconds to wait before retry number `retry` (1, 2, ...): backoff * 2^(retry-1), capped at
    backoff_max, of which a random half is taken off ("equal jitter": between half and all of it),
    so that many runs failing together do not retry together."""
    return backoff(policy.backoff, policy.backoff_max, retry - 1, rng)


def spoken(seconds: float) -> str:
    """A duration as a person types it: 10m, 2h, 1h30m, 90s, 0.2s."""
    if seconds >= 60 and float(seconds).is_integer():
        hours, rest = divmod(int(seconds), 3600)
        minutes, secs = divmod(rest, 60)
        text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
        return text
    return f"{seconds:g}s"


#: The agent's failures in a window, newest first: idx_executions_agent_failed, a partial index on
#: (agent_name, completed_at) of the failed executions, finds them without reading the others.
FAILURES_SQL = ("SELECT completed_at FROM agent_executions WHERE agent_name = ? AND status = 'failed'"
                " AND completed_at >= ? AND completed_at <= ? ORDER BY completed_at DESC LIMIT ?")


@dataclass(frozen=True)
class BreakerState:
    failures: int
    open_until: str | None  # stored timestamp; None when closed


def breaker_state(db: Database, agent_name: str, breaker: Breaker, now: datetime) -> BreakerState:
    """Whether the breaker is open for agent_name at `now`, and until when."""
    since = format_timestamp(now - breaker.window)
    rows = db.execute(FAILURES_SQL, (agent_name, since, format_timestamp(now), breaker.failures)).fetchall()
    if len(rows) < breaker.failures:
        return BreakerState(len(rows), None)
    oldest = parse_timestamp(rows[-1][0])
    return BreakerState(len(rows), format_timestamp(oldest + breaker.window))
