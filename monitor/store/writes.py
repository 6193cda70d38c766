"""Every write's SQL: each INSERT, UPDATE and DELETE that monitor makes (migrations aside).

Each function runs inside the caller's write transaction (it takes the connection) and checks
nothing: the caller validates. No imports beyond sqlite3's types: `python -m monitor.hooks`
loads this module on every tool call. No RETURNING: SQLite before 3.42 can fail to re-prepare
such a statement after another process changed the schema.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Mapping

#: Milliseconds between a stored start and :now, computed by SQLite in the same statement.
DURATION_SQL = "max(0, CAST(round((julianday(:now) - julianday(started_at)) * 86400000) AS INTEGER))"


def insert_orchestration(conn: sqlite3.Connection, session_id: str, now: str, *,
                         task_description: str | None = None, total_tasks: int = 0,
                         git_commit_hash: str | None = None, plan_file_path: str | None = None,
                         progress_file_path: str | None = None) -> int:
    """A new running orchestration's id; the existing one's if session_id is already recorded."""
    found = conn.execute("SELECT id FROM orchestrations WHERE session_id = ?", (session_id,)).fetchone()
    if found is not None:  # looked up first: an INSERT that conflicts would still use up an id
        return found[0]
    cursor = conn.execute(
        "INSERT INTO orchestrations (session_id, task_description, status, started_at,"
        " total_tasks, git_commit_hash, plan_file_path, progress_file_path)"
        " VALUES (?, ?, 'running', ?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING",
        (session_id, task_description, now, total_tasks, git_commit_hash, plan_file_path, progress_file_path),
    )
    if cursor.rowcount == 1 and cursor.lastrowid:
        return cursor.lastrowid
    return conn.execute("SELECT id FROM orchestrations WHERE session_id = ?", (session_id,)).fetchone()[0]


def insert_execution(conn: sqlite3.Connection, agent_session_id: str, agent_name: str, now: str, *,
                     orchestration_id: int | None = None, task_id: str | None = None,
                     task_number: int | None = None, model: str | None = None,
                     session_log_path: str | None = None,
                     runner: tuple[int, str, str | None] | None = None) -> int:
    """A new in-progress execution's id; the existing one's if agent_session_id is already recorded.
    runner is the (pid, host, start) of the `monitor run` process recording it.

    One statement: it inserts only when the id is new (a conflicting INSERT would use up an
    AUTOINCREMENT id), inside the caller's write transaction, so no other writer slips in between."""
    pid, host, start = runner or (None, None, None)
    cursor = conn.execute(
        "INSERT INTO agent_executions (orchestration_id, agent_session_id, agent_name, task_id,"
        " task_number, status, started_at, model, session_log_path, runner_pid, runner_host, runner_start)"
        " SELECT :orchestration_id, :id, :agent, :task_id, :task_number, 'in_progress', :now, :model, :log,"
        " :pid, :host, :start"
        " WHERE NOT EXISTS (SELECT 1 FROM agent_executions WHERE agent_session_id = :id)",
        {"orchestration_id": orchestration_id, "id": agent_session_id, "agent": agent_name, "task_id": task_id,
         "task_number": task_number, "now": now, "model": model, "log": session_log_path, "pid": pid,
         "host": host, "start": start},
    )
    if cursor.rowcount == 1 and cursor.lastrowid:
        return cursor.lastrowid
    return conn.execute("SELECT id FROM agent_executions WHERE agent_session_id = ?",
                        (agent_session_id,)).fetchone()[0]


def finish_execution(conn: sqlite3.Connection, execution_id: int, status: str, now: str,
                     error_message: str | None = None) -> bool:
    """Complete or fail an execution that is still in progress, or that `monitor reap` failed (one
    that is not is left alone); return whether it was."""
    def finish() -> bool:
        return conn.execute(
            f"UPDATE agent_executions SET status = :status, completed_at = :now, duration_ms = {DURATION_SQL},"
            " error_message = coalesce(:error, error_message) WHERE id = :id AND status = 'in_progress'",
            {"status": status, "now": now, "error": error_message, "id": execution_id},
        ).rowcount > 0
    return finish() or (reopen_reaped(conn, execution_id) and finish())


