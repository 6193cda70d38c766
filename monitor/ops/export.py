"""`export`: the whole database (or one session) as one JSON document, written as it is read."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TextIO

from monitor import __version__
from monitor.store.db import Database
from monitor.errors import MonitorError
from monitor.read.queries import get_orchestration, iter_export
from monitor.timeutil import format_timestamp, utcnow


def write_export(db: Database, out: TextIO, session_id: str | None = None, since: str | None = None, *,
                 now: datetime | None = None) -> dict[str, int]:
    """Write {"orchestrations": [{..., "executions": [...]}], "unassigned_executions": [...]} to out,
    exported `now` (default: the current time).

    Memory stays flat: rows are written as they are read, inside one read transaction so the
    document is a consistent snapshot. Returns the counts written.
    """
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    counts = {"orchestrations": 0, "executions": 0, "unassigned_executions": 0}
    header = {"monitor_version": __version__, "exported_at": format_timestamp(now or utcnow())}
    if session_id is not None:
        header["session_id"] = session_id
    if since is not None:
        header["since"] = since
    with db.snapshot():
        if session_id is not None:
            get_orchestration(db, session_id)  # NotFound before a byte is written
        out.write(dumps(header)[:-1] + ', "orchestrations": [')
        section, first_in_list = "orchestrations", True
        for kind, row in iter_export(db, session_id, since):
            if kind == "orchestration":
                if counts["orchestrations"]:
                    out.write("]},")
                out.write("\n" + dumps(row)[:-1] + ', "executions": [')
                counts["orchestrations"] += 1
                first_in_list = True
            else:
                if kind == "unassigned" and section == "orchestrations":
                    out.write(("]}" if counts["orchestrations"] else "") + '\n], "unassigned_executions": [')
                    section, first_in_list = "unassigned", True
                out.write(("\n  " if first_in_list else ",\n  ") + dumps(row))
                first_in_list = False
                counts["executions" if kind == "execution" else "unassigned_executions"] += 1
        if section == "orchestrations":
            out.write(("]}" if counts["orchestrations"] else "") + '\n], "unassigned_executions": [')
    out.write("\n]}\n")
    return counts


def export_to_file(db: Database, path: str | os.PathLike[str], session_id: str | None = None,
                   since: str | None = None, *, now: datetime | None = None) -> dict[str, int]:
    """Write the export to path atomically: readers see the old file or the whole new one."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise MonitorError(f"cannot write {target}: {exc.strerror or exc}"
                           + ("" if target.parent.is_dir() else f" (no directory {target.parent})")) from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # as an ordinary new file would be, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            counts = write_export(db, out, session_id, since, now=now)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return counts
