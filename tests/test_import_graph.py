"""Start-up stays light: each library is imported only where it does its work.

Claude Code starts `python -m monitor.hooks` on every tool call, so the hook may load only the modules
that record a payload, never the CLI, table, date or table-rebuild libraries; a report asked for as JSON
draws no table. Each command is run for real under `python -X importtime`, which lists every module the
process imported, on a database created first (current schema: no migration on the way).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor import open_db

PAYLOADS = Path(__file__).parent / "payloads"
ROOT = Path(__file__).resolve().parent.parent

#: Third-party packages monitor depends on that the hook must never import.
FORBIDDEN = ("click", "tabulate", "sqlite_utils", "dateutil")
#: The monitor modules a hook may load: storage, capture, time and errors...
ALLOWED = re.compile(r"monitor(\.(errors|timeutil|store(\.\w+)?|capture(\.\w+)*))?")
#: ...and, for a payload that reads a transcript's tokens, the price table that prices them.
PRICING = {"monitor.read", "monitor.read.pricing"}
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)\s*$", re.MULTILINE)


def imported(cwd: Path, argv: list[str], stdin: bytes = b"") -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `python -X importtime ARGV` in cwd: the finished process and every module it imported."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "MONITOR_HOOK_LOG": str(cwd / "hook.log")}
    result = subprocess.run([sys.executable, "-X", "importtime", *argv], input=stdin, capture_output=True,
                            env=environment, cwd=cwd, timeout=60)
    return result, set(_IMPORTED.findall(result.stderr.decode()))


def imported_by_hook(tmp_path: Path, db: Path, name: str) -> set[str]:
    text = (PAYLOADS / f"{name}.json").read_text()
    data = (text.replace("TRANSCRIPT", str(tmp_path / "main_transcript.jsonl"))
            .replace("CWD", str(tmp_path))).encode()
    result, modules = imported(tmp_path, ["-m", "monitor.hooks", "--db", str(db)], data)
    assert (result.returncode, result.stdout) == (0, b"")
    assert "monitor.capture.claude.hook" in modules, result.stderr.decode()[-2000:]
    return modules


@pytest.mark.parametrize("names, may_price", [
    # A new session (its git commit is read; the transcript's tokens, read at every hook, are priced
    # by the first), then a tool call that finds no new tokens: no price table.
    (["session_start", "post_write"], [True, False]),
    (["stop"], [True]),                          # the transcript's new tokens, priced
])
def test_the_hook_imports_only_what_recording_needs(tmp_path, names, may_price):
    (tmp_path / "main_transcript.jsonl").write_bytes((PAYLOADS / "main_transcript.jsonl").read_bytes())
    db = tmp_path / "monitoring.db"
    open_db(db).close()  # current schema: no migration on the hook's path
    for name, may_price in zip(names, may_price):
        modules = imported_by_hook(tmp_path, db, name)
        third_party = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
        assert third_party == [], f"{name}: the hook imported {third_party}"
        ours = {m for m in modules if m.split(".")[0] == "monitor"}
        extra = sorted(m for m in ours if not ALLOWED.fullmatch(m) and not (may_price and m in PRICING))
        assert extra == [], f"{name}: the hook imported {extra}"
    assert not (tmp_path / "hook.log").exists()
    with open_db(db, create=False) as database:  # each payload was recorded, not skipped
        messages = [m for (m,) in database.execute("SELECT message FROM events ORDER BY id")]
    expected = {"session_start": "session started (startup)", "post_write": "Write: ",
                "stop": "claude-sonnet-4-5-20250929: 2 calls"}
    for name in names:
        assert any(m.startswith(expected[name]) for m in messages), (name, messages)


@pytest.mark.parametrize("argv", [
    ["health", "24", "--json"],
    ["list", "--json", "--since", "24h"],   # an age needs no date parser
    ["executions", "--nl"],
])
def test_machine_readable_reports_draw_no_table_and_parse_no_date(tmp_path, argv):
    db = tmp_path / "monitoring.db"
    open_db(db).close()
    result, modules = imported(tmp_path, ["-m", "monitor", *argv, "--db", str(db)])
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "monitor.cli" in modules
    assert sorted(m for m in modules if m.split(".")[0] in ("tabulate", "sqlite_utils", "dateutil")) == []


def test_a_typed_date_is_read_by_dateutil(tmp_path):
    """The other side of the guard above: the import test sees the libraries a command does use."""
    db = tmp_path / "monitoring.db"
    open_db(db).close()
    result, modules = imported(tmp_path, ["-m", "monitor", "list", "--json", "--since", "2026-11-01 14:00 +0100",
                                          "--db", str(db)])
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert any(m.startswith("dateutil.parser") for m in modules)


@pytest.mark.parametrize("argv, uses_protobuf", [
    (["health", "24", "--json"], False),
    (["metrics"], False),
    (["otel", "export"], True),  # the other side: the guard sees protobuf where it is used
])
def test_only_the_otel_commands_import_protobuf(tmp_path, argv, uses_protobuf):
    db = tmp_path / "monitoring.db"
    open_db(db).close()
    result, modules = imported(tmp_path, ["-m", "monitor", "--db", str(db), *argv])
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    loaded = sorted(m for m in modules if m.startswith(("google.protobuf", "opentelemetry")))
    assert bool(loaded) == uses_protobuf, loaded[:5]


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["health", "24"],
    ["watch", "--once"],            # plain text: no full screen, no rich
    ["watch", "--once", "--json"],
])
def test_only_the_full_screen_loads_rich(tmp_path, argv):
    db = tmp_path / "monitoring.db"
    open_db(db).close()
    result, modules = imported(tmp_path, ["-m", "monitor", *argv, "--db", str(db)])
    assert result.returncode in (0, 3), result.stderr.decode()[-2000:]  # health: degraded when nothing ran
    assert "monitor.cli" in modules
    assert sorted(m for m in modules if m.split(".")[0] == "rich") == []


def test_the_full_screen_does_load_rich(tmp_path):
    """The other side of the guard above: drawing the screen imports rich, and the test sees it."""
    db = tmp_path / "monitoring.db"
    open_db(db).close()
    code = ("from datetime import datetime, timezone; from monitor import open_db;"
            " from monitor.cli.live import screen; from monitor.read.live import live_snapshot;"
            f" screen(live_snapshot(open_db({str(db)!r}), datetime.now(timezone.utc)), 80, 24, 2)")
    result, modules = imported(tmp_path, ["-c", code])
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "rich.console" in modules
