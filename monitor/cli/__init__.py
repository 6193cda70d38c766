"""The `monitor` command line: parse, call one library function, render. Nothing else."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from monitor import __version__
from monitor.read import queries, reports
from monitor.store.db import DEFAULT_PATH, ENV_VAR, EXECUTION_STATUSES, ORCHESTRATION_STATUSES, Database, open_db
from monitor.errors import DatabaseError, InvalidInput, MonitorError
from monitor.cli.output import render_record, render_rows
from monitor.timeutil import format_timestamp, parse_duration, parse_since


class BadInput(click.ClickException):
    exit_code = 2


class MonitorGroup(click.Group):
    """Turns the library's expected failures into one-line errors: exit 1, or 2 for bad input."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidInput as exc:
            raise BadInput(str(exc)) from None
        except MonitorError as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.Error as exc:
            raise click.ClickException(f"database error: {exc}") from None
        except BrokenPipeError:
            sys.stderr.close()  # `monitor export | head`: stop quietly
            ctx.exit(1)


def db_option(f: Callable) -> Callable:
    return click.option(
        "--db", "db_path", envvar=ENV_VAR, default=DEFAULT_PATH, show_default=True,
        type=click.Path(dir_okay=False), help=f"Database file (or set {ENV_VAR}).",
    )(f)


def output_options(tabular: bool = True) -> Callable:
    """--table (default) / --json, and for row lists --csv / --nl: one `fmt` value."""
    formats = [("table", "Readable table (default)."), ("json", "JSON.")]
    if tabular:
        formats += [("csv", "CSV with a header row."), ("nl", "One JSON object per line.")]

    def decorate(f: Callable) -> Callable:
        for name, help_text in reversed(formats):
            default = {"default": True} if name == "table" else {}  # only the default switch says so
            f = click.option(f"--{name}", "fmt", flag_value=name, help=help_text, **default)(f)
        return f

    return decorate


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return format_timestamp(parse_since(value))
    except InvalidInput as exc:
        raise click.BadParameter(str(exc)) from None


def since_option(f: Callable) -> Callable:
    return click.option("--since", callback=_since, metavar="WHEN",
                        help="Only what started after WHEN: 24h, 7d, 2026-11-01, '2026-11-01 14:00' (UTC).")(f)


def agent_option(f: Callable) -> Callable:
    return click.option("--agent", metavar="NAME", help="Only this agent's executions.")(f)


def limit_option(default: int) -> Callable:
    return click.option("--limit", type=click.IntRange(min=0), default=default, show_default=True,
                        help="Show at most this many rows (0 for all).")


def status_option(choices: tuple[str, ...]) -> Callable:
    return click.option("--status", type=click.Choice(choices), help="Only rows with this status.")


#: `cleanup -1` reaches the argument's range check ("-1 is not in the range x>=0") instead of
#: being taken for an unknown option.
_NUMBERS_MAY_BE_NEGATIVE = {"ignore_unknown_options": True}


def _read(db_path: str) -> Database:
    return open_db(db_path, create=False)


@click.group(cls=MonitorGroup)
@click.version_option(__version__, prog_name="monitor")
def cli() -> None:
    """Record AI-agent orchestrations and executions in SQLite, and report on them.

    \b
    Example:
      monitor run --agent tests -- pytest -q
      monitor health 24
    """


@cli.command("list")
@db_option
@since_option
@status_option(ORCHESTRATION_STATUSES)
@agent_option
@limit_option(50)
@output_options()
def list_(db_path: str, since: str | None, status: str | None, agent: str | None, limit: int, fmt: str) -> None:
    """List orchestrations, newest first.

    \b
    Example:
      monitor list --since 7d --status failed
    """
    with _read(db_path) as db:
        found = queries.list_orchestrations(db, queries.Filters(since, status, agent, limit))
    click.echo(render_rows(
        found, fmt, queries.ORCHESTRATION_LIST_COLUMNS,
        table_columns=["session_id", "status", "total_tasks", "completed_tasks", "failed_tasks",
                       "executions", "duration_ms", "cost_usd", "started_at", "task_description"],
        empty="No orchestrations found.",
    ))


@cli.command()
@db_option
@click.argument("session")
@output_options(tabular=False)
def show(db_path: str, session: str, fmt: str) -> None:
    """Show one orchestration with a summary of its executions.

    \b
    Example:
      monitor show build-1234
    """
    with _read(db_path) as db:
        summary = reports.orchestration_summary(db, session)
    click.echo(render_record(summary, fmt))


