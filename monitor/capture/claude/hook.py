"""Claude Code hooks: record a coding-agent session from the JSON payloads Claude Code sends.

One payload per `monitor hook` process, read from stdin. The session becomes an orchestration,
the main agent an execution named "claude-code", each subagent an execution named after its
agent_type; tool calls become events, Write/Edit/MultiEdit count files created or modified,
tool failures become error events. Tokens and models come from the transcripts (JSONL), read
incrementally at every hook (the byte offset reached is remembered per transcript), one row per
LLM request in llm_usage (see usage.py), and from the Agent tool's result for a subagent's last
request.

handle_payload() never raises: a hook must not disturb the agent. What goes wrong is written to
the hook log (hook_log_path()).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from monitor.capture.ingest import HOOK, drain
from monitor.store import spool
from monitor.store.db import DEFAULT_PATH, ENV_VAR, Database, is_transient, open_db, resolve_path
from monitor.store.files import ensure_private_dir, open_append, rotate
from monitor.errors import InvalidInput
from monitor.capture.claude.reading import TOOL_EVENTS, Read, agent_type_of, read_all
from monitor.capture.claude.usage import Delta, agent_result_usage, apply_agent_result, apply_messages
from monitor.capture.events import insert_event
from monitor.capture.scrub import (escape_controls, metadata_only, redact, redact_head, redact_value, secret_file,
                                   size_of)
from monitor.timeutil import format_timestamp, milliseconds_between, utcnow
from monitor.store.writes import (claim_transcript, count_file_change, finish_execution, finish_orchestration,
                                  insert_execution, insert_orchestration, insert_tool_call, reopen,
                                  reopen_execution, set_session_log_path)

MAIN_AGENT = "claude-code"
HOOK_EVENTS = ("SessionStart", "SessionEnd", "SubagentStart", "SubagentStop", "PreToolUse", "PostToolUse",
               "PostToolUseFailure", "Stop", "StopFailure")
FILE_TOOLS = ("Write", "Edit", "MultiEdit", "NotebookEdit")
AGENT_TOOLS = ("Agent", "Task")

LOG_ENV_VAR = "MONITOR_HOOK_LOG"
LOG_LIMIT = 1_000_000
HOOK_TIMEOUT_S = 10
#: How long a hook call waits for another process's write lock before it spools its payload; when
#: payloads already wait in the spool (the database was busy a moment ago, and nobody could record
#: them since), only WAIT_BEHIND_SPOOL: a long lock then costs the agent a fraction of a second per call.
WAIT_SECONDS = 1.0
WAIT_BEHIND_SPOOL = 0.25


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


# -- payload handling ------------------------------------------------------------------------

#: A UTF-16 surrogate, as a JSON escape or encoded as if it were a character (json.loads lets
#: both through; it pairs the escapes that make a pair): a lone one cannot be stored.
_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: object) -> object:
    """value with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def parse_payload(raw: bytes | str) -> dict:
    """The payload as a dict. Bytes that are not UTF-8 and lone surrogates (`"\\udc80"`), which
    SQLite cannot store, become U+FFFD: the payload is recorded, not dropped."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    try:
        try:
            payload = json.loads(raw)
        except UnicodeDecodeError:
            payload = json.loads(raw.decode("utf-8", "replace"))
        if _SURROGATE_BYTES.search(raw):
            payload = _without_surrogates(payload)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than Python's stack
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

    def __init__(self, conn: sqlite3.Connection, payload: dict, now: str, metadata: bool) -> None:
        self.conn, self.payload, self.now = conn, payload, now
        self.metadata = metadata  # MONITOR_CAPTURE=metadata where the payload arrived: names and sizes only
        self.session = payload["session_id"]
        agent_id = payload.get("agent_id")
        self.agent_id = agent_id if isinstance(agent_id, str) and agent_id else None
        self.orchestration_id: int | None = None

    def execution(self, sub: bool | None = None) -> int:
        """The execution the payload belongs to: the subagent's if it carries agent_id, else the main one."""
        sub = self.agent_id is not None if sub is None else sub
        if not sub:
            return self.execution_of(None)
        transcript = self.payload.get("agent_transcript_path")
        return self.execution_of(self.agent_id, agent_type_of(self.agent_id, self.payload.get("agent_type")),
                                 transcript if isinstance(transcript, str) else None)

    def execution_of(self, agent_id: str | None, agent_type: str | None = None,
                     transcript: str | None = None) -> int:
        """The main agent's execution (agent_id None) or a subagent's, created when first seen."""
        key = f"{self.session}:{agent_id}" if agent_id else self.session
        row = self.conn.execute("SELECT id, orchestration_id FROM agent_executions WHERE agent_session_id = ?",
                                (key,)).fetchone()
        if row is not None:
            self.orchestration_id = row[1]
            return row[0]
        if agent_id is None:
            name, path = MAIN_AGENT, self.payload.get("transcript_path")
            transcript = path if isinstance(path, str) else None
        else:
            name = agent_type or agent_type_of(agent_id)
        return insert_execution(self.conn, key, _text(name, 100), self.now, orchestration_id=self.orchestration(),
                                task_id=agent_id, session_log_path=transcript)

    def count(self, prefix: str) -> int:
        """How many events' keys start with this session's prefix."""
        prefix = f"{self.session}:{prefix}"
        return self.conn.execute("SELECT count(*) FROM events WHERE dedup_key >= ? AND dedup_key < ?",
                                 (prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))).fetchone()[0]

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
        return self.count("SessionEnd:")

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
    read = _read(db, payload, prices_loader)
    with db.transaction() as conn:
        apply_payload(conn, payload, format_timestamp(clock()), read)


