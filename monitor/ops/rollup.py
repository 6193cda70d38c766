"""Daily roll-ups that outlive cleanup: the days whose rows cleanup is about to delete, counted
whole (monitor.read.daily.count_days) into daily_rollup first. See schema.sql for the design."""

from __future__ import annotations

from datetime import datetime

from monitor.read.daily import count_days
from monitor.store.db import Database
from monitor.store.writes import insert_daily_rollup
from monitor.timeutil import format_timestamp, utcnow

#: The days of the executions a cleanup with cutoff :cutoff deletes (those started before it
#: without an orchestration, and all of every orchestration started before it), that are over
#: (before :today) and not rolled up yet.
_DAYS_TO_ROLL_UP = """
SELECT d.day FROM (
    SELECT substr(started_at, 1, 10) AS day FROM agent_executions
    WHERE started_at < :cutoff AND orchestration_id IS NULL
    UNION
    SELECT substr(e.started_at, 1, 10) FROM orchestrations o JOIN agent_executions e ON e.orchestration_id = o.id
    WHERE o.started_at < :cutoff
) AS d
WHERE d.day < :today AND NOT EXISTS (SELECT 1 FROM daily_rollup r WHERE r.day = d.day AND r.scope = 'day')
ORDER BY d.day
"""


def days_to_roll_up(db: Database, cutoff: str, now: datetime | None = None) -> list[str]:
    """The days (YYYY-MM-DD) a cleanup with this cutoff must roll up before it deletes anything."""
    today = format_timestamp(now or utcnow())[:10]
    return [day for (day,) in db.execute(_DAYS_TO_ROLL_UP, {"cutoff": cutoff, "today": today})]


#: Days counted per read snapshot and stored per write transaction: a first cleanup of years of
#: history goes by a month at a time, and writers wait only for the (short) inserts.
DAYS_PER_BATCH = 31


def roll_up(db: Database, days: list[str], now: datetime | None = None) -> int:
    """Count each of `days` whole from the executions into daily_rollup; returns how many days.

    Each batch of days is counted in a read snapshot and stored in a write transaction of its own
    (INSERT OR IGNORE: a day another process rolled up meanwhile keeps its rows), so that writers
    never wait for the counting. The days are over: what changes in them between the two (an
    execution of that day recorded late) is the rare exception the design accepts (schema.sql)."""
    stamp = format_timestamp(now or utcnow())
    for start in range(0, len(days), DAYS_PER_BATCH):
        chunk = days[start:start + DAYS_PER_BATCH]
        marks = ", ".join("?" * len(chunk))
        with db.snapshot():
            # The range lets the started_at index find the rows; the list keeps only the days asked.
            found = count_days(db, f"started_at >= ? AND started_at < ? AND substr(started_at, 1, 10) IN ({marks})",
                               [chunk[0], chunk[-1] + "T99", *chunk])
        with db.transaction() as conn:
            insert_daily_rollup(conn, found, stamp)
    return len(days)