#: How the error message of an execution failed by `monitor reap` begins ("no completion after 2h 00m").
REAPED = "no completion after "


def reopen_reaped(conn: sqlite3.Connection, execution_id: int) -> bool:
    """Put an execution that `monitor reap` failed back in progress, so that its real end, arriving
    late, replaces the reaper's guess (the first real end wins; a reaper only guesses)."""
    return conn.execute(
        "UPDATE agent_executions SET status = 'in_progress', completed_at = NULL, duration_ms = NULL,"
        " error_message = NULL WHERE id = ? AND status = 'failed' AND error_message GLOB ?",
        (execution_id, REAPED + "*"),
    ).rowcount > 0


#: What complete_execution() may set besides status and times: None keeps the stored value.
COMPLETION_FIELDS = ("error_message", "files_created", "files_modified", "retry_count", "self_healed", "model",
                     "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd",
                     "exit_code", "summary_report_path", "session_log_path")
_COMPLETE_SQL: dict[tuple[str, ...], str] = {}


def complete_execution(conn: sqlite3.Connection, execution_id: int, status: str, now: str,
                       fields: Mapping[str, object]) -> bool:
    """Complete or fail an execution still in progress (or failed by `monitor reap`: see
    reopen_reaped), setting the COMPLETION_FIELDS given (not None); return whether it was (a
    finished one is left as it is).

    The UPDATE names only the columns it sets, so the triggers that follow the others (cost roll-up,
    full-text index of errors) do not run for a completion that leaves them alone."""
    given = tuple(c for c in COMPLETION_FIELDS if fields.get(c) is not None)
    sql = _COMPLETE_SQL.get(given)
    if sql is None:
        sql = _COMPLETE_SQL[given] = (
            "UPDATE agent_executions SET status = :status, completed_at = :now, duration_ms = " + DURATION_SQL
            + "".join(f", {c} = :{c}" for c in given) + " WHERE id = :id AND status = 'in_progress'")
    values = {**{c: fields[c] for c in given}, "status": status, "now": now, "id": execution_id}
    return (conn.execute(sql, values).rowcount > 0
            or (reopen_reaped(conn, execution_id) and conn.execute(sql, values).rowcount > 0))


def start_execution(conn: sqlite3.Connection, agent_session_id: str, agent_name: str, now: str, *,
                    session_id: str | None = None, git_commit_hash: str | None = None, **execution: object) -> int:
    """An execution started (see insert_execution for `execution`), in orchestration session_id
    (started if new) whose roll-up then counts it, in the caller's transaction; its id."""
    orchestration_id = None
    if session_id is not None:
        orchestration_id = insert_orchestration(conn, session_id, now, git_commit_hash=git_commit_hash)
    execution_id = insert_execution(conn, agent_session_id, agent_name, now, orchestration_id=orchestration_id,
                                    **execution)  # type: ignore[arg-type]
    if orchestration_id is not None:
        finish_orchestration(conn, orchestration_id, now, final=False)
    return execution_id


def end_execution(conn: sqlite3.Connection, execution_id: int, orchestration_id: int | None, status: str,
                  now: str, fields: Mapping[str, object]) -> bool:
    """complete_execution(), and its orchestration's status and counts follow in the same
    transaction: a completion that cannot be written (a full disk) changes neither, so an
    orchestration is never `completed` while one of its executions is still in progress."""
    changed = complete_execution(conn, execution_id, status, now, fields)
    if changed and orchestration_id is not None:
        finish_orchestration(conn, orchestration_id, now, final=False)
    return changed


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


