"""The rows `monitor otel` turns into spans: finished executions with their tool and LLM calls, and
finished orchestrations, read a batch at a time in id order (keyset: each batch starts after the
last id of the one before, so a batch costs the same wherever it is).

An execution still in progress, or an orchestration still running, is not read: a span is sent
when it has ended (and again, under the same id, if it is reopened and ends again).
`unsent_for` keeps only the rows not yet accepted by that endpoint (otel_sent_* marks), or accepted
with another completed_at (reopened and finished again since).
"""

from __future__ import annotations

from typing import Any

from monitor.read.queries import get_orchestration
from monitor.store.db import Database

EXECUTION_COLUMNS = ("id", "agent_session_id", "agent_name", "task_id", "task_number", "status", "started_at",
                     "completed_at", "duration_ms", "retry_count", "self_healed", "files_created",
                     "files_modified", "error_message", "model", "input_tokens", "output_tokens",
                     "cache_read_tokens", "cache_write_tokens", "cost_usd", "exit_code")
ORCHESTRATION_COLUMNS = ("id", "session_id", "task_description", "status", "started_at", "completed_at",
                         "duration_ms", "total_tasks", "completed_tasks", "failed_tasks", "git_commit_hash")


def _filters(db: Database, alias: str, session_id: str | None, since: str | None,
             unsent_for: int | None, mark_table: str, mark_column: str) -> tuple[list[str], list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if session_id is not None:
        orchestration_id = get_orchestration(db, session_id)["id"]  # NotFound for an unknown session
        clauses.append(f"{alias}.{'orchestration_id' if alias == 'e' else 'id'} = ?")
        params.append(orchestration_id)
    if since is not None:  # from the window's first id (found through the time index), as search --since
        table = "agent_executions" if alias == "e" else "orchestrations"
        clauses += [f"{alias}.started_at >= ?", f"{alias}.id >= (SELECT min(+id) FROM {table} WHERE started_at >= ?)"]
        params += [since, since]
    if unsent_for is not None:
        clauses.append(f"NOT EXISTS (SELECT 1 FROM {mark_table} m WHERE m.{mark_column} = {alias}.id"
                       f" AND m.endpoint_id = ? AND m.completed_at IS {alias}.completed_at)")
        params.append(unsent_for)
    return clauses, params


def finished_executions(db: Database, *, after_id: int = 0, limit: int = 500, session_id: str | None = None,
                        since: str | None = None, unsent_for: int | None = None) -> list[dict[str, Any]]:
    """Up to `limit` finished executions with id > after_id, in id order, each with its
    orchestration's session_id (None when it has none)."""
    clauses, params = _filters(db, "e", session_id, since, unsent_for, "otel_sent_executions", "execution_id")
    columns = ", ".join(f"e.{c}" for c in EXECUTION_COLUMNS)
    where = " AND ".join(["e.id > ?", "e.status != 'in_progress'", *clauses])
    cursor = db.execute(
        f"SELECT {columns}, o.session_id FROM agent_executions e"
        f" LEFT JOIN orchestrations o ON o.id = e.orchestration_id"
        f" WHERE {where} ORDER BY e.id LIMIT ?", [after_id, *params, limit])
    names = [*EXECUTION_COLUMNS, "session_id"]
    return [dict(zip(names, row)) for row in cursor]


def finished_orchestrations(db: Database, *, after_id: int = 0, limit: int = 500, session_id: str | None = None,
                            since: str | None = None, unsent_for: int | None = None) -> list[dict[str, Any]]:
    """Up to `limit` orchestrations that are no longer running, with id > after_id, in id order."""
    clauses, params = _filters(db, "o", session_id, since, unsent_for, "otel_sent_orchestrations",
                               "orchestration_id")
    where = " AND ".join(["o.id > ?", "o.status != 'running'", *clauses])
    cursor = db.execute(f"SELECT {', '.join(f'o.{c}' for c in ORCHESTRATION_COLUMNS)} FROM orchestrations o"
                        f" WHERE {where} ORDER BY o.id LIMIT ?", [after_id, *params, limit])
    return [dict(zip(ORCHESTRATION_COLUMNS, row)) for row in cursor]


def tool_calls(db: Database, execution_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The tool calls of these executions, by execution id, in time order."""
    return _children(db, "SELECT execution_id, id, timestamp, tool, server, outcome, duration_ms, dedup_key"
                         " FROM tool_calls WHERE execution_id IN ({}) ORDER BY timestamp, id", execution_ids,
                     ("execution_id", "id", "timestamp", "tool", "server", "outcome", "duration_ms", "dedup_key"))


def llm_calls(db: Database, execution_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The LLM requests (llm_usage rows) of these executions, by execution id, in time order."""
    return _children(db, "SELECT execution_id, message_id, model, timestamp, input_tokens, output_tokens,"
                         " cache_read_tokens, cache_write_tokens + cache_write_1h_tokens, calls, cost_usd"
                         " FROM llm_usage WHERE execution_id IN ({}) ORDER BY execution_id, timestamp",
                     execution_ids,
                     ("execution_id", "message_id", "model", "timestamp", "input_tokens", "output_tokens",
                      "cache_read_tokens", "cache_write_tokens", "calls", "cost_usd"))


def _children(db: Database, sql: str, ids: list[int], names: tuple[str, ...]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        for row in db.execute(sql.format(", ".join("?" * len(part))), part):
            found.setdefault(row[0], []).append(dict(zip(names, row)))
    return found
