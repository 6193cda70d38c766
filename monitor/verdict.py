"""Pass, warn or fail: how a measured value compares with a rule's levels, and the exit codes.

Shared by `health` (read/reports.py) and `check` (alerts/rules.py), so both judge alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["pass", "warn", "fail"]
#: Worst last: max(levels, key=RANK.get) is the verdict of several.
RANK: dict[str, int] = {"skip": -1, "pass": 0, "warn": 1, "fail": 2}
#: The exit code of each verdict; 1 is an error (bad database, ...), 2 bad usage.
EXIT_CODES: dict[str, int] = {"pass": 0, "warn": 3, "fail": 4}
#: health's words for the same verdicts.
HEALTH_STATUS: dict[str, str] = {"pass": "healthy", "warn": "degraded", "fail": "unhealthy"}
VERDICT_OF_HEALTH: dict[str, str] = {status: verdict for verdict, status in HEALTH_STATUS.items()}


@dataclass(frozen=True)
class Levels:
    """A warn and a fail level (either may be None: no such level). `minimum` rules fail below
    their levels (success rate), the others above them (p95 duration, cost, counts)."""

    warn: float | None = None
    fail: float | None = None
    minimum: bool = False

    def judge(self, value: float | None) -> Level:
        """The level that `value` reaches; a value that cannot be measured (None) passes."""
        if value is None:
            return "pass"
        if self.fail is not None and self._beyond(value, self.fail):
            return "fail"
        if self.warn is not None and self._beyond(value, self.warn):
            return "warn"
        return "pass"

    def _beyond(self, value: float, level: float) -> bool:
        return value < level if self.minimum else value > level


def worst(levels: list[str]) -> Level:
    """The verdict of several levels: the worst one ("pass" for none)."""
    found = max(levels, key=RANK.__getitem__, default="pass")
    return "pass" if found == "skip" else found  # type: ignore[return-value]