#: An orchestration's status, counts and times derived again from its executions (`import` merging
#: two files' executions of one session): running while any is in progress, else partial, failed or
#: completed as finish_orchestration() derives them; its start is the earliest known, its end the
#: latest. The WHERE leaves a row that already holds these values alone (rowcount 0).
_RECOUNT_SQL = """
UPDATE orchestrations SET status = t.status, completed_tasks = t.done, failed_tasks = t.failed,
    total_tasks = t.total, started_at = t.started_at, completed_at = t.ended, duration_ms = t.duration
FROM (
    SELECT *, CASE WHEN ended IS NOT NULL THEN
        max(0, CAST(round((julianday(ended) - julianday(started_at)) * 86400000) AS INTEGER)) END AS duration
    FROM (
        SELECT o.id,
               CASE WHEN e.running THEN 'running' WHEN e.failed AND e.done THEN 'partial'
                    WHEN e.failed THEN 'failed' WHEN e.done THEN 'completed' ELSE o.status END AS status,
               e.done, e.failed, max(o.total_tasks, e.done + e.failed) AS total,
               min(o.started_at, coalesce(e.first_start, o.started_at)) AS started_at,
               CASE WHEN NOT e.running THEN nullif(max(coalesce(o.completed_at, ''), coalesce(e.last_end, '')), '')
               END AS ended
        FROM orchestrations o, (
            SELECT coalesce(sum(status = 'completed'), 0) AS done, coalesce(sum(status = 'failed'), 0) AS failed,
                   coalesce(sum(status = 'in_progress'), 0) AS running, min(started_at) AS first_start,
                   max(completed_at) AS last_end
            FROM agent_executions WHERE orchestration_id = :id) e
        WHERE o.id = :id)
) t
WHERE orchestrations.id = t.id AND (orchestrations.status, orchestrations.completed_tasks,
    orchestrations.failed_tasks, orchestrations.total_tasks, orchestrations.started_at,
    coalesce(orchestrations.completed_at, ''), coalesce(orchestrations.duration_ms, -1))
    IS NOT (t.status, t.done, t.failed, t.total, t.started_at, coalesce(t.ended, ''), coalesce(t.duration, -1))
"""


def recount_orchestration(conn: sqlite3.Connection, orchestration_id: int) -> bool:
    """Derive an orchestration's status, counts, start and end from its executions again;
    return whether that changed it."""
    return conn.execute(_RECOUNT_SQL, {"id": orchestration_id}).rowcount > 0

# -- events and usage --------------------------------------------------------------------------

def insert_event(conn: sqlite3.Connection, now: str, event_type: str, message: str | None,
                 payload: str | None, execution_id: int | None, orchestration_id: int | None,
                 dedup_key: str | None = None) -> int | None:
    """One event; its id, or None when dedup_key was already recorded."""
    cursor = conn.execute(
        "INSERT INTO events (orchestration_id, execution_id, timestamp, type, message, payload, dedup_key)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING",
        (orchestration_id, execution_id, now, event_type, message, payload, dedup_key),
    )
    return cursor.lastrowid if cursor.rowcount == 1 else None


def add_execution_usage(conn: sqlite3.Connection, execution_id: int, model: str | None, input_tokens: int,
                        output_tokens: int, cache_read_tokens: int, cache_write_tokens: int,
                        cost_usd: float | None) -> None:
    """Add tokens and their cost to an execution's totals. Its cost stays unknown (NULL) once any
    of its usage had no price: a partial sum would read as a complete one."""
    conn.execute(
        "UPDATE agent_executions SET"
        " cost_usd = CASE WHEN :cost IS NULL THEN NULL"
        "   WHEN cost_usd IS NULL AND coalesce(input_tokens, 0) + coalesce(output_tokens, 0)"
        "     + coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0) > 0 THEN NULL"
        "   ELSE coalesce(cost_usd, 0) + :cost END,"
        " input_tokens = coalesce(input_tokens, 0) + :input,"
        " output_tokens = coalesce(output_tokens, 0) + :output,"
        " cache_read_tokens = coalesce(cache_read_tokens, 0) + :cache_read,"
        " cache_write_tokens = coalesce(cache_write_tokens, 0) + :cache_write,"
        " model = coalesce(model, :model)"
        " WHERE id = :id",
        {"cost": cost_usd, "input": input_tokens, "output": output_tokens, "cache_read": cache_read_tokens,
         "cache_write": cache_write_tokens, "model": model, "id": execution_id},
    )


