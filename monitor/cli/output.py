"""The one place that formats: tables for people (drawn by tabulate); JSON, CSV and JSON lines for programs.

tabulate (and wcwidth, which it measures wide characters with) is imported only when a table is
drawn: importing it costs more than the rest of a report's start-up. So are the modules only one
format or command needs (csv, shutil for the terminal's width, the event log's reads).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from monitor.capture.scrub import escape_controls
from monitor.read.queries import Page
from monitor.timeutil import format_duration

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from monitor.ops.retention import CleanupResult
    from monitor.read.live import LiveSnapshot
    from monitor.read.logs import EventFilter
    from monitor.store.db import Database

FORMATS = ("table", "json", "csv", "nl")
#: Width of a table when there is no terminal to measure (a pipe, a file, a test) and no $COLUMNS.
DEFAULT_WIDTH = 120
#: tabulate formats that a browser or a document processor lays out: drawn whole, never shortened.
_MARKUP_FORMATS = frozenset({
    "asciidoc", "github", "html", "jira", "latex", "latex_booktabs", "latex_longtable", "latex_raw",
    "mediawiki", "moinmoin", "pipe", "textile", "tsv", "unsafehtml", "youtrack",
})
#: Free text: what a table shortens, from its widest column, to fit its width; never below
#: _NARROWEST columns (nor its header). Other columns (ids, times, numbers) are never cut.
_FREE_TEXT = frozenset({"task_description", "error_message", "first_error", "message"})
_NARROWEST = 10
#: Shorter headers for the columns of wide tables.
_TABLE_LABELS = {
    "total_tasks": "tasks", "completed_tasks": "done", "failed_tasks": "failed", "task_description": "description",
    "retry_count": "retries", "completion_rate": "completion", "success_rate": "success",
    "avg_duration_ms": "avg", "p50_duration_ms": "p50", "p95_duration_ms": "p95", "min_duration_ms": "min",
    "max_duration_ms": "max", "input_tokens": "tokens in", "output_tokens": "tokens out",
    "cache_read_tokens": "cache read", "cache_write_tokens": "cache write",
    "input_per_mtok_usd": "input $/M", "output_per_mtok_usd": "output $/M", "cache_read_per_mtok_usd": "cache read $/M",
    "cache_write_per_mtok_usd": "cache write $/M", "cache_write_1h_per_mtok_usd": "1h cache write $/M",
}
#: Of text on several lines a table shows the last, but of these the first, and of error messages
#: the line that says what went wrong (a failed test, an exception, an error: see failure_line).
_FIRST_LINE_KEYS = frozenset({"task_description"})
_ERROR_KEYS = frozenset({"error_message", "first_error"})


@dataclass(frozen=True)
class TableStyle:
    """How tables are drawn: `name` is a tabulate format; text columns are shortened to fit `width`."""

    name: str = "simple"
    width: int = DEFAULT_WIDTH


def terminal_width() -> int:
    """$COLUMNS, else the width of the terminal standard output is, else DEFAULT_WIDTH."""
    if "COLUMNS" not in os.environ and not sys.stdout.isatty():
        return DEFAULT_WIDTH
    import shutil

    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """'1 orchestration', '1,234 orchestrations'."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def import_summary(result: Mapping) -> str:
    """One line for what `import` did with one file."""
    def counts(c: Mapping) -> str:
        return f"{c['inserted']:,} inserted, {c['updated']:,} updated, {c['unchanged']:,} unchanged"

    recounted = f"; {plural(result['recounted'], 'orchestration')} recounted" if result["recounted"] else ""
    events = result.get("events") or {}
    logged = (f"; events {events['inserted']:,} inserted, {events['unchanged']:,} unchanged"
              if any(events.values()) else "")
    return (f"{result['source']}: orchestrations {counts(result['orchestrations'])};"
            f" executions {counts(result['executions'])}{recounted}{logged}.")


def otel_summary(result: Mapping, verb: str = "Sent") -> str:
    """One line for what `otel push` (or one round of --follow) or `otel export` did."""
    made = (f"{plural(result['spans'], 'span')} ({plural(result['executions'], 'execution')},"
            f" {plural(result['orchestrations'], 'orchestration')})")
    if verb != "Sent":
        return f"{verb} {made}."
    if not result["requests"]:
        return f"Nothing new to send to {result['endpoint']}."
    requests = f" in {plural(result['requests'], 'request')}"
    rejected = (f"; the endpoint rejected {plural(result['rejected spans'], 'span')}"
                + (f": {result['rejected message']}" if result.get("rejected message") else "")
                if result.get("rejected spans") else "")
    return f"Sent {made} to {result['endpoint']}{requests}{rejected}."


