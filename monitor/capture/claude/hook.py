"""Claude Code hooks: record a coding-agent session from the JSON payloads Claude Code sends.

One payload per `monitor hook` process, read from stdin. The session becomes an orchestration,
the main agent an execution named "claude-code", each subagent an execution named after its
agent_type; tool calls become events, Write/Edit/MultiEdit count files created or modified,
tool failures become error events. Tokens and model come from the transcript JSONL, read
incrementally when an agent stops (the byte offset reached is remembered per transcript).

handle_payload() never raises: a hook must not disturb the agent. What goes wrong is written to
the hook log (hook_log_path()).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from monitor.store.db import DEFAULT_PATH, ENV_VAR, Database, open_db, resolve_path
from monitor.store.files import ensure_private_dir, open_append, rotate
from monitor.errors import InvalidInput
from monitor.capture.events import Usage, add_usage, insert_event
from monitor.capture.scrub import escape_controls, metadata_only, redact, redact_head, secret_file, size_of
from monitor.timeutil import format_timestamp, milliseconds_between, utcnow
from monitor.store.writes import (claim_transcript, count_file_change, finish_execution, finish_orchestration,
                                  insert_execution, insert_orchestration, reopen, set_model)

MAIN_AGENT = "claude-code"
HOOK_EVENTS = ("SessionStart", "SessionEnd", "SubagentStart", "SubagentStop", "PreToolUse", "PostToolUse",
               "PostToolUseFailure", "Stop")
TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")
FILE_TOOLS = ("Write", "Edit", "MultiEdit", "NotebookEdit")
LOG_ENV_VAR = "MONITOR_HOOK_LOG"
LOG_LIMIT = 1_000_000
HOOK_TIMEOUT_S = 10


TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from datetime import datetime

    from monitor.read.pricing import PriceTable

# Imports stay few and local: Claude Code starts this on every tool call.


class HookError(Exception):
    """A payload that cannot be recorded (not JSON, no session id...)."""


def hook_log_path() -> Path:
    """$MONITOR_HOOK_LOG, else ~/.monitor/hook.log."""
    return Path(os.environ.get(LOG_ENV_VAR) or Path.home() / ".monitor" / "hook.log")


def log(message: str, now: datetime | None = None) -> None:
    """Append one line to the hook log (rotated to .1 past 1 MB), secrets redacted and control
    characters escaped; never raises. The log and its folder are its owner's only (0600, 0700),
    and a link or a FIFO planted at its name is never followed (nothing is logged then)."""
    try:
        path = hook_log_path()
        ensure_private_dir(path.parent)
        rotate(path, LOG_LIMIT)
        line = escape_controls(redact(message)).replace("\n", "\\n")
        with open_append(path) as f:
            f.write(f"{format_timestamp(now or utcnow())} {line}\n".encode("utf-8", "backslashreplace"))
    except Exception:  # noqa: BLE001 - nowhere left to report to
        pass


# -- which database ---------------------------------------------------------------------------

def project_root(start: Path) -> Path:
    """The project a folder belongs to: the nearest folder up from start that is the top of a git
    work tree or has a .claude folder (the home folder's is the user's, not a project's), else
    start itself. Settings files (`hook install --project`) and project databases both live there."""
    start = start.resolve()
    home = Path.home().resolve()
    return next((d for d in (start, *start.parents)
                 if (d / ".git").exists() or (d != home and (d / ".claude").is_dir())), start)


def session_db_path(payload: dict) -> Path:
    """Where a hook installed without --db (`hook install --user`) records a payload: $MONITOR_DB,
    else monitoring.db at the top of the project of the payload's cwd (the folder Claude Code runs
    in), else ./monitoring.db."""
    cwd = payload.get("cwd")
    if not os.environ.get(ENV_VAR) and isinstance(cwd, str) and os.path.isabs(cwd) and os.path.isdir(cwd):
        return project_root(Path(cwd)) / DEFAULT_PATH
    return resolve_path(None)


# -- transcripts -----------------------------------------------------------------------------

class TranscriptRead:
    """What a read found: usage per model, the offset reached, the last message id, models seen."""

    def __init__(self, usages: list[Usage], offset: int, last_message_id: str | None,
                 models: list[str]) -> None:
        self.usages, self.offset, self.last_message_id, self.models = usages, offset, last_message_id, models


def read_transcript(path: str, offset: int = 0, last_message_id: str | None = None, *,
                    skip_sidechain: bool = False) -> TranscriptRead:
    """Usage of the assistant messages after byte `offset`, summed per model.

    Only complete lines are read (a line still being written waits for the next read), one at a
    time, so memory stays small however big the transcript. A message written as several lines
    (one per content block, same message id) is counted once. Raises OSError when unreadable.
    """
    per_model: dict[str | None, list[int]] = {}
    order: list[str] = []
    seen = {last_message_id} if last_message_id else set()
    last_id = last_message_id
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < offset:  # replaced or truncated: start over
            offset, seen = 0, set()
        f.seek(offset)
        end = offset
        for line in f:
            if not line.endswith(b"\n"):
                break  # still being written
            end += len(line)
            if b'"usage"' not in line:
                continue
            try:
                entry = json.loads(line)
                message = entry.get("message") or {}
                usage = message.get("usage")
                model = message.get("model")
            except (ValueError, AttributeError):
                continue
            if not isinstance(usage, dict) or model == "<synthetic>" or (skip_sidechain and entry.get("isSidechain")):
                continue
            message_id = message.get("id") or entry.get("requestId") or entry.get("uuid")
            if message_id is not None:
                if message_id in seen:
                    continue
                seen.add(message_id)
                last_id = message_id
            counts = [_int(usage.get(k)) for k in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                                                    "cache_creation_input_tokens")]
            if not any(counts):
                continue
            totals = per_model.setdefault(model, [0, 0, 0, 0, 0])
            for i, value in enumerate(counts):
                totals[i] += value
            totals[4] += 1
            if model and model not in order:
                order.append(model)
    usages = [Usage(m, t[0], t[1], t[2], t[3], calls=t[4]) for m, t in per_model.items()]
    return TranscriptRead(usages, end, last_id, order)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


# -- payload handling ------------------------------------------------------------------------

def parse_payload(raw: bytes | str) -> dict:
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HookError(f"payload is not JSON ({exc}): {raw[:200]!r}") from None
    if not isinstance(payload, dict):
        raise HookError(f"payload is not a JSON object: {raw[:200]!r}")
    session = payload.get("session_id")
    if not isinstance(session, str) or not session.strip():
        raise HookError(f"payload has no session_id: {raw[:200]!r}")
    return payload


def _text(value: object, limit: int = 160) -> str:
    """value as one line of at most limit characters, secrets redacted."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(redact_head(text, limit * 2).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tool_summary(tool: str, tool_input: object) -> str:
    """'Bash: npm test', 'Edit: src/app.py', 'Grep: TODO' ... for the event message."""
    if not isinstance(tool_input, dict):
        return tool
    for key in ("command", "file_path", "notebook_path", "pattern", "url", "query", "description", "path"):
        if isinstance(tool_input.get(key), str) and tool_input[key]:
            return f"{tool}: {_text(tool_input[key])}"
    return tool


