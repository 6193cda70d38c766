"""One attempt of `monitor run`: start the command, wait for it (with a time limit), stop it.

The command runs in a process group of its own, so that a time limit stops it and whatever it
started (TERM to the group, then KILL after a grace period), and a signal that interrupts monitor
(SIGINT, SIGTERM, SIGHUP) is passed on to that whole group at once.

Its output goes through the relay process (monitor/capture/relay.py), which copies it to monitor's
and hands back the last bytes of what --capture keeps. When monitor's standard input, output or
error is a terminal, the command gets a pseudo-terminal of its own in its place (a second one for
stderr, so that the two stay apart), with the terminal's settings and window size: it sees a
terminal (isatty() is true: colours, progress bars, prompts), and a Ctrl-C typed into it reaches it
through that pseudo-terminal's line discipline, monitor's terminal being in raw mode meanwhile.
What is not a terminal is passed as it is (stdin) or through a pipe (the captured streams).
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from monitor.capture.failure import ERROR_TAIL_BYTES, last_lines
from monitor.capture.scrub import metadata_only

RELAY = Path(__file__).with_name("relay.py")
CAPTURES = ("stderr", "stdout", "both")
#: A signal that interrupts `monitor run` and is passed on to the command's process group.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Streams:
    """The command's standard streams for one attempt, and the relay's ends of them."""

    child: dict[int, int | None] = field(default_factory=dict)  # 0, 1, 2 -> fd for the child (None: inherit)
    sources: list[tuple[int, int, bool, bool]] = field(default_factory=list)  # (read end, sink, captured, pty)
    terminal_master: int | None = None  # the pseudo-terminal stdin is forwarded to
    close_after_spawn: list[int] = field(default_factory=list)

    @property
    def pty(self) -> bool:
        return any(fd is not None and os.isatty(fd) for fd in self.child.values())


def use_terminal() -> bool:
    """Whether the command gets a pseudo-terminal: one of monitor's standard streams is a terminal."""
    return any(_isatty(fd) for fd in (0, 1, 2)) and hasattr(os, "openpty")


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _openpty(like: int) -> tuple[int, int]:
    """A pseudo-terminal (master, slave) with the settings and window size of terminal `like`."""
    master, slave = os.openpty()
    try:
        attributes = termios.tcgetattr(like)
        # Ctrl-Z would stop the command inside its terminal, with monitor's terminal raw and nobody
        # to resume it: it is passed on as a key instead.
        attributes[6][termios.VSUSP] = b"\0"
        termios.tcsetattr(slave, termios.TCSANOW, attributes)
    except (OSError, termios.error):
        pass
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, fcntl.ioctl(like, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass
    os.set_inheritable(master, False)
    return master, slave


def open_streams(capture: str, terminal: bool) -> Streams:
    """The command's streams: pseudo-terminals for monitor's terminals (when terminal), pipes for
    what is captured and not a terminal, monitor's own for the rest."""
    streams = Streams()
    keep_out, keep_err = capture in ("stdout", "both"), capture in ("stderr", "both")
    tty = {fd: terminal and _isatty(fd) for fd in (0, 1, 2)}
    streams.child[0] = None
    main: tuple[int, int] | None = None
    if tty[0] or tty[1]:
        main = _openpty(1 if tty[1] else 0)
        streams.close_after_spawn.append(main[1])
        if tty[0]:
            streams.child[0] = main[1]
            streams.terminal_master = main[0]
        # what the command writes to the terminal (stdout, or /dev/tty) goes to monitor's terminal
        streams.sources.append((main[0], 1 if tty[1] else 0, keep_out and tty[1], True))
    for fd, keep in ((1, keep_out), (2, keep_err)):
        if tty[fd] and fd == 1 and main is not None:
            streams.child[1] = main[1]
        elif tty[fd]:
            master, slave = _openpty(fd)
            streams.child[fd] = slave
            streams.close_after_spawn.append(slave)
            streams.sources.append((master, fd, keep, True))
        elif keep:
            read_end, write_end = os.pipe()
            os.set_inheritable(read_end, False)
            streams.child[fd] = write_end
            streams.close_after_spawn.append(write_end)
            streams.sources.append((read_end, fd, True, False))
        else:
            streams.child[fd] = None
    return streams


def _take_terminal() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Make the first pseudo-terminal among the child's streams its controlling terminal (the
    child is already a session leader): Ctrl-C typed into it then signals the command."""
    for fd in (0, 1, 2):
        if os.isatty(fd):
            try:
                fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
            except OSError:
                pass
            return


class Relay:
    """The relay process of one attempt (see relay.py), and the pipe its tail comes back on."""

    def __init__(self, streams: Streams) -> None:
        self.tail_fd: int | None = None
        self.control: int | None = None
        self.saved: list | None = None  # the terminal's settings, should the relay die with it raw
        if not streams.sources:
            return
        if streams.terminal_master is not None:
            try:
                if os.tcgetpgrp(0) == os.getpgrp():  # else the relay leaves it alone too
                    self.saved = termios.tcgetattr(0)
            except (OSError, termios.error):
                pass
        tail_read, tail_write = os.pipe()
        control_read, control_write = os.pipe()
        args = [str(ERROR_TAIL_BYTES * 2), str(tail_write), str(control_read)]
        args += [f"{fd}:{sink}:{int(keep)}:{int(pty)}" for fd, sink, keep, pty in streams.sources]
        terminal = any(pty for *_, pty in streams.sources)
        if streams.terminal_master is not None:
            args.append(f"in:{streams.terminal_master}")
        passed = [tail_write, control_read] + [fd for fd, *_ in streams.sources]
        try:
            # With a terminal, in monitor's process group (the terminal's foreground one: SIGWINCH, raw
            # mode); it ignores the signals a Ctrl-C sends to that group once it has started. Else in a
            # session of its own: such a signal never stops the copying of the command's last words.
            subprocess.Popen([sys.executable, "-I", "-S", str(RELAY), *args], pass_fds=passed,
                             start_new_session=not terminal)
        except OSError:
            os.close(tail_read)
            os.close(control_write)
            _copy_without_relay(streams)
        else:
            self.tail_fd, self.control = tail_read, control_write
        finally:
            os.close(tail_write)
            os.close(control_read)
            for fd, *_ in streams.sources:
                os.close(fd)

    def lines(self, wait: float) -> str:
        """The error message of what was captured (see last_lines; none with
        MONITOR_CAPTURE=metadata). Waits at most `wait` seconds."""
        if self.control is not None:
            try:
                os.write(self.control, b"x")  # the command exited: hand the tail back soon
            except OSError:
                pass
            os.close(self.control)
            self.control = None
        if self.tail_fd is None:
            return ""
        data, deadline, whole = bytearray(), time.monotonic() + wait, False
        try:
            while (left := deadline - time.monotonic()) > 0 and select.select([self.tail_fd], [], [], left)[0]:
                chunk = os.read(self.tail_fd, 65536)
                if not chunk:
                    whole = True
                    break
                data += chunk
        finally:
            os.close(self.tail_fd)
            self.tail_fd = None
        if not data and self.saved is not None:  # the relay died (killed) before it could restore it
            try:
                if os.tcgetpgrp(0) == os.getpgrp():
                    termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
            except (OSError, termios.error):
                pass
        if metadata_only() or not data:
            return ""
        # Its end is cut when the output had not ended (a process the command left behind still
        # writes) or when the tail was not read to its end in time: its last line may be half a line.
        return last_lines(bytes(data[2:]).decode("utf-8", errors="replace"), cut=data[:1] == b"1",
                          open_end=data[1:2] != b"0" or not whole)


def _copy_without_relay(streams: Streams) -> None:
    """No relay process could start: copy in threads of monitor (lost if monitor is killed)."""
    def copy(fd: int, sink: int) -> None:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                os.close(fd)
                return
            try:
                os.write(sink, chunk)
            except OSError:
                pass

    for fd, sink, *_ in streams.sources:
        threading.Thread(target=copy, args=(os.dup(fd), sink), daemon=True).start()


def spawn(argv: Sequence[str], capture: str = "stderr", terminal: bool = False) -> tuple[subprocess.Popen, Relay]:
    """Start argv in a process group (a session, with a pseudo-terminal) of its own, and its relay.
    Raises OSError or ValueError when argv cannot start (its streams are closed then)."""
    streams = open_streams(capture, terminal)
    try:
        child = subprocess.Popen(
            list(argv), stdin=streams.child[0], stdout=streams.child[1], stderr=streams.child[2],
            start_new_session=streams.pty, process_group=None if streams.pty else 0,
            preexec_fn=_take_terminal if streams.pty else None)
    except BaseException:
        for fd in streams.close_after_spawn + [fd for fd, *_ in streams.sources]:
            os.close(fd)
        raise
    for fd in streams.close_after_spawn:
        os.close(fd)
    return child, Relay(streams)


# -- waiting ---------------------------------------------------------------------------------

class _Interrupted(Exception):
    pass


@contextmanager
def held_signals() -> Iterator[list[int]]:
    """Hold the signals that interrupt monitor (FORWARDED) from before a child starts until wait()
    takes over; yields the list of those that came meanwhile, which wait() passes on at once (one
    arriving while monitor records the start would otherwise end monitor and leave the child running)."""
    held: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    previous = ({sig: signal.signal(sig, lambda signum, frame: held.append(signum)) for sig in FORWARDED}
                if main else {})
    try:
        yield held
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait(child: subprocess.Popen, timeout: float | None, kill_after: float,
         held: Sequence[int] = ()) -> tuple[int, int | None, bool]:
    """The child's return code, the signal that interrupted monitor meanwhile (or before, `held`),
    and whether the time limit ran out (the group then got SIGTERM, and SIGKILL after kill_after seconds).

    A signal that interrupts monitor (SIGINT, SIGTERM, SIGHUP) is passed on to the child's process
    group at once; if the group is still there INSIST seconds later it gets SIGTERM, then SIGKILL."""
    received: list[int] = []
    main = threading.current_thread() is threading.main_thread()

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)
        _signal_group(child, signum)
        if len(received) == 1:
            raise _Interrupted

    previous = {sig: signal.signal(sig, on_signal) for sig in FORWARDED} if main else {}
    try:
        try:
            if held:
                on_signal(held[0], None)
            returncode = _wait_for(child, timeout)
        except _Interrupted:
            return _insist(child), received[0], False
        if returncode is None:
            return stop_group(child, kill_after), (received[0] if received else None), True
        return returncode, (received[0] if received else None), False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_for(child: subprocess.Popen, timeout: float | None) -> int | None:
    """The child's return code, or None when `timeout` seconds passed first. Sleeps on a pidfd
    where there is one (Linux), rather than polling."""
    if timeout is None:
        return child.wait()
    try:
        pidfd = os.pidfd_open(child.pid)  # type: ignore[attr-defined, unused-ignore]
    except (AttributeError, OSError):
        try:
            return child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        limit = time.monotonic() + timeout
        while (left := limit - time.monotonic()) > 0:
            if select.select([pidfd], [], [], left)[0]:
                return child.wait()
        return child.poll()
    finally:
        os.close(pidfd)


#: After passing on a signal that interrupted monitor: how long the command has to end before
#: its group gets SIGTERM, and then SIGKILL.
INSIST = 5.0


def _insist(child: subprocess.Popen) -> int:
    try:
        return child.wait(timeout=INSIST)
    except subprocess.TimeoutExpired:
        return stop_group(child, INSIST)


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(child: subprocess.Popen, grace: float) -> int:
    """SIGTERM to the child's process group; SIGKILL to what is left of it after `grace` seconds.
    Returns the child's return code once it and its group are gone (or KILLed)."""
    _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    returncode: int | None = None
    while time.monotonic() < deadline:
        if returncode is None:
            try:
                returncode = child.wait(timeout=min(0.05, max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                continue
        if not _group_alive(child.pid):
            return returncode
        time.sleep(0.02)
    _signal_group(child, signal.SIGKILL)
    return child.wait() if returncode is None else returncode


def _group_alive(pgid: int) -> bool:
    """Whether a process of group pgid is still running: a zombie (ended, not yet reaped by an init
    that reaps slowly) does not count."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] != b"Z":
            return True
    return False