@cli.command()
@db_option
@click.argument("name")
@since_option
@output_options(tabular=False)
def agent(db_path: str, name: str, since: str | None, fmt: str) -> None:
    """Show one agent's statistics (p50/p95 duration, retries, tokens, cost) and latest runs.

    \b
    Example:
      monitor agent backend-agent --since 30d
    """
    with _read(db_path) as db:
        report = reports.agent_report(db, name, since)
    click.echo(render_record(report, fmt, sections={"recent_executions": [
        "session_id", "agent_session_id", "status", "duration_ms", "started_at", "error_message"]}))


@cli.command()
@db_option
@click.argument("session", required=False)
@since_option
@status_option(EXECUTION_STATUSES)
@agent_option
@limit_option(100)
@output_options()
def executions(db_path: str, session: str | None, since: str | None, status: str | None,
               agent: str | None, limit: int, fmt: str) -> None:
    """List the executions of one orchestration in order, or of all (newest first).

    \b
    Example:
      monitor executions build-1234 --status failed
      monitor executions --agent tests --since 24h --csv
    """
    with _read(db_path) as db:
        found = queries.list_executions(db, session, queries.Filters(since, status, agent, limit))
    click.echo(render_rows(
        found, fmt, queries.EXECUTION_LIST_COLUMNS,
        table_columns=["agent_session_id", "agent_name", "task_id", "status", "duration_ms",
                       "retry_count", "exit_code", "cost_usd", "started_at", "error_message"],
        empty="No executions found.",
    ))


@cli.command(context_settings=_NUMBERS_MAY_BE_NEGATIVE)
@db_option
@click.argument("hours", type=click.IntRange(min=1, max=876_000), default=24)
@click.option("--stale-after", default="1h", show_default=True, metavar="AGE",
              help="An execution in progress for longer than AGE counts as stale.")
@click.option("--warn-below", type=click.FloatRange(0, 100), default=95.0, show_default=True,
              help="Success rate (%) under which health is degraded.")
@click.option("--fail-below", type=click.FloatRange(0, 100), default=80.0, show_default=True,
              help="Success rate (%) under which health is unhealthy.")
@click.option("--strict", is_flag=True, help="Exit 1 when degraded too, not only when unhealthy.")
@output_options(tabular=False)
@click.pass_context
def health(ctx: click.Context, db_path: str, hours: int, stale_after: str, warn_below: float,
           fail_below: float, strict: bool, fmt: str) -> None:
    """Show system health over the last HOURS hours (default 24). Exits 1 when unhealthy.

    \b
    Example:
      monitor health 24 --stale-after 30m || notify-team
    """
    try:
        stale = parse_duration(stale_after)
    except InvalidInput as exc:
        raise click.BadParameter(str(exc), param_hint="'--stale-after'") from None
    with _read(db_path) as db:
        report = reports.health(db, hours, stale_after=stale, warn_below=warn_below, fail_below=fail_below)
    click.echo(render_record(report, fmt))
    if report["status"] == "unhealthy" or (strict and report["status"] == "degraded"):
        ctx.exit(1)


@cli.command()
@db_option
@since_option
@output_options()
def performance(db_path: str, since: str | None, fmt: str) -> None:
    """Show per-agent performance: success rate, p50/p95 duration, retries, tokens, cost.

    \b
    Example:
      monitor performance --since 30d
    """
    with _read(db_path) as db:
        found = reports.performance(db, since)
    click.echo(render_rows(
        found, fmt, reports.PERFORMANCE_COLUMNS,
        table_columns=["agent_name", "executions", "failed", "success_rate", "avg_duration_ms",
                       "p50_duration_ms", "p95_duration_ms", "max_duration_ms", "retries",
                       "input_tokens", "output_tokens", "cost_usd", "unpriced"],
        empty="No executions recorded yet.",
    ))


@cli.command(context_settings=_NUMBERS_MAY_BE_NEGATIVE)
@db_option
@click.argument("limit", type=click.IntRange(min=1), default=50)
@click.option("--executions", "by_execution", is_flag=True,
              help="List failed executions (with their error) instead of orchestrations.")
@since_option
@status_option(("failed", "partial"))
@agent_option
@output_options()
def failures(db_path: str, limit: int, by_execution: bool, since: str | None, status: str | None,
             agent: str | None, fmt: str) -> None:
    """Show the latest LIMIT (default 50) failed or partial orchestrations.

    \b
    Example:
      monitor failures 20 --since 7d
      monitor failures --executions --agent tests
    """
    if by_execution and status:
        raise click.BadParameter("failed executions have no other status; --status filters orchestrations",
                                 param_hint="'--status'")
    with _read(db_path) as db:
        found = reports.failures(db, limit, queries.Filters(since, status, agent), executions=by_execution)
    if by_execution:
        click.echo(render_rows(
            found, fmt, queries.EXECUTION_LIST_COLUMNS,
            table_columns=["session_id", "agent_name", "agent_session_id", "exit_code", "duration_ms",
                           "started_at", "error_message"],
            empty="No failed executions.",
        ))
    else:
        click.echo(render_rows(
            found, fmt, reports.FAILED_ORCHESTRATION_COLUMNS,
            table_columns=["session_id", "status", "completed_tasks", "failed_tasks", "total_tasks",
                           "completion_rate", "duration_ms", "started_at", "first_error"],
            empty="No failed orchestrations.",
        ))


