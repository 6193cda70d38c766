"""A Claude Code session built like the real ones (Claude Code 2.1.3x), written step by step.

Its transcripts have the shape of real ones: each assistant message written as one line per
content block, every line repeating message.id and requestId, input and cache counts repeating
and output_tokens growing; usage.cache_creation splitting 5-minute and 1-hour cache writes;
subagent transcripts (subagents/agent-<id>.jsonl, isSidechain) with placeholder output counts
(1-26) on every line, the real count of a subagent's last request only in the Agent tool's
result; a compaction transcript (subagents/agent-acompact-<id>.jsonl) no hook announces; a model
switch (opus -> haiku -> opus); a teammate re-tasked with the same agent_id; a StopFailure; and
a last line written after SessionEnd (the transcript lags the hooks).

SESSION.steps() yields ("write", path, lines) and ("hook", payload) in the order Claude Code
does them; expected() is the independent count the test compares with: last line per message,
the subagent's last request from the Agent tool result, each message's own model, 5-minute and
1-hour cache rates.
"""

from __future__ import annotations

import json
from pathlib import Path

SESSION_ID = "5b0e6a52-3c1d-4f7a-9d0e-2a8c71f4e9b3"
OPUS, HAIKU, SONNET = "claude-opus-4-6", "claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929"
#: Dollars per million tokens: input, output, cache read, 5-minute write (1.25x), 1-hour write (2x).
PRICES = {OPUS: (5, 25, 0.5, 6.25, 10), HAIKU: (1, 5, 0.1, 1.25, 2), SONNET: (3, 15, 0.3, 3.75, 6)}
REVIEWER, TEAMMATE, COMPACT = "a3f9c2e1b7d4a6e80", "a7e1d2c3b4a5f6071", "acompact-4e8d2a"


class Builder:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cwd = root / "project"
        self.main = root / "projects" / "-project" / f"{SESSION_ID}.jsonl"
        self.subagents = self.main.parent / SESSION_ID / "subagents"
        self.n = 0
        self.messages: dict[str, dict[str, tuple]] = {}  # execution -> message id -> (model, last counts)

    def path(self, agent: str | None) -> Path:
        return self.main if agent is None else self.subagents / f"agent-{agent}.jsonl"

    def _uuid(self) -> str:
        self.n += 1
        return f"00000000-0000-4000-8000-{self.n:012d}"

    def _time(self) -> str:
        return f"2026-11-20T12:{self.n // 60:02d}:{self.n % 60:02d}.000Z"

    def assistant(self, agent: str | None, message_id: str, model: str, outputs: list[int], *, input: int,
                  read: int = 0, write_5m: int = 0, write_1h: int = 0, execution: str | None = None,
                  sidechain: bool | None = None) -> list[str]:
        """The lines of one assistant message: one per content block, output_tokens as given."""
        lines = []
        for i, output in enumerate(outputs):
            usage = {"input_tokens": input, "cache_creation_input_tokens": write_5m + write_1h,
                     "cache_read_input_tokens": read,
                     "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
                     "output_tokens": output, "service_tier": "standard"}
            block = ({"type": "thinking", "thinking": "...", "signature": "x"} if i == 0 and len(outputs) > 2 else
                     {"type": "text", "text": f"part {i}"} if i < len(outputs) - 1 else
                     {"type": "tool_use", "id": f"toolu_{message_id}", "name": "Bash", "input": {"command": "ls"}})
            entry = {"parentUuid": None, "isSidechain": agent is not None if sidechain is None else sidechain,
                     "userType": "external", "cwd": str(self.cwd), "sessionId": SESSION_ID, "version": "2.1.39",
                     "gitBranch": "main",
                     **({"agentId": agent} if agent else {}),
                     "message": {"model": model, "id": message_id, "type": "message", "role": "assistant",
                                 "content": [block], "stop_reason": None, "stop_sequence": None, "usage": usage},
                     "requestId": f"req_{message_id[4:]}", "type": "assistant", "uuid": self._uuid(),
                     "timestamp": self._time()}
            lines.append(json.dumps(entry))
        if execution is not None:
            self.messages.setdefault(execution, {})[message_id] = (model, (input, outputs[-1], read, write_5m, write_1h))
        return lines

    def user(self, agent: str | None = None, tool_result: dict | None = None) -> str:
        entry = {"parentUuid": None, "isSidechain": agent is not None, "userType": "external", "cwd": str(self.cwd),
                 "sessionId": SESSION_ID, "version": "2.1.39", "type": "user", "uuid": self._uuid(),
                 "timestamp": self._time(),
                 "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x",
                                                          "content": "x" * 300}]}}
        if tool_result is not None:
            entry["toolUseResult"] = tool_result
        return json.dumps(entry)

    def payload(self, event: str, **fields: object) -> dict:
        return {"session_id": SESSION_ID, "transcript_path": str(self.main), "cwd": str(self.cwd),
                "permission_mode": "default", "hook_event_name": event, **fields}


