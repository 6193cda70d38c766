"""Exceptions raised by the monitor library. The CLI turns them into one-line errors."""

from __future__ import annotations


class MonitorError(Exception):
    """Base class for every expected failure: the message is meant for a person."""


class NotFound(MonitorError):
    """An orchestration, execution or agent that is not in the database."""


class InvalidInput(MonitorError):
    """A value that the caller passed is not acceptable (bad status, bad date...)."""


class DatabaseError(MonitorError):
    """The database is missing, unreadable, read-only, locked, full, or from a newer monitor: every
    failure of the database itself (never a raw sqlite3 exception)."""

    def __init__(self, message: str, sqlite_error: str | None = None) -> None:
        super().__init__(message)
        #: SQLite's name for the error when SQLite raised it: SQLITE_BUSY, SQLITE_FULL, ...
        self.sqlite_error = sqlite_error
