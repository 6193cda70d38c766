"""The rules `check` (and later `alert`) apply: what they are, where they come from, how they read.

A rule is a measure (success rate, p95 duration, cost, ...) with a warn and a fail level; it
applies to everything in a window, to one agent (or each agent: "*"), or to one session.
Rules come from DEFAULTS (health's), then a config file, then --rule flags, each replacing a
rule whole. Any mistake is an InvalidInput naming its file (or --rule), its key and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from monitor.errors import InvalidInput
from monitor.timeutil import format_duration, parse_duration
from monitor.verdict import Levels


@dataclass(frozen=True)
class Measure:
    """What a rule measures: its label, its unit (percent, duration in ms, usd, count) and
    whether it fails below its levels (minimum) or above them."""

    label: str
    unit: str
    minimum: bool = False
    scopes: frozenset[str] = frozenset({"window", "session"})

    def show(self, value: float | None) -> str:
        if value is None:
            return "none"
        if value == float("inf"):
            return "never"
        if self.unit == "percent":
            return f"{value:g}%"
        if self.unit == "duration":
            return format_duration(value)
        if self.unit == "usd":
            return f"${value:,.4f}".rstrip("0").rstrip(".") if value else "$0"
        return f"{value:g}"


MEASURES: dict[str, Measure] = {
    "success_rate": Measure("success rate", "percent", minimum=True),
    "p95_duration": Measure("p95 duration", "duration"),
    "cost": Measure("cost", "usd"),
    "stale": Measure("stale executions", "count"),
    "failed_executions": Measure("failed executions", "count"),
    "failed_orchestrations": Measure("failed orchestrations", "count", scopes=frozenset({"window"})),
    "activity": Measure("time since the last execution", "duration", scopes=frozenset({"window"})),
    "duration": Measure("session duration", "duration", scopes=frozenset({"session"})),
}
#: What a rule for one agent (or each: "*") may measure.
AGENT_MEASURES = ("success_rate", "p95_duration", "cost", "failed_executions")
EACH_AGENT = "*"
#: health's rules: success rate warn below 95%, fail below 80%; any stale execution warns.
DEFAULT_RULES: dict[str, Levels] = {"success_rate": Levels(95, 80, minimum=True), "stale": Levels(warn=0)}
DEFAULT_WINDOW_HOURS = 24.0
DEFAULT_STALE_AFTER = timedelta(hours=1)
CONFIG_FILES = ("monitor.toml", "pyproject.toml")
_TOP_KEYS = ("window", "stale_after", "rules")


@dataclass(frozen=True)
class Rule:
    """A measure's levels, for everything (agent None), one agent, or each agent ("*")."""

    measure: str
    levels: Levels
    agent: str | None = None

    @property
    def name(self) -> str:
        return self.measure if self.agent is None else f"agents.{self.agent}.{self.measure}"


@dataclass(frozen=True)
class Config:
    """What `check` applies: the window, when an execution is stale, and the rules by name
    (None: a default rule turned off)."""

    window_hours: float = DEFAULT_WINDOW_HOURS
    stale_after: timedelta = DEFAULT_STALE_AFTER
    rules: Mapping[str, Rule | None] = field(default_factory=lambda: {
        name: Rule(name, levels) for name, levels in DEFAULT_RULES.items()})
    source: str | None = None

    def active(self) -> list[Rule]:
        return [rule for rule in self.rules.values() if rule is not None]


# -- reading levels -----------------------------------------------------------------------------

