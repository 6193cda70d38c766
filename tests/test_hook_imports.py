"""The hook's path stays light: Claude Code starts `python -m monitor.hooks` on every tool call, so it
may load only the modules that record a payload, never the CLI, table, date or table-rebuild libraries.

Each payload is sent to the real command, run with `python -X importtime`, which lists every module the
process imported; the database is created first, as it is after a session's first payload.
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


def imported_by_hook(tmp_path: Path, db: Path, name: str) -> set[str]:
    text = (PAYLOADS / f"{name}.json").read_text()
    data = (text.replace("TRANSCRIPT", str(tmp_path / "main_transcript.jsonl"))
            .replace("CWD", str(tmp_path))).encode()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "MONITOR_HOOK_LOG": str(tmp_path / "hook.log")}
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "monitor.hooks", "--db", str(db)],
                            input=data, capture_output=True, env=environment, cwd=tmp_path, timeout=60)
    assert (result.returncode, result.stdout) == (0, b"")
    modules = set(_IMPORTED.findall(result.stderr.decode()))
    assert "monitor.capture.claude.hook" in modules, result.stderr.decode()[-2000:]
    return modules


@pytest.mark.parametrize("names, may_price", [
    (["session_start", "post_write"], False),  # a new session (its git commit is read), a tool call
    (["stop"], True),                          # the transcript's new tokens, priced
])
def test_the_hook_imports_only_what_recording_needs(tmp_path, names, may_price):
    (tmp_path / "main_transcript.jsonl").write_bytes((PAYLOADS / "main_transcript.jsonl").read_bytes())
    db = tmp_path / "monitoring.db"
    open_db(db).close()  # current schema: no migration on the hook's path
    for name in names:
        modules = imported_by_hook(tmp_path, db, name)
        third_party = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
        assert third_party == [], f"{name}: the hook imported {third_party}"
        ours = {m for m in modules if m.split(".")[0] == "monitor"}
        extra = sorted(m for m in ours if not ALLOWED.fullmatch(m) and not (may_price and m in PRICING))
        assert extra == [], f"{name}: the hook imported {extra}"
    assert not (tmp_path / "hook.log").exists()
    with open_db(db, create=False) as conn:  # each payload was recorded, not skipped
        messages = [m for (m,) in conn.execute("SELECT message FROM events ORDER BY id")]
    expected = {"session_start": "session started (startup)", "post_write": "Write: ", "stop": "claude-sonnet-4-5-20250929: 2 calls"}
    for name in names:
        assert any(m.startswith(expected[name]) for m in messages), (name, messages)
