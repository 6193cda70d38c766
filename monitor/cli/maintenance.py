"""Maintenance commands: export, import, cleanup and prices."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from monitor.cli.options import (FilePath, MonitorCommand, Output, command, db_option, now, output_options,
                                 read_db, since_option, unused_db_option)
from monitor.cli.output import display_time, import_summary, plural, render_record, rollup_note, vacuum_note
from monitor.errors import MonitorError
from monitor.store.db import Database, open_db


@command()
@db_option
@click.argument("session", required=False)
@since_option
@click.option("-o", "--output", type=FilePath(writable=True, allow_dash=True), metavar="FILE",
              help="Write to FILE (atomically) instead of standard output; - is standard output.")
@click.option("--events", is_flag=True, help="Include the event log of what is exported (`monitor import` reads it).")
@click.pass_context
def export(ctx: click.Context, db_path: str, session: str | None, since: str | None, output: str | None,
           events: bool) -> None:
    """Export orchestrations with their executions as JSON (all, or one SESSION).

    \b
    Example:
      monitor export > all.json
      monitor export build-1234 --events -o build-1234.json
    """
    from monitor.ops.export import export_to_file, write_export

    with read_db(db_path) as db:
        if output and output != "-":
            counts = export_to_file(db, output, session, since, now=now(ctx), events=events)
            logged = f" with {plural(counts['events'], 'event')}" if events else ""
            click.echo(f"Exported {plural(counts['orchestrations'], 'orchestration')} and"
                       f" {plural(counts['executions'] + counts['unassigned_executions'], 'execution')}"
                       f"{logged} to {output}.", err=True)
            return
        stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
        try:
            write_export(db, stdout, session, since, now=now(ctx), events=events)
            stdout.flush()
        finally:
            stdout.detach()


@command()
@db_option
@click.argument("days", type=click.IntRange(min=0))
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--vacuum", is_flag=True, help="Give the freed space back to the file system afterwards.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask first, even when deleting all rows or most of them.")
@click.option("--all", "all_", is_flag=True, help="Delete the daily roll-ups older than DAYS days too.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def cleanup(ctx: click.Context, db_path: str, days: int, dry_run: bool, vacuum: bool, yes: bool, all_: bool,
            as_json: bool) -> None:
    """Delete orchestrations (with their executions) and executions older than DAYS days.

    Safe while other processes record runs: deletes go in short batches. On a terminal it asks
    first when it would delete every row or more than half of them (--yes does not ask). The days
    it deletes rows of are rolled up first (per day, agent and model), so that `performance --by day`
    and `report --html` still show them; --all deletes those roll-ups too.

    \b
    Example (weekly cron):
      monitor cleanup 30 --vacuum
    """
    from monitor.ops.retention import cleanup as run_cleanup, count_old, cutoff_for

    moment = now(ctx)
    with read_db(db_path) as db:
        total = 0
        if not dry_run and not yes and sys.stdin.isatty():
            _confirm_sweep(db, cutoff_for(days, moment))
        if not dry_run and not as_json and sys.stderr.isatty():
            total = sum(count_old(db, cutoff_for(days, moment)))
        if total > 20_000:
            with click.progressbar(length=total, label="Deleting", file=sys.stderr) as bar:
                result = run_cleanup(db, days, now=moment, vacuum=vacuum, all_=all_, progress=bar.update)
        else:
            result = run_cleanup(db, days, now=moment, dry_run=dry_run, vacuum=vacuum, all_=all_)
    if as_json:
        click.echo(render_record(vars(result), "json"))
        return
    click.echo(f"{'Would delete' if dry_run else 'Deleted'} {plural(result.orchestrations, 'orchestration')}"
               f" and {plural(result.executions, 'execution')} that started before {display_time(result.cutoff)}."
               + rollup_note(result) + vacuum_note(result))


def _confirm_sweep(db: Database, cutoff: str) -> None:
    """Ask before a cleanup that deletes every row, or more than half of them (abort on no)."""
    from monitor.ops.retention import share_old, sweeping

    old, rows = share_old(db, cutoff)
    if sweeping(old, rows):
        share = "every row" if old == rows else f"{old / rows:.0%} of the rows"
        click.confirm(f"This deletes {share} of {db.path} ({old:,} of {rows:,} orchestrations and executions)."
                      " Continue?", abort=True, err=True)


@command("import")
@db_option
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--json", "as_json", is_flag=True, help="Print what each file did as JSON.")
def import_(db_path: str, files: tuple[str, ...], as_json: bool) -> None:
    """Merge export files (monitor's, or the reference tool's JSON export) into the database.

    Each file is one transaction: a malformed or truncated one changes nothing. Importing a file
    again changes nothing. - reads standard input.

    \b
    Example (merge CI jobs' exports into one database):
      monitor import --db merged.db job-*/monitoring-export.json
    """
    from monitor.ops.import_ import import_file

    results, failed = [], False
    with open_db(db_path) as db:
        for name in files:
            try:
                with _progress(name) as advance:
                    results.append(import_file(db, name, advance))
            except MonitorError as exc:
                click.echo(f"Error: {exc}", err=True)
                failed = True
    if as_json:
        click.echo(render_record({"files": [r.as_dict() for r in results]}, "json"))
    else:
        for result in results:
            click.echo(import_summary(result.as_dict()))
    if failed:
        sys.exit(1)


@contextmanager
def _progress(name: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal for a file of some size (by characters read), else None."""
    size = os.path.getsize(name) if name != "-" and os.path.isfile(name) else 0
    if size < 1 << 22 or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=size, label=f"Importing {name}", file=sys.stderr) as bar:
        yield bar.update


PRICE_COLUMNS = ["model", "input_per_mtok_usd", "output_per_mtok_usd", "cache_read_per_mtok_usd",
                 "cache_write_per_mtok_usd", "cache_write_1h_per_mtok_usd", "tiers", "source"]


@click.group(invoke_without_command=True)
@unused_db_option
@click.option("--model", metavar="NAME", help="Only the price that applies to model NAME (as a transcript names it).")
@click.option("--prices", metavar="FILE", envvar="MONITOR_PRICES", help="Price file laid over the bundled one.")
@output_options()
@click.pass_context
def prices(ctx: click.Context, db_path: str, model: str | None, prices: str | None, out: Output) -> None:
    """List the known models' prices (USD per million tokens) and where each comes from.

    \b
    Example:
      monitor prices --model claude-opus-4-6
      monitor prices refresh        # price usage recorded before its model had a price
    """
    if ctx.invoked_subcommand is not None:
        return
    from monitor.read.pricing import price_list

    found, note = price_list(prices, model)
    click.echo(note, err=True)
    out.rows(found, PRICE_COLUMNS, empty=f"No price known for {model!r}." if model else "No prices.")


@prices.command("refresh", cls=MonitorCommand)
@db_option
@click.option("--prices", "price_file", metavar="FILE", envvar="MONITOR_PRICES",
              help="Price file laid over the bundled one.")
def prices_refresh(db_path: str, price_file: str | None) -> None:
    """Price the usage recorded without a price, with every source (genai-prices included).

    \b
    Example:
      MONITOR_PRICES=my-prices.json monitor prices refresh
    """
    from monitor.ops.prices import reprice
    from monitor.read.pricing import load_prices

    with read_db(db_path) as db:
        counts = reprice(db, load_prices(price_file), everything=True)
    click.echo(f"Priced {plural(counts['priced'], 'request')}; {plural(counts['unpriced'], 'request')}"
               f" still without a price.")


COMMANDS = [export, import_, cleanup, prices]
