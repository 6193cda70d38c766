"""`monitor run`: run a command as an agent execution, never holding it up.

The command starts at once. A background thread records its start while it runs (opening the
database, upgrading it, waiting for other writers as long as they need, after catching up with
the spool and with runs whose `monitor run` was killed); its end is recorded when it exits. What is
still not written END_WAIT seconds after the command exited (the database locked by a long
cleanup or an upgrade, a full disk) goes to the spool, which the next command records: monitor
exits with the command's own code right away, whatever the database does.

The command's stderr goes through a small tee process (monitor/capture/tee.py), which copies it
to monitor's stderr and hands back the last lines at the end: the command keeps a reader on its
stderr even if `monitor run` is killed (kill -9), where a pipe read by monitor itself would break
and kill it at its next write. The execution carries the pid, host and start time of `monitor
run`, so that a later command on that host can tell it is gone and record the execution failed.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from monitor.capture import runs
from monitor.capture.git import head_commit
from monitor.capture.ingest import catch_up
from monitor.capture.scrub import metadata_only, redact
from monitor.errors import DatabaseError, InvalidInput, MonitorError
from monitor.capture.processes import this_process
from monitor.store import spool
from monitor.store.db import BUSY_TIMEOUT_MS, Database, is_transient, open_db, resolve_path
from monitor.timeutil import format_timestamp, utcnow

ERROR_TAIL_LINES = 20
ERROR_TAIL_BYTES = 4000
#: After the command exits: how long its start and end may take to be written before they are spooled.
END_WAIT = 2.0
#: How long opening the database may wait for another process before the command starts anyway
#: (and the background thread opens it, waiting as long as it takes).
OPEN_WAIT_MS = 200
TEE = Path(__file__).with_name("tee.py")


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
    """The command ran, but it could be neither recorded nor spooled; exit_code is the command's own."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_unrecorded(argv: Sequence[str]) -> int:
    """Run argv with nothing recorded (when the database cannot be used); its exit code."""
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


# -- recording -------------------------------------------------------------------------------

class Recorder:
    """Writes a run's start in a background thread and its end at the end, or spools them."""

    def __init__(self, path: Path, db: Database | None, warn: Callable[[str], None]) -> None:
        self.path, self.db, self.warn = path, db, warn
        self.start: dict | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._write_start, daemon=True, name="monitor-run-recorder")

    def begin(self, start: dict) -> None:
        self.start = start
        self.thread.start()

    def _write_start(self) -> None:
        assert self.start is not None
        try:
            if self.db is None:
                self.db = open_db(self.path)
            self.db.set_busy_timeout(BUSY_TIMEOUT_MS)
            catch_up(self.db, wait=None, skipped=self.warn)
            with self.db.transaction() as conn:
                runs.apply_start(conn, self.start)
        except BaseException as exc:  # noqa: BLE001 - told at the end, by finish()
            self.error = exc

    def finish(self, end: dict, code: int, deadline: float) -> int:
        """Record the end by `deadline` (time.monotonic()), else spool what is not written; return
        code. Raises RecordingFailed when the run could be neither recorded nor spooled."""
        self.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        written = not self.thread.is_alive() and self.error is None
        why: BaseException | None = self.error
        if written:
            assert self.db is not None
            try:
                with self.db.busy_timeout((deadline - time.monotonic()) * 1000), self.db.transaction() as conn:
                    runs.apply_end(conn, end)
                return code
            except Exception as exc:  # noqa: BLE001 - spooled below, or said
                if not is_transient(exc):
                    raise RecordingFailed(f"the command ran, but its end was not recorded: {exc}", code) from None
                why = exc
        elif self.error is not None and not is_transient(self.error):
            raise RecordingFailed(f"the command ran without being recorded: {self.error}", code) from None
        try:
            for record in ([end] if written else [self.start, end]):
                spool.append(self.path, record)  # type: ignore[arg-type]
        except OSError as exc:
            reason = str(why) if why is not None else "the database is busy"
            raise RecordingFailed(f"the command ran, but it was not recorded: {reason}; nor could it wait in the"
                                  f" spool: {exc.strerror or exc}", code) from None
        return code

    def close(self) -> None:
        if self.db is not None and not self.thread.is_alive():
            self.db.close()


def _open_quickly(path: Path) -> Database | None:
    """The database, if it opens without waiting long for another process; None if it is busy
    (the recorder opens it in the background). Raises DatabaseError when it cannot be used."""
    try:
        return open_db(path, busy_timeout_ms=OPEN_WAIT_MS)
    except DatabaseError as exc:
        if is_transient(exc):
            return None
        raise


