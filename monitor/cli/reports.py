"""Report commands: list, show, agent, executions, health, performance, failures, cost, logs, search."""

from __future__ import annotations

from datetime import timedelta

import click

from monitor.cli.options import (COUNT, Age, Output, Window, agent_option, command, db_option, limit_option, now,
                                 output_options, read_db, since_option, status_option)
from monitor.cli.output import nothing_found, render_log
from monitor.read import queries, reports
from monitor.store.db import EXECUTION_STATUSES, ORCHESTRATION_STATUSES
from monitor.verdict import EXIT_CODES, VERDICT_OF_HEALTH

LIST_TABLE = ["session_id", "status", "total_tasks", "completed_tasks", "failed_tasks", "executions",
              "duration_ms", "cost_usd", "started_at", "task_description"]
EXECUTIONS_TABLE = ["agent_session_id", "agent_name", "task_id", "status", "duration_ms", "retry_count",
                    "exit_code", "cost_usd", "started_at", "error_message"]
RECENT_EXECUTIONS_TABLE = ["session_id", "agent_session_id", "status", "duration_ms", "started_at", "error_message"]
#: Speed and reliability (tokens per agent are `cost`'s table): what fits a terminal of 120 columns.
PERFORMANCE_TABLE = ["agent_name", "executions", "failed", "success_rate", "avg_duration_ms", "p50_duration_ms",
                     "p95_duration_ms", "max_duration_ms", "retries", "cost_usd", "unpriced"]
PERFORMANCE_BY_DAY_TABLE = ["day", "agent_name", "executions", "failed", "success_rate", "avg_duration_ms",
                            "p50_duration_ms", "p95_duration_ms", "cost_usd", "unpriced"]
FAILED_EXECUTIONS_TABLE = ["session_id", "agent_name", "agent_session_id", "exit_code", "duration_ms", "started_at",
                           "error_message"]
FAILED_ORCHESTRATIONS_TABLE = ["session_id", "status", "completed_tasks", "failed_tasks", "total_tasks",
                               "completion_rate", "duration_ms", "started_at", "first_error"]


@command("list")
@db_option
@since_option
@status_option(ORCHESTRATION_STATUSES)
@agent_option
@limit_option(50)
@output_options()
def list_(db_path: str, since: str | None, status: str | None, agent: str | None, limit: int | None,
          out: Output) -> None:
    """List orchestrations, newest first.

    \b
    Example:
      monitor list --since 7d --status failed
    """
    with read_db(db_path) as db:
        found = queries.orchestration_page(db, queries.Filters(since, status, agent, out.limit(limit, 50)))
    out.page(found, queries.ORCHESTRATION_LIST_COLUMNS, table_columns=LIST_TABLE, noun="orchestration",
             empty=nothing_found("No orchestrations", since, status=status, agent=agent))


@command()
@db_option
@click.argument("session")
@output_options(tabular=False)
def show(db_path: str, session: str, out: Output) -> None:
    """Show one orchestration with a summary of its executions.

    \b
    Example:
      monitor show build-1234
    """
    with read_db(db_path) as db:
        summary = reports.orchestration_summary(db, session)
    out.record(summary)


@command()
@db_option
@click.argument("name")
@since_option
@output_options(tabular=False)
def agent(db_path: str, name: str, since: str | None, out: Output) -> None:
    """Show one agent's statistics (p50/p95 duration, retries, tokens, cost) and latest runs.

    \b
    Example:
      monitor agent backend-agent --since 30d
    """
    with read_db(db_path) as db:
        report = reports.agent_report(db, name, since)
    out.record(report, sections={"recent_executions": RECENT_EXECUTIONS_TABLE})


@command()
@db_option
@click.argument("session", required=False)
@since_option
@status_option(EXECUTION_STATUSES)
@agent_option
@limit_option(100)
@output_options()
def executions(db_path: str, session: str | None, since: str | None, status: str | None,
               agent: str | None, limit: int | None, out: Output) -> None:
    """List the executions of one orchestration in order, or of all (newest first).

    \b
    Example:
      monitor executions build-1234 --status failed
      monitor executions --agent tests --since 24h --csv
    """
    with read_db(db_path) as db:
        found = queries.executions_page(db, session, queries.Filters(since, status, agent, out.limit(limit, 100)))
    subject = f"No executions in {session!r}" if session else "No executions"
    out.page(found, queries.EXECUTION_LIST_COLUMNS, table_columns=EXECUTIONS_TABLE, noun="execution",
             empty=nothing_found(subject, since, status=status, agent=agent))