def set_model(conn: sqlite3.Connection, execution_id: int, model: str) -> None:
    conn.execute("UPDATE agent_executions SET model = ? WHERE id = ?", (model, execution_id))


def set_session_log_path(conn: sqlite3.Connection, execution_id: int, path: str) -> None:
    conn.execute("UPDATE agent_executions SET session_log_path = ? WHERE id = ?", (path, execution_id))


def reopen_execution(conn: sqlite3.Connection, execution_id: int) -> bool:
    """Mark a finished execution in progress again (a subagent given a new task); return whether it was finished."""
    return conn.execute("UPDATE agent_executions SET status = 'in_progress', completed_at = NULL, duration_ms = NULL,"
                        " error_message = NULL WHERE id = ? AND status != 'in_progress'", (execution_id,)).rowcount > 0


#: The columns of one llm_usage row, in order.
USAGE_COLUMNS = ("execution_id", "message_id", "model", "timestamp", "input_tokens", "output_tokens",
                 "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "calls", "cost_usd", "source",
                 "priced_with")
_PUT_USAGE_SQL = (
    f"INSERT INTO llm_usage ({', '.join(USAGE_COLUMNS)}) VALUES ({', '.join('?' * len(USAGE_COLUMNS))})"
    " ON CONFLICT (execution_id, message_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in USAGE_COLUMNS[2:])
)


def put_usage(conn: sqlite3.Connection, row: tuple) -> None:
    """Insert or replace the usage of one request (a tuple in USAGE_COLUMNS order)."""
    conn.execute(_PUT_USAGE_SQL, row)


def carry_execution_totals(conn: sqlite3.Connection, execution_id: int) -> None:
    """Before an execution's first llm_usage row, keep the totals it already has (recorded by a
    monitor before per-request rows, e.g. a session that spans an upgrade) as one row of their own,
    so that summing its rows loses nothing."""
    conn.execute(
        "INSERT INTO llm_usage (execution_id, message_id, model, timestamp, input_tokens, output_tokens,"
        " cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, calls, cost_usd, source)"
        " SELECT id, 'totals-before-llm_usage', model, started_at, coalesce(input_tokens, 0),"
        " coalesce(output_tokens, 0), coalesce(cache_read_tokens, 0), coalesce(cache_write_tokens, 0), 0, 0,"
        " cost_usd, 'carried' FROM agent_executions WHERE id = :id"
        " AND coalesce(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens) IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM llm_usage WHERE execution_id = :id)", {"id": execution_id})


def delete_usage(conn: sqlite3.Connection, execution_id: int, message_id: str) -> None:
    conn.execute("DELETE FROM llm_usage WHERE execution_id = ? AND message_id = ?", (execution_id, message_id))


def price_usage(conn: sqlite3.Connection, execution_id: int, message_id: str, cost_usd: float | None,
                priced_with: str) -> None:
    """Set the cost of a request recorded without one (or note which price sources knew none)."""
    conn.execute("UPDATE llm_usage SET cost_usd = ?, priced_with = ? WHERE execution_id = ? AND message_id = ?"
                 " AND cost_usd IS NULL", (cost_usd, priced_with, execution_id, message_id))


def set_execution_cost(conn: sqlite3.Connection, execution_id: int, cost_usd: float) -> None:
    """Price an execution recorded with tokens but no cost (and no per-request rows)."""
    conn.execute("UPDATE agent_executions SET cost_usd = ? WHERE id = ? AND cost_usd IS NULL", (cost_usd, execution_id))