def apply_spooled(db: Database, record: dict) -> None:
    """Record a payload that waited in the spool, at the moment it arrived, inside the caller's
    transaction (its transcripts are read now)."""
    prices = record.get("prices")

    def prices_loader() -> PriceTable:
        from monitor.read.pricing import load_prices

        return load_prices(prices)

    payload = record["payload"]
    apply_payload(db.conn, payload, record["at"], _read(db, payload, prices_loader),
                  metadata=record.get("capture") == METADATA)


class _Reading:
    """What a payload lets monitor read before writing: transcripts, an Agent tool's result, prices."""

    def __init__(self, reads: list[Read], result: tuple | None, prices: PriceTable | None) -> None:
        self.reads, self.result, self.prices = reads, result, prices


def _read(db: Database, payload: dict, prices_loader: Callable | None) -> _Reading:
    """Read the transcripts a payload names (outside any transaction when the caller can: they can be big)."""
    name = payload.get("hook_event_name")
    reads = read_all(db, payload, name)
    result = None
    if name == "PostToolUse" and payload.get("tool_name") in AGENT_TOOLS:
        result = agent_result_usage(payload.get("tool_response"))
    prices = _prices(prices_loader) if result or any(r.found.messages for r in reads) else None
    return _Reading(reads, result, prices)


def apply_payload(conn: sqlite3.Connection, payload: dict, now: str, read: _Reading, *,
                  metadata: bool | None = None) -> None:
    """Write what one payload means, at `now`, in the caller's transaction; metadata: the capture
    mode it arrived under (None: this process's, MONITOR_CAPTURE)."""
    name = payload.get("hook_event_name")
    prices = read.prices
    s = _Session(conn, payload, now, metadata_only() if metadata is None else metadata)
    main_offset = None
    for one in read.reads:
        offset = _add_usage(s, one, prices)
        if one.agent_id is None:
            main_offset = offset
    if name in TOOL_EVENTS:
        _tool_event(s, payload, name)
        if read.result:
            _agent_result(s, payload, read.result, prices)
    elif name == "SessionStart":
        _start_session(s, payload)
    elif name == "SubagentStart":
        _subagent_start(s, payload)
    elif name == "SubagentStop":
        _subagent_stop(s, payload)
    elif name in ("Stop", "StopFailure"):
        # Every turn sends the same Stop payload: the transcript offset tells turns apart.
        key = _key(payload, name, None if main_offset is None else str(main_offset))
        if name == "Stop":
            s.event(s.execution(), "status_changed", "turn finished", None, key)
        else:
            error = payload.get("error") or "unknown error"
            keep = not s.metadata
            s.event(s.execution(), "error", f"turn failed: {_text(error, 300)}",
                    {"error": error, **_content("error_details", payload.get("error_details"), keep, 1000),
                     **_content("last_assistant_message", payload.get("last_assistant_message"), keep, 500)},
                    key)
    elif name == "SessionEnd":
        _end_session(s, payload)
    else:
        s.event(s.execution(), "custom", _text(name or "unknown hook event", 80),
                {"bytes": size_of(payload)} if s.metadata else _clip_payload(payload), _key(payload))


def _subagent_start(s: _Session, payload: dict) -> None:
    """A subagent starts; a teammate given a new task starts again with the same agent_id: its
    execution runs again. Starts are keyed by how many stops its agent had (a replay in the same
    state changes nothing)."""
    if s.agent_id is None:
        s.event(s.execution(), "started", "subagent ? started", None, _key(payload))
        return
    sub = s.execution(sub=True)
    starts, stops = s.count(f"SubagentStart:{s.agent_id}:"), s.count(f"SubagentStop:{s.agent_id}:")
    kind = _text(agent_type_of(s.agent_id, payload.get("agent_type")), 60)
    again = starts > 0 and starts == stops
    if s.event(sub, "started", f"subagent {kind} started" + (" again" if again else ""), None,
               _key(payload, "SubagentStart", s.agent_id, str(stops))) and again:
        reopen_execution(s.conn, sub)
        finish_orchestration(s.conn, s.orchestration(), s.now, final=False)


