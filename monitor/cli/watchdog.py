"""Watchdog commands: check (rules as a gate), alert (notify on change) and reap (end stale executions)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import click

from monitor.cli.options import Age, FilePath, Output, Window, command, db_option, now, output_options, read_db
from monitor.cli.output import (check_junit, check_markdown, reap_summary, render_alerts, render_check,
                                render_record, render_rows)
from monitor.errors import MonitorError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from monitor.alerts.rules import Config


def rule_options(f: Callable) -> Callable:
    """What check and alert share: the window (HOURS), --session, --rule, --stale-after, --config."""
    for option in reversed([
        click.argument("hours", type=Window(), required=False),
        click.option("--session", metavar="S",
                     help="Check one orchestration (a CI run): its own failures, cost, duration."),
        click.option("--rule", "rules", multiple=True, metavar="NAME=WARN/FAIL",
                     help="Set a rule: success_rate=95/80, p95_duration=10m/30m, cost=/20 (fail only),"
                          " stale=off, agents.tests.p95_duration=5m/15m (agents.*.RULE: each agent). Repeatable."),
        click.option("--stale-after", type=Age(), metavar="AGE",
                     help="An execution in progress for longer than AGE is stale (default 1h)."),
        click.option("--config", "config_path", type=FilePath(), metavar="FILE",
                     help="Read rules from FILE (default: ./monitor.toml, else ./pyproject.toml's"
                          " [tool.monitor])."),
    ]):
        f = option(f)
    return f


def _config(hours: float | None, rules: tuple[str, ...], stale_after: timedelta | None,
            config_path: str | None) -> Config:
    """Defaults, then the config file, then the flags."""
    from monitor.alerts.rules import Config, find_config, load_config, parse_flags

    config = parse_flags(load_config(Path(config_path) if config_path else find_config(Path())), rules)
    if hours is not None or stale_after is not None:
        config = Config(hours or config.window_hours, stale_after or config.stale_after, config.rules, config.source)
    return config


@command()
@db_option
@rule_options
@click.option("--markdown", "markdown_path", type=FilePath(allow_dash=True), metavar="FILE",
              help="Also write the verdict as Markdown to FILE (- for stdout). $GITHUB_STEP_SUMMARY, when set,"
                   " gets it appended.")
@click.option("--junit", "junit_path", type=FilePath(), metavar="FILE",
              help="Also write JUnit XML to FILE: one test case per rule, failing rules as failures.")
@output_options(tabular=False)
@click.pass_context
def check(ctx: click.Context, db_path: str, hours: float | None, session: str | None, rules: tuple[str, ...],
          stale_after: timedelta | None, config_path: str | None, markdown_path: str | None,
          junit_path: str | None, out: Output) -> None:
    """Check rules over the last HOURS (default 24) or one --session. Exits 0 pass, 3 warn, 4 fail.

    \b
    Example:
      monitor check --rule activity=6h/24h --rule p95_duration=10m/30m
      monitor check --session "ci-$GITHUB_RUN_ID" --rule cost=/5 --junit monitor.xml
    """
    from monitor.alerts.check import check as run_check

    config = _config(hours, rules, stale_after, config_path)
    with read_db(db_path) as db:
        result = run_check(db, config, session=session, now=now(ctx))
    click.echo(render_record(result, "json") if out.fmt == "json" else render_check(result, out.style))
    markdown = check_markdown(result)
    for path, mode in ((markdown_path, "w"), (os.environ.get("GITHUB_STEP_SUMMARY"), "a")):
        if path == "-":
            click.echo(markdown)
        elif path:
            _write(path, markdown, mode)
    if junit_path:
        _write(junit_path, check_junit(result), "w")
    ctx.exit(result["exit_code"])


def _urls(ctx: click.Context, param: click.Parameter, urls: tuple[str, ...]) -> tuple[str, ...]:
    from urllib.parse import urlsplit

    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
            raise click.BadParameter(f"{url!r} is not an http:// or https:// URL", ctx, param)
    return urls


def _commands(ctx: click.Context, param: click.Parameter, commands: tuple[str, ...]) -> tuple[str, ...]:
    import shlex
    import shutil

    for command in commands:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise click.BadParameter(f"{command!r}: {exc}", ctx, param) from None
        if not argv or "\0" in command or shutil.which(argv[0]) is None:
            raise click.BadParameter(f"{command!r}: no such command", ctx, param)
    return commands


@command()
@db_option
@rule_options
@click.option("--webhook", "webhooks", multiple=True, metavar="URL", callback=_urls,
              help="POST the alerts as JSON to URL.")
@click.option("--slack", "slack_urls", multiple=True, metavar="URL", callback=_urls,
              help="POST them to a Slack incoming webhook.")
@click.option("--exec", "commands", multiple=True, metavar="COMMAND", callback=_commands,
              help="Run COMMAND with the alerts as JSON on its stdin.")
@click.option("--repeat", type=Age(), default="1h", show_default=True, metavar="AGE",
              help="Send an alert whose status has not changed again after AGE.")
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True,
              help="Retries of a failed delivery (a connection error, HTTP 429 or 5xx, a non-zero exit).")
@click.option("--backoff", type=Age(), default="1s", show_default=True, metavar="AGE",
              help="Wait before the first retry; doubled at each (capped at 30s, with jitter).")
@click.option("--json", "as_json", is_flag=True, help="On stdout: the alerts as one JSON document.")
@click.pass_context
def alert(ctx: click.Context, db_path: str, hours: float | None, session: str | None, rules: tuple[str, ...],
          stale_after: timedelta | None, config_path: str | None, webhooks: tuple[str, ...],
          slack_urls: tuple[str, ...], commands: tuple[str, ...], repeat: timedelta, retries: int,
          backoff: timedelta, as_json: bool) -> None:
    """Check the rules and notify what changed: a webhook, Slack, a command, or stdout.

    \b
    Example (cron, every 5 minutes):
      monitor alert --slack https://hooks.slack.com/services/T/B/X --rule activity=6h/24h
    """
    from monitor.alerts.check import check as run_check
    from monitor.alerts.notify import Retry, claim, deliver, give_back

    config = _config(hours, rules, stale_after, config_path)
    moment = now(ctx)
    with read_db(db_path) as db:
        report = run_check(db, config, session=session, now=moment)
        alerts, previous = claim(db, report, moment, repeat)
        try:
            deliver(alerts, report, webhooks=webhooks, slack=slack_urls, commands=commands,
                    retry=Retry(retries + 1, backoff.total_seconds()))
        except MonitorError:
            give_back(db, alerts, previous)
            raise
    if not (webhooks or slack_urls or commands):
        text = render_alerts(alerts, report, "json" if as_json else "text")
        if text:
            click.echo(text)


def _write(path: str, text: str, mode: str) -> None:
    """Write a report file whole, atomically and owner-only when new (store/files.py), or append to
    one that is there (GitHub's step summary, its own file)."""
    from monitor.store.files import cannot_write, write_atomic

    if mode == "w":
        write_atomic(path, text)
        return
    try:
        with open(path, mode, encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise cannot_write(path, exc) from None


#: What reap shows of each execution it ended.
REAPED_COLUMNS = ["agent_session_id", "agent_name", "session_id", "started_at"]


@command()
@db_option
@click.option("--older-than", type=Age(), default="1h", show_default=True, metavar="AGE",
              help="End executions in progress for longer than AGE (as health's and check's --stale-after).")
@click.option("--dry-run", is_flag=True, help="Only count and list what would be ended.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def reap(ctx: click.Context, db_path: str, older_than: timedelta, dry_run: bool, as_json: bool) -> None:
    """End stale executions (in progress longer than --older-than) as failed, and update their orchestrations.

    Safe while other processes record (short batches) and safe to repeat.

    \b
    Example (cron, every 10 minutes):
      monitor reap --older-than 2h --db /srv/agents/monitoring.db
    """
    from monitor.capture.runs import live_runs
    from monitor.ops.reap import reap as run_reap

    with read_db(db_path) as db:
        result = run_reap(db, older_than, now=now(ctx), dry_run=dry_run, spare=live_runs(db))
    if as_json:
        click.echo(render_record(vars(result) | {"ended": [{c: r[c] for c in REAPED_COLUMNS} for r in result.ended]},
                                 "json"))
        return
    click.echo(reap_summary(result.executions, result.orchestrations, result.older_than_ms, dry_run))
    if result.ended:
        click.echo(render_rows(result.ended, "table", REAPED_COLUMNS))
    if result.executions > len(result.ended):
        click.echo(f"The oldest {len(result.ended)} shown; {result.executions - len(result.ended):,} more.", err=True)


COMMANDS = [check, reap, alert]