@cli.command()
@db_option
@click.argument("session", required=False)
@since_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to FILE (atomically) instead of standard output.")
def export(db_path: str, session: str | None, since: str | None, output: str | None) -> None:
    """Export orchestrations with their executions as JSON (all, or one SESSION).

    \b
    Example:
      monitor export > all.json
      monitor export build-1234 -o build-1234.json
    """
    import io

    from monitor.ops.export import export_to_file, write_export

    with _read(db_path) as db:
        if output:
            counts = export_to_file(db, output, session, since)
            click.echo(f"Exported {counts['orchestrations']} orchestrations and "
                       f"{counts['executions'] + counts['unassigned_executions']} executions to {output}.",
                       err=True)
            return
        stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
        try:
            write_export(db, stdout, session, since)
            stdout.flush()
        finally:
            stdout.detach()


@cli.command(context_settings=_NUMBERS_MAY_BE_NEGATIVE)
@db_option
@click.argument("days", type=click.IntRange(min=0))
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--vacuum", is_flag=True, help="Give the freed space back to the file system afterwards.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def cleanup(db_path: str, days: int, dry_run: bool, vacuum: bool, as_json: bool) -> None:
    """Delete orchestrations (with their executions) and executions older than DAYS days.

    Safe while other processes record runs: deletes go in short batches.

    \b
    Example (weekly cron):
      monitor cleanup 30 --vacuum
    """
    from monitor.ops.retention import cleanup as run_cleanup, count_old, cutoff_for

    with _read(db_path) as db:
        total = 0
        if not dry_run and not as_json and sys.stderr.isatty():
            total = sum(count_old(db, cutoff_for(days)))
        if total > 20_000:
            with click.progressbar(length=total, label="Deleting", file=sys.stderr) as bar:
                result = run_cleanup(db, days, vacuum=vacuum, progress=bar.update)
        else:
            result = run_cleanup(db, days, dry_run=dry_run, vacuum=vacuum)
    if as_json:
        click.echo(render_record(vars(result), "json"))
        return
    verb = "Would delete" if dry_run else "Deleted"
    click.echo(f"{verb} {result.orchestrations} orchestrations and {result.executions} executions "
               f"that started before {result.cutoff[:10]} {result.cutoff[11:19]} UTC."
               + (" Vacuumed." if result.vacuumed else ""))


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@db_option
@click.option("--agent", "agent_name", required=True, metavar="NAME", help="Agent name to record.")
@click.option("--session", metavar="SESSION", help="Orchestration to join (started if new).")
@click.option("--task-id", metavar="ID", help="Task id to record.")
@click.option("--id", "agent_session_id", metavar="ID", help="Execution id (default: generated).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, db_path: str, agent_name: str, session: str | None, task_id: str | None,
        agent_session_id: str | None, command: tuple[str, ...]) -> None:
    """Run COMMAND and record it as an execution of agent NAME; exits with COMMAND's exit code.

    \b
    Example:
      monitor run --agent tests --session "ci-$GITHUB_RUN_ID" -- pytest -q
    """
    from monitor.capture.runner import RecordingFailed, run_command, run_unrecorded
    from monitor.capture.tracker import Tracker

    try:
        tracker = Tracker(db_path)
    except DatabaseError as exc:  # a broken database must not stop the work itself (a CI step)
        click.echo(f"monitor: running without recording: {exc}", err=True)
        ctx.exit(run_unrecorded(command))
    try:
        code = run_command(tracker, command, agent_name, session=session, task_id=task_id,
                           agent_session_id=agent_session_id)
    except RecordingFailed as exc:
        click.echo(f"monitor: {exc}", err=True)
        code = exc.exit_code
    finally:
        tracker.close()
    ctx.exit(code)


@cli.command()
@db_option
@click.argument("session")
@agent_option
@click.option("--type", "event_type", metavar="TYPE", help="Only events of this type (tool_call, error, llm_call...).")
@since_option
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events until Ctrl-C.")
@output_options()
@click.pass_context
def logs(ctx: click.Context, db_path: str, session: str, agent: str | None, event_type: str | None,
         since: str | None, follow: bool, fmt: str) -> None:
    """Show the event log of SESSION (or of one execution id) in time order.

    \b
    Example:
      monitor logs build-1234 --agent tests --type error
      monitor logs build-1234 --follow --nl
    """
    from monitor.cli.output import render_log
    from monitor.read.logs import EventFilter

    with _read(db_path) as db:
        try:
            for text in render_log(db, EventFilter(session, agent, event_type, since), fmt, follow=follow):
                if text:
                    click.echo(text)
        except KeyboardInterrupt:
            ctx.exit(130)