def refresh_execution_usage(conn: sqlite3.Connection, execution_id: int) -> None:
    """Set an execution's tokens and cost to the sums of its llm_usage rows (cost unknown when any
    row is unpriced), and its model to the one of its latest request."""
    conn.execute(
        "UPDATE agent_executions SET (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd)"
        " = (SELECT sum(input_tokens), sum(output_tokens), sum(cache_read_tokens),"
        "    sum(cache_write_tokens + cache_write_1h_tokens),"
        "    CASE WHEN count(cost_usd) = count(*) THEN round(sum(cost_usd), 8) END"
        "    FROM llm_usage WHERE execution_id = :id),"
        " model = coalesce((SELECT model FROM llm_usage WHERE execution_id = :id AND model IS NOT NULL"
        "                   ORDER BY timestamp DESC LIMIT 1), model)"
        " WHERE id = :id AND EXISTS (SELECT 1 FROM llm_usage WHERE execution_id = :id)",
        {"id": execution_id})


def count_file_change(conn: sqlite3.Connection, execution_id: int, created: bool) -> None:
    """One more file created (or modified) by an execution."""
    column = "files_created" if created else "files_modified"
    conn.execute(f"UPDATE agent_executions SET {column} = {column} + 1 WHERE id = ?", (execution_id,))


def claim_transcript(conn: sqlite3.Connection, path: str, start: int | None, offset: int,
                     last_message_id: str | None, now: str, execution_id: int | None = None) -> bool:
    """Move a transcript's read offset from start (None: never read) to offset, noting whose
    transcript it is (transcript_owners); False when another process moved it first (it counted
    those lines)."""
    if start is None:
        claimed = conn.execute(
            "INSERT INTO transcript_offsets (path, offset, last_message_id, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (path) DO NOTHING", (path, offset, last_message_id, now)).rowcount > 0
    else:
        claimed = conn.execute(
            "UPDATE transcript_offsets SET offset = ?, last_message_id = ?, updated_at = ? WHERE path = ? AND offset = ?",
            (offset, last_message_id, now, path, start)).rowcount > 0
    if claimed and execution_id is not None:
        conn.execute("INSERT INTO transcript_owners (path, execution_id, read_at) VALUES (?, ?, ?)"
                     " ON CONFLICT (path) DO UPDATE SET execution_id = excluded.execution_id, read_at = excluded.read_at",
                     (path, execution_id, now))
    return claimed


def insert_tool_call(conn: sqlite3.Connection, execution_id: int | None, now: str, tool: str, server: str | None,
                     outcome: str, duration_ms: int | None, dedup_key: str | None = None) -> bool:
    """One finished tool (or external-service) call; False when dedup_key was already recorded."""
    return conn.execute(
        "INSERT INTO tool_calls (execution_id, timestamp, tool, server, outcome, duration_ms, dedup_key)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING",
        (execution_id, now, tool, server, outcome, duration_ms, dedup_key)).rowcount > 0


# -- retention ---------------------------------------------------------------------------------

def delete_oldest_orchestrations(conn: sqlite3.Connection, cutoff: str, size: int) -> tuple[int, int]:
    """Delete the `size` oldest orchestrations started before cutoff with their executions;
    return (orchestrations, executions) deleted."""
    # The oldest, found once per statement (a subquery: no limit on host parameters however large
    # the batch). Executions first and explicitly: the count is exact, and a database without
    # ON DELETE CASCADE is cleaned all the same.
    oldest = "SELECT id FROM orchestrations WHERE started_at < ? ORDER BY started_at LIMIT ?"
    executions = conn.execute(f"DELETE FROM agent_executions WHERE orchestration_id IN ({oldest})",
                              (cutoff, size)).rowcount
    orchestrations = conn.execute(f"DELETE FROM orchestrations WHERE id IN ({oldest})", (cutoff, size)).rowcount
    return orchestrations, executions


def delete_old_lone_executions(conn: sqlite3.Connection, cutoff: str, size: int) -> int:
    """Delete up to `size` executions with no orchestration started before cutoff; return how many."""
    return conn.execute(
        "DELETE FROM agent_executions WHERE id IN (SELECT id FROM agent_executions"
        " WHERE orchestration_id IS NULL AND started_at < ? LIMIT ?)", (cutoff, size)).rowcount


