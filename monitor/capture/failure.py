"""A failed command's error message: the last lines it wrote (secrets redacted), and the one line
of them that says what went wrong, which tables show.

Imports stay light: tables (monitor/cli/output.py) use failure_line.
"""

from __future__ import annotations

import re

from monitor.capture.scrub import redact

ERROR_TAIL_LINES = 20
ERROR_TAIL_BYTES = 4000

#: Lines that say what went wrong, best first: monitor's own (a time limit, an interruption); a test
#: runner's failed test (pytest's FAILED/ERROR, jest's FAIL); an exception (Python's last traceback
#: line, Java's); a compiler's or tool's error, fatal or panic line. The first line matching the
#: best pattern found wins; when none matches, the last line.
_FAILURE_LINES = [re.compile(p) for p in (
    r"^(timed out after |interrupted by |monitor run was killed|killed by SIG)",
    r"^(FAILED|ERROR|FAIL)\b",
    r"^[A-Za-z_][\w.]*(Error|Exception|Failure|Exit)\b.*:\s*\S",
    r"(?i)(^|[\s:\[])(error|fatal|panic|failed|failure)\b",
)]


#: A terminal's escape sequences (colours, cursor moves, titles), which a command writing to a
#: terminal uses: the error message keeps the text.
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[ -/]*[0-~])")


def as_shown(text: str) -> str:
    """Text written to a terminal as it reads once shown: escape sequences left out, and of a line
    rewritten in place (a progress bar: text, carriage return, text) the last version."""
    text = _ESCAPES.sub("", text).replace("\r\n", "\n")
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))


def last_lines(text: str, cut: bool = False) -> str:
    """The last ERROR_TAIL_LINES lines of text (as_shown), at most ERROR_TAIL_BYTES characters of
    them, secrets redacted first; a line whose start was cut off (cut: text itself is a tail) is left
    out, so that no secret is kept by halves."""
    lines = as_shown(redact(text)).rstrip().splitlines()
    if cut and len(lines) > 1:
        lines = lines[1:]
    tail = "\n".join(lines[-ERROR_TAIL_LINES:])
    if len(tail) > ERROR_TAIL_BYTES:
        tail = tail[-ERROR_TAIL_BYTES:]
        tail = tail.split("\n", 1)[1] if "\n" in tail else tail
    return tail


def failure_line(text: str) -> str:
    """The line of an error message that says what went wrong (see _FAILURE_LINES), stripped; ''
    for a message without text."""
    lines = [line.strip() for line in re.split(r"\r?\n", text) if line.strip()]
    if not lines:
        return ""
    for pattern in _FAILURE_LINES:
        for line in lines:
            if pattern.search(line):
                return line
    return lines[-1]
