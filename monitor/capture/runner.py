"""`monitor run`: run a command as an agent execution, never holding it up.

The command starts at once. A background thread records its start while it runs (opening the
database, upgrading it, waiting for other writers as long as they need, after catching up with
the spool and with runs whose `monitor run` was killed); its end is recorded when it exits. What is
still not written END_WAIT seconds after the command exited (the database locked by a long
cleanup or an upgrade, a full disk) goes to the spool, which the next command records: monitor
exits with the command's own code right away, whatever the database does.

Each attempt (monitor/capture/child.py) runs the command in a process group of its own, on a
pseudo-terminal when monitor has a terminal; its output goes through a small relay process
(monitor/capture/relay.py), which copies it to monitor's and hands back the last lines at the end:
the command keeps a reader on its output even if `monitor run` is killed (kill -9), where a pipe
read by monitor itself would break and kill it at its next write. The execution carries the pid,
host and start time of `monitor run`, so that a later command on that host can tell it is gone and
record the execution failed. Retries, the time limit and the circuit breaker: see healing.py.
Every step is an event of the execution (started, attempt, exit, signal, timeout, retry), written
in order with its start and end, or spooled with them.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from monitor.capture import runs
from monitor.capture.child import CAPTURES, FORWARDED, held_signals, spawn, use_terminal, wait
from monitor.capture.events import insert_event
from monitor.capture.failure import failure_line
from monitor.capture.git import head_commit
from monitor.capture.healing import BREAKER_OPEN, TIMED_OUT, Breaker, Policy, backoff_delay, breaker_state, spoken
from monitor.capture.ingest import apply_record, catch_up
from monitor.capture.processes import this_process
from monitor.capture.scrub import metadata_only
from monitor.errors import DatabaseError, InvalidInput, MonitorError
from monitor.store import spool
from monitor.store.db import BUSY_TIMEOUT_MS, Database, is_transient, open_db, resolve_path
from monitor.timeutil import format_timestamp, utcnow

#: After the command exits: how long its start and end may take to be written before they are spooled.
END_WAIT = 2.0
#: How long opening the database may wait for another process before the command starts anyway
#: (and the background thread opens it, waiting as long as it takes).
OPEN_WAIT_MS = 200


class RecordingFailed(MonitorError):
    """The command ran, but it could be neither recorded nor spooled; exit_code is the command's own."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_unrecorded(argv: Sequence[str], policy: Policy = Policy(), capture: str = "stderr",
                   terminal: bool | None = None, warn: Callable[[str], None] = lambda message: None) -> int:
    """Run argv with nothing recorded (when the database cannot be used), with its retries and time
    limit (no breaker: it reads the database); the last attempt's exit code."""
    def start(at: str) -> dict:
        return {}

    return _attempts(argv, Unrecorded(), "unrecorded", start, policy, capture, terminal, utcnow, warn)


def cannot_start(argv: Sequence[str], exc: OSError | ValueError) -> tuple[int, str]:
    """Why argv could not be started (as a shell says it) and the exit code a shell gives for it:
    127 when the command is not found, 126 when it cannot be executed."""
    if isinstance(exc, FileNotFoundError):
        code, reason = 127, "command not found"
    elif isinstance(exc, PermissionError):
        code, reason = 126, "permission denied: not executable"
    else:  # ValueError: an argument with a NUL byte
        code, reason = 126, (getattr(exc, "strerror", None) or str(exc)).lower()
    return code, f"cannot run {argv[0]!r}: {reason}"


