"""`monitor ui`: the database in Datasette, with the metadata monitor writes for it.

Datasette is an optional extra (`pip install 'monitor[ui]'`), run as a subprocess of the same
Python (`python -m datasette serve`). It opens the file as a mutable database: its connections
read in SQLite's read-only mode (`mode=ro`), which in WAL mode never blocks a writer, so recorders
(the hook, `monitor run`, the Tracker) keep writing while the pages are open and each page load
shows what they wrote. (Immutable mode, `-i`, would skip the WAL and locking: never for a file in use.)

The metadata, written to a private temporary folder for the server's life, gives:
- titles and descriptions of tables, views and columns, read from the comments of schema.sql (the
  paragraph above each CREATE statement, and its `Columns:` list);
- the canned queries of monitor.read.canned (the CLI's reports as SQL);
- full-text search on events (events_fts) and on executions' error messages (errors_fts), facets
  (status, agent_name, model, ...) and the newest rows first;
- the tables people read (TABLE_OPTIONS) shown, every other one (roll-ups, monitor's own state) hidden.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from monitor.errors import MonitorError
from monitor.read.canned import QUERIES
from monitor.store.db import Database
from monitor.store.files import write_new
from monitor.store.migrations import schema_sql

INSTALL_HINT = "pip install 'monitor[ui]'"
#: The tables people read, and what each one's page offers besides its rows: facets, search, order,
#: the column naming a row. Every other table (roll-ups kept by triggers, what monitor keeps for
#: itself: offsets, alert and push state) is hidden: Datasette's "hidden tables" link still shows it.
TABLE_OPTIONS: dict[str, dict[str, Any]] = {
    "orchestrations": {"facets": ["status"], "sort_desc": "started_at", "label_column": "session_id"},
    "agent_executions": {"facets": ["status", "agent_name", "model"], "sort_desc": "started_at",
                         "label_column": "agent_session_id", "fts_table": "errors_fts", "fts_pk": "id"},
    "events": {"facets": ["type"], "sort_desc": "timestamp", "fts_table": "events_fts", "fts_pk": "id"},
    "llm_usage": {"facets": ["model", "source"], "sort_desc": "timestamp"},
    "tool_calls": {"facets": ["tool", "outcome", "server"], "sort_desc": "timestamp"},
}
#: Datasette settings: time for the canned queries over a large database (slowest_agents numbers
#: every execution: 1.5 s for 200,000 on a busy machine), facets that finish on a million rows and
#: show their top 10 values, no suggested facets (Datasette tries every column: 4 of the 4.3 s of
#: the executions page at 200,000), long error messages cut in tables.
SETTINGS = {"sql_time_limit_ms": 30_000, "facet_time_limit_ms": 3_000, "default_facet_size": 10,
            "suggest_facets": "off", "truncate_cells_html": 300}
#: Datasette lists a table's column descriptions above its rows (and in each column's menu): kept
#: to a short box that scrolls, so that the rows stay in view. Inline, as a data: URL (no file to serve).
CSS = ("dl.column-descriptions{display:grid;grid-template-columns:max-content 1fr;gap:0 1em;max-height:7.5em;"
       "overflow-y:auto;font-size:0.85em;border:1px solid #ddd;padding:0.3em 0.6em}"
       "dl.column-descriptions dt{font-weight:bold}dl.column-descriptions dd{margin:0}")


class MissingExtra(MonitorError):
    """Datasette is not installed."""


class TableDoc(NamedTuple):
    """A table's (or view's) description and its columns', from schema.sql's comments."""

    description: str
    columns: dict[str, str]


_CREATE = re.compile(r"CREATE (?:VIRTUAL )?(?:TABLE|VIEW) IF NOT EXISTS (\w+)")
_COLUMN = re.compile(r"(\s+)(\w+)\s+(.+)")


def schema_docs(script: str | None = None) -> dict[str, TableDoc]:
    """Each table's and view's documentation: the comment above its CREATE statement in schema.sql
    (or above the group of statements, with no blank line between them, that it opens), a paragraph
    then, after a `Columns:` line, one `name  description` line per column (a deeper indented line
    continues the one above)."""
    docs: dict[str, TableDoc] = {}
    comment: list[str] = []
    in_comment = False
    for line in (schema_sql() if script is None else script).splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            comment = (comment if in_comment else []) + [stripped[2:]]
            in_comment = True
            continue
        in_comment = False
        if not stripped:
            comment = []
            continue
        created = _CREATE.match(stripped)
        if created and comment:
            docs[created.group(1)] = _table_doc(comment)
    return docs


def _table_doc(lines: list[str]) -> TableDoc:
    paragraph: list[str] = []
    columns: dict[str, str] = {}
    listing, indent, last = False, 0, ""
    for line in lines:
        if line.strip() == "Columns:":
            listing = True
            continue
        found = _COLUMN.fullmatch(line) if listing else None
        if found and (not columns or len(found.group(1)) <= indent):
            indent, last = len(found.group(1)), found.group(2)
            columns[last] = found.group(3).strip()
        elif listing and columns:
            columns[last] += " " + line.strip()
        else:
            paragraph.append(line.strip())
    description = re.sub(r" \(migrations? [\d, and]+\)", "", " ".join(p for p in paragraph if p))
    return TableDoc(description, columns)


def metadata(db_name: str, tables: Collection[str], views: Collection[str] = (),
             docs: dict[str, TableDoc] | None = None) -> dict[str, Any]:
    """Datasette's metadata for the database named db_name (its file name without the suffix)
    holding `tables` and `views`: descriptions, options, hidden tables, canned queries."""
    docs = schema_docs() if docs is None else docs
    tables = {*tables, *views}
    described: dict[str, dict[str, Any]] = {}
    for name in sorted(tables):
        entry: dict[str, Any] = {}
        if name in docs:
            entry["description"] = docs[name].description
            if docs[name].columns:
                entry["columns"] = docs[name].columns
        options = dict(TABLE_OPTIONS.get(name, {}))
        if options.get("fts_table") not in tables:  # SQLite without FTS5: no index, no search box
            options.pop("fts_table", None)
            options.pop("fts_pk", None)
        entry.update(options)
        if name not in TABLE_OPTIONS and name not in views:
            entry["hidden"] = True
        if entry:
            described[name] = entry
    return {
        "title": "monitor",
        "extra_css_urls": ["data:text/css;charset=utf-8," + quote(CSS)],
        "description": "AI-agent orchestrations and executions recorded by monitor. The queries below"
                       " give the numbers of monitor's own reports.",
        "databases": {db_name: {
            "description": "Start with agent_executions (facets by status, agent and model; search the error"
                           " messages) or a query below.",
            "tables": described,
            "queries": {name: {**query, "hide_sql": True} for name, query in QUERIES.items()},
        }},
    }


def table_names(db: Database) -> tuple[list[str], list[str]]:
    """The database's tables, and its views."""
    found = db.execute("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')").fetchall()
    return [n for t, n in found if t == "table"], [n for t, n in found if t == "view"]