def display_time(value: str) -> str:
    """A stored timestamp as a table shows it, zone included: '2026-11-20 12:00:00 UTC'."""
    if re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", value):
        return f"{value[:10]} {value[11:19]} UTC"
    return value  # another program's format that the database kept as it was


def nothing_found(subject: str, since: str | None = None, *, yet: bool = True, **conditions: str | None) -> str:
    """What an empty table says, naming the filters that found nothing:
    "No orchestrations with status 'failed' since 2026-11-01 00:00:00 UTC." or, with no filter at
    all, "No orchestrations recorded yet." (yet=False leaves that out)."""
    named = [f"{name.replace('_', ' ')} {value!r}" for name, value in conditions.items() if value]
    text = subject + (" with " + " and ".join(named) if named else "")
    if since:
        text += f" since {display_time(since)}"
    elif yet and not named:
        text += " recorded yet"
    return text + "."


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def rollup_note(result: CleanupResult) -> str:
    """What a cleanup did to the daily roll-ups, after its sentence (nothing when nothing)."""
    parts = []
    if result.rolled_up_days:
        verb = "Would roll up" if result.dry_run else "Rolled up"
        parts.append(f" {verb} {plural(result.rolled_up_days, 'day')} first (kept for trends).")
    if result.rollups_deleted:
        parts.append(f" Deleted {plural(result.rollups_deleted, 'daily roll-up row')}.")
    return "".join(parts)


def vacuum_note(result: CleanupResult) -> str:
    """What a cleanup's vacuum really did, after its sentence."""
    if not result.vacuumed:
        return ""
    if result.wal_truncated is False:
        return (f" Vacuumed; the WAL could not be truncated while another process reads it"
                f" ({megabytes(result.wal_bytes or 0)} left: vacuum again once it is done).")
    return " Vacuumed."


def cut_note(shown: int, total: int, noun: str, nouns: str | None = None, *, more_than: bool = False) -> str:
    """What a table cut by its limit says on stderr; more_than: total is only as far as it was counted."""
    of = f"more than {total - 1:,} {nouns or noun + 's'}" if more_than else plural(total, noun, nouns)
    return f"Showing {shown:,} of {of}; --limit 0 for all."


def _label(key: str) -> str:
    if key.endswith("_ms"):
        key = key[: -len("_ms")]
    elif key.endswith("_usd"):
        key = key[: -len("_usd")] + " $"
    return key.replace("_", " ")


def _is_time(key: str) -> bool:
    return key.endswith("_at") or key in ("since", "timestamp")


def _one_line(key: str, text: str) -> str:
    """A string as one line of text that cannot act on the terminal: control characters (escape
    sequences, a lone carriage return, ...) shown escaped (\\x1b, \\r), tabs as spaces; of several
    lines, the last (the first of a description, the failure line of an error message)."""
    if key in _ERROR_KEYS:
        from monitor.capture.failure import failure_line  # tables only: --json never pays for its patterns

        return escape_controls(failure_line(text)).replace("\t", " ")
    lines = [line.strip() for line in re.split(r"\r?\n", text) if line.strip()]
    if not lines:
        return ""
    return escape_controls(lines[0] if key in _FIRST_LINE_KEYS else lines[-1]).replace("\t", " ")


