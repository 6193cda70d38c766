"""The one place that formats: tables for people; JSON, CSV and JSON lines for programs."""

from __future__ import annotations

import csv
import itertools
import io
import json
import unicodedata
from collections.abc import Iterator, Sequence

from monitor.read.logs import EVENT_COLUMNS, EventFilter, follow_events, list_events
from monitor.store.db import Database
from monitor.timeutil import format_duration

FORMATS = ("table", "json", "csv", "nl")


def _label(key: str) -> str:
    if key.endswith("duration_ms"):
        key = key[: -len("_ms")]
    elif key.endswith("_ms"):
        key = key[: -len("_ms")]
    elif key.endswith("_usd"):
        key = key[: -len("_usd")] + " $"
    return key.replace("_", " ")


def _cell(key: str, value: object) -> str:
    """A value as a person reads it: durations, percentages, money, times, yes/no."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_ms") and isinstance(value, (int, float)):
        return format_duration(value)
    if key.endswith("_rate") and isinstance(value, (int, float)):
        return f"{value:.1f}%"
    if key.endswith("_usd") and isinstance(value, (int, float)):
        return f"{value:.4f}"
    if (key.endswith("_at") or key == "since") and isinstance(value, str) and len(value) >= 19:
        return value[:10] + " " + value[11:19]
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, str) and ("\n" in value or len(value) > 80):
        first = value.strip().splitlines()[-1] if value.strip() else ""
        return first[:77] + "..." if len(first) > 80 else first
    return str(value)


def _width(text: str) -> int:
    """Columns a string takes in a terminal: wide (CJK, emoji) characters take two, combining none."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def _table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A plain aligned table: headers, a rule of dashes under each, two spaces between columns.

    Written here rather than with tabulate: importing tabulate 0.10 costs ~35 ms (it loads
    importlib.metadata), more than the rest of `monitor health` start-up (benchmarks/README.md).
    """
    header = [_label(c) for c in columns]
    body = [[_cell(c, r.get(c)) for c in columns] for r in rows]
    # As tabulate's "simple" format, which the first versions used: headers get two spaces of room.
    widths = [max(_width(header[i]) + 2, *(_width(r[i]) for r in body)) for i in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(cells, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in body)])


def render_rows(
    rows: Sequence[dict],
    fmt: str,
    columns: Sequence[str],
    *,
    table_columns: Sequence[str] | None = None,
    empty: str = "Nothing found.",
) -> str:
    """A list of records. columns fixes JSON key order and the CSV header (even with no rows);
    table_columns picks the readable subset for the table."""
    if fmt == "json":
        return json.dumps([{c: r.get(c) for c in columns} for r in rows], indent=2, ensure_ascii=False)
    if fmt == "nl":
        return "\n".join(json.dumps({c: r.get(c) for c in columns}, ensure_ascii=False) for r in rows)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["true" if r.get(c) is True else "false" if r.get(c) is False else r.get(c)
                             for c in columns])
        return buffer.getvalue().rstrip("\n")
    if not rows:
        return empty
    return _table(rows, table_columns or columns)


def render_record(record: dict, fmt: str, *, sections: dict[str, Sequence[str]] | None = None) -> str:
    """One record (show, agent, health). Table: scalar fields as 'field  value' lines, then each
    nested record or list as its own titled section; sections picks the columns of list sections."""
    if fmt == "json":
        return json.dumps(record, indent=2, ensure_ascii=False)
    sections = sections or {}
    scalars = [(k, v) for k, v in record.items() if not isinstance(v, (dict, list)) or
               (isinstance(v, list) and not any(isinstance(i, dict) for i in v))]
    parts = [_pairs(scalars)]
    for key, value in record.items():
        if isinstance(value, dict):
            inner = render_record(value, fmt, sections=sections)
            parts.append(f"{_label(key).capitalize()}\n{_indent(inner)}")
        elif isinstance(value, list) and any(isinstance(i, dict) for i in value):
            columns = sections.get(key) or list(value[0])
            parts.append(f"{_label(key).capitalize()}\n{_indent(_table(value, columns))}")
    return "\n\n".join(p for p in parts if p)


def _pairs(items: Sequence[tuple[str, object]]) -> str:
    """'field  value' lines; fields with no value are left out of the table view."""
    items = [(k, v) for k, v in items if v is not None]
    if not items:
        return ""
    width = max(len(_label(k)) for k, _ in items)
    return "\n".join(f"{_label(k):<{width}}  {_cell(k, v)}".rstrip() for k, v in items)


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


#: The columns of the `logs` table (the other formats give every EVENT_COLUMNS field).
LOG_TABLE_COLUMNS = ["timestamp", "agent_name", "type", "message"]


def render_log(db: Database, where: EventFilter, fmt: str, *, follow: bool = False,
               interval: float = 0.5) -> Iterator[str]:
    """What `logs` prints, chunk by chunk: the events so far, then (follow) new ones as they are
    recorded, until the caller stops. Following is a stream: JSON comes as JSON lines, and CSV and
    the table print their header once, before the first rows."""
    found = list_events(db, where)
    if not follow:
        yield render_rows(found, fmt, EVENT_COLUMNS, table_columns=LOG_TABLE_COLUMNS,
                          empty="No events recorded for this session.")
        return
    fmt = "nl" if fmt == "json" else fmt
    after = max((e["id"] for e in found), default=where.after_id)
    header = {"csv": 1, "table": 2}.get(fmt, 0)  # its lines, printed with the first rows only
    first = True
    for batch in itertools.chain([found], follow_events(db, where._replace(after_id=after), interval)):
        if not batch and not (first and fmt == "csv"):
            continue  # nothing yet: an empty table says nothing, an empty CSV is its header
        lines = render_rows(batch, fmt, EVENT_COLUMNS, table_columns=LOG_TABLE_COLUMNS).splitlines()
        yield "\n".join(lines if first else lines[header:])
        first = False
