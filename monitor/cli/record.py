"""Recording commands: run (a command as an execution) and hook (Claude Code's payloads, install, uninstall)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import timedelta

import click

from monitor.cli.options import (Age, MonitorCommand, command, db_option, hook_db_option, install_db_option,
                                 unused_db_option)
from monitor.errors import DatabaseError, InvalidInput
from monitor.store.db import DEFAULT_PATH, ENV_VAR

TYPE_CHECKING = False
if TYPE_CHECKING:
    from monitor.capture.healing import Breaker


def _breaker(ctx: click.Context, param: click.Parameter, value: str | None) -> Breaker | None:
    if value is None:
        return None
    from monitor.capture.healing import Breaker

    try:
        return Breaker.parse(value)
    except InvalidInput as exc:
        raise click.BadParameter(str(exc)) from None


@command(context_settings={"ignore_unknown_options": False, "allow_interspersed_args": False})
@db_option
@click.option("--agent", "agent_name", required=True, metavar="NAME", help="Agent name to record.")
@click.option("--session", metavar="SESSION", help="Orchestration to join (started if new).")
@click.option("--task-id", metavar="ID", help="Task id to record.")
@click.option("--id", "agent_session_id", metavar="ID", help="Execution id (default: generated).")
@click.option("--retries", type=click.IntRange(0, 100), default=0, show_default=True, metavar="N",
              help="Run COMMAND again, up to N more times, while it fails.")
@click.option("--backoff", type=Age(), default="1s", show_default=True, metavar="DURATION",
              help="Wait before the first retry; doubled for each next one (with jitter).")
@click.option("--backoff-max", type=Age(), default="60s", show_default=True, metavar="DURATION",
              help="Longest wait between retries.")
@click.option("--timeout", type=Age(), metavar="DURATION",
              help="Stop an attempt (its whole process group) after this long: failed, exit 124.")
@click.option("--kill-after", type=Age(), default="5s", show_default=True, metavar="DURATION",
              help="After --timeout's SIGTERM, SIGKILL what is left after this long.")
@click.option("--breaker", metavar="N/WINDOW", callback=_breaker,
              help="Refuse to start (exit 75) while the agent has failed N times within WINDOW (5/30m).")
@click.option("--capture", type=click.Choice(["stderr", "stdout", "both"]), default="stderr", show_default=True,
              help="The output whose last lines become the error message of a failure.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, db_path: str, agent_name: str, session: str | None, task_id: str | None,
        agent_session_id: str | None, retries: int, backoff: timedelta, backoff_max: timedelta,
        timeout: timedelta | None, kill_after: timedelta, breaker: Breaker | None, capture: str,
        command: tuple[str, ...]) -> None:
    """Run COMMAND and record it as an execution of agent NAME; exits with COMMAND's exit code.

    Everything after the first argument that is not one of monitor's options is COMMAND's.
    Exit codes besides COMMAND's own: 124 when --timeout stopped it, 75 when --breaker refused it.

    \b
    Example:
      monitor run --agent tests --session "ci-$GITHUB_RUN_ID" -- pytest -q
      monitor run --agent fetch --retries 3 --backoff 2s --timeout 10m --breaker 5/30m -- ./fetch.sh
    """
    from monitor.capture.healing import Policy
    from monitor.capture.runner import BreakerOpen, RecordingFailed, run_command, run_unrecorded

    if timeout is not None and timeout.total_seconds() <= 0:
        raise click.BadParameter("must be longer than 0", param_hint="'--timeout'")
    policy = Policy(retries=retries, backoff=backoff.total_seconds(), backoff_max=backoff_max.total_seconds(),
                    timeout=timeout.total_seconds() if timeout else None, kill_after=kill_after.total_seconds(),
                    breaker=breaker)
    def warn(message: str) -> None:
        click.echo(f"monitor: {message}", err=True)

    try:
        code = run_command(db_path, command, agent_name, session=session, task_id=task_id,
                           agent_session_id=agent_session_id, policy=policy, capture=capture, warn=warn)
    except BreakerOpen as exc:
        click.echo(f"monitor: {exc}", err=True)
        code = exc.exit_code
    except RecordingFailed as exc:
        click.echo(f"monitor: {exc}", err=True)
        code = exc.exit_code
    except DatabaseError as exc:  # before the command started: a broken database must not stop the work itself
        click.echo(f"monitor: running without recording: {exc}", err=True)
        code = run_unrecorded(command, policy, capture, warn=warn)
    ctx.exit(code)


@click.group(invoke_without_command=True)
@hook_db_option
@click.option("--prices", metavar="FILE", envvar="MONITOR_PRICES", help="Price file laid over the bundled one.")
@click.pass_context
def hook(ctx: click.Context, db_path: str | None, prices: str | None) -> None:
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


@hook.command("install", cls=MonitorCommand)
@install_db_option
@_settings_options
def hook_install(db_path: str | None, scope: str) -> None:
    """Add monitor's hooks to Claude Code's settings (merged; a backup is kept).

    \b
    Example:
      monitor hook install --user   # every project records into its own monitoring.db
    """
    from monitor.capture.claude.hook import hook_log_path
    from monitor.capture.claude.settings import hook_command, install, installed_db_path, settings_path

    db = installed_db_path(scope == "user", db_path)
    change = install(settings_path(scope == "user"), hook_command(db))
    where = db or (f"{DEFAULT_PATH} at the top of each session's project (its git work tree), or in ${ENV_VAR}"
                   " when Claude Code's environment sets it")
    click.echo(f"Added monitor's hook for {', '.join(change.events)} to {change.path}"
               + (f" (previous file kept as {change.backup})" if change.backup else "") + ".\n"
               f"Sessions will be recorded in {where}; hook problems go to {hook_log_path()}.")
    if change.git_ignored is False:
        click.echo(f"Note: git does not ignore {change.path}; it holds this machine's paths, so add it to"
                   f" .gitignore rather than commit it.")


@hook.command("uninstall", cls=MonitorCommand)
@unused_db_option
@_settings_options
def hook_uninstall(db_path: str, scope: str) -> None:
    """Remove monitor's hooks, and only them, from Claude Code's settings, whatever database they name.

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


COMMANDS = [run, hook]