def _subagent_stop(s: _Session, payload: dict) -> None:
    """A subagent (or an internal helper, which may send no start) stopped: completed. Stops are
    keyed by how many starts its agent had."""
    kind = _text(agent_type_of(s.agent_id, payload.get("agent_type")), 60)
    if s.agent_id is None:
        s.event(s.execution(), "status_changed", "subagent ? stopped", None, _key(payload))
        return
    sub = s.execution(sub=True)
    path = payload.get("agent_transcript_path")
    if isinstance(path, str) and path:
        set_session_log_path(s.conn, sub, os.path.expanduser(path))
    starts = s.count(f"SubagentStart:{s.agent_id}:")
    if s.event(sub, "status_changed", f"subagent {kind} stopped", None,
               _key(payload, "SubagentStop", s.agent_id, str(starts))):
        finish_execution(s.conn, sub, "completed", s.now)
        if s.conn.execute("SELECT status != 'running' FROM orchestrations WHERE id = ?",
                          (s.orchestration(),)).fetchone()[0]:
            finish_orchestration(s.conn, s.orchestration(), s.now)


def _agent_result(s: _Session, payload: dict, result: tuple, prices: PriceTable | None) -> None:
    """The Agent (Task) tool's result: the real counts of the subagent's last request."""
    response = payload["tool_response"]  # a dict: agent_result_usage() found its usage
    assert isinstance(response, dict)
    agent_id = response.get("agentId") if isinstance(response.get("agentId"), str) else None
    if not agent_id:
        return
    tool_input = payload.get("tool_input")
    spawned = tool_input.get("subagent_type") if isinstance(tool_input, dict) else None
    sub = s.execution_of(agent_id, agent_type_of(agent_id, response.get("agentType") or spawned))
    key = str(payload.get("tool_use_id") or agent_id)
    delta = Delta()
    apply_agent_result(s.conn, sub, key, result[0], result[1], s.now, prices, delta)
    delta.record(s.conn, s.now, sub, s.orchestration_id, f"{s.session}:agent-result:{key}")


