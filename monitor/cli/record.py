"""Recording commands: run (a command as an execution) and hook (Claude Code's payloads, install, uninstall)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from monitor.cli.options import (MonitorCommand, command, db_option, hook_db_option, install_db_option,
                                 unused_db_option)
from monitor.errors import DatabaseError
from monitor.store.db import DEFAULT_PATH, ENV_VAR


@command(context_settings={"ignore_unknown_options": False, "allow_interspersed_args": False})
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

    Everything after the first argument that is not one of monitor's options is COMMAND's.

    \b
    Example:
      monitor run --agent tests --session "ci-$GITHUB_RUN_ID" -- pytest -q
    """
    from monitor.capture.runner import RecordingFailed, run_command, run_unrecorded

    try:
        code = run_command(db_path, command, agent_name, session=session, task_id=task_id,
                           agent_session_id=agent_session_id)
    except RecordingFailed as exc:
        click.echo(f"monitor: {exc}", err=True)
        code = exc.exit_code
    except DatabaseError as exc:  # before the command started: a broken database must not stop the work itself
        click.echo(f"monitor: running without recording: {exc}", err=True)
        code = run_unrecorded(command)
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
