"""What the commands share: the group and command classes, options, output, and opening the database."""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import click

from monitor.cli.output import (TableStyle, cut_note, render_record, render_rows, terminal_width)
from monitor.errors import InvalidInput, MonitorError
from monitor.read.queries import Page
from monitor.store.db import DEFAULT_PATH, ENV_VAR, Database, open_db
from monitor.timeutil import format_timestamp, parse_duration, parse_since, utcnow

#: -h works like --help, on every command (subcommands inherit it).
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


@dataclass(frozen=True)
class Settings:
    """What the CLI takes from its caller besides arguments: the clock that "now" is read from.
    Tests fix it: CliRunner().invoke(cli, args, obj=Settings(now=clock))."""

    now: Callable[[], datetime] = utcnow


def now(ctx: click.Context) -> datetime:
    return (ctx.find_object(Settings) or Settings()).now()


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


_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_NEGATIVE_NUMBER = re.compile(r"-\d+(\.\d+)?$")


class MonitorCommand(click.Command):
    """A command whose number arguments may be negative: `cleanup -1` reaches the argument's own
    range check ("-1 is not in the range x>=0") instead of being taken for an option, while a
    mistyped option still gets click's "No such option: --stricct Did you mean --strict?".

    click has no setting for that: ignore_unknown_options lets every unknown option through as an
    argument. So the parser runs with it (on a command that does not turn it off), then any
    option-like token it let through that is not a negative number is refused as click would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["context_settings"] = {"ignore_unknown_options": True, **(kwargs.get("context_settings") or {})}
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.ignore_unknown_options:
            for token in self._let_through(ctx, args):
                if token[:1] == "-" and len(token) > 1 and not _NEGATIVE_NUMBER.match(token):
                    raise click.NoSuchOption(token.split("=", 1)[0], possibilities=self._close(ctx, token), ctx=ctx)
        return super().parse_args(ctx, args)

    def _let_through(self, ctx: click.Context, args: list[str]) -> list[str]:
        """The tokens before any `--` that the parser took as arguments or left over."""
        values, leftover, order = self.make_parser(ctx).parse_args(args=list(args))
        taken = [*leftover]
        for param in order:
            if isinstance(param, click.Argument) and param.name in values:
                value = values[param.name]
                taken.extend(value if isinstance(value, (list, tuple)) else [value])
        before_dashes = args[: args.index("--")] if "--" in args else args
        return [token for token in taken if isinstance(token, str) and token in before_dashes]

    def _close(self, ctx: click.Context, token: str) -> list[str]:
        import difflib  # only for a mistyped option

        names = [o for p in self.get_params(ctx) for o in (*p.opts, *p.secondary_opts) if o.startswith("--")]
        return difflib.get_close_matches(token.split("=", 1)[0], names)


def command(name: str | None = None, **kwargs: Any) -> Callable[[Callable], MonitorCommand]:
    """click.command for monitor: negative numbers reach their argument (see MonitorCommand)."""
    return click.command(name, cls=MonitorCommand, **kwargs)


# --- the database -----------------------------------------------------------------------------

def _db_path(fallback: str | None) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """--db's value: given here, else given to an enclosing group (`monitor --db x.db list`), else
    $MONITOR_DB, else fallback."""

    def resolve(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            return value
        inherited = ctx.parent.params.get("db_path") if ctx.parent is not None else None
        return inherited or os.environ.get(ENV_VAR) or fallback

    return resolve


class FilePath(click.Path):
    """click.Path(dir_okay=False) that refuses a NUL in the name in one line (click's own os.stat
    raises ValueError on it: a traceback)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(dir_okay=False, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and "\0" in value:
            self.fail(f"{value!r} is not a file name (it holds a NUL character)", param, ctx)
        return super().convert(value, param, ctx)


def _db_option(help_text: str, path_type: click.ParamType, fallback: str | None = DEFAULT_PATH
               ) -> Callable[[Callable], Callable]:
    return click.option("--db", "db_path", callback=_db_path(fallback), metavar="PATH", type=path_type,
                        help=help_text)


_COMMAND_DB_HELP = f"Database file (default: --db before the command, else ${ENV_VAR}, else ./{DEFAULT_PATH})."
#: --db PATH after a command (or a group) name; the innermost one given wins.
db_option = _db_option(_COMMAND_DB_HELP, FilePath())
#: --db PATH before the command: what every command uses unless given its own.
root_db_option = _db_option(f"Database file (default: ${ENV_VAR}, else ./{DEFAULT_PATH}); also accepted after"
                            f" the command.", FilePath(), fallback=None)
#: The hook's --db: never refused by the parser, since the hook must exit 0 whatever it is given.
#: Without one, each payload goes to its own project's database (hook.session_db_path()).
hook_db_option = _db_option(f"Database file (default: --db before the command, else ${ENV_VAR}, else"
                            f" {DEFAULT_PATH} at the top of the session's project).", click.STRING, fallback=None)
#: hook install's --db: the one database every session records into; without one, see installed_db_path().
install_db_option = _db_option(f"Database file for every session (default: --db before the command, else ${ENV_VAR};"
                               f" else the project's {DEFAULT_PATH}, and with --user each session's own"
                               f" project's).", FilePath(), fallback=None)
#: --db where no database is used (hook uninstall), so that the command line that installed can be reused.
unused_db_option = _db_option("Accepted, and changes nothing: no database is read or written.", click.STRING)


#: How long a command waits for other writers while it catches up (see read_db).
CATCH_UP_WAIT = 1.0


def read_db(path: str) -> Database:
    """The database a report reads: it must exist (reports never create one). When it can be
    written, a command catches up first: it records what waits in the spool and fails the runs whose
    `monitor run` was killed (waiting at most CATCH_UP_WAIT for other writers: what it cannot do, a
    later command does), counts the transcript lines Claude Code wrote after its last hook, and
    prices usage recorded without a price if a price is now known (all cheap when there is nothing
    to do; skipped when the file is read-only or busy)."""
    db = open_db(path, create=False)
    if not db.readonly:
        from monitor.capture import ingest
        from monitor.capture.claude.catchup import catch_up
        from monitor.errors import MonitorError
        from monitor.ops.prices import reprice

        ingest.catch_up(db, wait=CATCH_UP_WAIT, skipped=lambda message: click.echo(f"monitor: {message}", err=True))
        try:
            catch_up(db)
            reprice(db)
        except (MonitorError, OSError):
            pass  # a broken price file or an unreadable transcript must not stop a report
    return db


# --- filters ----------------------------------------------------------------------------------

def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return format_timestamp(parse_since(value, now(ctx)))
    except InvalidInput as exc:
        raise click.BadParameter(str(exc)) from None


def since_option(f: Callable) -> Callable:
    return click.option("--since", callback=_since, metavar="WHEN",
                        help="Only what started after WHEN: 24h, 7d, 2026-11-01, '2026-11-01 14:00' (UTC"
                             " unless it says +02:00).")(f)


def agent_option(f: Callable) -> Callable:
    return click.option("--agent", metavar="NAME", help="Only this agent's executions.")(f)


#: A count of rows, up to a round number far beyond any database's and well within SQLite's
#: 64-bit integers (with room for the one extra row a page fetches): a larger one is bad input.
COUNT = click.IntRange(min=0, max=10**12)


def limit_option(default: int) -> Callable:
    """--limit N: None when not given, which Output.limit turns into `default` rows for a table and
    all rows for JSON, CSV and JSON lines."""
    return click.option("--limit", type=COUNT, metavar="N",
                        help=f"Show at most N rows (0 for all). Default: {default} in a table, all in"
                             f" --json, --csv and --nl.")


def status_option(choices: tuple[str, ...]) -> Callable:
    return click.option("--status", type=click.Choice(choices), help="Only rows with this status.")


class Window(click.ParamType):
    """A number of hours (`24`), or an age as --since takes it (`24h`, `7d`, `90m`): in hours."""

    name = "hours"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return value
        text = str(value).strip()
        try:
            hours = float(text) if _NUMBER.fullmatch(text) else parse_duration(text).total_seconds() / 3600
        except InvalidInput:
            self.fail(f"{text!r} is neither a number of hours nor an age like 24h, 7d or 90m", param, ctx)
        if hours <= 0:
            self.fail(f"{text} is not a positive number of hours", param, ctx)
        if hours > 876_000:
            self.fail(f"{text} is more than 100 years (876,000 hours)", param, ctx)
        return int(hours) if hours.is_integer() else hours


class Age(click.ParamType):
    """An amount of time: 90s, 30m, 1h, 7d."""

    name = "age"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except InvalidInput as exc:
            self.fail(str(exc), param, ctx)


# --- output -----------------------------------------------------------------------------------

class TableFormat(click.ParamType):
    """One of tabulate's table formats; tabulate is imported to check it only when one is given."""

    name = "name"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        import difflib

        from tabulate import tabulate_formats

        if value in tabulate_formats:
            return value
        close = difflib.get_close_matches(value, tabulate_formats, n=1)
        self.fail(f"{value!r} is not a table format{f' (did you mean {close[0]!r}?)' if close else ''};"
                  f" choose from {', '.join(tabulate_formats)}", param, ctx)


@dataclass(frozen=True)
class Output:
    """How a command prints: fmt is table, json, csv or nl; a table is drawn in `style`."""

    fmt: str = "table"
    style: TableStyle = TableStyle()

    def limit(self, given: int | None, default: int) -> int | None:
        """Rows to fetch: as given (0: all); when not given, `default` for a table, all for programs."""
        if given is not None:
            return given or None
        return default if self.fmt == "table" else None

    def rows(self, found: Sequence[Mapping], columns: Sequence[str], *, empty: str,
             table_columns: Sequence[str] | None = None, missing: Mapping[str, str] | None = None) -> None:
        """Echo a list of records; JSON lines of no records print nothing at all."""
        text = render_rows(found, self.fmt, columns, table_columns=table_columns, empty=empty, style=self.style,
                           missing=missing)
        if text or self.fmt != "nl":
            click.echo(text, color=True)  # exact text: click would strip what looks like a colour code

    def page(self, found: Page, columns: Sequence[str], *, noun: str, empty: str, nouns: str | None = None,
             table_columns: Sequence[str] | None = None) -> None:
        """Echo a page of records; a table that its limit cut says so on stderr ("Showing 50 of
        1,234 orchestrations; --limit 0 for all.", or "of more than 10,000" past the count's limit)."""
        self.rows(found.rows, columns, table_columns=table_columns, empty=empty)
        if self.fmt == "table" and found.total > len(found.rows):
            click.echo(cut_note(len(found.rows), found.total, noun, nouns, more_than=found.more_than_counted),
                       err=True)

    def record(self, record: Mapping, sections: Mapping[str, Sequence[str]] | None = None) -> None:
        click.echo(render_record(record, self.fmt, sections=sections, style=self.style))


def output_options(tabular: bool = True) -> Callable[[Callable], Callable]:
    """-t/--table (default), --fmt NAME (a tabulate format, implies --table), --json, and for lists
    of rows --csv and --nl, as sqlite-utils offers them: the command gets one `out: Output`."""
    formats = [("table", "Readable table (default).", ("-t", "--table")), ("json", "JSON.", ("--json",))]
    if tabular:
        formats += [("csv", "CSV with a header row.", ("--csv",)), ("nl", "One JSON object per line.", ("--nl",))]

    def decorate(f: Callable) -> Callable:
        @functools.wraps(f)
        def with_output(*args: Any, fmt: str, table_format: str | None, **kwargs: Any) -> Any:
            if table_format and fmt != "table":
                raise click.UsageError(f"--fmt draws a table: it cannot go with --{fmt}")
            style = TableStyle(table_format or "simple", terminal_width())
            return f(*args, out=Output(fmt, style), **kwargs)

        with_output = click.option(
            "--fmt", "table_format", type=TableFormat(),
            help="Table format, one of tabulate's: simple (default), github (a GitHub step summary),"
                 " grid, plain, psql, rst, html...")(with_output)
        for name, help_text, flags in reversed(formats):
            if name == "table":  # the default: only its switch may say so (a default=None would win)
                with_output = click.option(*flags, "fmt", flag_value=name, help=help_text, default=True)(with_output)
            else:
                with_output = click.option(*flags, "fmt", flag_value=name, help=help_text)(with_output)
        return with_output

    return decorate