def exit_code_of(returncode: int) -> int:
    """A child killed by signal N exits like a shell reports it: 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode


# -- recording -------------------------------------------------------------------------------

class Recorder:
    """Writes a run's records (its start, its events, its end) in order in a background thread, or
    spools what is not written when the run ends."""

    def __init__(self, path: Path, db: Database | None, warn: Callable[[str], None]) -> None:
        self.path, self.db, self.warn = path, db, warn
        self.records: list[dict] = []
        self.written = 0
        self.closing = False
        self.error: BaseException | None = None
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._write, daemon=True, name="monitor-run-recorder")

    def begin(self, start: dict) -> None:
        self.add(start)
        self.thread.start()

    def add(self, record: dict) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until every record added so far is written (or could not be); whether it was."""
        with self.changed:
            self.changed.wait_for(lambda: self.written == len(self.records) or self.error is not None
                                  or not self.thread.is_alive(), timeout)
            return self.written == len(self.records)

    def _write(self) -> None:
        try:
            if self.db is None:
                self.db = open_db(self.path)
            self.db.set_busy_timeout(BUSY_TIMEOUT_MS)
            catch_up(self.db, wait=None, skipped=self.warn)
            while True:
                with self.changed:
                    self.changed.wait_for(lambda: self.written < len(self.records) or self.closing)
                    batch = self.records[self.written:]
                if not batch:
                    return
                with self.db.transaction():
                    for record in batch:
                        apply_record(self.db, record)
                with self.changed:
                    self.written += len(batch)
                    self.changed.notify_all()
        except BaseException as exc:  # noqa: BLE001 - told at the end, by finish()
            self.error = exc
        finally:
            with self.changed:
                self.changed.notify_all()

    def finish(self, end: dict, code: int, deadline: float) -> int:
        """Record the end by `deadline` (time.monotonic()), else spool what is not written; return
        code. Raises RecordingFailed when the run could be neither recorded nor spooled."""
        with self.changed:
            self.records.append(end)
            self.closing = True
            self.changed.notify_all()
        self.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self.changed:
            rest = self.records[self.written:]
        if not rest:
            return code
        if self.error is not None and not is_transient(self.error):
            what = "the command ran without being recorded" if self.written == 0 else (
                "the command ran, but its end was not recorded")
            raise RecordingFailed(f"{what}: {self.error}", code) from None
        try:
            for record in rest:  # a record being written meanwhile is written once: each is idempotent
                spool.append(self.path, record)
        except OSError as exc:
            reason = str(self.error) if self.error is not None else "the database is busy"
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

class BreakerOpen(MonitorError):
    """The circuit breaker refused to start the command (exit BREAKER_OPEN)."""

    exit_code = BREAKER_OPEN


def _refuse_if_breaker_open(path: Path, db: Database | None, agent_name: str, breaker: Breaker,
                            session: str | None, now: datetime, warn: Callable[[str], None]) -> None:
    """Raise BreakerOpen, with an event recorded, when agent_name failed too often lately: on the
    orchestration `session` when it exists, else on the agent's latest failed execution."""
    own = db is None
    db = db or open_db(path)
    try:
        state = breaker_state(db, agent_name, breaker, now)
        if state.open_until is None:
            return
        until = state.open_until
        failures = f"{state.failures} failed execution" + ("s" if state.failures != 1 else "")
        message = (f"circuit breaker open for agent {agent_name!r}: {failures} within the last"
                   f" {spoken(breaker.window.total_seconds())} (--breaker {breaker}); not starting it"
                   f" before {until[:10]} {until[11:19]} UTC")
        try:
            with db.busy_timeout(OPEN_WAIT_MS * 5), db.transaction() as conn:
                owner = conn.execute("SELECT NULL, id FROM orchestrations WHERE session_id = ?", (session,)).fetchone()
                if owner is None:
                    owner = conn.execute(
                        "SELECT id, orchestration_id FROM agent_executions WHERE agent_name = ? AND status = 'failed'"
                        " AND completed_at >= ? ORDER BY completed_at DESC LIMIT 1",
                        (agent_name, format_timestamp(now - breaker.window))).fetchone()
                insert_event(conn, format_timestamp(now), "breaker-open", message,
                             {"agent_name": agent_name, "failures": state.failures, "breaker": str(breaker),
                              "open_until": until}, owner[0], owner[1])
        except Exception as exc:  # noqa: BLE001 - the refusal stands; its event is a nicety
            warn(f"could not record the breaker's event: {exc}")
        raise BreakerOpen(message)
    finally:
        if own:
            db.close()