def _refuse_recorded_id(db: Database | None, agent_session_id: str | None) -> None:
    if agent_session_id is not None and db is not None and db.execute(
            "SELECT 1 FROM agent_executions WHERE agent_session_id = ?", (agent_session_id,)).fetchone():
        db.close()
        raise InvalidInput(f"execution id {agent_session_id!r} is already recorded: "
                           "choose another --id, or leave it out to get a new one")


# -- running ---------------------------------------------------------------------------------

class Tail:
    """The last lines of the command's stderr, as the tee process hands them back at its end."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def lines(self, wait: float) -> str:
        """The error message (see last_lines; none with MONITOR_CAPTURE=metadata). Waits at most
        `wait` seconds: a process the command left running may keep its stderr open."""
        if self.fd is None:
            return ""
        data, deadline = bytearray(), time.monotonic() + wait
        try:
            while (left := deadline - time.monotonic()) > 0 and select.select([self.fd], [], [], left)[0]:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(self.fd)
            self.fd = None
        if metadata_only() or not data:
            return ""
        return last_lines(bytes(data[1:]).decode("utf-8", errors="replace"), cut=data[:1] == b"1")


def spawn(argv: Sequence[str]) -> tuple[subprocess.Popen, Tail]:
    """Start argv, its stderr through the tee process (or straight to ours if that cannot start)."""
    read_end, write_end = os.pipe()
    tail_read, tail_write = os.pipe()
    try:
        # A session of its own: a signal to monitor's process group (Ctrl-C) stops the command, never
        # the copying of its last words, even before the tee has set its signals aside.
        subprocess.Popen([sys.executable, "-I", "-S", str(TEE), str(ERROR_TAIL_BYTES * 2)],
                         stdin=read_end, stdout=tail_write, stderr=None, start_new_session=True)
    except OSError:
        for fd in (read_end, write_end, tail_read, tail_write):
            os.close(fd)
        return subprocess.Popen(list(argv)), Tail(None)
    os.close(read_end)
    os.close(tail_write)
    try:
        return subprocess.Popen(list(argv), stderr=write_end), Tail(tail_read)
    except BaseException:
        os.close(tail_read)
        raise
    finally:
        os.close(write_end)  # the tee then ends: at once when the command could not start


def run_command(
    db_path: str | os.PathLike[str] | None,
    argv: Sequence[str],
    agent_name: str,
    *,
    session: str | None = None,
    task_id: str | None = None,
    agent_session_id: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    warn: Callable[[str], None] = lambda message: print(f"monitor: {message}", file=sys.stderr, flush=True),
) -> int:
    """Run argv as an execution of agent_name and return its exit code.

    stdin and stdout are the child's own; stderr is copied through and its last lines become
    the error message when the command fails. With session, the execution joins that
    orchestration (started if new), whose status then follows its executions.
    Ctrl-C or SIGTERM: the child is stopped, the execution recorded failed, 130/143 returned.
    Raises DatabaseError before anything runs when the database cannot be used at all, InvalidInput
    for an --id already recorded, RecordingFailed (with the code) when the run went unrecorded.
    """
    path = resolve_path(db_path)
    db = _open_quickly(path)
    _refuse_recorded_id(db, agent_session_id)
    agent_session_id = agent_session_id or f"{agent_name}-{uuid.uuid4().hex[:12]}"
    recorder = Recorder(path, db, warn)
    started = format_timestamp(clock())

    def begin() -> None:
        recorder.begin(runs.start_record(agent_session_id, agent_name, started, this_process(), session=session,
                                         task_id=task_id, git_commit_hash=head_commit() if session else None))

    def end(status: str, code: int, message: str | None, deadline: float | None = None) -> int:
        record = runs.end_record(agent_session_id, format_timestamp(clock()), status, code, message)
        return recorder.finish(record, code, deadline or time.monotonic() + END_WAIT)

    try:
        try:
            child, tail = spawn(argv)
        except (OSError, ValueError) as exc:
            begin()
            return end("failed", *cannot_start(argv, exc))
        begin()
        returncode, received = _wait(child)
        deadline = time.monotonic() + END_WAIT  # for the stderr's last lines, then for the database
        code = exit_code_of(returncode)
        lines = tail.lines(END_WAIT / 2)
        if received:
            message = f"interrupted by {signal.Signals(received).name}" + (f"\n{lines}" if lines else "")
            return end("failed", 128 + received, message, deadline)
        if code == 0:
            return end("completed", 0, None, deadline)
        return end("failed", code, lines or f"exited with code {code}", deadline)
    finally:
        recorder.close()


def _wait(child: subprocess.Popen) -> tuple[int, int | None]:
    """The child's return code, and the signal (SIGINT, SIGTERM) that interrupted monitor, if any:
    SIGTERM is passed on to the child, Ctrl-C stops it (see _stop)."""
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
    return returncode, (received[0] if received else None)


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
