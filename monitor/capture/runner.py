"""`monitor run`: run a command as an agent execution, passing its input and output through."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from typing import IO, BinaryIO

from monitor.errors import DatabaseError, InvalidInput, MonitorError
from monitor.capture.scrub import metadata_only, redact
from monitor.capture.tracker import Tracker

ERROR_TAIL_LINES = 20
ERROR_TAIL_BYTES = 4000


class _StderrTee(threading.Thread):
    """Copies the child's stderr to ours as it comes, keeping the last bytes for the error message."""

    def __init__(self, source: IO[bytes], sink: BinaryIO) -> None:
        super().__init__(daemon=True)
        self.source, self.sink = source, sink
        self.tail = bytearray()
        self.cut = False  # whether the tail lost its beginning

    def run(self) -> None:
        fd = self.source.fileno()
        while chunk := os.read(fd, 65536):
            try:
                self.sink.write(chunk)
                self.sink.flush()
            except (OSError, ValueError):
                pass  # our stderr went away; keep draining so the child never blocks
            self.tail += chunk
            self.cut = self.cut or len(self.tail) > ERROR_TAIL_BYTES * 2
            del self.tail[: -ERROR_TAIL_BYTES * 2]

    def last_lines(self) -> str:
        """The error message: stderr's last lines (none with MONITOR_CAPTURE=metadata)."""
        if metadata_only():
            return ""
        return last_lines(bytes(self.tail).decode("utf-8", errors="replace"), self.cut)


def last_lines(text: str, cut: bool = False) -> str:
    """The last ERROR_TAIL_LINES lines of text, at most ERROR_TAIL_BYTES characters of them, secrets
    redacted first; a line whose start was cut off (cut: text itself is a tail) is left out, so that
    no secret is kept by halves."""
    lines = redact(text).rstrip().splitlines()
    if cut and len(lines) > 1:
        lines = lines[1:]
    tail = "\n".join(lines[-ERROR_TAIL_LINES:])
    if len(tail) > ERROR_TAIL_BYTES:
        tail = tail[-ERROR_TAIL_BYTES:]
        tail = tail.split("\n", 1)[1] if "\n" in tail else tail
    return tail


class RecordingFailed(MonitorError):
    """The command ran, but recording its end failed; exit_code is the command's own."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_unrecorded(argv: Sequence[str]) -> int:
    """Run argv with nothing recorded (when the database cannot be opened); its exit code."""
    try:
        child = subprocess.Popen(list(argv))
    except (OSError, ValueError) as exc:
        return cannot_start(argv, exc)[0]
    try:
        return exit_code_of(child.wait())
    except KeyboardInterrupt:
        _stop(child)
        return 130


def cannot_start(argv: Sequence[str], exc: OSError | ValueError) -> tuple[int, str]:
    """Why argv could not be started, said on stderr as a shell would, and the exit code a shell
    gives for it: 127 when the command is not found, 126 when it cannot be executed."""
    if isinstance(exc, FileNotFoundError):
        code, reason = 127, "command not found"
    elif isinstance(exc, PermissionError):
        code, reason = 126, "permission denied: not executable"
    else:  # ValueError: an argument with a NUL byte
        code, reason = 126, (getattr(exc, "strerror", None) or str(exc)).lower()
    message = f"cannot run {argv[0]!r}: {reason}"
    print(f"monitor: {message}", file=sys.stderr, flush=True)
    return code, message


def exit_code_of(returncode: int) -> int:
    """A child killed by signal N exits like a shell reports it: 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode


def run_command(
    tracker: Tracker,
    argv: Sequence[str],
    agent_name: str,
    *,
    session: str | None = None,
    task_id: str | None = None,
    agent_session_id: str | None = None,
) -> int:
    """Record argv's run as an execution of agent_name and return its exit code.

    stdin and stdout are the child's own; stderr is copied through and its last lines become
    the error message when the command fails. With session, the execution joins that
    orchestration (started if new), whose status then follows its executions.
    Ctrl-C or SIGTERM: the child is stopped, the execution recorded failed, 130/143 returned.
    """
    if agent_session_id is not None and tracker.db.execute(
            "SELECT 1 FROM agent_executions WHERE agent_session_id = ?", (agent_session_id,)).fetchone():
        raise InvalidInput(f"execution id {agent_session_id!r} is already recorded: "
                           "choose another --id, or leave it out to get a new one")
    agent_session_id = agent_session_id or f"{agent_name}-{uuid.uuid4().hex[:12]}"
    try:
        if session is not None:
            tracker.start_orchestration(session)
        tracker.start_agent_execution(agent_session_id, agent_name, session, task_id)
    except (DatabaseError, sqlite3.Error) as exc:  # e.g. read-only: the work itself must still run
        code = run_unrecorded(argv)
        raise RecordingFailed(f"the command ran without being recorded: {exc}", code) from None

    def finish(status: str, code: int, message: str | None) -> int:
        try:
            tracker.complete_agent_execution(agent_session_id, status, message, exit_code=code)
            if session is not None:
                tracker.sync_orchestration(session)
        except (MonitorError, sqlite3.Error) as exc:
            raise RecordingFailed(f"the command ran, but its end was not recorded: {exc}", code) from None
        return code

    try:
        child = subprocess.Popen(list(argv), stderr=subprocess.PIPE)
    except (OSError, ValueError) as exc:
        return finish("failed", *cannot_start(argv, exc))

    assert child.stderr is not None
    tee = _StderrTee(child.stderr, sys.stderr.buffer)
    tee.start()
    received: list[int] = []

    def on_term(signum: int, frame: object) -> None:
        received.append(signum)
        child.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, on_term) if _main_thread() else None
    try:
        try:
            returncode = child.wait()
        except KeyboardInterrupt:
            received.append(signal.SIGINT)
            returncode = _stop(child)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        tee.join(timeout=5)
    code = exit_code_of(returncode)
    if received:
        name = signal.Signals(received[0]).name
        message = f"interrupted by {name}" + (f"\n{tee.last_lines()}" if tee.last_lines() else "")
        return finish("failed", 128 + received[0], message)
    if code == 0:
        return finish("completed", 0, None)
    return finish("failed", code, tee.last_lines() or f"exited with code {code}")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _stop(child: subprocess.Popen) -> int:
    """After Ctrl-C: the child got SIGINT too from the terminal; give it time, then insist."""
    for sig, grace in ((None, 2.0), (signal.SIGINT, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
        if sig is not None:
            child.send_signal(sig)
        try:
            return child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:
            continue
    return child.wait()