def _clip_payload(value: object, limit: int = 2000) -> object:
    """Tool inputs and responses can hold whole files: keep them short (secrets are redacted when
    the event is stored; a cut one here, before it is cut)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return value if len(text) <= limit else redact_head(text, limit)[:limit] + "..."


class _Session:
    """The orchestration and execution rows a payload refers to, created when first seen."""

    def __init__(self, conn: sqlite3.Connection, payload: dict, now: str) -> None:
        self.conn, self.payload, self.now = conn, payload, now
        self.session = payload["session_id"]
        agent_id = payload.get("agent_id")
        self.agent_id = agent_id if isinstance(agent_id, str) and agent_id else None
        self.orchestration_id: int | None = None

    def execution(self, sub: bool | None = None) -> int:
        """The execution the payload belongs to: the subagent's if it carries agent_id, else the main one."""
        sub = self.agent_id is not None if sub is None else sub
        key = f"{self.session}:{self.agent_id}" if sub else self.session
        row = self.conn.execute("SELECT id, orchestration_id FROM agent_executions WHERE agent_session_id = ?",
                                (key,)).fetchone()
        if row is not None:
            self.orchestration_id = row[1]
            return row[0]
        name = (self.payload.get("agent_type") or "subagent") if sub else MAIN_AGENT
        transcript = self.payload.get("agent_transcript_path" if sub else "transcript_path")
        return insert_execution(self.conn, key, _text(name, 100), self.now, orchestration_id=self.orchestration(),
                                task_id=self.agent_id,
                                session_log_path=transcript if isinstance(transcript, str) else None)

    def orchestration(self) -> int:
        if self.orchestration_id is None:
            row = self.conn.execute("SELECT id FROM orchestrations WHERE session_id = ?", (self.session,)).fetchone()
            if row is None:
                from monitor.capture.git import head_commit  # only for a new session: it runs git

                cwd = self.payload.get("cwd") if isinstance(self.payload.get("cwd"), str) else None
                row = (insert_orchestration(
                    self.conn, self.session, self.now,
                    task_description=f"Claude Code session in {cwd}" if cwd else "Claude Code session",
                    git_commit_hash=head_commit(cwd) if cwd else None),)
            self.orchestration_id = row[0]
        return self.orchestration_id

    def running(self) -> bool:
        """Whether the session's orchestration is running (not yet ended, or resumed)."""
        return self.conn.execute("SELECT status = 'running' FROM orchestrations WHERE id = ?",
                                 (self.orchestration(),)).fetchone()[0] == 1

    def ends(self) -> int:
        """How many SessionEnd payloads were recorded: resumes and ends of the nth run are keyed by it."""
        prefix = f"{self.session}:SessionEnd:"
        return self.conn.execute("SELECT count(*) FROM events WHERE dedup_key >= ? AND dedup_key < ?",
                                 (prefix, prefix[:-1] + ";")).fetchone()[0]

    def event(self, execution_id: int | None, event_type: str, message: str, payload: object,
              key: str | None) -> int | None:
        return insert_event(self.conn, self.now, event_type, message, payload, execution_id,
                            self.orchestration_id if execution_id else self.orchestration(), key)


