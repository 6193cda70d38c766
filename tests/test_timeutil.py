from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from monitor.errors import InvalidInput
from monitor.timeutil import (format_duration, format_timestamp, parse_duration, parse_since,
                              parse_timestamp)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def test_timestamps_are_fixed_width_utc_with_milliseconds():
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(moment) == "2026-01-02T01:04:05.678Z"
    assert format_timestamp(datetime(2026, 1, 2)) == "2026-01-02T00:00:00.000Z"


@pytest.mark.parametrize("text", ["2026-11-20T12:00:00.000Z", "2026-11-20 12:00:00", "2026-11-20T14:00:00+02:00"])
def test_stored_timestamps_are_read_back_in_any_of_the_formats(text):
    assert parse_timestamp(text) == datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize("ms, text", [
    (0, "0ms"), (850, "850ms"), (999.6, "1.0s"), (12_400, "12.4s"), (59_960, "1m 00s"),
    (185_000, "3m 05s"), (3_720_000, "1h 02m"), (183_600_000, "2d 03h"), (None, ""),
])
def test_durations_read_like_a_person_writes_them(ms, text):
    assert format_duration(ms) == text


@pytest.mark.parametrize("text, expected", [
    ("24h", NOW - timedelta(hours=24)), ("7d", NOW - timedelta(days=7)), ("90m", NOW - timedelta(minutes=90)),
    ("2w", NOW - timedelta(weeks=2)), ("2026-11-01", datetime(2026, 11, 1, tzinfo=timezone.utc)),
    ("2026-11-01 14:30", datetime(2026, 11, 1, 14, 30, tzinfo=timezone.utc)),
    ("2026-11-01T14:30:00+01:00", datetime(2026, 11, 1, 13, 30, tzinfo=timezone.utc)),
])
def test_since_accepts_ages_and_dates(text, expected):
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday-ish", "", "-5h", "24x", "2026-13-45"])
def test_bad_since_is_invalid_input(text):
    with pytest.raises(InvalidInput):
        parse_since(text, NOW)


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("30m", 1800), ("1h", 3600), ("45", 45)])
def test_durations_parse(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["-1h", "abc", "nan", "1e400"])
def test_bad_durations_are_invalid_input(text):
    with pytest.raises(InvalidInput):
        parse_duration(text)