def require_datasette() -> None:
    """Raise MissingExtra unless Datasette can be imported."""
    try:
        import datasette  # noqa: F401
    except ImportError:
        raise MissingExtra(f"monitor ui needs Datasette, an optional extra: {INSTALL_HINT}") from None


def database_name(db_path: str | Path) -> str:
    """The name Datasette gives the database: its file name without the suffix."""
    return Path(db_path).stem


def url(host: str, port: int, db_path: str | Path) -> str:
    """The database's page on the server."""
    from datasette.utils import tilde_encode

    shown = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/{tilde_encode(database_name(db_path))}"


def check_port(host: str, port: int) -> None:
    """Raise MonitorError if host:port cannot be listened on (in use, or not this machine's)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise MonitorError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; choose another --port"
                               f" or --host") from None


@contextmanager
def serve(db_path: str | Path, tables: Collection[str], views: Collection[str] = (), *, host: str = "127.0.0.1",
          port: int = 8001, open_browser: bool = False) -> Iterator[subprocess.Popen[bytes]]:
    """Run Datasette on db_path (which holds `tables` and `views`) with monitor's metadata, until
    the block ends (or the server stops: wait on the process). Its output goes to ours."""
    require_datasette()
    check_port(host, port)
    folder = Path(tempfile.mkdtemp(prefix="monitor-ui-"))  # 0700
    try:
        meta = folder / "metadata.json"
        write_new(meta, json.dumps(metadata(database_name(db_path), tables, views), indent=2).encode("utf-8"))
        argv = [sys.executable, "-m", "datasette", "serve", str(db_path), "--metadata", str(meta),
                "--host", host, "--port", str(port)]
        for name, value in SETTINGS.items():
            argv += ["--setting", name, str(value)]
        if open_browser:
            argv.append("--open")
        process = subprocess.Popen(argv)
        try:
            yield process
        finally:
            _stop(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