@command()
@db_option
@click.argument("hours", type=Window(), default=24)
@click.option("--stale-after", type=Age(), default="1h", show_default=True, metavar="AGE",
              help="An execution in progress for longer than AGE counts as stale.")
@click.option("--warn-below", type=click.FloatRange(0, 100), default=95.0, show_default=True,
              help="Success rate (%) under which health is degraded.")
@click.option("--fail-below", type=click.FloatRange(0, 100), default=80.0, show_default=True,
              help="Success rate (%) under which health is unhealthy (at most --warn-below).")
@click.option("--strict", is_flag=True, hidden=True,
              help="Accepted for older scripts: a degraded verdict exits 3 anyway.")
@output_options(tabular=False)
@click.pass_context
def health(ctx: click.Context, db_path: str, hours: float, stale_after: timedelta, warn_below: float,
           fail_below: float, strict: bool, out: Output) -> None:
    """Show system health over the last HOURS (24, or an age: 24h, 7d). Exits 0 healthy, 3 degraded, 4 unhealthy.

    \b
    Example:
      monitor health 24 --stale-after 30m || notify-team
      monitor health 7d --fmt github >> "$GITHUB_STEP_SUMMARY"
    """
    if fail_below > warn_below:
        raise click.BadParameter(f"{fail_below:g} is above --warn-below ({warn_below:g}): a success rate"
                                 f" cannot be unhealthy before it is degraded", param_hint="'--fail-below'")
    with read_db(db_path) as db:
        report = reports.health(db, hours, stale_after=stale_after, warn_below=warn_below, fail_below=fail_below,
                                now=now(ctx))
    out.record(report)
    ctx.exit(EXIT_CODES[VERDICT_OF_HEALTH[report["status"]]])


@command()
@db_option
@since_option
@click.option("--by", type=click.Choice(["agent", "day"]), default="agent", show_default=True,
              help="Per agent, or per day and agent (reaching back past cleanup, through the daily roll-ups).")
@agent_option
@output_options()
def performance(db_path: str, since: str | None, by: str, agent: str | None, out: Output) -> None:
    """Show per-agent performance: success rate, p50/p95 duration, retries, tokens, cost.

    \b
    Example:
      monitor performance --since 30d
      monitor performance --by day --since 365d --agent tests
    """
    if by == "day":
        from monitor.read.daily import DAILY_COLUMNS, performance_by_day

        with read_db(db_path) as db:
            days = performance_by_day(db, since, agent)
        out.rows(days, DAILY_COLUMNS, table_columns=PERFORMANCE_BY_DAY_TABLE,
                 empty=nothing_found("No executions", since, agent=agent))
        return
    with read_db(db_path) as db:
        found = reports.performance(db, since)
    if agent is not None:
        found = [row for row in found if row["agent_name"] == agent]
    out.rows(found, reports.PERFORMANCE_COLUMNS, table_columns=PERFORMANCE_TABLE,
             empty=nothing_found("No executions", since, agent=agent))


@command()
@db_option
@click.argument("latest", metavar="[LIMIT]", type=COUNT, required=False)
@limit_option(50)
@click.option("--executions", "by_execution", is_flag=True,
              help="List failed executions (with their error) instead of orchestrations.")
@since_option
@status_option(("failed", "partial"))
@agent_option
@output_options()
def failures(db_path: str, latest: int | None, limit: int | None, by_execution: bool, since: str | None,
             status: str | None, agent: str | None, out: Output) -> None:
    """Show the latest LIMIT failed or partial orchestrations (as --limit: 50 in a table, 0 for all).

    \b
    Example:
      monitor failures 20 --since 7d
      monitor failures --executions --agent tests
    """
    if latest is not None and limit is not None and latest != limit:
        raise click.BadParameter(f"LIMIT {latest} and --limit {limit} disagree: give one", param_hint="'--limit'")
    if by_execution and status:
        raise click.BadParameter("failed executions have no other status; --status filters orchestrations",
                                 param_hint="'--status'")
    filters = queries.Filters(since, status, agent, out.limit(limit if latest is None else latest, 50))
    with read_db(db_path) as db:
        found = reports.failures_page(db, filters, executions=by_execution)
    columns, table_columns, noun = _FAILURES[by_execution]
    subject = "No failed executions" if by_execution else "No orchestrations" if status else f"No {noun}s"
    out.page(found, columns, table_columns=table_columns, noun=noun,
             empty=nothing_found(subject, since, status=status, agent=agent))


