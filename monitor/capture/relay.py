"""The output copier of `monitor run`, run as a script of its own:
`python relay.py KEEP TAIL_FD CONTROL_FD SOURCE... [in:MASTER_FD]`.

Each SOURCE is `FD:SINK:CAPTURE:PTY`: a pipe, or a pseudo-terminal's master side (PTY 1), that
the command writes to (FD), copied as it comes to SINK (0, 1, 2: monitor's stdin, stdout or stderr
terminal), and kept for the error message when CAPTURE is 1; a pseudo-terminal's window size
follows its SINK's (SIGWINCH). `in:MASTER_FD` forwards monitor's standard input, a terminal put
in raw mode, to the command's pseudo-terminal. When every source has ended, or soon after `monitor run` writes a byte to
CONTROL_FD (the command exited: a process it left behind may hold the output open), it restores
the terminal and writes to TAIL_FD "1" if the kept output was longer than KEEP bytes, else "0"
(its start may be cut mid-line), then "1" if a source had not ended, else "0" (its end may be cut
mid-line: more may follow), then its last KEEP bytes; it carries on copying until the sources end.

It is a separate process so that the command's output keeps a reader whatever happens to
`monitor run`: killed with SIGKILL, monitor could read neither a pipe nor a pseudo-terminal any
more, and the command would die of SIGPIPE or SIGHUP at its next write. It ignores SIGINT,
SIGTERM and SIGHUP: it ends when the command's output does, so a signal sent to the whole process
group stops the command, not the copying of its last words. If a sink goes away, it keeps
reading (and drops what it reads), so the command is never blocked or broken by it. Nothing but the
standard library: it starts in ~10 ms.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import sys
import time

#: After the command exited: how long output still coming (a pseudo-terminal's last bytes) is
#: waited for before the tail is handed back.
DRAIN_SECONDS = 0.3


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read(fd: int) -> bytes | None:
    """b'' at the end: of a pipe, or of a pseudo-terminal whose every slave end closed (EIO);
    None when there is nothing yet (not an end)."""
    try:
        return os.read(fd, 65536)
    except OSError as exc:
        if exc.errno in (errno.EIO, errno.EBADF):
            return b""
        if exc.errno in (errno.EINTR, errno.EAGAIN):
            return None
        raise


class Terminal:
    """Monitor's terminal: the window size of each pseudo-terminal follows the one its output goes
    to (SIGWINCH); with stdin forwarded, that terminal is raw while the command runs (when monitor
    is in its foreground)."""

    def __init__(self, masters: dict[int, int], forward_to: int | None) -> None:
        import termios

        self.masters, self.forward_to, self.saved = masters, forward_to, None
        if forward_to is not None:
            try:
                if os.tcgetpgrp(0) == os.getpgrp():
                    self.saved = termios.tcgetattr(0)
                    import tty

                    tty.setraw(0, termios.TCSANOW)
            except (OSError, termios.error):
                self.saved = None
        signal.signal(signal.SIGWINCH, lambda *_: self.resize())

    @property
    def forwarding(self) -> bool:
        return self.saved is not None

    def resize(self) -> None:
        import fcntl
        import termios

        for master, sink in list(self.masters.items()):
            try:
                fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(sink, termios.TIOCGWINSZ, b"\0" * 8))
            except OSError:
                pass

    def restore(self) -> None:
        if self.saved is not None:
            import termios

            try:
                termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
            except (OSError, termios.error):
                pass
            self.saved = None


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    keep, tail_fd, control = int(argv[0]), int(argv[1]), int(argv[2])
    sinks: dict[int, int] = {}
    captured: set[int] = set()
    masters: dict[int, int] = {}
    forward_to: int | None = None
    for spec in argv[3:]:
        kind, _, rest = spec.partition(":")
        if kind == "in":
            forward_to = int(rest)
            continue
        fd, sink, capture, pty = (int(part) for part in spec.split(":"))
        sinks[fd] = sink
        if capture:
            captured.add(fd)
        if pty:
            masters[fd] = sink
    terminal = Terminal(masters, forward_to) if masters else None
    forward = terminal is not None and terminal.forwarding
    tail, cut = bytearray(), False
    deadline: float | None = None  # once the command exited
    while sinks or tail_fd >= 0:
        if tail_fd >= 0 and (not sinks or (deadline is not None and time.monotonic() >= deadline)):
            if terminal is not None:
                terminal.restore()
                forward = False
            try:
                _write(tail_fd, (b"1" if cut else b"0") + (b"1" if captured & set(sinks) else b"0") + bytes(tail))
            except OSError:
                pass  # monitor run is gone: nobody asks for the tail
            os.close(tail_fd)
            tail_fd = -1
            continue
        watched = list(sinks) + ([0] if forward else []) + ([control] if control >= 0 else [])
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            ready = select.select(watched, [], [], wait)[0]
        except InterruptedError:
            continue
        for fd in ready:
            if fd == control:
                if os.read(control, 1) and deadline is None:
                    deadline = time.monotonic() + DRAIN_SECONDS
                else:
                    os.close(control)  # monitor run is gone (or said it twice): copy to the end
                    control = -1
            elif fd == 0:
                data = _read(0)
                if data == b"":
                    forward = False
                elif data is not None and forward_to is not None:
                    try:
                        _write(forward_to, data)
                    except OSError:
                        forward = False
            else:
                data = _read(fd)
                if data is None:
                    continue
                if not data:
                    del sinks[fd]
                    masters.pop(fd, None)
                    os.close(fd)
                    continue
                if sinks[fd] >= 0:
                    try:
                        _write(sinks[fd], data)
                    except OSError:
                        sinks[fd] = -1
                if fd in captured:
                    tail += data
                    cut = cut or len(tail) > keep
                    del tail[:-keep]
    if terminal is not None:
        terminal.restore()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
