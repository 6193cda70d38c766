"""The stderr copier of `monitor run`, run as a script of its own: `python tee.py BYTES`.

It copies its standard input (the command's stderr) to its standard error (monitor's) as it
comes, and when the input ends, writes to its standard output (a pipe that `monitor run` reads: the
error message of a failed command) "1" if the input was longer than BYTES bytes, else "0", then
its last BYTES bytes.

It is a separate process so that the command's stderr keeps a reader whatever happens to
`monitor run`: killed with SIGKILL, monitor could not read a pipe any more, and the command would
die of SIGPIPE at its next write. It ignores SIGINT, SIGTERM and SIGHUP: it ends when the command's
stderr closes, so a signal sent to the whole process group stops the command, not the copying of
its last words. If monitor's stderr goes away, it keeps reading (and drops what it reads), so the
command is never blocked or broken by it. Nothing but the standard library: it starts in ~10 ms.
"""

from __future__ import annotations

import os
import signal
import sys


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def copy(source: int, sink: int, keep: int) -> tuple[bytes, bool]:
    """Copy source to sink until source ends; the last `keep` bytes, and whether there were more.
    A failing sink is dropped."""
    tail, cut = bytearray(), False
    while chunk := os.read(source, 65536):
        if sink >= 0:
            try:
                _write(sink, chunk)
            except OSError:
                sink = -1
        tail += chunk
        cut = cut or len(tail) > keep
        del tail[:-keep]
    return bytes(tail), cut


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    tail, cut = copy(0, 2, int(argv[0]) if argv else 8000)
    try:
        _write(1, (b"1" if cut else b"0") + tail)
    except OSError:
        pass  # monitor run is gone: nobody asks for the tail
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
