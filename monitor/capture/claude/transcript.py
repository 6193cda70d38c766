"""Claude Code transcripts (JSONL): the usage of each assistant message, read safely and in bounded steps.

What a transcript holds (Claude Code 2.1): one assistant message is written as several lines, one
per content block, each repeating `message.id` and `requestId` with a `message.usage`; input and
cache counts repeat, `output_tokens` grows, so the LAST line of a message carries its counts.
`usage.cache_creation` splits cache writes into `ephemeral_5m_input_tokens` and
`ephemeral_1h_input_tokens`. Each message names its own model (sessions switch models).

A hook must never hang or bloat, whatever path it is handed: only regular files are read (opened
non-blocking, checked with fstat: a FIFO, /dev/zero or /dev/urandom is refused at once), at most
READ_BUDGET bytes per call (the rest waits for the next call, from the offset reached), and a
line longer than LINE_LIMIT is skipped, its usage recovered from its first and last EDGE bytes
when they hold it. Imports stay few: the hook loads this module on every call.
"""

from __future__ import annotations

import json
import os
import re
import stat

READ_BUDGET = 8 << 20
LINE_LIMIT = 1 << 20
EDGE = 64 << 10
_CHUNK = 1 << 20


class NotRegularFile(OSError):
    """A transcript path that is not a regular file (a FIFO, a device, a folder)."""


class Message:
    """The usage of one assistant message (the last of its lines read so far)."""

    __slots__ = ("id", "model", "timestamp", "input_tokens", "output_tokens", "cache_read_tokens",
                 "cache_write_tokens", "cache_write_1h_tokens")

    def __init__(self, id: str, model: str | None, timestamp: str | None, counts: tuple[int, int, int, int, int]):
        self.id, self.model, self.timestamp = id, model, timestamp
        (self.input_tokens, self.output_tokens, self.cache_read_tokens, self.cache_write_tokens,
         self.cache_write_1h_tokens) = counts

    def counts(self) -> tuple[int, int, int, int, int]:
        return (self.input_tokens, self.output_tokens, self.cache_read_tokens, self.cache_write_tokens,
                self.cache_write_1h_tokens)

    def __repr__(self) -> str:
        return f"Message({self.id!r}, {self.model!r}, {self.counts()})"


class TranscriptRead:
    """What one read found: messages by id in the order first seen (each with its last line's
    counts), the offset reached, the over-long lines skipped ((offset, length, recovered)), and
    whether the file ended (False: the budget ran out first)."""

    def __init__(self) -> None:
        self.messages: dict[str, Message] = {}
        self.offset = 0
        self.skipped: list[tuple[int, int, bool]] = []
        self.finished = True