@cli.command("search")
@db_option
@click.argument("text")
@since_option
@limit_option(50)
@output_options()
def search_(db_path: str, text: str, since: str | None, limit: int, fmt: str) -> None:
    """Search event messages and execution error messages for TEXT (all its words), newest first.

    \b
    Example:
      monitor search "permission denied" --since 7d
    """
    from monitor.read.logs import SEARCH_COLUMNS, search

    with _read(db_path) as db:
        found = search(db, text, since=since, limit=limit or 1_000_000)
    click.echo(render_rows(found, fmt, SEARCH_COLUMNS, empty=f"Nothing matches {text!r}."))


@cli.command()
@db_option
@since_option
@click.option("--by", type=click.Choice(["agent", "model", "session"]), default="agent", show_default=True,
              help="Group the cost by agent, model or session.")
@output_options()
def cost(db_path: str, since: str | None, by: str, fmt: str) -> None:
    """Show tokens and cost (USD) by agent, model or session; unpriced = cost unknown.

    \b
    Example:
      monitor cost --since 30d --by model
    """
    from monitor.read.costs import COST_COLUMNS, cost_report

    with _read(db_path) as db:
        found = cost_report(db, since, by, with_total=fmt == "table")  # a total row for people only
    click.echo(render_rows(found, fmt, [by, *COST_COLUMNS], empty="No tokens or cost recorded yet."))


@cli.group(invoke_without_command=True)
@click.option("--db", "db_path", envvar=ENV_VAR, default=DEFAULT_PATH, show_default=True,
              help=f"Database file (or set {ENV_VAR}).")
@click.option("--prices", metavar="FILE", envvar="MONITOR_PRICES", help="Price file laid over the bundled one.")
@click.pass_context
def hook(ctx: click.Context, db_path: str, prices: str | None) -> None:
    """Record one Claude Code hook payload read from stdin (Claude Code runs this).

    Always exits 0 and prints nothing; problems go to ~/.monitor/hook.log ($MONITOR_HOOK_LOG).

    \b
    Example:
      monitor hook install          # then use Claude Code as usual
      monitor logs SESSION_ID
    """
    if ctx.invoked_subcommand is not None:
        return
    from monitor.capture.claude.hook import handle_payload, hook_log_path

    stdin = sys.stdin.buffer
    if stdin.isatty():
        click.echo(f"monitor hook reads a Claude Code hook payload on stdin; see `monitor hook install`."
                   f" Its log: {hook_log_path()}", err=True)
        return
    handle_payload(stdin.read(), db_path, prices=prices)


def _settings_options(f: Callable) -> Callable:
    f = click.option("--user", "scope", flag_value="user", help="~/.claude/settings.json (every project).")(f)
    return click.option("--project", "scope", flag_value="project", default=True,
                        help="The project's .claude/settings.local.json, this machine's only (default):"
                             " at its git work tree's top.")(f)


@hook.command("install")
@db_option
@_settings_options
def hook_install(db_path: str, scope: str) -> None:
    """Add monitor's hooks to Claude Code's settings (merged; a backup is kept).

    \b
    Example:
      monitor hook install --db ~/monitoring.db --user
    """
    from monitor.capture.claude.hook import hook_log_path
    from monitor.capture.claude.settings import hook_command, install, settings_path

    change = install(settings_path(scope == "user"), hook_command(db_path))
    click.echo(f"Added monitor's hook for {', '.join(change.events)} to {change.path}"
               + (f" (previous file kept as {change.backup})" if change.backup else "") + ".\n"
               f"Sessions will be recorded in {Path(db_path).resolve()}; hook problems go to {hook_log_path()}.")
    if change.git_ignored is False:
        click.echo(f"Note: git does not ignore {change.path}; it holds this machine's paths, so add it to"
                   f" .gitignore rather than commit it.")


@hook.command("uninstall")
@_settings_options
def hook_uninstall(scope: str) -> None:
    """Remove monitor's hooks, and only them, from Claude Code's settings.

    \b
    Example:
      monitor hook uninstall --user
    """
    from monitor.capture.claude.settings import settings_paths, uninstall

    changes = [uninstall(path) for path in settings_paths(scope == "user")]
    for change in changes:
        if change.events:
            click.echo(f"Removed monitor's hook from {', '.join(change.events)} in {change.path}"
                       f" (previous file kept as {change.backup}).")
    if not any(change.events for change in changes):
        click.echo(f"No monitor hook in {' or '.join(str(c.path) for c in changes)}: nothing to remove.")


def main() -> None:
    cli(prog_name="monitor")