class Run:
    """One `monitor run`: its execution's records, its events numbered in order."""

    def __init__(self, recorder: Recorder | Unrecorded, agent_session_id: str, clock: Callable[[], datetime]) -> None:
        self.recorder, self.id, self.clock = recorder, agent_session_id, clock
        self.seq = 0

    def now(self) -> str:
        return format_timestamp(self.clock())

    def event(self, event_type: str, message: str, payload: dict | None = None) -> None:
        self.seq += 1
        self.recorder.add(runs.event_record(self.id, self.now(), self.seq, event_type, message, payload))


def _command_text(argv: Sequence[str]) -> str:
    """The command as the event log tells it: all of it (secrets redacted when stored), or its
    name alone with MONITOR_CAPTURE=metadata."""
    import shlex

    return os.path.basename(argv[0]) if metadata_only() else shlex.join(argv)


def _judge(attempt: int, returncode: int, received: int | None, timed_out: bool, lines: str,
           policy: Policy) -> tuple[int, str | None, str, str, bool]:
    """An attempt's (exit code, error message (None: it succeeded), event type, event message,
    whether a retry may follow)."""
    def with_lines(head: str) -> str:
        return head + (f"\n{lines}" if lines else "")

    if received is not None:
        name = signal.Signals(received).name
        return (128 + received, with_lines(f"interrupted by {name}"), "signal",
                f"attempt {attempt}: monitor run got {name}, passed on to the command", False)
    if timed_out:
        limit = spoken(policy.timeout or 0)
        return (TIMED_OUT, with_lines(f"timed out after {limit}"), "timeout",
                f"attempt {attempt} timed out after {limit}: its process group got SIGTERM"
                f" (SIGKILL after {spoken(policy.kill_after)})", True)
    code = exit_code_of(returncode)
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.Signals._value2member_map_ else str(-returncode)
        return (code, with_lines(f"killed by {name}"), "signal", f"attempt {attempt} killed by {name}",
                -returncode != signal.SIGINT)
    if code == 0:
        return 0, None, "exit", f"attempt {attempt} exited with code 0", False
    told = f"attempt {attempt} exited with code {code}" + (f": {failure_line(lines)}" if lines else "")
    return code, lines or f"exited with code {code}", "exit", told, code != 130  # 130: it was interrupted (Ctrl-C)


def _sleep(seconds: float) -> int | None:
    """Sleep; the signal (SIGINT, SIGTERM, SIGHUP) that cut it short, if any."""
    received: list[int] = []

    class Woken(Exception):
        pass

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)
        raise Woken

    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, on_signal) for sig in FORWARDED} if main else {}
    try:
        time.sleep(seconds)
    except Woken:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return received[0] if received else None


def run_command(
    db_path: str | os.PathLike[str] | None,
    argv: Sequence[str],
    agent_name: str,
    *,
    session: str | None = None,
    task_id: str | None = None,
    agent_session_id: str | None = None,
    policy: Policy = Policy(),
    capture: str = "stderr",
    terminal: bool | None = None,
    clock: Callable[[], datetime] = utcnow,
    warn: Callable[[str], None] = lambda message: None,
) -> int:
    """Run argv as an execution of agent_name, with its retries (see healing.Policy); return the
    last attempt's exit code (TIMED_OUT when its time ran out).

    stdin and stdout are the child's own (a pseudo-terminal in place of a terminal, see child.py);
    the streams `capture` names (stderr, stdout, both) are copied through and their last lines
    become the error message of a failed attempt. With session, the execution joins that
    orchestration (started if new), whose status then follows its executions. A signal to monitor
    (Ctrl-C, SIGTERM, SIGHUP) is passed on to the command's process group; the execution is
    recorded failed and 128 + the signal returned. Raises DatabaseError before anything runs when
    the database cannot be used at all, InvalidInput for an --id already recorded, BreakerOpen when
    the circuit breaker refuses, RecordingFailed (with the code) when the run went unrecorded.
    """
    if capture not in CAPTURES:
        raise InvalidInput(f"capture must be one of {', '.join(CAPTURES)}, got {capture!r}")
    path = resolve_path(db_path)
    db = _open_quickly(path)
    _refuse_recorded_id(db, agent_session_id)
    if policy.breaker is not None:
        _refuse_if_breaker_open(path, db, agent_name, policy.breaker, session, clock(), warn)
    agent_session_id = agent_session_id or f"{agent_name}-{uuid.uuid4().hex[:12]}"

    def start(at: str) -> dict:
        assert agent_session_id is not None
        return runs.start_record(agent_session_id, agent_name, at, this_process(), session=session, task_id=task_id,
                                 git_commit_hash=head_commit() if session else None)

    return _attempts(argv, Recorder(path, db, warn), agent_session_id, start, policy, capture, terminal, clock,
                     warn)


