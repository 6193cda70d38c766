"""`alert`: turn check's results into notifications on change, and deliver them.

What was last notified for each rule is kept in the alert_state table. A rule that starts to
warn or fail "fires"; warn to fail "escalates", fail to warn "de-escalates"; the same status
is sent again only after `repeat`; a rule that passes again is "resolved", once. Alerts are
claimed (their state written) in one short transaction before delivery, so two `alert`
processes at once do not both send; a delivery that fails gives its claim back (unless another run
has claimed the rule since), so the next run sends it again: an alert is never lost silently.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.errors import MonitorError
from monitor.store.db import Database
from monitor.store.writes import delete_alert_state, put_alert_state
from monitor.timeutil import backoff, format_timestamp, parse_timestamp

#: Kinds of alert, and what each says of the rule.
KINDS = ("firing", "escalated", "de-escalated", "repeated", "resolved")


class DeliveryError(MonitorError):
    """A notification could not be delivered, even after its retries."""


@dataclass(frozen=True)
class Retry:
    """attempts in all; waits backoff, 2x backoff, ... (capped at cap, jittered: timeutil.backoff) in between."""

    attempts: int = 3
    backoff: float = 1.0
    cap: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def wait(self, attempt: int) -> None:
        self.sleep(backoff(self.backoff, self.cap, attempt))


def state_key(report: dict, rule: str) -> str:
    scope = "window" if report["session"] is None else f"session {report['session']}"
    return f"{scope} {rule}"


def decide(report: dict, states: dict[str, tuple], now: datetime, repeat: timedelta) -> list[dict]:
    """The alerts check's `report` calls for, given what was last sent (key -> (status, sent_at, message))."""
    alerts = []
    for result in report["rules"]:
        if result["status"] == "skip":
            continue
        key = state_key(report, result["rule"])
        previous, sent_at, _ = states.get(key, ("pass", None, None))
        kind = _kind(previous, result["status"], sent_at, now, repeat)
        if kind:
            alerts.append({"kind": kind, "key": key, "rule": result["rule"], "status": result["status"],
                           "previous": previous, "message": result["message"], "value": result["value"],
                           "warn": result["warn"], "fail": result["fail"], "scope": report["scope"],
                           "session": report["session"], "at": format_timestamp(now)})
    return alerts


def _kind(previous: str, status: str, sent_at: str | None, now: datetime, repeat: timedelta) -> str | None:
    if status == "pass":
        return "resolved" if previous != "pass" else None
    if previous == "pass":
        return "firing"
    if previous != status:
        return "escalated" if status == "fail" else "de-escalated"
    if sent_at is None or now - parse_timestamp(sent_at) >= repeat:
        return "repeated"
    return None


def claim(db: Database, report: dict, now: datetime, repeat: timedelta) -> tuple[list[dict], dict]:
    """Decide and record the alerts in one write transaction; return them and the states they replaced."""
    with db.transaction() as conn:
        states = {key: (status, sent_at, message) for key, status, sent_at, message in
                  conn.execute("SELECT key, status, sent_at, message FROM alert_state")}
        alerts = decide(report, states, now, repeat)
        for alert in alerts:
            put_alert_state(conn, alert["key"], alert["status"], alert["message"], alert["at"])
    return alerts, {a["key"]: states.get(a["key"]) for a in alerts}


def give_back(db: Database, alerts: Sequence[dict], previous: dict) -> None:
    """Undo a claim whose delivery failed: the next run decides (and sends) again. A rule that another
    run has claimed since (its state is no longer this claim's) keeps that newer state."""
    with db.transaction() as conn:
        now = {key: (status, sent_at, message) for key, status, sent_at, message in
               conn.execute("SELECT key, status, sent_at, message FROM alert_state")}
        for alert in alerts:
            key, state = alert["key"], previous[alert["key"]]
            if now.get(key) != (alert["status"], alert["at"], alert["message"]):
                continue
            if state is None:
                delete_alert_state(conn, key)
            else:
                status, sent_at, message = state
                put_alert_state(conn, key, status, message, sent_at)


# -- what is sent ------------------------------------------------------------------------------

def generic_payload(alerts: Sequence[dict], report: dict) -> dict:
    return {"source": "monitor", "verdict": report["verdict"], "scope": report["scope"],
            "session": report["session"], "generated_at": report["generated_at"], "alerts": list(alerts)}


_SLACK_COLORS = {"fail": "danger", "warn": "warning", "pass": "good"}


def alert_line(alert: dict) -> str:
    """'FAIL (firing) success_rate: success rate 50% is below 80%'."""
    return f"{alert['status'].upper()} ({alert['kind']}) {alert['rule']}: {alert['message']}"


def slack_payload(alerts: Sequence[dict], report: dict) -> dict:
    """Slack's incoming-webhook shape: a text, and an attachment per alert coloured by status."""
    scope = f"session {report['session']}" if report["session"] else f"last {report['window_hours']:g}h"
    return {"text": f"monitor: {report['verdict'].upper()} ({scope})",
            "attachments": [{"color": _SLACK_COLORS[a["status"]], "text": alert_line(a)} for a in alerts]}


# -- delivering --------------------------------------------------------------------------------

def post_json(url: str, body: dict, retry: Retry = Retry(), timeout: float = 10.0) -> int:
    """POST body as JSON; retried on a connection error, a timeout, 429 or 5xx; return the attempts made."""
    data = json.dumps(body).encode()
    last = ""
    for attempt in range(retry.attempts):
        if attempt:
            retry.wait(attempt - 1)
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "monitor"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
            return attempt + 1
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} {exc.reason}"
            if exc.code != 429 and exc.code < 500:
                break  # the request itself is wrong: sending it again will not help
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
    raise DeliveryError(f"webhook {url} failed after {attempt + 1} attempt{'s' if attempt else ''}: {last}")


def run_command(command: str, body: dict, retry: Retry = Retry(), timeout: float = 60.0) -> int:
    """Run command (split as a shell would, not run by one) with body as JSON on stdin; retried
    while it exits non-zero; return the attempts made."""
    argv = shlex.split(command)
    last = ""
    for attempt in range(retry.attempts):
        if attempt:
            retry.wait(attempt - 1)
        try:
            done = subprocess.run(argv, input=json.dumps(body), text=True, capture_output=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            last = str(exc)
            continue
        if done.returncode == 0:
            return attempt + 1
        last = f"exit code {done.returncode}" + (f": {done.stderr.strip().splitlines()[-1]}"
                                                 if done.stderr.strip() else "")
    raise DeliveryError(f"--exec {command!r} failed after {retry.attempts} attempts: {last}")


def deliver(alerts: Sequence[dict], report: dict, *, webhooks: Sequence[str] = (), slack: Sequence[str] = (),
            commands: Sequence[str] = (), retry: Retry = Retry()) -> None:
    """Send alerts to every destination (nothing when there are none); DeliveryError naming the
    ones that failed."""
    if not alerts:
        return
    generic = generic_payload(alerts, report)
    sends: list[Callable[[], object]] = [
        *(lambda url=url: post_json(url, generic, retry) for url in webhooks),
        *(lambda url=url: post_json(url, slack_payload(alerts, report), retry) for url in slack),
        *(lambda command=command: run_command(command, generic, retry) for command in commands),
    ]
    failures = []
    for send in sends:
        try:
            send()
        except DeliveryError as exc:
            failures.append(str(exc))
    if failures:
        raise DeliveryError("; ".join(failures) + " (the alerts will be sent again by the next run)")
