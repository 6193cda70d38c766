"""The lifecycle writes' SQL, shared by Tracker and the Claude Code hook.

Each function runs inside the caller's write transaction (it takes the connection) and checks
nothing: the caller validates. No imports beyond sqlite3's types: `python -m monitor.hooks`
loads this module on every tool call.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3

#: Milliseconds between a stored start and :now, computed by SQLite in the same statement.
DURATION_SQL = "max(0, CAST(round((julianday(:now) - julianday(started_at)) * 86400000) AS INTEGER))"


def insert_orchestration(conn: sqlite3.Connection, session_id: str, now: str, *,
                         task_description: str | None = None, total_tasks: int = 0,
                         git_commit_hash: str | None = None, plan_file_path: str | None = None,
                         progress_file_path: str | None = None) -> int:
    """A new running orchestration's id; the existing one's if session_id is already recorded."""
    row = conn.execute(
        "INSERT INTO orchestrations (session_id, task_description, status, started_at,"
        " total_tasks, git_commit_hash, plan_file_path, progress_file_path)"
        " VALUES (?, ?, 'running', ?, ?, ?, ?, ?)"
        " ON CONFLICT (session_id) DO NOTHING RETURNING id",
        (session_id, task_description, now, total_tasks, git_commit_hash, plan_file_path, progress_file_path),
    ).fetchone()
    if row is None:
        row = conn.execute("SELECT id FROM orchestrations WHERE session_id = ?", (session_id,)).fetchone()
    return row[0]


def insert_execution(conn: sqlite3.Connection, agent_session_id: str, agent_name: str, now: str, *,
                     orchestration_id: int | None = None, task_id: str | None = None,
                     task_number: int | None = None, model: str | None = None,
                     session_log_path: str | None = None) -> int:
    """A new in-progress execution's id; the existing one's if agent_session_id is already recorded."""
    row = conn.execute(
        "INSERT INTO agent_executions (orchestration_id, agent_session_id, agent_name, task_id,"
        " task_number, status, started_at, model, session_log_path)"
        " VALUES (?, ?, ?, ?, ?, 'in_progress', ?, ?, ?)"
        " ON CONFLICT (agent_session_id) DO NOTHING RETURNING id",
        (orchestration_id, agent_session_id, agent_name, task_id, task_number, now, model, session_log_path),
    ).fetchone()
    if row is None:
        row = conn.execute("SELECT id FROM agent_executions WHERE agent_session_id = ?",
                           (agent_session_id,)).fetchone()
    return row[0]


def finish_execution(conn: sqlite3.Connection, execution_id: int, status: str, now: str,
                     error_message: str | None = None) -> bool:
    """Complete or fail an execution that is still in progress (one that is not is left alone);
    return whether it was."""
    return conn.execute(
        f"UPDATE agent_executions SET status = :status, completed_at = :now, duration_ms = {DURATION_SQL},"
        " error_message = coalesce(:error, error_message) WHERE id = :id AND status = 'in_progress'",
        {"status": status, "now": now, "error": error_message, "id": execution_id},
    ).rowcount > 0


def finish_orchestration(conn: sqlite3.Connection, orchestration_id: int, now: str, status: str | None = None,
                         completed_tasks: int | None = None, failed_tasks: int | None = None, *,
                         final: bool = True) -> str:
    """Set an orchestration's status and task counts; return the status.

    status None derives it from the executions: 'running' while any is in progress (unless final),
    else failed if all that finished failed, partial if some did, completed otherwise. Counts left
    as None are counted from the executions. A finished orchestration gets completed_at and its
    duration; a running one has neither.
    """
    done, failed, running = conn.execute(
        "SELECT coalesce(sum(status = 'completed'), 0), coalesce(sum(status = 'failed'), 0),"
        " coalesce(sum(status = 'in_progress'), 0) FROM agent_executions WHERE orchestration_id = ?",
        (orchestration_id,),
    ).fetchone()
    if status is None:
        if running and not final:
            status = "running"
        elif failed and done:
            status = "partial"
        else:
            status = "failed" if failed else "completed"
    completed_tasks = done if completed_tasks is None else completed_tasks
    failed_tasks = failed if failed_tasks is None else failed_tasks
    conn.execute(
        "UPDATE orchestrations SET status = :status, completed_tasks = :done, failed_tasks = :failed,"
        " total_tasks = max(total_tasks, :done + :failed),"
        " completed_at = CASE WHEN :finished THEN :now END,"
        f" duration_ms = CASE WHEN :finished THEN {DURATION_SQL} END"
        " WHERE id = :id",
        {"status": status, "done": completed_tasks, "failed": failed_tasks, "finished": status != "running",
         "now": now, "id": orchestration_id},
    )
    return status


def reopen(conn: sqlite3.Connection, orchestration_id: int, execution_id: int) -> None:
    """Mark a finished orchestration running again, and its execution in progress (a resumed session)."""
    conn.execute("UPDATE orchestrations SET status = 'running', completed_at = NULL, duration_ms = NULL"
                 " WHERE id = ? AND status != 'running'", (orchestration_id,))
    conn.execute("UPDATE agent_executions SET status = 'in_progress', completed_at = NULL, duration_ms = NULL"
                 " WHERE id = ? AND status != 'in_progress'", (execution_id,))