def _cell(key: str, value: object, missing: str = "") -> str:
    """A value as a person reads it: durations, percentages, money, times with their zone,
    numbers grouped by thousands, yes/no, one line of text."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if key.endswith("_ms"):
            return format_duration(value)
        if key.endswith("_rate"):
            return f"{value:.1f}%"
        if key.endswith("_usd"):
            return f"{value:,.4f}"
        if isinstance(value, int):
            return f"{value:,}"
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return ", ".join(_cell(key, v) for v in value) or "none"
    text = str(value)
    return display_time(text) if _is_time(key) else _one_line(key, text)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _draw(header: Sequence[str], body: list[list[str]], align: Sequence[str], style: TableStyle,
          free: Sequence[bool]) -> str:
    """tabulate's table, its free text columns shortened (from the widest) until it fits style.width."""
    from tabulate import tabulate
    from wcwidth import clip, wcswidth

    def draw() -> str:
        return tabulate(body, headers=header, tablefmt=style.name, colalign=align, disable_numparse=True)

    text = draw()
    over = max((wcswidth(line) for line in text.splitlines()), default=0) - style.width
    if over <= 0 or style.name in _MARKUP_FORMATS or not body:
        return text
    widths = [max(wcswidth(row[i]) for row in body) for i in range(len(align))]
    floors = [max(wcswidth(h) + 2, _NARROWEST) for h in header] or [_NARROWEST] * len(align)
    text_columns = [i for i, shortened in enumerate(free) if shortened]
    while over > 0:
        shrinkable = [i for i in text_columns if widths[i] > floors[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
        over -= 1
    for row in body:
        for i in text_columns:
            if wcswidth(row[i]) > widths[i]:
                row[i] = clip(row[i], 0, widths[i] - 1) + "…"
    return draw()


def _table(rows: Sequence[Mapping], columns: Sequence[str], style: TableStyle, *,
           keep_empty_columns: bool = False, missing: Mapping[str, str] | None = None,
           labels: Mapping[str, str] = {}) -> str:
    """Rows as a table: the columns that have a value somewhere (all with keep_empty_columns),
    numbers to the right, text to the left; `labels` names columns for this table only."""
    missing = missing or {}
    body = [[_cell(c, r.get(c), missing.get(c, "")) for c in columns] for r in rows]
    kept = [i for i in range(len(columns)) if keep_empty_columns or any(row[i] for row in body)] or [0]
    align = ["right" if all(_is_number(r.get(columns[i])) for r in rows if r.get(columns[i]) is not None)
             and any(r.get(columns[i]) is not None for r in rows) else "left" for i in kept]
    return _draw([labels.get(columns[i]) or _TABLE_LABELS.get(columns[i]) or _label(columns[i]) for i in kept],
                 [[row[i] for i in kept] for row in body], align, style, [columns[i] in _FREE_TEXT for i in kept])


def render_rows(
    rows: Sequence[Mapping],
    fmt: str,
    columns: Sequence[str],
    *,
    table_columns: Sequence[str] | None = None,
    empty: str = "Nothing found.",
    style: TableStyle = TableStyle(),
    keep_empty_columns: bool = False,
    missing: Mapping[str, str] | None = None,
) -> str:
    """A list of records. columns fixes JSON key order and the CSV header (even with no rows);
    table_columns picks the readable subset for the table, where `missing` names what a column
    shows for no value (default: nothing). JSON lines of no rows are no text at all."""
    if fmt == "json":
        return json.dumps([{c: r.get(c) for c in columns} for r in rows], indent=2, ensure_ascii=False)
    if fmt == "nl":
        return "\n".join(json.dumps({c: r.get(c) for c in columns}, ensure_ascii=False) for r in rows)
    if fmt == "csv":
        return "\n".join(_csv_lines([columns, *(["true" if r.get(c) is True else "false" if r.get(c) is False
                                                  else r.get(c) for c in columns] for r in rows)]))
    if not rows:
        return empty
    return _table(rows, table_columns or columns, style, keep_empty_columns=keep_empty_columns, missing=missing)


def _csv_lines(records: Iterable[Sequence[object]]) -> Iterator[str]:
    """Each record as a CSV line. The writer ends lines with \r\n so that it quotes any value holding
    a \r (with \n alone it leaves one bare, which a reader takes for the end of a row); the line
    then ends with \n alone, as the rest of the output does."""
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for record in records:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(record)
        yield buffer.getvalue()[:-2]


def render_record(record: Mapping, fmt: str, *, sections: Mapping[str, Sequence[str]] | None = None,
                  style: TableStyle = TableStyle()) -> str:
    """One record (show, agent, health). Table: its scalar fields as 'field  value' lines, then each
    nested record or list of records as its own titled section; sections picks the columns of
    list sections. In a format other than simple or plain, every part is a table of that format."""
    if fmt == "json":
        return json.dumps(record, indent=2, ensure_ascii=False)
    sections = sections or {}
    framed = style.name not in ("simple", "plain")
    inner_style = style if framed else TableStyle(style.name, style.width - 2)
    parts = [_pairs([(k, v) for k, v in record.items() if not _is_section(v)], style)]
    for key, value in record.items():
        if not _is_section(value):
            continue
        if isinstance(value, dict):
            inner = render_record(value, fmt, sections=sections, style=inner_style)
        else:
            inner = _table(value, sections.get(key) or list(value[0]), inner_style)
        title = _label(key).capitalize()
        parts.append(f"{title}\n\n{inner}" if framed else f"{title}\n{_indent(inner)}")
    return "\n\n".join(p for p in parts if p)


def _is_section(value: object) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and any(isinstance(i, dict) for i in value))


def _pairs(items: Sequence[tuple[str, object]], style: TableStyle) -> str:
    """'field  value' lines (fields with no value left out); in a framed format, a two-column table."""
    body = [[_label(k), _cell(k, v)] for k, v in items if v is not None]
    if not body:
        return ""
    if style.name in ("simple", "plain"):
        return _draw([], body, ["left", "left"], TableStyle("plain", style.width), [False, True])
    return _draw(["field", "value"], body, ["left", "left"], style, [False, True])


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


#: The columns of the `logs` table (the other formats give every EVENT_COLUMNS field).
LOG_TABLE_COLUMNS = ["timestamp", "agent_name", "type", "message"]


def render_log(db: Database, where: EventFilter, fmt: str, *, follow: bool = False,
               interval: float = 0.5, style: TableStyle = TableStyle(), empty: str = "No events.") -> Iterator[str]:
    """What `logs` prints, chunk by chunk: the events so far, then (follow) new ones as they are
    recorded, until the caller stops. Following is a stream: JSON comes as JSON lines, and CSV and
    the table print their header once, before the first rows, and keep their columns."""
    from monitor.read.logs import EVENT_COLUMNS, follow_events, list_events

    found = list_events(db, where)
    if not follow:
        yield render_rows(found, fmt, EVENT_COLUMNS, table_columns=LOG_TABLE_COLUMNS, empty=empty, style=style)
        return
    fmt = "nl" if fmt == "json" else fmt
    if style.name != "plain":
        style = TableStyle("simple", style.width)  # a table that grows: no frame below its last row
    after = max((e["id"] for e in found), default=where.after_id)
    header = {"csv": 1, "table": 2 if style.name == "simple" else 1}.get(fmt, 0)  # printed with the first rows only
    first = True
    for batch in itertools.chain([found], follow_events(db, where._replace(after_id=after), interval)):
        if not batch and not (first and fmt == "csv"):
            continue  # nothing yet: an empty table says nothing, an empty CSV is its header
        lines = render_rows(batch, fmt, EVENT_COLUMNS, table_columns=LOG_TABLE_COLUMNS, style=style,
                            keep_empty_columns=True).splitlines()
        yield "\n".join(lines if first else lines[header:])
        first = False


# -- check: its verdict as a table, Markdown and JUnit XML ----------------------------------------

CHECK_COLUMNS = ["rule", "value", "warn", "fail", "status"]


def _check_rows(result: Mapping) -> list[dict[str, str]]:
    """Each rule's value and levels as text: 'success_rate', '50%', '< 95%', '< 80%', 'FAIL'."""
    from monitor.alerts.rules import MEASURES

    shown = []
    for row in result["rules"]:
        measure = MEASURES[row["measure"]]
        sign = "< " if measure.minimum else "> "
        value = "" if row["status"] == "skip" else measure.show(
            float("inf") if row["measure"] == "activity" and row["value"] is None else row["value"])
        shown.append({"rule": row["rule"], "value": value, "status": row["status"].upper(),
                      **{k: "" if row[k] is None else sign + measure.show(row[k]) for k in ("warn", "fail")}})
    return shown


def check_summary(result: Mapping) -> str:
    """'FAIL: 1 rule failing, 1 warning; 4 checked over the last 24h (since 2026-11-19 12:00:00 UTC)'."""
    counts = {s: sum(r["status"] == s for r in result["rules"]) for s in ("fail", "warn")}
    parts = [plural(counts["fail"], "rule") + " failing"] if counts["fail"] else []
    parts += [plural(counts["warn"], "warning")] if counts["warn"] else []
    scope = (f"session {result['session']}" if result["scope"] == "session"
             else f"the last {result['window_hours']:g}h")
    checked = f"{plural(len(result['rules']), 'rule')} checked over {scope} (since {display_time(result['since'])})"
    return f"{result['verdict'].upper()}: {'; '.join([*parts, checked])}"


def render_check(result: Mapping, style: TableStyle = TableStyle()) -> str:
    """check's table: the summary line, a row per rule, then what failed or warned."""
    lines = [check_summary(result), ""]
    if result["rules"]:
        lines.append(_draw([_label(c) for c in CHECK_COLUMNS],
                           [[r[c] for c in CHECK_COLUMNS] for r in _check_rows(result)],
                           ["left", "right", "right", "right", "left"], style, [False] * len(CHECK_COLUMNS)))
    problems = [r["message"] for r in result["rules"] if r["status"] in ("warn", "fail")]
    if problems:
        lines += ["", *(f"{r['status'].upper()}  {r['message']}" for r in result["rules"]
                        if r["status"] in ("warn", "fail"))]
    return "\n".join(lines).rstrip()


_MARKDOWN_ICONS = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skip": "➖"}


def check_markdown(result: Mapping) -> str:
    """check as a GitHub step summary: a heading with the verdict, and a table of the rules."""
    rows = _check_rows(result)
    body = ["| rule | value | warn | fail | status |", "|---|---:|---:|---:|---|"]
    for shown, row in zip(rows, result["rules"]):
        cells = [f"`{shown['rule']}`", shown["value"], shown["warn"], shown["fail"],
                 f"{_MARKDOWN_ICONS[row['status']]} {row['status']}"]
        body.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    heading = f"### {_MARKDOWN_ICONS[result['verdict']]} monitor check: {check_summary(result)}"
    return "\n".join([heading, "", *body]) + "\n"


def check_junit(result: Mapping) -> str:
    """check as JUnit XML: one test suite, one test case per rule; a failing rule is a <failure>,
    a warning passes with its message in <system-out>, a rule that does not apply is <skipped>."""
    import xml.etree.ElementTree as ET

    rules = result["rules"]
    suite = ET.Element("testsuite", {
        "name": "monitor check", "tests": str(len(rules)),
        "failures": str(sum(r["status"] == "fail" for r in rules)), "errors": "0",
        "skipped": str(sum(r["status"] == "skip" for r in rules)), "timestamp": result["generated_at"]})
    for row in rules:
        case = ET.SubElement(suite, "testcase", {"classname": "monitor.check", "name": row["rule"], "time": "0"})
        if row["status"] == "fail":
            ET.SubElement(case, "failure", {"message": row["message"], "type": "fail"}).text = row["message"]
        elif row["status"] == "skip":
            ET.SubElement(case, "skipped", {"message": row["message"]})
        else:
            ET.SubElement(case, "system-out").text = f"{row['status'].upper()}: {row['message']}"
    root = ET.Element("testsuites", {"name": "monitor", "tests": suite.get("tests", "0"),
                                     "failures": suite.get("failures", "0"), "errors": "0"})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def reap_summary(executions: int, orchestrations: int, older_than_ms: int, dry_run: bool) -> str:
    """'Failed 3 stale executions (no completion after 2h 00m); 2 orchestrations updated.'"""
    age = format_duration(older_than_ms)
    if not executions:
        return f"No stale executions: none has been in progress for over {age}."
    if dry_run:
        return (f"Would fail {plural(executions, 'stale execution')} (no completion after {age}),"
                f" in {plural(orchestrations, 'orchestration')}.")
    return (f"Failed {plural(executions, 'stale execution')} (no completion after {age});"
            f" {plural(orchestrations, 'orchestration')} updated.")


def render_alerts(alerts: Sequence[dict], report: dict, fmt: str) -> str:
    """alert on stdout: a line per alert ('FAIL (firing) success_rate: success rate 50% is below 80%'),
    or the generic webhook's JSON document; nothing when nothing changed."""
    from monitor.alerts.notify import alert_line, generic_payload

    if not alerts:
        return ""
    if fmt == "json":
        return json.dumps(generic_payload(alerts, report), indent=2, ensure_ascii=False)
    return "\n".join(alert_line(a) for a in alerts)


# -- watch: the live view's parts, as text -------------------------------------------------------

#: The parts of `watch`: title, the snapshot's field, the table's columns (times shown short).
LIVE_PARTS = [
    ("Running orchestrations", "running_orchestrations",
     ["session_id", "total_tasks", "completed_tasks", "failed_tasks", "executions", "elapsed_ms", "task_description"]),
    ("Running executions", "running_executions",
     ["agent_name", "agent_session_id", "session_id", "elapsed_ms", "started_at"]),
    ("Failures", "failures", ["completed_at", "agent_name", "session_id", "exit_code", "duration_ms", "error_message"]),
    ("Agents", "agents", ["agent_name", "executions", "failed", "success_rate", "p50_duration_ms", "p95_duration_ms",
                          "cost_usd"]),
    ("Latest events", "events", ["timestamp", "agent_name", "type", "message"]),
]


#: Shorter headers, for a screen of 80 columns.
_LIVE_LABELS = {"completed_at": "failed at", "started_at": "started", "timestamp": "time", "exit_code": "exit",
                "duration_ms": "took", "error_message": "error", "agent_session_id": "execution",
                "agent_name": "agent", "session_id": "session", "executions": "runs"}


def live_sections(snapshot: LiveSnapshot, style: TableStyle = TableStyle(), *, shown: Mapping[str, int] = {}
                  ) -> list[tuple[str, str]]:
    """`watch` as (title, text) parts: a summary of the window, then a table per part, each titled
    with how many rows it shows ('Running executions (12 of 40)'). `shown` cuts a part (a field of
    the snapshot) to its first so many rows; the events, to their newest. Times are UTC, as the
    first line says: today's as 12:01:10, other days' as 11-19 12:01."""
    overall, cost = snapshot.overall, snapshot.cost_today
    window = f"last {_age(snapshot.window_hours * 3600)}"
    summary = [
        f"{plural(overall['executions'], 'execution')} in the {window}",
        f"success {_cell('success_rate', overall['success_rate'], '-')}",
        f"p95 {_cell('p95_duration_ms', overall['p95_duration_ms'], '-')}",
        f"{snapshot.stale:,} stale (over {format_duration(snapshot.stale_after_ms)})",
        f"cost today ${_cell('cost_usd', cost['cost_usd'], '0.0000')}"
        + (f" ({cost['unpriced']:,} unpriced)" if cost["unpriced"] else ""),
    ]
    parts = [(f"monitor watch · {display_time(snapshot.generated_at)} · since {display_time(snapshot.since)}",
              _joined(summary, " · ", style.width))]
    for title, field, columns in LIVE_PARTS:
        found = getattr(snapshot, field)
        page = found if isinstance(found, Page) else Page(found, len(found))
        rows = page.rows
        if field in shown:
            keep = max(0, shown[field])
            rows = (rows[len(rows) - keep:] if keep else []) if field == "events" else rows[:keep]
        of = f"more than {page.total - 1:,}" if page.more_than_counted else f"{page.total:,}"
        # Of the events, only the newest are read: how many the window has is not known.
        count = f"{len(rows):,}" if field == "events" else f"{len(rows):,} of {of}" if page.total > len(rows) else of
        heading = {"failures": f"Failures in the {window}", "agents": f"Agents in the {window}"}.get(field, title)
        short = [{**row, **{c: _short_time(row[c], snapshot.today) for c in columns if _is_time(c) and row.get(c)}}
                 for row in rows]
        body = (_table(short, columns, style, labels=_LIVE_LABELS) if rows
                else "… (a taller terminal shows them)" if page.rows else "none")
        parts.append((f"{heading} ({count})", body))
    return parts


def _short_time(value: str, today: str) -> str:
    """A stored time as the live view shows it: '12:01:10' today, '11-19 12:01' another day."""
    if not re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", value):
        return value
    return value[11:19] if value[:10] == today[:10] else f"{value[5:10]} {value[11:16]}"


def _joined(items: Sequence[str], separator: str, width: int) -> str:
    """items joined by separator, on as few lines of at most width characters as they fit."""
    lines = [items[0]] if items else []
    for item in items[1:]:
        if len(lines[-1]) + len(separator) + len(item) <= width:
            lines[-1] += separator + item
        else:
            lines.append(item)
    return "\n".join(lines)


def _age(seconds: float) -> str:
    """A window as it is typed: '24h', '90m', '7d', '36h', '45s'."""
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and (unit != "d" or seconds >= 2 * 86_400):
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def render_live(snapshot: LiveSnapshot, style: TableStyle = TableStyle()) -> str:
    """`watch` as plain text (not a terminal, or --once): its parts one after another."""
    return "\n\n".join(f"{title}\n{body}" for title, body in live_sections(snapshot, style))
