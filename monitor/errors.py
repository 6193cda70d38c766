"""Exceptions raised by the monitor library. The CLI turns them into one-line errors."""

from __future__ import annotations


class MonitorError(Exception):
    """Base class for every expected failure: the message is meant for a person."""


class NotFound(MonitorError):
    """An orchestration, execution or agent that is not in the database."""


class InvalidInput(MonitorError):
    """A value that the caller passed is not acceptable (bad status, bad date...)."""


class DatabaseError(MonitorError):
    """The database is missing, unreadable, read-only or from a newer monitor."""
