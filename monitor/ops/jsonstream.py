"""A streaming JSON reader for documents of a known shape: walk the outer objects and arrays
yourself, decode the small values (one execution, one field) whole.

Memory stays flat whatever the file's size: the buffer holds the value being decoded and one read
ahead. Every error names its line and column (and character offset) in the whole document.
Leaf values are decoded by the json module's C decoder (raw_decode), so it is fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from monitor.errors import InvalidInput

CHUNK = 1 << 16
_WHITESPACE = " \t\n\r"
_NUMBER_CHARS = "0123456789.eE+-"


class JsonPositionError(InvalidInput):
    """A document that is not valid JSON (or not of the expected shape), with where it went wrong."""

    def __init__(self, message: str, line: int, column: int, offset: int) -> None:
        super().__init__(f"{message} at line {line} column {column} (char {offset})")
        self.line, self.column, self.offset = line, column, offset


class JsonStream:
    """Read a JSON document from a text stream piece by piece: iter_object(), iter_array(), value()."""

    def __init__(self, source: TextIO, progress: Callable[[int], None] | None = None) -> None:
        self._source = source
        self._progress = progress
        self._decoder = json.JSONDecoder()
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._dropped = 0  # characters discarded before _buf[0]
        self._dropped_lines = 0  # newlines among them
        self._dropped_col = 0  # characters after the last of those newlines

    # -- position and errors ------------------------------------------------------------------

    def error(self, message: str, pos: int | None = None) -> JsonPositionError:
        """An error at pos in the buffer (default: the current position)."""
        pos = self._pos if pos is None else pos
        lines = self._buf.count("\n", 0, pos)
        if lines:
            column = pos - self._buf.rfind("\n", 0, pos)
        else:
            column = self._dropped_col + pos + 1
        return JsonPositionError(message, self._dropped_lines + lines + 1, column, self._dropped + pos)

    def offset(self) -> int:
        """Where the next value starts, in characters from the start of the document."""
        self.peek()
        return self._dropped + self._pos

    def error_at(self, message: str, offset: int) -> JsonPositionError:
        """An error at an offset() taken since the last value was read (it is still buffered)."""
        return self.error(message, max(0, offset - self._dropped))

    # -- the buffer ---------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read one more chunk; False at the end of the document."""
        if self._eof:
            return False
        if self._pos > CHUNK:
            self._drop()
        chunk = self._source.read(CHUNK)
        if not chunk:
            self._eof = True
            return False
        if self._progress is not None:
            self._progress(len(chunk))
        self._buf += chunk
        return True

    def _drop(self) -> None:
        gone = self._buf[:self._pos]
        newlines = gone.count("\n")
        if newlines:
            self._dropped_lines += newlines
            self._dropped_col = len(gone) - gone.rfind("\n") - 1
        else:
            self._dropped_col += len(gone)
        self._dropped += len(gone)
        self._buf = self._buf[self._pos:]
        self._pos = 0

    def peek(self) -> str:
        """The next character that is not whitespace, not consumed; '' at the end."""
        while True:
            buf, pos = self._buf, self._pos
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            self._pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self._fill():
                return ""

    def expect(self, char: str, what: str) -> None:
        found = self.peek()
        if found != char:
            raise self.error(f"expected {what}, found {_describe(found)}")
        self._pos += 1

    def value(self) -> Any:
        """Decode the next whole value (object, array, string, number, true, false, null)."""
        if self.peek() == "":
            raise self.error("unexpected end of file: expected a value")
        while True:
            try:
                result, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                if self._fill():
                    continue  # the value may only be cut by the end of the buffer
                if exc.pos >= len(self._buf) or "Unterminated" in exc.msg:
                    raise self.error("unexpected end of file", len(self._buf)) from None
                raise self.error(exc.msg, exc.pos) from None
            cut = end == len(self._buf) or (type(result) in (int, float) and self._buf[end] in _NUMBER_CHARS)
            if cut and self._fill():
                continue  # a number cut by the buffer's end ("1." of "1.25") would read as a shorter one
            self._pos = end
            return result

    def end(self) -> None:
        """Nothing but whitespace may follow the document."""
        if self.peek() != "":
            raise self.error(f"extra data after the document: {_describe(self.peek())}")

    # -- containers ---------------------------------------------------------------------------

    def iter_object(self) -> Iterator[str]:
        """Yield each key of the object that comes next; the caller consumes each key's value
        (value(), or iter_object()/iter_array()) before asking for the next key."""
        self.expect("{", "'{'")
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            if self.peek() != '"':
                raise self.error(f"expected a key in double quotes, found {_describe(self.peek())}")
            key = self.value()
            self.expect(":", "':' after a key")
            yield key
            if self.peek() == ",":
                self._pos += 1
                continue
            self.expect("}", "',' or '}' in an object")
            return

    def iter_array(self) -> Iterator[None]:
        """Yield once for each item of the array that comes next; the caller consumes the item."""
        self.expect("[", "'['")
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            yield None
            if self.peek() == ",":
                self._pos += 1
                continue
            self.expect("]", "',' or ']' in an array")
            return


def _describe(char: str) -> str:
    return "the end of the file" if char == "" else repr(char)