def _fail(where: str, key: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{where}: {key}: {problem}")


def parse_value(measure: str, raw: object, where: str, key: str) -> float:
    """One level of `measure` as a number (a duration in ms)."""
    unit = MEASURES[measure].unit
    if unit == "duration":
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise _fail(where, key, f"{raw!r} is not a duration; allowed: an age like '90s', '10m', '2h' or '7d'")
        try:
            return parse_duration(str(raw)).total_seconds() * 1000
        except InvalidInput:
            raise _fail(where, key, f"{raw!r} is not a duration; allowed: an age like '90s', '10m', '2h'"
                                    " or '7d'") from None
    number = _number(raw)
    allowed = {"percent": "a percentage from 0 to 100", "usd": "an amount of USD, 0 or more",
               "count": "a whole number, 0 or more"}[unit]
    if (number is None or number < 0 or (unit == "percent" and number > 100)
            or (unit == "count" and not float(number).is_integer())):
        raise _fail(where, key, f"{raw!r} is not {allowed}")
    return float(number)


def _number(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw.strip().rstrip("%").lstrip("$"))
        except ValueError:
            return None
    return None


_LEVELS_HELP = "{warn = W, fail = F}, a single value (the fail level) or false (off)"


def parse_levels(measure: str, raw: object, where: str, key: str) -> Levels | None:
    """A rule's levels from TOML ({warn = 95, fail = 80}, a bare value: the fail level, false: off)
    or from a flag ('95/80', '/80', '95/', '80', 'off'). None is off."""
    if raw is False or (isinstance(raw, str) and raw.strip().lower() in ("off", "false")):
        return None
    if isinstance(raw, str) and "/" in raw:
        warn_text, _, fail_text = raw.partition("/")
        raw = {k: v.strip() for k, v in (("warn", warn_text), ("fail", fail_text)) if v.strip()}
    if isinstance(raw, Mapping):
        unknown = sorted(set(raw) - {"warn", "fail"})
        if unknown:
            raise _fail(where, f"{key}.{unknown[0]}", "unknown key; allowed: warn, fail")
        if not raw:
            raise _fail(where, key, f"no level given; allowed: {_LEVELS_HELP}")
        warn, fail = (None if raw.get(k) is None else parse_value(measure, raw[k], where, f"{key}.{k}")
                      for k in ("warn", "fail"))
    else:
        warn, fail = None, parse_value(measure, raw, where, key)
    minimum = MEASURES[measure].minimum
    if warn is not None and fail is not None and (fail > warn if minimum else fail < warn):
        show = MEASURES[measure].show
        raise _fail(where, key, f"fail level {show(fail)} is {'above' if minimum else 'below'} warn level"
                                f" {show(warn)}: a rule cannot fail before it warns")
    return Levels(warn, fail, minimum)


def rule_from(name: str, raw: object, where: str, prefix: str = "") -> tuple[str, Rule | None]:
    """A rule named `success_rate` or `agents.NAME.p95_duration` (NAME may be "*")."""
    key = prefix + name
    agent: str | None = None
    measure = name
    if name.startswith("agents."):
        agent, _, measure = name[len("agents."):].rpartition(".")
        if not agent:
            raise _fail(where, key, "an agent's rule is named agents.NAME.RULE (NAME or \"*\": each agent)")
        if measure not in AGENT_MEASURES:
            raise _fail(where, key, f"unknown rule for an agent; allowed: {', '.join(AGENT_MEASURES)}")
    elif measure not in MEASURES:
        raise _fail(where, key, f"unknown rule; allowed: {', '.join(MEASURES)}, agents.NAME.RULE")
    levels = parse_levels(measure, raw, where, key)
    return name, None if levels is None else Rule(measure, levels, agent)


# -- config files and flags --------------------------------------------------------------------

def find_config(directory: Path) -> Path | None:
    """monitor.toml in `directory`, else its pyproject.toml if that has a [tool.monitor] table."""
    for name in CONFIG_FILES:
        path = directory / name
        if path.is_file() and (name != "pyproject.toml" or _has_tool_monitor(path)):
            return path
    return None


def _has_tool_monitor(path: Path) -> bool:
    try:
        return "monitor" in _read_toml(path).get("tool", {})
    except InvalidInput:
        return True  # a broken pyproject.toml: reading it again says what is wrong


def _read_toml(path: Path) -> dict:
    import tomllib  # here: only a config file needs it

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not valid TOML: it is not UTF-8 text") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise InvalidInput(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None


def load_config(path: Path | None, base: Config = Config()) -> Config:
    """`base` with what the file at `path` sets (pyproject.toml: its [tool.monitor] table)."""
    if path is None:
        return base
    data = _read_toml(path)
    prefix = ""
    if path.name == "pyproject.toml":
        data, prefix = data.get("tool", {}).get("monitor", {}), "tool.monitor."
    where = os.fspath(path)
    return _apply(base, data, where, prefix)


def _apply(base: Config, data: Mapping, where: str, prefix: str) -> Config:
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise _fail(where, prefix + unknown[0], f"unknown key; allowed: {', '.join(_TOP_KEYS)}")
    config = replace(base, source=where)
    if "window" in data:
        config = replace(config, window_hours=parse_value("activity", data["window"], where, prefix + "window")
                         / 3_600_000)
        if not config.window_hours:
            raise _fail(where, prefix + "window", "the window must be longer than 0")
    if "stale_after" in data:
        config = replace(config, stale_after=timedelta(
            milliseconds=parse_value("activity", data["stale_after"], where, prefix + "stale_after")))
    rules = data.get("rules", {})
    if not isinstance(rules, Mapping):
        raise _fail(where, prefix + "rules", f"a table of rules; allowed keys: {', '.join(MEASURES)}, agents")
    return with_rules(config, _flatten(rules, where, prefix + "rules."), where, prefix + "rules.")


def _flatten(rules: Mapping, where: str, prefix: str) -> Iterable[tuple[str, object]]:
    """(name, levels) of a rules table, agents.NAME.RULE for [rules.agents.NAME]."""
    for key, value in rules.items():
        if key != "agents":
            yield key, value
            continue
        if not isinstance(value, Mapping):
            raise _fail(where, prefix + "agents", "a table of agents, each a table of rules")
        for agent, agent_rules in value.items():
            if not isinstance(agent_rules, Mapping):
                raise _fail(where, f"{prefix}agents.{agent}",
                            f"a table of rules; allowed keys: {', '.join(AGENT_MEASURES)}")
            for measure, levels in agent_rules.items():
                yield f"agents.{agent}.{measure}", levels


def with_rules(config: Config, rules: Iterable[tuple[str, object]], where: str, prefix: str = "") -> Config:
    """config with each named rule replaced (or turned off); errors name a rule as prefix + its name."""
    updated = dict(config.rules)
    for name, raw in rules:
        key, rule = rule_from(name, raw, where, prefix)
        updated[key] = rule
    return replace(config, rules=updated)


def parse_flags(config: Config, flags: Iterable[str]) -> Config:
    """config with each --rule NAME=LEVELS applied."""
    pairs = []
    for flag in flags:
        name, sep, value = flag.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InvalidInput(f"--rule: {flag!r}: write NAME=WARN/FAIL (e.g. success_rate=95/80, cost=/20,"
                               f" agents.tests.p95_duration=5m/15m, stale=off)")
        pairs.append((name.strip(), value.strip()))
    return with_rules(config, pairs, "--rule")