class Unrecorded:
    """In place of a Recorder when the database cannot be used: records nothing."""

    def begin(self, start: dict) -> None:
        pass

    def add(self, record: dict) -> None:
        pass

    def finish(self, end: dict, code: int, deadline: float) -> int:
        return code

    def close(self) -> None:
        pass


def _attempts(argv: Sequence[str], recorder: Recorder | Unrecorded, agent_session_id: str,
              start: Callable[[str], dict], policy: Policy, capture: str, terminal: bool | None,
              clock: Callable[[], datetime], warn: Callable[[str], None]) -> int:
    """Run argv's attempts (see run_command), told to recorder, and what monitor has to say to
    warn; the last one's exit code."""
    run = Run(recorder, agent_session_id, clock)
    terminal = use_terminal() if terminal is None else terminal
    attempts = policy.retries + 1

    def begin() -> None:
        recorder.begin(start(run.now()))
        run.event("started", f"monitor run: {_command_text(argv)}", {
            "command": list(argv) if not metadata_only() else [os.path.basename(argv[0])],
            "retries": policy.retries, "timeout_s": policy.timeout, "capture": capture, "terminal": terminal,
            "pid": os.getpid()})
    def end(status: str, code: int, message: str | None, attempt: int, healed: bool = False,
            deadline: float | None = None) -> int:
        record = runs.end_record(agent_session_id, run.now(), status, code, message, retry_count=attempt - 1,
                                 self_healed=healed)
        return recorder.finish(record, code, deadline or time.monotonic() + END_WAIT)

    failed_before = False
    try:
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            with held_signals() as held:  # Ctrl-C while the start is recorded reaches the command
                try:
                    child, relay = spawn(argv, capture, terminal)
                except (OSError, ValueError) as exc:
                    code, why = cannot_start(argv, exc)
                    warn(why)
                    if attempt == 1:
                        begin()
                    run.event("exit", f"attempt {attempt}: {why}", {"attempt": attempt, "exit_code": code})
                    return end("failed", code, why, attempt)
                if attempt == 1:
                    begin()
                run.event("attempt", f"attempt {attempt} of {attempts} started (pid {child.pid})",
                          {"attempt": attempt, "of": attempts, "pid": child.pid})
                returncode, received, timed_out = wait(child, policy.timeout, policy.kill_after, held)
            deadline = time.monotonic() + END_WAIT  # for the last lines, then for the database
            lines = relay.lines(END_WAIT / 2)
            code, message, event_type, told, retryable = _judge(attempt, returncode, received, timed_out, lines,
                                                                 policy)
            run.event(event_type, told, {"attempt": attempt, "exit_code": code,
                                         "duration_ms": round((time.monotonic() - started) * 1000)})
            if message is None:
                return end("completed", 0, None, attempt, healed=failed_before, deadline=deadline)
            failed_before = True
            if not retryable or attempt == attempts:
                return end("failed", code, message, attempt, deadline=deadline)
            delay = backoff_delay(policy, attempt)
            run.event("retry", f"retrying in {delay:.1f}s (attempt {attempt + 1} of {attempts})",
                      {"attempt": attempt + 1, "delay_s": round(delay, 3)})
            woken = _sleep(delay)
            if woken is not None:
                name = signal.Signals(woken).name
                run.event("signal", f"monitor run got {name} while waiting to retry: giving up", {"attempt": attempt})
                return end("failed", 128 + woken, f"interrupted by {name} while waiting to retry\n{message}", attempt)
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        recorder.close()
