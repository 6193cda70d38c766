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


def last_lines(text: str, cut: bool = False, open_end: bool = False) -> str:
    """The last ERROR_TAIL_LINES lines of text (as_shown), at most ERROR_TAIL_BYTES characters of
    them, secrets redacted first; a line whose start was cut off (cut: text itself is a tail) is left
    out, and so is a last line not ended by a line break when more may have followed (open_end: the
    output had not ended), so that no secret is kept by halves (a token's first half matches no pattern)."""
    if open_end and not text.endswith(("\n", "\r")):
        text = text.rpartition("\n")[0]
    if cut:
        text = _after_cut(text)
    # Redacted as written and again as shown: a name coloured apart from its value
    # (ESC[1mTOKEN ESC[0m=...) is an assignment only once the escapes are left out.
    lines = redact(as_shown(redact(text))).rstrip().splitlines()
    tail = "\n".join(lines[-ERROR_TAIL_LINES:])
    if len(tail) > ERROR_TAIL_BYTES:
        tail = tail[-ERROR_TAIL_BYTES:]
        tail = tail.split("\n", 1)[1] if "\n" in tail else tail
    return tail


_KEY_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_KEY_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY")


def _after_cut(text: str) -> str:
    """A tail whose start was cut off, from its first whole line: without the cut line (even when
    it is the only one: `AWS_SECRET_ACCESS_KEY=` cut off leaves a value no pattern knows), nor the
    rest of a private key whose BEGIN line was cut off."""
    end = _KEY_END.search(text)
    if end is not None and not _KEY_BEGIN.search(text, 0, end.start()):
        text = text[end.end():]
    else:
        text = text.partition("\n")[2]
    return text.lstrip("\r\n")


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