def agent_result(agent_id: str, agent_type: str, model: str, counts: tuple[int, int, int, int, int]) -> dict:
    """The Agent tool's tool_response: the subagent's last request's usage, as Claude Code sends it."""
    inp, out, read, w5, w1 = counts
    return {"status": "completed", "prompt": "Review the change", "agentId": agent_id, "agentType": agent_type,
            "resolvedModel": model, "content": [{"type": "text", "text": "Looks good."}],
            "totalDurationMs": 19724, "totalTokens": inp + out + read + w5 + w1, "totalToolUseCount": 3,
            "usage": {"input_tokens": inp, "cache_creation_input_tokens": w5 + w1, "cache_read_input_tokens": read,
                      "output_tokens": out, "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
                      "service_tier": "standard",
                      "cache_creation": {"ephemeral_1h_input_tokens": w1, "ephemeral_5m_input_tokens": w5},
                      "inference_geo": "", "iterations": []}}


def steps(b: Builder):
    """The session, in Claude Code's order: ("write", path, lines) and ("hook", payload)."""
    main, sub = "main", "code-reviewer"
    yield "hook", b.payload("SessionStart", source="startup", model=OPUS)
    m1 = b.assistant(None, "msg_01A", OPUS, [10, 120, 441], input=3, write_1h=5200, execution=main)
    yield "write", b.main, [b.user()] + m1[:2]  # the message is still being written at the next hook
    yield "hook", b.payload("PreToolUse", tool_name="Bash", tool_input={"command": "pytest -q"}, tool_use_id="toolu_1")
    yield "write", b.main, m1[2:] + [b.user()]
    yield "hook", b.payload("PostToolUse", tool_name="Bash", tool_input={"command": "pytest -q"}, tool_use_id="toolu_1",
                            tool_response={"stdout": "3 passed", "interrupted": False}, duration_ms=368)
    # The subagent: spawned by m2's Agent tool call.
    yield "write", b.main, b.assistant(None, "msg_02B", OPUS, [8, 230], input=5, read=5200, write_5m=900,
                                       execution=main)
    yield "hook", b.payload("PreToolUse", tool_name="Agent", tool_use_id="toolu_2",
                            tool_input={"subagent_type": sub, "description": "review", "prompt": "Review"})
    yield "hook", b.payload("SubagentStart", agent_id=REVIEWER, agent_type=sub)
    s1 = b.assistant(REVIEWER, "msg_S1", SONNET, [1, 1], input=4, read=0, write_5m=4922, execution=sub)
    s2 = b.assistant(REVIEWER, "msg_S2", SONNET, [3, 26], input=1, read=4922, write_5m=2521, execution=sub)
    yield "write", b.path(REVIEWER), [b.user(REVIEWER)] + s1 + [b.user(REVIEWER)] + s2
    yield "hook", b.payload("SubagentStop", agent_id=REVIEWER, agent_type=sub, stop_hook_active=False,
                            agent_transcript_path=str(b.path(REVIEWER)))
    final = (1, 485, 4922, 2521, 0)  # what the transcript shows as 26
    b.messages[sub]["msg_S2"] = (SONNET, final)
    result = agent_result(REVIEWER, sub, SONNET, final)
    yield "write", b.main, [b.user(tool_result=result)]
    yield "hook", b.payload("PostToolUse", tool_name="Agent", tool_use_id="toolu_2",
                            tool_input={"subagent_type": sub, "description": "review", "prompt": "Review"},
                            tool_response=result, duration_ms=19800)
    # A model switch: haiku answers one turn, then opus again; a sidechain line and a synthetic one to skip.
    yield "write", b.main, (b.assistant(None, "msg_03C", HAIKU, [5, 77], input=12, read=0, write_5m=2000,
                                        execution=main)
                            + b.assistant(None, "msg_side", HAIKU, [999], input=999, sidechain=True)
                            + b.assistant(None, "msg_syn", "<synthetic>", [0], input=0)
                            + b.assistant(None, "msg_04D", OPUS, [12, 300, 812], input=2, read=30000, write_5m=500,
                                          write_1h=1000, execution=main))
    yield "hook", b.payload("Stop", stop_hook_active=False)
    # A compaction: its own transcript, real counts, no hook of its own; then SessionStart(compact).
    yield "write", b.path(COMPACT), b.assistant(COMPACT, "msg_C1", OPUS, [40, 1800], input=3, read=52000,
                                                 write_5m=0, execution="compact")
    yield "hook", b.payload("SessionStart", source="compact", model=OPUS)
    # A teammate re-tasked: start, stop, start again (same agent_id), stop again.
    yield "hook", b.payload("SubagentStart", agent_id=TEAMMATE, agent_type="tester")
    yield "write", b.path(TEAMMATE), b.assistant(TEAMMATE, "msg_T1", HAIKU, [2, 9], input=6, write_5m=3000,
                                                  execution="tester")
    yield "hook", b.payload("SubagentStop", agent_id=TEAMMATE, agent_type="tester",
                            agent_transcript_path=str(b.path(TEAMMATE)))
    yield "hook", b.payload("SubagentStart", agent_id=TEAMMATE, agent_type="tester")
    yield "check", "teammate running"
    yield "write", b.path(TEAMMATE), b.assistant(TEAMMATE, "msg_T2", HAIKU, [4, 14], input=7, read=3000,
                                                  write_5m=600, execution="tester")
    yield "hook", b.payload("SubagentStop", agent_id=TEAMMATE, agent_type="tester",
                            agent_transcript_path=str(b.path(TEAMMATE)))
    # A turn that ends on an API error; its message's last line comes only after SessionEnd.
    m5 = b.assistant(None, "msg_05E", OPUS, [7, 64, 509], input=4, read=38000, write_1h=700, execution=main)
    yield "write", b.main, m5[:2]
    yield "hook", b.payload("StopFailure", error="rate_limit", error_details="429 Too Many Requests")
    yield "hook", b.payload("SessionEnd", reason="prompt_input_exit")
    yield "write", b.main, m5[2:]


def dollars(model: str, counts: tuple) -> float:
    return sum(n * p for n, p in zip(counts, PRICES[model])) / 1_000_000


def expected(b: Builder) -> dict:
    """The independent count per execution: tokens (in, out, cache read, cache write) and dollars,
    and per model."""
    per_execution, per_model = {}, {}
    for execution, messages in b.messages.items():
        tokens, cost = [0, 0, 0, 0], 0.0
        for model, counts in messages.values():
            inp, out, read, w5, w1 = counts
            for i, n in enumerate((inp, out, read, w5 + w1)):
                tokens[i] += n
            cost += dollars(model, counts)
            m = per_model.setdefault(model, [0, 0, 0, 0, 0.0])
            for i, n in enumerate((inp, out, read, w5 + w1)):
                m[i] += n
            m[4] += dollars(model, counts)
        per_execution[execution] = (*tokens, cost)
    return {"executions": per_execution, "models": {k: tuple(v) for k, v in per_model.items()}}