def _start_session(s: _Session, payload: dict) -> None:
    """A session starts once (source 'startup') and is resumed any number of times (resume, clear,
    compact): a resume reopens a session that has ended. Claude Code sends the same payload on
    every resume, so a resume is keyed by how many times the session has ended: a replay in the
    same state changes nothing, the next resume after the next end reopens it again."""
    main = s.execution(sub=False)
    source = _text(payload.get("source") or "startup", 40)
    ended = source != "startup" and not s.running()
    key = _key(payload, "SessionStart", source if source == "startup" else f"{source}:{s.ends()}")
    details = {"source": source, "cwd": payload.get("cwd"), "model": payload.get("model"),
               "agent_type": payload.get("agent_type")}
    if s.event(main, "started", f"session started ({source})", {k: v for k, v in details.items() if v is not None},
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
    names_only = s.metadata
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
    took = payload.get("duration_ms")  # the tool's own time (Claude Code 2.1), else ours
    if not isinstance(took, int) or isinstance(took, bool) or took < 0:
        took = max(0, milliseconds_between(pre[0], s.now)) if pre is not None else None
    interrupted = payload.get("is_interrupt") is True
    outcome = "interrupted" if interrupted else "failed" if name == "PostToolUseFailure" else "ok"
    full = _text(payload.get("tool_name") or "tool", 200)
    mcp = full.split("__")  # mcp__<server>__<tool>
    insert_tool_call(s.conn, execution, s.now, full, mcp[1] if len(mcp) >= 3 and mcp[0] == "mcp" else None,
                     outcome, took, f"tool:{key}")
    if name == "PostToolUseFailure":
        error = payload.get("error")
        s.event(execution, "error", f"{summary} {'interrupted' if interrupted else 'failed'}"
                + (f": {_text(error or 'failed', 500)}" if content else ""),
                {"tool_use_id": use_id, "tool": tool, **_content("error", error, content), "duration_ms": took,
                 "is_interrupt": interrupted}, key)
        return
    response = payload.get("tool_response")
    inserted = s.event(execution, "tool_call", f"{summary} done" + (f" in {took} ms" if took is not None else ""),
                       {"tool_use_id": use_id, "tool": tool, "duration_ms": took, "is_interrupt": interrupted,
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
    limit characters of JSON), or only its size in bytes (as the spool kept it, see _spooled)."""
    if keep:
        return {name: value if limit is None else _clip_payload(value, limit)}
    if isinstance(value, dict) and isinstance(value.get(_SPOOLED_BYTES), int):
        return {f"{name}_bytes": value[_SPOOLED_BYTES]}
    return {f"{name}_bytes": None if value is None else size_of(value)}


#: Where a spooled payload keeps the size of a tool's input, response or error it left behind.
_SPOOLED_BYTES = "monitor_bytes"
METADATA = "metadata"


def _spooled(payload: dict) -> dict:
    """A payload as it waits in the spool: secrets redacted, and with MONITOR_CAPTURE=metadata no
    tool input, response or error, only their sizes (and what recording needs of them: the file a
    file tool names, whether a write created it)."""
    cleaned = redact_value(payload)
    payload = cleaned if isinstance(cleaned, dict) else json.loads(str(cleaned))  # too deep: redacted as text
    if not metadata_only():
        return payload
    kept = dict(payload)
    for name in ("tool_input", "tool_response", "error"):
        value = payload.get(name)
        if value is not None:
            facts = {k: value[k] for k in ("file_path", "notebook_path", "type")
                     if isinstance(value, dict) and isinstance(value.get(k), str)}
            kept[name] = {**facts, _SPOOLED_BYTES: size_of(value)}
    return kept


def _file_path(tool_input: object) -> str | None:
    if isinstance(tool_input, dict):
        for key in ("file_path", "notebook_path"):
            if isinstance(tool_input.get(key), str) and tool_input[key]:
                return tool_input[key]
    return None


def _add_usage(s: _Session, read: Read, prices: PriceTable | None) -> int:
    """Record the usage read from a transcript for its agent's execution, unless another hook
    process counted those lines first (the stored offset moved); return the offset reached."""
    found = read.found
    if found.offset == read.start and not found.messages:
        return found.offset
    execution = s.execution_of(read.agent_id, read.agent_type, read.path if read.agent_id else None)
    if not claim_transcript(s.conn, read.path, read.start, found.offset, None, s.now, execution):
        return found.offset  # another hook process counted these lines
    if found.messages:
        delta = Delta()
        apply_messages(s.conn, execution, list(found.messages.values()), prices, delta, s.now)
        delta.record(s.conn, s.now, execution, s.orchestration_id, f"usage:{read.path}:{found.offset}")
    if read.done:
        finish_execution(s.conn, execution, "completed", s.now)
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
    """Record one raw hook payload into the database at db_path (None: session_db_path()), waiting
    at most about WAIT_SECONDS (WAIT_BEHIND_SPOOL) for other processes: what cannot be written by
    then (the database locked by a long cleanup, an upgrade, a full disk) is appended to the spool,
    which the next hook call or command records. Spooled payloads are recorded first, in order.
    Never raises; returns whether the payload was recorded or spooled, and writes the reason to the
    hook log when it was not."""
    try:
        payload = parse_payload(raw)
        return _record_or_spool(payload, db_path, clock, prices)
    except HookError as exc:
        log(f"ignored payload: {exc}")
    except Exception as exc:  # noqa: BLE001 - a hook must never disturb the agent
        log(f"payload not recorded: {type(exc).__name__}: {exc}")
    return False


def _record_or_spool(payload: dict, db_path: str | os.PathLike[str] | None, clock: Callable[[], datetime],
                     prices: str | None) -> bool:
    """handle_payload() for a parsed payload; raises only on what it cannot foresee."""
    arrived = time.monotonic()
    path = Path(db_path) if db_path else session_db_path(payload)
    wait = WAIT_BEHIND_SPOOL if spool.spool_path(path).exists() else WAIT_SECONDS
    deadline = arrived + wait
    event = f"{payload.get('hook_event_name')} {payload['session_id']}"
    try:
        with open_db(path, notify=log, busy_timeout_ms=int(wait * 1000)) as db:
            if db.readonly or drain(db, deadline=deadline, skipped=log):  # read-only: said in the log
                db.set_busy_timeout((deadline - time.monotonic()) * 1000)

                def prices_loader() -> PriceTable:
                    from monitor.read.pricing import load_prices

                    return load_prices(prices)

                record_payload(db, payload, clock, prices_loader)
                return True
    except Exception as exc:  # noqa: BLE001 - a hook must never disturb the agent
        if not is_transient(exc):
            log(f"{event}: {type(exc).__name__}: {exc}")
            return False
    try:  # locked, full, or older payloads still spooled ahead of this one
        at = clock() - timedelta(seconds=time.monotonic() - arrived)  # when it arrived, not now
        spool.append(path, {"kind": HOOK, "at": format_timestamp(at), "prices": prices,
                            "capture": METADATA if metadata_only() else "full", "payload": _spooled(payload)})
        return True
    except OSError as exc:
        log(f"{event}: not recorded: the database is busy and the spool cannot be written: {exc}")
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
