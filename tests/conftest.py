from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import Tracker, open_db
from monitor.cli import cli

T0 = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile monitor to bytecode once, as `pip install` does: the tests start it in a few hundred
    processes, and where PYTHONDONTWRITEBYTECODE is set each of them would compile it again. Let
    pytest keep its assertion-rewritten test modules too (in tests/__pycache__, ignored by git):
    rewriting and compiling them all costs every run (and every xdist worker) 3 s of CPU more."""
    import compileall
    import sys

    compileall.compile_dir(Path(__file__).resolve().parent.parent / "monitor", quiet=1)
    sys.dont_write_bytecode = False


class Clock:
    """The one test clock: tests move time by hand (advance, or set now), never read the real one.
    With a step, every reading is that much later than the one before (the first is start + step)."""

    def __init__(self, start: datetime = T0, step: timedelta | None = None) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        if self.step is not None:
            self.now += self.step
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's (or CI's) monitor settings, nor writes Claude Code's real
    user settings: CI runs this suite under `monitor run` with $MONITOR_DB set, and GitHub Actions
    sets $GITHUB_STEP_SUMMARY, which `check` would append every test's verdict to."""
    for name in ("MONITOR_DB", "MONITOR_PRICES", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-config"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "monitoring.db"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracker(db_path: Path, clock: Clock):
    t = Tracker(db_path, clock=clock)
    yield t
    t.close()


@pytest.fixture
def invoke(db_path: Path):
    """Run the CLI in-process against db_path; returns the click Result."""

    def run(*args: str, input: str | None = None):
        return CliRunner().invoke(cli, [*args, "--db", str(db_path)] if args else [], input=input,
                                  catch_exceptions=True)

    return run


class Hook:
    """A webhook receiver on 127.0.0.1: keeps each request's path and JSON body; answers with the
    queued codes, then 200, each after `delay` seconds (a slow receiver)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.codes: list[int] = []
        self.delay = 0.0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append((self.path, json.loads(body)))
                time.sleep(hook.delay)
                self.send_response(hook.codes.pop(0) if hook.codes else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self) -> list[dict]:
        return [body for _, body in self.received]


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def dump(db_path: Path) -> list:
    """Every row of every table, to compare a database before and after a command."""
    with open_db(db_path, create=False) as db:
        return [
            (table, list(db.execute(f"SELECT * FROM {table} ORDER BY 1")))
            for (table,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]


def load_json(text: str):
    return json.loads(text)
