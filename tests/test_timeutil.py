from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from monitor.errors import InvalidInput
from monitor.timeutil import (EARLIEST, LATEST, format_duration, format_timestamp, parse_duration, parse_since,
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


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, expected", [
    ("24h", NOW - timedelta(hours=24)), ("7d", NOW - timedelta(days=7)), ("90m", NOW - timedelta(minutes=90)),
    ("2w", NOW - timedelta(weeks=2)), (" 1.5h ", NOW - timedelta(minutes=90)),
    ("2026-11-01", utc(2026, 11, 1)), ("2026/11/01", utc(2026, 11, 1)), ("20261101", utc(2026, 11, 1)),
    ("2026-11-01 14:30", utc(2026, 11, 1, 14, 30)),                  # naive: UTC, as documented
    ("2026-11-01T14:30:00+01:00", utc(2026, 11, 1, 13, 30)),
    ("2026-11-01T14:00+02:00", utc(2026, 11, 1, 12)),                # a local time with its offset
    ("2026-11-01 14:00 -0500", utc(2026, 11, 1, 19)),
    ("2026-11-01T14:00:00.250Z", datetime(2026, 11, 1, 14, 0, 0, 250_000, tzinfo=timezone.utc)),
    ("2026-11-01 14:00 UTC", utc(2026, 11, 1, 14)),
    ("1 Nov 2026 2pm", utc(2026, 11, 1, 14)), ("November 1, 2026", utc(2026, 11, 1)),
    ("Sun, 01 Nov 2026 14:00:00 +0100", utc(2026, 11, 1, 13)),     # an e-mail Date: header
    ("13/01/2026", utc(2026, 1, 13)),                                # only one way to read it
    ("0001-01-01T00:00:00+14:00", EARLIEST), ("9999-12-31T23:59:59-05:00", LATEST),  # clamped
])
def test_since_accepts_ages_and_dates(text, expected):
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text, reason", [
    ("yesterdayish", "is not a date or an age"), ("yesterday-ish", "is not a date or an age"),
    ("", "is not a date or an age"), ("24x", "is not a date or an age"),
    ("2026-13-45", "is not a date or an age"), ("2026-02-30", "is not a date or an age"),
    ("2026-11-01 25:00", "is not a date or an age"),
    ("2026-11-01 around noon", "is not a date or an age"),           # no fuzzy parsing
    ("since 2026-11-01", "is not a date or an age"),
    ("-5h", "must be a positive amount of time"),
    ("14:00", "is not a whole date"), ("Nov", "is not a whole date"),  # dateutil would take today's date
    ("2026", "is not a whole date"), ("2026-11", "is not a whole date"), ("5", "is not a whole date"),
    ("01/11/26", "no four-digit year"), ("1 2 3", "no four-digit year"),
    ("01/02/2026", "could be day/month or month/day"),
    ("Monday 2026-11-01", "names a weekday that is not that date's"),  # it was a Sunday
    ("2026-11-01 14:00 CET", "time zone name monitor does not know"),  # dateutil drops it with a warning
    ("2026-11-01 14:00 GMT+3", "write the offset alone"),            # dateutil reads it as UTC-3
])
def test_dates_that_are_nonsense_or_half_understood_are_refused_in_one_line(text, reason):
    with pytest.raises(InvalidInput) as caught:
        parse_since(text, NOW)
    message = str(caught.value)
    assert reason in message and "\n" not in message
    assert message.startswith(repr(text))


def test_since_works_the_same_whatever_the_local_time_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_since("2026-11-01 14:00", NOW) == utc(2026, 11, 1, 14)
        assert parse_since("2026-11-01 14:00 +0100", NOW) == utc(2026, 11, 1, 13)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_date_with_an_offset_filters_a_report_by_the_moment_it_names(tmp_path):
    """--since '2026-11-20 13:30 +0200' is 11:30 UTC: of executions started at 11:00, 11:30 and 12:00
    UTC, the last two."""
    from click.testing import CliRunner

    from conftest import Clock
    from monitor import Tracker
    from monitor.cli import cli

    db = tmp_path / "m.db"
    clock = Clock(utc(2026, 11, 20, 11))
    with Tracker(db, clock=clock) as t:
        for name in ("at-1100", "at-1130", "at-1200"):
            t.start_agent_execution(name, "coder")
            clock.advance(minutes=30)
    result = CliRunner().invoke(cli, ["executions", "--since", "2026-11-20 13:30 +0200", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert sorted(r["agent_session_id"] for r in json.loads(result.output)) == ["at-1130", "at-1200"]
    refused = CliRunner().invoke(cli, ["executions", "--since", "yesterdayish", "--db", str(db)])
    assert refused.exit_code == 2 and "'yesterdayish' is not a date or an age" in refused.output


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("30m", 1800), ("1h", 3600), ("45", 45)])
def test_durations_parse(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["-1h", "abc", "nan", "1e400"])
def test_bad_durations_are_invalid_input(text):
    with pytest.raises(InvalidInput):
        parse_duration(text)