def open_regular(path: str) -> int:
    """A read-only descriptor of path, which must be a regular file. Never blocks: O_NONBLOCK
    makes opening a FIFO with no writer return at once, and fstat then refuses it."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "a folder" if stat.S_ISDIR(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
            raise NotRegularFile(0, f"not a regular file ({kind})", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_counts(usage: dict) -> tuple[int, int, int, int, int]:
    """(input, output, cache read, 5-minute cache write, 1-hour cache write) of a message.usage.
    Without `cache_creation`, every cache write is a 5-minute one."""
    written = _count(usage.get("cache_creation_input_tokens"))
    split = usage.get("cache_creation")
    one_hour = _count(split.get("ephemeral_1h_input_tokens")) if isinstance(split, dict) else 0
    if isinstance(split, dict) and not written:
        written = one_hour + _count(split.get("ephemeral_5m_input_tokens"))
    one_hour = min(one_hour, written)
    return (_count(usage.get("input_tokens")), _count(usage.get("output_tokens")),
            _count(usage.get("cache_read_input_tokens")), written - one_hour, one_hour)


def _take(found: TranscriptRead, entry: object, skip_sidechain: bool) -> bool:
    """Note an entry's usage if it is an assistant message's; return whether it was."""
    if not isinstance(entry, dict):
        return False
    message = entry.get("message")
    if not isinstance(message, dict):
        return False
    usage = message.get("usage")
    model = message.get("model")
    if not isinstance(usage, dict) or model == "<synthetic>" or (skip_sidechain and entry.get("isSidechain")):
        return False
    key = message.get("id") or entry.get("requestId") or entry.get("uuid")
    if not isinstance(key, str) or not key:
        return False
    counts = usage_counts(usage)
    previous = found.messages.get(key)
    if previous is None and not any(counts):
        return False
    timestamp = entry.get("timestamp") if isinstance(entry.get("timestamp"), str) else None
    model = model if isinstance(model, str) and model else None
    if previous is not None:
        del found.messages[key]  # re-inserted: the order is that of each message's last line
        model = model or previous.model
        timestamp = timestamp or previous.timestamp
    found.messages[key] = Message(key, model, timestamp, counts)
    return True


_HEAD_FIELDS = {name: re.compile(rf'"{name}"\s*:\s*"([^"\\]{{1,200}})"'.encode()) for name in ("id", "model")}
_SIDECHAIN = re.compile(rb'"isSidechain"\s*:\s*true')
_USAGE = re.compile(rb'"usage"\s*:\s*\{')
_TIMESTAMP = re.compile(rb'"timestamp"\s*:\s*"([^"\\]{1,40})"')


def _recover(head: bytes, tail: bytes) -> dict | None:
    """An over-long assistant line's entry, from its head (message id, model, isSidechain: they
    come before the content) and its tail (usage and timestamp: they come after it)."""
    if b'"message"' not in head:
        return None
    starts = list(_USAGE.finditer(tail))
    message_id = _HEAD_FIELDS["id"].search(head[head.find(b'"message"'):])
    if not starts or message_id is None:
        return None
    try:
        usage, _ = json.JSONDecoder().raw_decode(tail[starts[-1].end() - 1:].decode("utf-8", "replace"))
    except ValueError:
        return None
    model = _HEAD_FIELDS["model"].search(head)
    timestamps = _TIMESTAMP.findall(tail)
    return {"isSidechain": _SIDECHAIN.search(head) is not None, "timestamp": timestamps[-1].decode() if timestamps else None,
            "message": {"id": message_id.group(1).decode("utf-8", "replace"),
                        "model": model.group(1).decode("utf-8", "replace") if model else None, "usage": usage}}


def read_transcript(path: str, offset: int = 0, *, skip_sidechain: bool = False,
                    budget: int = READ_BUDGET) -> TranscriptRead:
    """The usage of the assistant messages in the complete lines after byte `offset`, reading at
    most `budget` bytes. A line still being written is left for the next read. A file shorter
    than offset (replaced or truncated) is read from the start. Raises OSError when the path
    cannot be read, NotRegularFile when it is not a regular file."""
    found = TranscriptRead()
    fd = open_regular(path)
    with open(fd, "rb", buffering=_CHUNK) as f:
        size = os.fstat(fd).st_size
        if size < offset:
            offset = 0
        position = offset
        consumed = 0
        midline = False
        if offset > 0:
            f.seek(offset - 1)
            midline = f.read(1) != b"\n"  # an over-long line cut by the last budget: skip its rest
        while consumed < budget:
            line = b"" if midline else f.readline(min(LINE_LIMIT + 1, budget - consumed))  # within the budget
            if not midline:
                if not line:
                    break
                if line.endswith(b"\n"):
                    position += len(line)
                    consumed += len(line)
                    if b'"usage"' in line:
                        try:
                            _take(found, json.loads(line), skip_sidechain)
                        except (ValueError, RecursionError):
                            pass
                    continue
                if len(line) <= LINE_LIMIT:
                    found.finished = len(line) < budget - consumed  # else: past the budget, the next read's
                    break  # the last line, still being written
            # An over-long line (or the rest of one): skip to its end, keeping its head and tail.
            head, tail, length, ended = line[:EDGE], line[-EDGE:], len(line), False
            while consumed + length < budget:
                chunk = f.readline(min(_CHUNK, budget - consumed - length))
                if not chunk:
                    break
                length += len(chunk)
                tail = (tail + chunk)[-EDGE:]
                if chunk.endswith(b"\n"):
                    ended = True
                    break
            if not ended and consumed + length < budget:
                break  # the file ends inside the line: it is still being written
            recovered = False
            if ended and not midline and b'"usage"' in tail:
                entry = _recover(head, tail)
                recovered = entry is not None and _take(found, entry, skip_sidechain)
            found.skipped.append((position, length, recovered))
            position += length
            consumed += length
            midline = not ended
            if midline:
                break
        found.offset = position
        found.finished = found.finished and consumed < budget
    return found