def _key(payload: dict, *parts: object) -> str:
    """A replay-proof identity: session and the given parts when all are known, else a hash of
    the whole payload."""
    if len(parts) > 1 and all(isinstance(p, str) and p for p in parts[1:]):
        return ":".join(str(p) for p in (payload["session_id"], *parts))
    import hashlib

    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return "sha1:" + hashlib.sha1(canonical.encode("utf-8")).hexdigest()


def record_payload(db: Database, payload: dict, clock: Callable[[], datetime] = utcnow,
                   prices_loader: Callable | None = None) -> None:
    """Record one hook payload in one write transaction. Idempotent: a replayed payload changes nothing.

    The time is read from clock once the write lock is held, so that event ids and timestamps keep
    the same order across hook processes. Raises on database errors (handle_payload turns them into
    log lines)."""
    name = payload.get("hook_event_name")
    read = _read_new_usage(db, payload, sub=name == "SubagentStop") if name in ("SubagentStop", "Stop",
                                                                                 "SessionEnd") else None
    prices = _prices(prices_loader) if read is not None and read.found.usages else None
    with db.transaction() as conn:
        s = _Session(conn, payload, format_timestamp(clock()))
        offset = _add_usage(s, read, prices) if read is not None else None
        if name in TOOL_EVENTS:
            _tool_event(s, payload, name)
        elif name == "SessionStart":
            _start_session(s, payload)
        elif name == "SubagentStart":
            sub = s.execution(sub=s.agent_id is not None)
            s.event(sub, "started", f"subagent {_text(payload.get('agent_type') or '?', 60)} started", None,
                    _key(payload, "SubagentStart", s.agent_id))
        elif name == "SubagentStop":
            sub = s.execution(sub=s.agent_id is not None)
            if s.event(sub, "status_changed", f"subagent {_text(payload.get('agent_type') or '?', 60)} stopped",
                       None, _key(payload, "SubagentStop", s.agent_id)):
                finish_execution(conn, sub, "completed", s.now)
        elif name == "Stop":
            # Every turn sends the same Stop payload: the transcript offset tells turns apart.
            s.event(s.execution(sub=s.agent_id is not None), "status_changed", "turn finished", None,
                    _key(payload, "Stop", None if offset is None else str(offset)))
        elif name == "SessionEnd":
            _end_session(s, payload)
        else:
            s.event(s.execution(), "custom", _text(name or "unknown hook event", 80),
                    {"bytes": size_of(payload)} if metadata_only() else _clip_payload(payload), _key(payload))


