"""`export`: the whole database (or one session) as one JSON document, written as it is read."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import IO

from monitor import __version__
from monitor.store.db import Database
from monitor.store.files import atomic_write
from monitor.read.queries import export_events_json, export_json
from monitor.timeutil import format_timestamp, utcnow


def write_export(db: Database, out: IO[str], session_id: str | None = None, since: str | None = None, *,
                 now: datetime | None = None, events: bool = False) -> dict[str, int]:
    """Write {"orchestrations": [{..., "executions": [...]}], "unassigned_executions": [...]} to out,
    exported `now` (default: the current time): one orchestration, its executions nested, a line.
    With events, an "events" array follows: the event log of what was exported, an event a line,
    each naming its session_id and agent_session_id (see queries.export_events_json).

    Memory stays flat: SQLite makes each orchestration's JSON and it is written as it is read,
    inside one read transaction so the document is a consistent snapshot. Returns the counts written.
    """
    counts = {"orchestrations": 0, "executions": 0, "unassigned_executions": 0}
    if events:
        counts["events"] = 0
    header = {"monitor_version": __version__, "exported_at": format_timestamp(now or utcnow())}
    if session_id is not None:
        header["session_id"] = session_id
    if since is not None:
        header["since"] = since
    with db.snapshot():
        orchestrations, unassigned = export_json(db, session_id, since)  # NotFound before a byte is written
        out.write(json.dumps(header, ensure_ascii=False)[:-1] + ', "orchestrations": [')
        for text, executions in orchestrations:
            out.write(",\n" if counts["orchestrations"] else "\n")
            out.write(text)
            counts["orchestrations"] += 1
            counts["executions"] += executions
        out.write('\n], "unassigned_executions": [')
        for text in unassigned:
            out.write(",\n" if counts["unassigned_executions"] else "\n")
            out.write(text)
            counts["unassigned_executions"] += 1
        if events:
            out.write('\n], "events": [')
            for text in export_events_json(db, session_id, since):
                out.write(",\n" if counts["events"] else "\n")
                out.write(text)
                counts["events"] += 1
    out.write("\n]}\n")
    return counts


def export_to_file(db: Database, path: str | os.PathLike[str], session_id: str | None = None,
                   since: str | None = None, *, now: datetime | None = None, events: bool = False) -> dict[str, int]:
    """Write the export to path atomically: readers see the old file or the whole new one. A new
    file is readable by its owner only; an existing one keeps its mode."""
    with atomic_write(Path(path)) as out:
        return write_export(db, out, session_id, since, now=now, events=events)
