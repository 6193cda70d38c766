"""Which transcripts a hook payload lets monitor read, and reading them before the write transaction.

Every hook reads the main transcript (Claude Code writes it asynchronously: a turn's last lines can
come after its Stop); SubagentStop the subagent's (agent_transcript_path); every hook but a tool's
the session's compaction transcripts, for which Claude Code may send no hook. One byte budget
(READ_BUDGET) covers all of a call's reads. What goes wrong is written to the hook log.
"""

from __future__ import annotations

import os
import re
import time

from monitor.capture.claude.transcript import LINE_LIMIT, READ_BUDGET, TranscriptRead, read_transcript
from monitor.store.db import Database

TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")
#: How long SessionEnd waits for the transcript's last lines (Claude Code writes it asynchronously).
SETTLE_S, SETTLE_MAX_S = 0.15, 0.6
#: Internal helpers' agent ids name their type: 'acompact-1f2e' is a compaction.
_HELPER_ID = re.compile(r"^a([a-z][a-z_]*)-[0-9a-z]+$")


def log(message: str) -> None:
    """The hook log's line (hook.log, imported when needed: hook.py imports this module)."""
    from monitor.capture.claude.hook import log as write

    write(message)


class Read:
    """A transcript read before the write transaction: its path, the offset it started from
    (None on the first read), what it found, and whose transcript it is: the main agent's
    (agent_id None) or a subagent's."""

    def __init__(self, path: str, start: int | None, found: TranscriptRead, agent_id: str | None,
                 agent_type: str | None) -> None:
        self.path, self.start, self.found, self.agent_id, self.agent_type = path, start, found, agent_id, agent_type
        self.done = False  # a helper's transcript found written: its execution is complete


def agent_type_of(agent_id: str | None, agent_type: object = None) -> str:
    """A subagent's type: the payload's, else what an internal helper's id says ('acompact-...'
    is 'compact'), else 'subagent'."""
    if isinstance(agent_type, str) and agent_type.strip():
        return agent_type
    helper = _HELPER_ID.match(agent_id or "")
    return helper.group(1) if helper else "subagent"


def read_one(db: Database, payload: dict, path: object, agent_id: str | None, agent_type: str | None,
          budget: list[int]) -> Read | None:
    """Read what a transcript gained since the last read (outside any transaction: a transcript
    can be big), within what is left of this call's byte budget. None when there is nothing to
    read (a missing or unreadable file is logged)."""
    if not isinstance(path, str) or not path or budget[0] <= 0:
        return None
    path = os.path.expanduser(path)
    row = db.execute("SELECT offset FROM transcript_offsets WHERE path = ?", (path,)).fetchone()
    where = f"{payload.get('hook_event_name')} {payload['session_id']}"
    try:
        found = read_transcript(path, row[0] if row else 0, skip_sidechain=agent_id is None, budget=budget[0])
    except FileNotFoundError as exc:
        if payload.get("hook_event_name") != "SessionStart":  # a new session's transcript comes later
            log(f"{where}: cannot read transcript {path}: {exc.strerror or exc}; tokens unknown")
        return None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        log(f"{where}: cannot read transcript {path}: {getattr(exc, 'strerror', None) or exc}; tokens unknown")
        return None
    budget[0] -= max(0, found.offset - (row[0] if row else 0))
    for at, length, recovered in found.skipped:
        log(f"{where}: skipped a {length:,}-byte line at byte {at:,} of {path} (lines over {LINE_LIMIT:,} bytes"
            f" are not parsed); its usage {'was recovered' if recovered else 'is not counted'}")
    if not found.finished:
        log(f"{where}: read {READ_BUDGET:,} bytes of {path} this time; the rest at the next hook")
    return Read(path, row[0] if row else None, found, agent_id, agent_type)


def compactions(payload: dict) -> list[tuple[str, str]]:
    """(path, agent id) of the session's compaction transcripts: Claude Code writes them to
    <transcript folder>/<session id>/subagents/agent-acompact-*.jsonl, and may send no hook for them."""
    path = payload.get("transcript_path")
    if not isinstance(path, str) or not path:
        return []
    folder = os.path.join(os.path.dirname(os.path.expanduser(path)), payload["session_id"], "subagents")
    try:
        names = sorted(n for n in os.listdir(folder) if n.startswith("agent-acompact") and n.endswith(".jsonl"))
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return []
    return [(os.path.join(folder, n), n[len("agent-"):-len(".jsonl")]) for n in names]


def read_all(db: Database, payload: dict, name: object) -> list[Read]:
    """Every transcript this payload lets us read: the main one (at every hook: its last lines may
    have come after the previous hook), the stopping subagent's, and the compactions'."""
    budget = [READ_BUDGET]
    reads = []
    if name == "SubagentStop":
        agent_id = payload.get("agent_id") if isinstance(payload.get("agent_id"), str) else None
        if not payload.get("agent_transcript_path"):
            log(f"SubagentStop {payload['session_id']}: no agent_transcript_path, subagent tokens unknown")
        elif agent_id:
            reads.append(read_one(db, payload, payload.get("agent_transcript_path"), agent_id,
                               agent_type_of(agent_id, payload.get("agent_type")), budget))
    if not payload.get("transcript_path"):
        if name in ("Stop", "StopFailure", "SessionEnd"):
            log(f"{name} {payload['session_id']}: no transcript path, tokens unknown")
        return [r for r in reads if r]
    reads.append(read_one(db, payload, payload.get("transcript_path"), None, None, budget))
    if name == "SessionEnd":
        settle(db, payload, reads, budget)
    if name not in TOOL_EVENTS:
        for path, agent_id in compactions(payload):
            read = read_one(db, payload, path, agent_id, agent_type_of(agent_id), budget)
            if read is not None:
                read.done = True
                reads.append(read)
    return [r for r in reads if r]


def settle(db: Database, payload: dict, reads: list, budget: list[int]) -> None:
    """At SessionEnd, give the main transcript's last lines a moment to arrive (it is written
    asynchronously): while it was written to in the last SETTLE_S seconds, wait and read on, for
    SETTLE_MAX_S at most."""
    main = reads[-1]
    if main is None:
        return
    deadline = time.monotonic() + SETTLE_MAX_S
    while time.monotonic() < deadline:
        try:
            idle = time.time() - os.stat(main.path).st_mtime
        except OSError:
            return
        if idle >= SETTLE_S:
            return
        time.sleep(min(SETTLE_S - idle, max(0.0, deadline - time.monotonic())) + 0.01)
        more = read_one(db, payload, main.path, None, None, budget)  # from the stored offset again
        if more is not None:
            main.found = more.found