def insert_daily_rollup(conn: sqlite3.Connection, found: list[dict], rolled_up_at: str) -> int:
    """Store daily_rollup rows (monitor.read.daily.ROLLUP_COLUMNS each); a day already rolled up
    keeps its rows. Returns how many were added."""
    before = conn.total_changes
    conn.executemany(
        "INSERT OR IGNORE INTO daily_rollup (day, scope, agent_name, model, executions, completed, failed,"
        " in_progress, timed, duration_ms, p50_duration_ms, p95_duration_ms, input_tokens, output_tokens,"
        " cache_read_tokens, cache_write_tokens, cost_usd, unpriced, rolled_up_at) VALUES (:day, :scope,"
        " :agent_name, :model, :executions, :completed, :failed, :in_progress, :timed, :duration_ms,"
        " :p50_duration_ms, :p95_duration_ms, :input_tokens, :output_tokens, :cache_read_tokens,"
        " :cache_write_tokens, :cost_usd, :unpriced, :rolled_up_at)",
        [{**row, "rolled_up_at": rolled_up_at} for row in found])
    return conn.total_changes - before


def delete_daily_rollup_before(conn: sqlite3.Connection, day: str) -> int:
    """Delete the roll-ups of the days before `day` (cleanup --all); return how many rows went."""
    return conn.execute("DELETE FROM daily_rollup WHERE day < ?", (day,)).rowcount


# -- alerts ------------------------------------------------------------------------------------

def put_alert_state(conn: sqlite3.Connection, key: str, status: str, message: str | None, sent_at: str) -> None:
    """What `alert` notified about a rule, and when."""
    conn.execute("INSERT INTO alert_state (key, status, message, sent_at) VALUES (?, ?, ?, ?)"
                 " ON CONFLICT (key) DO UPDATE SET status = excluded.status, message = excluded.message,"
                 " sent_at = excluded.sent_at", (key, status, message, sent_at))