def _start_session(s: _Session, payload: dict) -> None:
    """A session starts once (source 'startup') and is resumed any number of times (resume, clear,
    compact): a resume reopens a session that has ended. Claude Code sends the same payload on
    every resume, so a resume is keyed by how many times the session has ended: a replay in the
    same state changes nothing, the next resume after the next end reopens it again."""
    main = s.execution(sub=False)
    source = _text(payload.get("source") or "startup", 40)
    ended = source != "startup" and not s.running()
    key = _key(payload, "SessionStart", source if source == "startup" else f"{source}:{s.ends()}")
    if s.event(main, "started", f"session started ({source})", {"source": source, "cwd": payload.get("cwd")},
               key) and ended:
        reopen(s.conn, s.orchestration(), main)


def _end_session(s: _Session, payload: dict) -> None:
    """End a running session: the main agent completed, subagents still running failed, the
    orchestration's status derived from them. A session that has already ended is left alone
    (Claude Code sends the same payload at every end: a replay, or an end already recorded)."""
    main = s.execution(sub=False)
    if not s.running():
        return
    reason = _text(payload.get("reason") or "other", 60)
    if not s.event(main, "status_changed", f"session ended ({reason})", {"reason": reason},
                   _key(payload, "SessionEnd", str(s.ends()))):
        return
    finish_execution(s.conn, main, "completed", s.now)
    for (sub,) in s.conn.execute("SELECT id FROM agent_executions WHERE orchestration_id = ?"
                                 " AND status = 'in_progress'", (s.orchestration(),)).fetchall():
        finish_execution(s.conn, sub, "failed", s.now, f"the session ended ({reason}) before this subagent stopped")
    finish_orchestration(s.conn, s.orchestration(), s.now)


def _tool_event(s: _Session, payload: dict, name: str) -> None:
    """A tool call's event. Its input and output are kept (clipped, redacted) unless the capture is
    metadata only, or the tool touched a secret file (.env, a key...): then only their sizes."""
    tool = _text(payload.get("tool_name") or "tool", 60)
    tool_input = payload.get("tool_input")
    use_id = payload.get("tool_use_id")
    execution = s.execution()
    names_only = metadata_only()
    path = _file_path(tool_input)
    content = not names_only and not secret_file(path)
    summary = tool if names_only else tool_summary(tool, tool_input)
    key = _key(payload, name, use_id)
    if name == "PreToolUse":
        details: dict = {"tool_use_id": use_id, **_content("tool_input", tool_input, content, 2000)}
        if tool in FILE_TOOLS and path:
            details["file_existed"] = os.path.exists(os.path.join(payload.get("cwd") or "", path))
        s.event(execution, "tool_call", f"{summary}", details, key)
        return
    pre = None
    if isinstance(use_id, str) and use_id:
        pre = s.conn.execute("SELECT timestamp, payload FROM events WHERE dedup_key = ?",
                             (_key(payload, "PreToolUse", use_id),)).fetchone()
    took = None
    if pre is not None:
        took = max(0, milliseconds_between(pre[0], s.now))
    if name == "PostToolUseFailure":
        error = payload.get("error")
        s.event(execution, "error", f"{summary} failed" + (f": {_text(error or 'failed', 500)}" if content else ""),
                {"tool_use_id": use_id, **_content("error", error, content), "duration_ms": took}, key)
        return
    response = payload.get("tool_response")
    inserted = s.event(execution, "tool_call", f"{summary} done" + (f" in {took} ms" if took is not None else ""),
                       {"tool_use_id": use_id, "duration_ms": took,
                        **_content("tool_response", response, content, 500)}, key)
    if inserted and tool in FILE_TOOLS and path:
        created = isinstance(response, dict) and response.get("type") == "create"
        if not created and pre is not None and not (isinstance(response, dict) and response.get("type")):
            created = json.loads(pre[1] or "{}").get("file_existed") is False
        kind = "created" if created else "modified"
        if names_only:  # the path is the tool's input: neither stored nor in the key
            import hashlib

            message, details = f"{kind} a file", {"change": kind, "tool": tool}
            file_key = f"file:{execution}:sha1:{hashlib.sha1(path.encode('utf-8', 'surrogatepass')).hexdigest()}"
        else:
            message, details, file_key = f"{kind} {path}", {"path": path, "change": kind, "tool": tool}, \
                f"file:{execution}:{path}"
        if s.event(execution, "file", message, details, file_key):
            count_file_change(s.conn, execution, created)


def _content(name: str, value: object, keep: bool, limit: int | None = None) -> dict:
    """A tool's input, response or error for the event's payload: the value itself (clipped to
    limit characters of JSON), or only its size in bytes."""
    if keep:
        return {name: value if limit is None else _clip_payload(value, limit)}
    return {f"{name}_bytes": None if value is None else size_of(value)}