#: What `failures` prints of orchestrations (False) or, with --executions, of executions (True):
#: every column, the table's, and what a row is.
_FAILURES = {
    False: (reports.FAILED_ORCHESTRATION_COLUMNS, FAILED_ORCHESTRATIONS_TABLE, "failed or partial orchestration"),
    True: (queries.EXECUTION_LIST_COLUMNS, FAILED_EXECUTIONS_TABLE, "failed execution"),
}


@command()
@db_option
@click.argument("session")
@agent_option
@click.option("--type", "event_type", metavar="TYPE", help="Only events of this type (tool_call, error, llm_call...).")
@since_option
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events until Ctrl-C.")
@output_options()
@click.pass_context
def logs(ctx: click.Context, db_path: str, session: str, agent: str | None, event_type: str | None,
         since: str | None, follow: bool, out: Output) -> None:
    """Show the event log of SESSION (or of one execution id) in time order.

    \b
    Example:
      monitor logs build-1234 --agent tests --type error
      monitor logs build-1234 --follow --nl
    """
    from monitor.read.logs import EventFilter

    empty = nothing_found(f"No events for {session!r}", since, agent=agent, type=event_type)
    with read_db(db_path) as db:
        try:
            for text in render_log(db, EventFilter(session, agent, event_type, since), out.fmt, follow=follow,
                                   style=out.style, empty=empty):
                if text:
                    click.echo(text, color=True)  # exact text (see Output.rows)
        except KeyboardInterrupt:
            ctx.exit(130)


@command("search")
@db_option
@click.argument("text")
@since_option
@limit_option(50)
@output_options()
def search_(db_path: str, text: str, since: str | None, limit: int | None, out: Output) -> None:
    """Search event messages and execution error messages for TEXT (all its words), newest first.

    \b
    Example:
      monitor search "permission denied" --since 7d
    """
    from monitor.read.logs import SEARCH_COLUMNS, search_page

    with read_db(db_path) as db:
        found = search_page(db, text, since=since, limit=out.limit(limit, 50))
    out.page(found, SEARCH_COLUMNS, noun="match", nouns="matches",
             empty=nothing_found(f"Nothing matches {text!r}", since, yet=False))


@command()
@db_option
@since_option
@click.option("--by", type=click.Choice(["agent", "model", "session"]), default="agent", show_default=True,
              help="Group the cost by agent, model or session.")
@output_options()
def cost(db_path: str, since: str | None, by: str, out: Output) -> None:
    """Show tokens and cost (USD) by agent, model or session; unpriced = cost unknown.

    \b
    Example:
      monitor cost --since 30d --by model
    """
    from monitor.read.costs import COST_COLUMNS, cost_report

    with read_db(db_path) as db:
        found = cost_report(db, since, by, with_total=out.fmt == "table")  # a total row for people only
    out.rows(found, [by, *COST_COLUMNS], empty=nothing_found("No tokens or cost", since),
             missing={by: "(none)"})  # executions without a model (or a session): null in JSON


@command()
@db_option
@since_option
@click.option("--by", type=click.Choice(["tool", "server"]), default="tool", show_default=True,
              help="Group by tool, or by MCP server / external service.")
@output_options()
def tools(db_path: str, since: str | None, by: str, out: Output) -> None:
    """Show tool and service calls by tool or server: calls, failures, interrupts, p50/p95 time.

    \b
    Example:
      monitor tools --since 7d --by server
    """
    from monitor.read.tools import TOOL_COLUMNS, tool_report

    with read_db(db_path) as db:
        found = tool_report(db, since, by)
    out.rows(found, [by, *TOOL_COLUMNS], empty=nothing_found("No tool calls", since),
             missing={by: "(built-in)" if by == "server" else "(none)"})


COMMANDS = [list_, show, agent, executions, health, performance, failures, cost, tools, logs, search_]