def delete_alert_state(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM alert_state WHERE key = ?", (key,))


# -- the spool (monitor.store.spool) -----------------------------------------------------------

def spool_files(conn: sqlite3.Connection) -> list[str]:
    """The claimed spool files whose ingestion is recorded."""
    return [name for (name,) in conn.execute("SELECT name FROM spool_offsets")]


def spool_offset(conn: sqlite3.Connection, name: str) -> int:
    """How far claimed spool file `name` has been recorded (0: not yet)."""
    row = conn.execute("SELECT offset FROM spool_offsets WHERE name = ?", (name,)).fetchone()
    return row[0] if row else 0


def set_spool_offset(conn: sqlite3.Connection, name: str, offset: int) -> None:
    conn.execute("INSERT INTO spool_offsets (name, offset, updated_at)"
                 " VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
                 " ON CONFLICT (name) DO UPDATE SET offset = excluded.offset, updated_at = excluded.updated_at",
                 (name, offset))


def forget_spool_files(conn: sqlite3.Connection, names: list[str]) -> None:
    """Drop the offsets of claimed files that are gone (read to their end and deleted)."""
    conn.executemany("DELETE FROM spool_offsets WHERE name = ?", [(name,) for name in names])


# -- OpenTelemetry push marks (monitor.exporters.otel_push) ------------------------------------

def otel_endpoint_id(conn: sqlite3.Connection, url: str, now: str) -> int:
    """The id of an OTLP traces URL among the endpoints pushed to, added on its first push."""
    conn.execute("INSERT INTO otel_endpoints (url, first_push_at) VALUES (?, ?) ON CONFLICT (url) DO NOTHING",
                 (url, now))
    return conn.execute("SELECT id FROM otel_endpoints WHERE url = ?", (url,)).fetchone()[0]


_OTEL_KINDS = (("executions", "agent_executions", "in_progress"), ("orchestrations", "orchestrations", "running"))


def begin_otel_pass(conn: sqlite3.Connection, endpoint_id: int) -> dict[str, tuple[int, int]]:
    """Start a push to the endpoint (inside a write transaction, so that nothing commits between
    what is read here): move the rows changed since the last push (*_recheck_from) into
    *_checked_through, durably, so that a push that fails or is killed leaves them to be read again.

    Returns, for "executions" and "orchestrations", (start, through): the id the push reads after,
    and how far a push accepted to its end may move *_checked_through (the highest id now, kept
    below the first row still in progress: it has not been sent, and its id is older than new rows')."""
    found: dict[str, tuple[int, int]] = {}
    for kind, table, open_status in _OTEL_KINDS:
        conn.execute(f"UPDATE otel_endpoints SET {kind}_checked_through = min({kind}_checked_through,"
                     f" coalesce({kind}_recheck_from - 1, {kind}_checked_through)), {kind}_recheck_from = NULL"
                     f" WHERE id = ? AND {kind}_recheck_from IS NOT NULL", (endpoint_id,))
        start = conn.execute(f"SELECT {kind}_checked_through FROM otel_endpoints WHERE id = ?",
                             (endpoint_id,)).fetchone()[0]
        highest = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
        first_open = conn.execute(f"SELECT min(+id) FROM {table} WHERE status = ?", (open_status,)).fetchone()[0]
        found[kind] = (start, highest if first_open is None else min(highest, first_open - 1))
    return found


def end_otel_pass(conn: sqlite3.Connection, endpoint_id: int, began: dict[str, tuple[int, int]]) -> None:
    """A push whose every request was accepted: move *_checked_through to `through` of what
    begin_otel_pass returned. Another push that began meanwhile may have lowered it (rows changed):
    then it only goes lower. Rows changed during this push are in *_recheck_from, for the next one."""
    for kind, (start, through) in began.items():
        moved = (f"CASE WHEN {kind}_checked_through = :start THEN :through"
                 f" ELSE min({kind}_checked_through, :through) END")
        conn.execute(f"UPDATE otel_endpoints SET {kind}_checked_through = {moved}"
                     f" WHERE id = :id AND {kind}_checked_through != {moved}",  # (an idle round writes nothing)
                     {"start": start, "through": through, "id": endpoint_id})


def mark_otel_sent(conn: sqlite3.Connection, endpoint_id: int, now: str, executions: list[tuple[int, str | None]],
                   orchestrations: list[tuple[int, str | None]]) -> None:
    """Record that the endpoint accepted these executions' and orchestrations' spans, each as
    (id, the completed_at it was sent with). A row deleted meanwhile is skipped: its mark would
    have nothing to point to."""
    for table, column, rows in (("agent_executions", "execution_id", executions),
                                ("orchestrations", "orchestration_id", orchestrations)):
        conn.executemany(
            f"INSERT INTO otel_sent_{table.split('_')[-1]} ({column}, endpoint_id, completed_at, sent_at)"
            f" SELECT id, ?, ?, ? FROM {table} WHERE id = ?"
            f" ON CONFLICT ({column}, endpoint_id) DO UPDATE SET completed_at = excluded.completed_at,"
            " sent_at = excluded.sent_at", [(endpoint_id, completed_at, now, i) for i, completed_at in rows])


def import_event(conn: sqlite3.Connection, orchestration_id: int | None, execution_id: int | None, timestamp: str,
                 event_type: str, message: str | None, payload: str | None, dedup_key: str | None) -> bool:
    """An event read from an export file, unless it is there already: the same dedup_key, or (with
    none) the same execution, orchestration, time, type, message and payload. True if inserted."""
    if dedup_key is not None:
        return insert_event(conn, timestamp, event_type, message, payload, execution_id, orchestration_id,
                            dedup_key) is not None
    return conn.execute(
        "INSERT INTO events (orchestration_id, execution_id, timestamp, type, message, payload)"
        " SELECT :o, :e, :t, :type, :message, :payload WHERE NOT EXISTS (SELECT 1 FROM events"
        " WHERE execution_id IS :e AND timestamp = :t AND orchestration_id IS :o AND type = :type"
        " AND message IS :message AND payload IS :payload)",
        {"o": orchestration_id, "e": execution_id, "t": timestamp, "type": event_type, "message": message,
         "payload": payload}).rowcount > 0