def _file_path(tool_input: object) -> str | None:
    if isinstance(tool_input, dict):
        for key in ("file_path", "notebook_path"):
            if isinstance(tool_input.get(key), str) and tool_input[key]:
                return tool_input[key]
    return None


class _NewUsage:
    """A transcript read before the write transaction: its path, the offset it started from
    (None on the first read), and what it found."""

    def __init__(self, path: str, start: int | None, found: TranscriptRead, sub: bool) -> None:
        self.path, self.start, self.found, self.sub = path, start, found, sub


def _read_new_usage(db: Database, payload: dict, sub: bool) -> _NewUsage | None:
    """Read what the agent's transcript gained since the last read (outside any transaction: a
    transcript can be big). None when there is no transcript to read (logged)."""
    path = payload.get("agent_transcript_path" if sub else "transcript_path")
    if not isinstance(path, str) or not path:
        log(f"{payload.get('hook_event_name')} {payload['session_id']}: no transcript path, tokens unknown")
        return None
    path = os.path.expanduser(path)
    row = db.execute("SELECT offset, last_message_id FROM transcript_offsets WHERE path = ?", (path,)).fetchone()
    try:
        found = read_transcript(path, row[0] if row else 0, row[1] if row else None, skip_sidechain=not sub)
    except OSError as exc:
        log(f"{payload.get('hook_event_name')} {payload['session_id']}: cannot read transcript {path}: "
            f"{exc.strerror or exc}; tokens unknown")
        return None
    return _NewUsage(path, row[0] if row else None, found, sub)


def _add_usage(s: _Session, read: _NewUsage, prices: PriceTable | None) -> int:
    """Add the tokens read to the agent's execution, unless another hook process counted them
    first (the stored offset moved); return the transcript offset reached."""
    found = read.found
    if found.offset == read.start:
        return found.offset
    claimed = claim_transcript(s.conn, read.path, read.start, found.offset, found.last_message_id, s.now)
    if not claimed or not found.usages or prices is None:
        return found.offset  # nothing new, or another hook process counted these lines
    execution = s.execution(sub=read.sub and s.agent_id is not None)
    for usage in found.usages:
        add_usage(s.conn, s.now, execution, s.orchestration_id, usage, prices,
                  dedup_key=f"usage:{read.path}:{found.offset}:{usage.model}")
    if found.models:
        set_model(s.conn, execution, found.models[-1])
    return found.offset


def _prices(loader: Callable | None) -> PriceTable:
    """The price table; a broken user price file leaves costs unknown rather than losing tokens."""
    from monitor.read.pricing import PriceTable, load_prices

    try:
        return loader() if loader else load_prices()
    except InvalidInput as exc:
        log(f"prices: {exc}; costs recorded as unknown")
        return PriceTable()


def handle_payload(raw: bytes | str, db_path: str | os.PathLike[str] | None = None, *,
                   clock: Callable[[], datetime] = utcnow, prices: str | None = None) -> bool:
    """Record one raw hook payload into the database at db_path (None: session_db_path()). Never
    raises; returns whether it was recorded, and writes the reason to the hook log when it was not."""
    event = "?"
    try:
        payload = parse_payload(raw)
        event = f"{payload.get('hook_event_name')} {payload['session_id']}"

        def prices_loader() -> PriceTable:
            from monitor.read.pricing import load_prices

            return load_prices(prices)

        with open_db(db_path or session_db_path(payload), notify=log) as db:
            record_payload(db, payload, clock, prices_loader)
        return True
    except HookError as exc:
        log(f"ignored payload: {exc}")
    except Exception as exc:  # noqa: BLE001 - a hook must never disturb the agent
        log(f"{event}: {type(exc).__name__}: {exc}")
    return False

def main(argv: list[str]) -> int:
    """`python -m monitor.hooks [--db PATH] [--prices FILE]`: what `monitor hook` does, without
    loading the CLI. Without --db, the database is session_db_path()'s. Always returns 0."""
    options = {"--db": None, "--prices": os.environ.get("MONITOR_PRICES")}
    args = iter(argv)
    for arg in args:
        name, _, value = arg.partition("=")
        if name in options:
            options[name] = value or next(args, None)
        else:
            log(f"monitor.hooks: unknown argument {arg!r} ignored")
    handle_payload(sys.stdin.buffer.read(), options["--db"], prices=options["--prices"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
