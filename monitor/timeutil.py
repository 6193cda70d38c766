"""Time in one place: the stored timestamp format, parsing of user input, durations."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from monitor.errors import InvalidInput

#: Stored form of every timestamp: fixed width, UTC, milliseconds, 'Z'. String order is time order.
TIMESTAMP_LENGTH = len("2026-01-01T00:00:00.000Z")

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$", re.IGNORECASE)
_EPOCH = re.compile(r"^\d+(\.\d+)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def format_timestamp(moment: datetime) -> str:
    """'2026-11-23T09:00:00.123Z' for any aware datetime; naive ones are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    m = moment  # formatted by hand: strftime's %Y does not pad years before 1000 on every platform
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
            f".{m.microsecond // 1000:03d}Z")


#: The earliest moment a timestamp can hold: what "longer ago than anything" clamps to.
EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


def before(moment: datetime, delta: timedelta) -> datetime:
    """moment - delta, or EARLIEST when that is before year 1 (cleanup 1000000, --since 999999d)."""
    try:
        return moment - delta
    except OverflowError:
        return EARLIEST


def parse_timestamp(text: str | float) -> datetime:
    """Read a stored timestamp back: our format, SQLite's 'YYYY-MM-DD HH:MM:SS', or a number of
    seconds (or, above 1e11, milliseconds) since 1970 that another program stored."""
    if isinstance(text, str) and _EPOCH.match(text):
        text = float(text)
    if isinstance(text, (int, float)):
        return datetime.fromtimestamp(text / 1000 if abs(text) > 1e11 else text, timezone.utc)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def milliseconds_between(start: str, end: str) -> int:
    return round((parse_timestamp(end) - parse_timestamp(start)).total_seconds() * 1000)


def parse_duration(text: str) -> timedelta:
    """'90s', '30m', '24h', '7d', '2w' (a bare number is seconds)."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        match = _RELATIVE.match(value)
        if not match:
            raise InvalidInput(
                f"{text!r} is not a duration: use a number with a unit, like 90s, 30m, 24h or 7d"
            ) from None
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds < 0 or seconds != seconds or seconds > 1e11:
        raise InvalidInput(f"{text!r} is not a duration: it must be a positive amount of time")
    return timedelta(seconds=seconds)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A point in time from '24h' / '7d' (ago) or a date or date-time ('2026-11-01', UTC if no zone)."""
    now = now or utcnow()
    if _RELATIVE.match(text):
        return before(now, parse_duration(text))
    from dateutil import parser  # imported here: only absolute dates need it

    try:
        moment = parser.isoparse(text.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{text!r} is not a date or an age: use e.g. 2026-11-01, '2026-11-01 14:00', 24h or 7d"
        ) from None


def format_duration(ms: float | None) -> str:
    """850ms, 12.4s, 3m 05s, 1h 02m, 2d 03h."""
    if ms is None:
        return ""
    ms = round(ms)
    if ms < 1000:
        return f"{ms}ms"
    tenths = round(ms / 100)
    if tenths < 600:
        return f"{tenths / 10:.1f}s"
    seconds = round(ms / 1000)
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    minutes = seconds // 60
    if minutes < 24 * 60:
        return f"{minutes // 60}h {minutes % 60:02d}m"
    hours = minutes // 60
    return f"{hours // 24}d {hours % 24:02d}h"
