"""`check`: measure what the rules ask for, over a window or one session, and judge each rule."""

from __future__ import annotations

from datetime import datetime

from monitor.alerts.rules import EACH_AGENT, MEASURES, Config, Rule
from monitor.read.queries import get_orchestration
from monitor.read.reports import execution_stats, health, performance
from monitor.store.db import Database
from monitor.timeutil import before, format_timestamp, parse_timestamp, utcnow
from monitor.verdict import EXIT_CODES, worst

#: Per-agent statistics (from reports) -> the value of each agent measure.
_AGENT_VALUES = {"success_rate": "success_rate", "p95_duration": "p95_duration_ms", "cost": "cost_usd",
                 "failed_executions": "failed"}


def check(db: Database, config: Config, *, session: str | None = None, now: datetime | None = None) -> dict:
    """Every rule of `config` judged over its window (or over `session`), and the verdict:
    pass, warn or fail (the worst rule's), with its exit code."""
    now = now or utcnow()
    if session is None:
        overall, agents, scope = _window(db, config, now)  # health and performance: each a snapshot
    else:
        with db.snapshot():
            overall, agents, scope = _session(db, config, session, now)
    results = []
    for rule in sorted(config.active(), key=lambda r: (r.agent is not None, r.agent or "", r.measure)):
        results.extend(_judge(rule, overall, agents, scope["scope"]))
    verdict = worst([r["status"] for r in results])
    return {"verdict": verdict, "exit_code": EXIT_CODES[verdict], **scope,
            "stale_after_ms": round(config.stale_after.total_seconds() * 1000), "config": config.source,
            "generated_at": format_timestamp(now), "rules": results}


def _window(db: Database, config: Config, now: datetime) -> tuple[dict, dict[str, dict], dict]:
    report = health(db, config.window_hours, stale_after=config.stale_after, now=now, stale_shown=0)
    stats = report["executions"]
    latest = db.execute("SELECT max(started_at) FROM agent_executions").fetchone()[0]
    overall = {
        "success_rate": stats["success_rate"], "p95_duration": stats["p95_duration_ms"], "cost": stats["cost_usd"],
        "stale": report["stale"]["count"], "failed_executions": stats["failed"],
        "failed_orchestrations": report["orchestrations"]["failed"] + report["orchestrations"]["partial"],
        "activity": _age_ms(now, latest),
    }
    agents = {}
    if any(rule.agent is not None for rule in config.active()):
        agents = {row["agent_name"]: row for row in performance(db, report["since"])}
    return overall, agents, {"scope": "window", "session": None, "window_hours": config.window_hours,
                             "since": report["since"]}


def _session(db: Database, config: Config, session: str, now: datetime) -> tuple[dict, dict[str, dict], dict]:
    orchestration = get_orchestration(db, session)
    where, params = "orchestration_id = ?", (orchestration["id"],)
    stats = execution_stats(db, where, params)
    stale = db.execute(f"SELECT count(*) FROM agent_executions WHERE {where} AND status = 'in_progress'"
                       " AND started_at < ?", (*params, format_timestamp(before(now, config.stale_after)))
                       ).fetchone()[0]
    duration = orchestration["duration_ms"]
    if duration is None:
        duration = _age_ms(now, orchestration["started_at"])
    overall = {"success_rate": stats["success_rate"], "p95_duration": stats["p95_duration_ms"],
               "cost": stats["cost_usd"], "stale": stale, "failed_executions": stats["failed"], "duration": duration}
    agents = {}
    if any(rule.agent is not None for rule in config.active()):
        names = [r[0] for r in db.execute(f"SELECT DISTINCT agent_name FROM agent_executions WHERE {where}"
                                          " ORDER BY agent_name", params)]
        agents = {name: execution_stats(db, where + " AND agent_name = ?", (*params, name)) for name in names}
    return overall, agents, {"scope": "session", "session": session, "window_hours": None,
                             "since": orchestration["started_at"]}


def _age_ms(now: datetime, moment: str | None) -> float | None:
    """Milliseconds from `moment` to now; None when there is no moment (or none anyone can read)."""
    if moment is None:
        return None
    try:
        return max(0.0, (now - parse_timestamp(moment)).total_seconds() * 1000)
    except (ValueError, TypeError, OverflowError):
        return None


def _judge(rule: Rule, overall: dict, agents: dict[str, dict], scope: str) -> list[dict]:
    """One result per agent the rule covers (one for a rule on everything)."""
    measure = MEASURES[rule.measure]
    if scope not in measure.scopes:
        return [_result(rule, None, "skip", f"{measure.label}: not measured for a {scope}")]
    if rule.agent is None:
        value = overall[rule.measure]
        if rule.measure == "activity" and value is None:
            value = float("inf")  # no execution ever: the dead man's switch trips
        return [_judged(rule, value, rule.agent)]
    names = sorted(agents) if rule.agent == EACH_AGENT else [rule.agent]
    return [_judged(rule, _agent_value(agents.get(name), rule.measure), name) for name in names]


def _agent_value(stats: dict | None, measure: str) -> float | None:
    if stats is None:
        return None
    return stats[_AGENT_VALUES[measure]]


def _judged(rule: Rule, value: float | None, agent: str | None) -> dict:
    measure = MEASURES[rule.measure]
    status = rule.levels.judge(value)
    subject = measure.label if agent is None else f"{agent}: {measure.label}"
    if value is None:
        message = f"{subject}: nothing to measure"
    elif status == "pass":
        message = f"{subject} {measure.show(value)}"
    else:
        level = rule.levels.fail if status == "fail" else rule.levels.warn
        message = f"{subject} {measure.show(value)} is {'below' if measure.minimum else 'above'} {measure.show(level)}"
    return _result(rule, value, status, message, agent)


def _result(rule: Rule, value: float | None, status: str, message: str, agent: str | None = None) -> dict:
    measure = MEASURES[rule.measure]
    return {
        "rule": rule.measure if agent is None else f"agents.{agent}.{rule.measure}",
        "agent": agent, "measure": rule.measure, "unit": measure.unit,
        "value": _plain(None if value == float("inf") else value),
        "warn": _plain(rule.levels.warn), "fail": _plain(rule.levels.fail), "status": status, "message": message,
    }


def _plain(number: float | None) -> float | None:
    """A whole number as an int (JSON 60000, not 60000.0), a duration in ms rounded."""
    if isinstance(number, float) and (number.is_integer() or abs(number) >= 1000):
        return round(number)
    return number
