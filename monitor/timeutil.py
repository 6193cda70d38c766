"""Time in one place: the stored timestamp format, parsing of user input, durations."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from monitor.errors import InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    import random

#: Stored form of every timestamp: fixed width, UTC, milliseconds, 'Z'. String order is time order.
TIMESTAMP_LENGTH = len("2026-01-01T00:00:00.000Z")

_RELATIVE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$", re.IGNORECASE)
_EPOCH = re.compile(r"^\d+(\.\d+)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def format_timestamp(moment: datetime) -> str:
    """'2026-11-23T09:00:00.123Z' for any aware datetime; naive ones are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # isoformat, not strftime: its year always has four digits (strftime's %Y does not pad years
    # before 1000 on every platform), and it is one C call (the Tracker formats two per execution).
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


#: The earliest moment a timestamp can hold: what "longer ago than anything" clamps to.
EARLIEST = datetime.min.replace(tzinfo=timezone.utc)
#: The latest moment a timestamp can hold.
LATEST = datetime.max.replace(tzinfo=timezone.utc)


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
    """A point in time: an age ('24h', '7d', '90m', '2w' ago) or a date a person typed (parse_date)."""
    now = now or utcnow()
    if _RELATIVE.match(text):
        return before(now, parse_duration(text))
    return parse_date(text)


#: What every error of parse_date ends with: the forms that are understood.
_DATE_FORMS = "use e.g. 24h, 7d, 2026-11-01, '2026-11-01 14:00' (UTC) or '2026-11-01T14:00+02:00'"
#: 'GMT+3' means UTC-3 to dateutil (the POSIX sign), the opposite of what most people mean.
_ZONE_WITH_OFFSET = re.compile(r"\b(?:GMT|UTC)\s*[+-]", re.IGNORECASE)
#: Year, month, day in that order ('2026-11-01', '2026/11/01', '20261101'): never day-first.
_YEAR_FIRST = re.compile(r"\b\d{4}([-/.]?)\d{1,2}\1\d{1,2}")


def parse_date(text: str) -> datetime:
    """A date or date-time as a person types it, read by python-dateutil ('2026-11-01',
    '2026-11-01 14:00', '2026-11-01T14:00+02:00', '1 Nov 2026 2pm -0500'), as an aware UTC
    datetime; without a zone it is UTC. Refused with InvalidInput rather than guessed at: text
    that is not all date (no fuzzy parsing), a date without year, month and day (dateutil would
    fill them in from today), a two-digit year, day and month that could be swapped (01/02/2026),
    a weekday that is not the date's, a zone name dateutil does not know, and 'GMT+3'."""
    from dateutil import parser  # imported here: only absolute dates need it

    value = text.strip()
    first = _dateutil_parse(text, datetime(2000, 1, 1))
    if first.date() != _dateutil_parse(text, datetime(2001, 2, 2)).date():
        raise InvalidInput(f"{text!r} is not a whole date: give the year, month and day ({_DATE_FORMS})")
    if f"{first.year:04d}" not in value:
        raise InvalidInput(f"{text!r} has no four-digit year ({_DATE_FORMS})")
    if not _YEAR_FIRST.search(value) and first != _dateutil_parse(text, datetime(2000, 1, 1), dayfirst=True):
        raise InvalidInput(f"{text!r} could be day/month or month/day: write it as YYYY-MM-DD ({_DATE_FORMS})")
    info = parser.parserinfo()
    if any(info.weekday(word) not in (None, first.weekday()) for word in re.findall(r"[A-Za-z]+", value)):
        raise InvalidInput(f"{text!r} names a weekday that is not that date's ({_DATE_FORMS})")
    if _ZONE_WITH_OFFSET.search(value):
        raise InvalidInput(f"{text!r}: write the offset alone, like +03:00 ({_DATE_FORMS})")
    return _as_utc(first)


def _dateutil_parse(text: str, default: datetime, dayfirst: bool = False) -> datetime:
    """dateutil's parser.parse, strict: not fuzzy, and an unknown zone name is an error (dateutil
    would warn and drop it). Missing parts come from default."""
    import warnings

    from dateutil import parser

    with warnings.catch_warnings():
        warnings.simplefilter("error", parser.UnknownTimezoneWarning)
        try:
            return parser.parse(text.strip(), default=default, dayfirst=dayfirst, fuzzy=False)
        except parser.UnknownTimezoneWarning:
            raise InvalidInput(f"{text!r} has a time zone name monitor does not know: give an offset"
                               f" like +01:00 instead ({_DATE_FORMS})") from None
        except (ValueError, OverflowError):
            raise InvalidInput(f"{text!r} is not a date or an age: {_DATE_FORMS}") from None


def _as_utc(moment: datetime) -> datetime:
    """Naive is UTC; a moment that is past either end of the calendar once in UTC is clamped."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        return EARLIEST if moment.year == 1 else LATEST


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


def backoff(base: float, cap: float, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry `attempt` + 1 (attempt 0 waits about `base`): base * 2^attempt,
    capped at `cap`, of which a random half is taken off ("equal jitter": between half and all of
    it), so that many clients failing together do not retry together, and no wait exceeds the cap."""
    if rng is None:
        import random as _random  # only what retries pays for it

        rng = _random.Random()
    delay = min(cap, base * 2 ** attempt)
    return delay / 2 + rng.uniform(0, delay / 2)
