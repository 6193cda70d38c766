"""The Python API: the orchestration and execution lifecycle, one short transaction per event."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from monitor.store.db import EXECUTION_STATUSES, ORCHESTRATION_STATUSES, Database, open_db
from monitor.errors import InvalidInput, MonitorError, NotFound
from monitor.capture.events import Usage, add_usage, check_type, insert_event, report_failure, resolve_owner
from monitor.capture.git import head_commit
from monitor.capture.scrub import metadata_only, redact, size_of
from monitor.read.pricing import PriceTable, load_prices
from monitor.timeutil import format_timestamp, utcnow
from monitor.store.writes import (end_execution, finish_orchestration, insert_orchestration, insert_tool_call,
                                  reopen_reaped, start_execution)


Clock = Callable[[], datetime]


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must be a non-empty string, got {value!r}")
    return value


def _count(name: str, value: object, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{name} must be a whole number >= 0, got {value!r}")
    return value


def _status(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(f"status must be one of {', '.join(allowed)}; got {value!r}")
    return value


@dataclass
class ExecutionRun:
    """What the `execution()` block fills in; it is recorded when the block ends."""

    agent_session_id: str
    id: int
    status: str | None = None
    error_message: str | None = None
    files_created: int = 0
    files_modified: int = 0
    retry_count: int = 0
    self_healed: bool = False
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: float | None = None
    exit_code: int | None = None

    def fail(self, message: str) -> None:
        """Record the execution as failed without raising."""
        self.status, self.error_message = "failed", message


@dataclass
class OrchestrationRun:
    session_id: str
    id: int
    status: str | None = None
    completed_tasks: int | None = None
    failed_tasks: int | None = None


class Tracker:
    """Records orchestrations and agent executions.

    Safe to use from many processes at once: each call is one short write transaction that
    waits (busy_timeout) rather than failing while another process writes.
    """

    def __init__(self, db: Database | str | os.PathLike[str] | None = None, *, clock: Clock = utcnow,
                 prices: PriceTable | str | os.PathLike[str] | None = None):
        self.db = db if isinstance(db, Database) else open_db(db)
        self.clock = clock
        self._prices = prices  # a table, or a user price file loaded on first use

    @property
    def prices(self) -> PriceTable:
        """The price table costs are computed with: bundled, overlaid by the user's file if any."""
        if not isinstance(self._prices, PriceTable):
            self._prices = load_prices(self._prices)
        return self._prices

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def batch(self) -> Iterator[Tracker]:
        """Record everything inside the block in one transaction: one commit for many events.

        For bulk recording (an import, a replayed log, a loop of short executions): each call
        inside still checks and records as usual, and one that fails undoes only itself (a
        savepoint); the block commits when it ends, or records nothing if it raises. Other
        processes wait for the write lock until then, so keep a batch to seconds, not minutes.

            with tracker.batch():
                for item in items:
                    tracker.start_agent_execution(item.id, "importer")
                    tracker.complete_agent_execution(item.id, "completed")
        """
        with self.db.transaction():
            yield self

    def _now(self) -> str:
        return format_timestamp(self.clock())

    # -- orchestrations -------------------------------------------------------------------

    def start_orchestration(
        self,
        session_id: str,
        task_description: str | None = None,
        total_tasks: int = 0,
        git_commit_hash: str | None = None,
        plan_file_path: str | None = None,
        progress_file_path: str | None = None,
    ) -> int:
        """Record a new running orchestration and return its id.

        If session_id is already recorded, nothing changes and the existing id is returned:
        starting twice (a retried CI step, a resumed session) is not an error.
        git_commit_hash defaults to HEAD of the git work tree around the current directory.
        """
        _text("session_id", session_id)
        _count("total_tasks", total_tasks)
        if git_commit_hash is None:
            git_commit_hash = head_commit()
        with self.db.transaction() as conn:
            return insert_orchestration(conn, session_id, self._now(), task_description=task_description,
                                        total_tasks=total_tasks, git_commit_hash=git_commit_hash,
                                        plan_file_path=plan_file_path, progress_file_path=progress_file_path)

    def complete_orchestration(
        self,
        session_id: str,
        status: str | None = None,
        completed_tasks: int | None = None,
        failed_tasks: int | None = None,
    ) -> None:
        """Mark an orchestration finished.

        status None derives it from the executions: failed if all that finished failed,
        partial if some did, else completed. Task counts left as None are counted from the
        executions too. Raises NotFound for an unknown session_id.
        """
        if status is not None:
            _status(status, ORCHESTRATION_STATUSES[1:])
        _count("completed_tasks", completed_tasks, optional=True)
        _count("failed_tasks", failed_tasks, optional=True)
        with self.db.transaction() as conn:
            self._finish_orchestration(conn, session_id, status, completed_tasks, failed_tasks, final=True)

    def sync_orchestration(self, session_id: str) -> str:
        """Derive an orchestration's status and counts from its executions; return the status.

        'running' while any execution is in progress, otherwise as complete_orchestration(status=None).
        This is how orchestrations built from separate `monitor run` calls stay current.
        """
        with self.db.transaction() as conn:
            return self._finish_orchestration(conn, session_id, None, None, None, final=False)

    def _finish_orchestration(self, conn: sqlite3.Connection, session_id: str, status: str | None,
                              completed_tasks: int | None, failed_tasks: int | None, final: bool) -> str:
        row = conn.execute(
            "SELECT id FROM orchestrations WHERE session_id = ?", (session_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no orchestration with session id {session_id!r}")
        return finish_orchestration(conn, row[0], self._now(), status, completed_tasks, failed_tasks, final=final)

    @contextmanager
    def orchestration(self, session_id: str, **start: object) -> Iterator[OrchestrationRun]:
        """Start an orchestration, complete it when the block ends.

        If the block raises, the orchestration is recorded as failed and the exception re-raised.
        Set run.status / run.completed_tasks / run.failed_tasks inside to override the derived ones.
        """
        run = OrchestrationRun(session_id, self.start_orchestration(session_id, **start))  # type: ignore[arg-type]
        try:
            yield run
        except BaseException:
            self.complete_orchestration(session_id, "failed", run.completed_tasks, run.failed_tasks)
            raise
        self.complete_orchestration(session_id, run.status, run.completed_tasks, run.failed_tasks)

    # -- agent executions -----------------------------------------------------------------

    def start_agent_execution(
        self,
        agent_session_id: str,
        agent_name: str,
        orchestration: str | None = None,
        task_id: str | None = None,
        task_number: int | None = None,
        model: str | None = None,
    ) -> int:
        """Record a running execution of agent_name and return its id.

        orchestration is the session_id of the orchestration it belongs to (started if new, as
        `monitor run --session` does), or None for a stand-alone execution; that orchestration's
        status and counts then follow its executions. Starting an agent_session_id twice returns
        the existing id.
        """
        _text("agent_session_id", agent_session_id)
        _text("agent_name", agent_name)
        _count("task_number", task_number, optional=True)
        if orchestration is not None:
            _text("orchestration", orchestration)
        commit = head_commit() if orchestration is not None else None
        with self.db.transaction() as conn:
            return start_execution(conn, agent_session_id, agent_name, self._now(), session_id=orchestration,
                                   git_commit_hash=commit, task_id=task_id, task_number=task_number, model=model)

    def complete_agent_execution(
        self,
        agent_session_id: str,
        status: str = "completed",
        error_message: str | None = None,
        files_created: int | None = None,
        files_modified: int | None = None,
        retry_count: int | None = None,
        self_healed: bool | None = None,
        *,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        cost_usd: float | None = None,
        exit_code: int | None = None,
        summary_report_path: str | None = None,
        session_log_path: str | None = None,
    ) -> None:
        """Mark an execution completed or failed; its duration is counted from its start.

        Values left as None keep what is already stored (counts and flags start at 0).
        Raises NotFound for an unknown agent_session_id, InvalidInput for one already completed or
        failed; one that `monitor reap` failed (no completion in time) takes this real end instead.
        """
        _status(status, EXECUTION_STATUSES[1:])
        for name, value in (("files_created", files_created), ("files_modified", files_modified),
                            ("retry_count", retry_count)):
            _count(name, value, optional=True)
        for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens),
                            ("cache_read_tokens", cache_read_tokens),
                            ("cache_write_tokens", cache_write_tokens)):
            _count(name, value, optional=True)
        if cost_usd is not None and (not isinstance(cost_usd, (int, float)) or cost_usd < 0):
            raise InvalidInput(f"cost_usd must be a number >= 0, got {cost_usd!r}")
        tokens = (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
        fields = {"error_message": redact(error_message) if isinstance(error_message, str) else error_message,
                  "files_created": files_created, "files_modified": files_modified,
                  "retry_count": retry_count, "self_healed": None if self_healed is None else int(bool(self_healed)),
                  "model": model, "input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_read_tokens": cache_read_tokens, "cache_write_tokens": cache_write_tokens,
                  "cost_usd": cost_usd, "exit_code": exit_code, "summary_report_path": summary_report_path,
                  "session_log_path": session_log_path}
        with self.db.transaction() as conn:
            row = conn.execute("SELECT id, orchestration_id, status, completed_at, model FROM agent_executions"
                               " WHERE agent_session_id = ?", (agent_session_id,)).fetchone()
            if row is None:
                raise NotFound(f"no agent execution with id {agent_session_id!r}")
            execution_id, orchestration_id, stored_status, completed_at, stored_model = row
            if stored_status != "in_progress" and not reopen_reaped(conn, execution_id):
                raise InvalidInput(f"agent execution {agent_session_id!r} is already {stored_status}"
                                   f" (at {completed_at}): an execution is completed once")
            if cost_usd is None and any(t is not None for t in tokens):
                fields["cost_usd"] = self._cost(model or stored_model, *tokens)
            end_execution(conn, execution_id, orchestration_id, status, self._now(), fields)

    def _cost(self, model: str | None, *tokens: int | None) -> float | None:
        """The cost of usage given at completion, priced by the execution's model (None if unpriced)."""
        try:
            return self.prices.cost(model, *tokens)
        except MonitorError as exc:  # a broken price file: record the run, leave its cost unknown
            report_failure("the cost (price file)", exc)
            return None

    # -- events ---------------------------------------------------------------------------

    def event(
        self,
        type: str,
        message: str | None = None,
        payload: object = None,
        *,
        execution: str | None = None,
        orchestration: str | None = None,
    ) -> int | None:
        """Append an event to an execution's log (by agent_session_id) or an orchestration's
        (by session_id) and return its id.

        type is started, status_changed, llm_call, tool_call, output, error, retry or your own
        lowercase word; payload is anything JSON can hold. Secrets in both are redacted; with
        MONITOR_CAPTURE=metadata neither is kept, only their sizes. Never raises: a failure to
        record is reported as an EventWarning and None is returned, so logging cannot fail the agent.
        """
        try:
            if metadata_only():
                message, payload = None, {f"{name}_bytes": size_of(value) for name, value in
                                          (("message", message), ("payload", payload)) if value is not None} or None
            check_type(type)
            with self.db.transaction() as conn:
                execution_id, orchestration_id = resolve_owner(conn, execution, orchestration)
                return insert_event(conn, self._now(), type, message, payload, execution_id, orchestration_id)
        except Exception as exc:  # noqa: BLE001 - the contract: never fail the caller
            report_failure(f"a {type!r} event", exc)
            return None

    def record_llm_call(
        self,
        agent_session_id: str,
        model: str | None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        duration_ms: int | None = None,
        *,
        cost_usd: float | None = None,
        calls: int = 1,
    ) -> float | None:
        """Record an LLM call of an execution: an llm_call event, and its tokens and cost added
        to the execution's totals. Returns the call's cost in dollars.

        The cost comes from the price table unless cost_usd is given; a model without a price
        is unpriced: None here, and the execution's cost becomes unknown (NULL), never $0.
        Never raises (see event()); returns None on failure too.
        """
        try:
            usage = Usage(model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                          calls, duration_ms).validate()
            prices = self.prices if cost_usd is None else PriceTable()
            with self.db.transaction() as conn:
                execution_id, orchestration_id = resolve_owner(conn, agent_session_id, None)
                return add_usage(conn, self._now(), execution_id, orchestration_id, usage, prices,  # type: ignore[arg-type]
                                 cost_usd)
        except Exception as exc:  # noqa: BLE001 - the contract: never fail the caller
            report_failure("an LLM call", exc)
            return None

    def record_service_call(self, agent_session_id: str, service: str, operation: str, *,
                            duration_ms: int | None = None, outcome: str = "ok") -> bool:
        """Record a call an execution made to an external service (an API, a database, an MCP
        server): `monitor tools` reports it beside Claude Code's tool calls, by operation (`--by
        tool`) and by service (`--by server`). outcome is 'ok', 'failed' or 'interrupted'.
        Never raises (see event()); returns whether it was recorded."""
        try:
            _text("service", service)
            _text("operation", operation)
            _count("duration_ms", duration_ms, optional=True)
            if outcome not in ("ok", "failed", "interrupted"):
                raise InvalidInput(f"outcome must be ok, failed or interrupted; got {outcome!r}")
            with self.db.transaction() as conn:
                execution_id, _ = resolve_owner(conn, agent_session_id, None)
                return insert_tool_call(conn, execution_id, self._now(), operation, service, outcome, duration_ms)
        except Exception as exc:  # noqa: BLE001 - the contract: never fail the caller
            report_failure("a service call", exc)
            return False

    @contextmanager
    def execution(
        self,
        agent_name: str,
        agent_session_id: str | None = None,
        orchestration: str | None = None,
        task_id: str | None = None,
        task_number: int | None = None,
        model: str | None = None,
    ) -> Iterator[ExecutionRun]:
        """Start an execution, complete it when the block ends.

        Fill in the yielded ExecutionRun (files, tokens, cost...) inside the block. If the block
        raises, the execution is recorded as failed with the exception's message, and re-raised.
        """
        agent_session_id = agent_session_id or f"{agent_name}-{uuid.uuid4().hex[:12]}"
        run = ExecutionRun(
            agent_session_id,
            self.start_agent_execution(agent_session_id, agent_name, orchestration, task_id,
                                       task_number, model),
        )
        try:
            yield run
        except BaseException as exc:
            message = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
            run.fail(run.error_message or message)
            self._complete_run(run)
            raise
        self._complete_run(run)

    def _complete_run(self, run: ExecutionRun) -> None:
        self.complete_agent_execution(
            run.agent_session_id, run.status or "completed", run.error_message, run.files_created,
            run.files_modified, run.retry_count, run.self_healed, model=run.model,
            input_tokens=run.input_tokens, output_tokens=run.output_tokens,
            cache_read_tokens=run.cache_read_tokens, cache_write_tokens=run.cache_write_tokens,
            cost_usd=run.cost_usd, exit_code=run.exit_code,
        )
