"""`watch`: the live view. On a terminal a full screen drawn by rich, refreshed every --interval
until `q` (or Ctrl-C); elsewhere (a pipe, a file, --once) the same parts as plain text.

rich is imported only by the full screen: `watch --once`, a pipe and every other command never
load it. The parts themselves are formatted by output.py (live_sections), like every report.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import click

from monitor.cli.options import Age, command, db_option, now, read_db
from monitor.cli.output import LIVE_PARTS, TableStyle, live_sections, render_live, terminal_width
from monitor.read.queries import Page

TYPE_CHECKING = False
if TYPE_CHECKING:
    from monitor.read.live import LiveSnapshot
    from rich.console import RenderableType

#: How many rows each part of the plain text shows at most (the full screen: as many as fit).
PLAIN_ROWS = 10
#: Keys that end the full screen.
QUIT_KEYS = frozenset(b"qQ")
#: How often the full screen looks for a key or a new terminal size while it waits to refresh.
POLL_SECONDS = 0.1


@command()
@db_option
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=2.0, show_default=True, metavar="SECONDS",
              help="Refresh every SECONDS.")
@click.option("--since", "window", type=Age(), default="24h", show_default=True, metavar="AGE",
              help="The window of failures, agents' success rate and p95, and events: 1h, 24h, 7d.")
@click.option("--stale-after", type=Age(), default="1h", show_default=True, metavar="AGE",
              help="An execution in progress for longer than AGE counts as stale.")
@click.option("--once", is_flag=True, help="Print one snapshot as plain text and exit.")
@click.option("--json", "as_json", is_flag=True,
              help="Snapshots as JSON (with --once, one document; else one line per refresh).")
@click.pass_context
def watch(ctx: click.Context, db_path: str, interval: float, window: timedelta, stale_after: timedelta,
          once: bool, as_json: bool) -> None:
    """Watch what runs now, recent failures, agents, today's cost and events, live; q quits.

    \b
    Example:
      monitor watch --interval 1 --since 6h
      monitor watch --once | mail -s "agents" oncall@example.com
    """
    from monitor.read.live import Limits, live_snapshot  # paid by watch alone, not by every command

    full_screen = not (once or as_json) and sys.stdout.isatty()
    with read_db(db_path) as db:
        def read(rows: int) -> LiveSnapshot:
            return live_snapshot(db, now(ctx), window=window, stale_after=stale_after, limits=Limits(rows, rows, rows))

        try:
            if full_screen:
                show_screen(read, interval)
            else:
                for text in plain(read, interval, once=once, as_json=as_json):
                    click.echo(text)
        except KeyboardInterrupt:
            ctx.exit(130)


def plain(read: Callable[[int], LiveSnapshot], interval: float, *, once: bool, as_json: bool) -> Iterator[str]:
    """Snapshots as text, one every `interval` seconds (only one with `once`), each after a blank
    line but the first; JSON: one document with `once`, else one line per snapshot."""
    first = True
    while True:
        snapshot = read(PLAIN_ROWS)
        if as_json:
            yield json.dumps(snapshot.to_dict(), indent=2 if once else None, ensure_ascii=False)
        else:
            yield ("" if first else "\n") + render_live(snapshot, TableStyle(width=terminal_width()))
        if once:
            return
        first = False
        time.sleep(interval)


def show_screen(read: Callable[[int], LiveSnapshot], interval: float) -> None:
    """The full screen (the terminal's alternate screen, cursor hidden) until `q` or Ctrl-C; the
    terminal is left as it was found. SIGTERM ends it as cleanly."""
    from rich.console import Console
    from rich.live import Live

    console = Console()
    previous = signal.signal(signal.SIGTERM, _exit_on_term)
    try:
        with keys() as pressed, Live(console=console, screen=True, auto_refresh=False) as live:
            while True:
                snapshot = read(max(1, console.height))
                size = console.size
                live.update(screen(snapshot, *size, interval), refresh=True)
                deadline = time.monotonic() + interval
                while (left := deadline - time.monotonic()) > 0:
                    if QUIT_KEYS & pressed(min(left, POLL_SECONDS)):
                        return
                    if console.size != size:  # resized: draw the same snapshot again at the new size
                        size = console.size
                        live.update(screen(snapshot, *size, interval), refresh=True)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def screen(snapshot: LiveSnapshot, width: int, height: int, interval: float) -> RenderableType:
    """The snapshot as a screen of width x height: titles in bold (failures' in red when there are
    any), tables shortened to the width, each part cut to fit the height (the longest first: its
    last rows; of the events, the oldest), and a last line of help."""
    from rich.console import Group
    from rich.text import Text

    style = TableStyle(width=width)
    fields = [field for _, field, _ in LIVE_PARTS]
    summary = live_sections(snapshot, style, shown=dict.fromkeys(fields, 0))[0][1]  # no table drawn
    shown = fit({field: len(_rows(getattr(snapshot, field))) for field in fields},
                height - len(summary.splitlines()) - 3 * len(fields) - 2)
    parts = live_sections(snapshot, style, shown=shown)
    lines: list[Text] = []
    for (title, body), field in zip(parts, ["summary", *fields]):
        if lines:
            lines.append(Text())
        failing = field == "failures" and bool(snapshot.failures.rows)
        lines.append(Text(title, style="bold red" if failing else "bold"))
        lines.extend(Text(line) for line in body.splitlines())
    lines = lines[: max(0, height - 1)]
    lines += [Text()] * (height - 1 - len(lines)) + [Text(f"q quits · refreshes every {interval:g}s", style="dim")]
    for line in lines:
        line.no_wrap, line.overflow = True, "crop"
    return Group(*lines)


def fit(rows: dict[str, int], room: int) -> dict[str, int]:
    """How many rows each table keeps so that they take at most `room` lines, a table of n rows
    taking n + 2 (its header and rule) and one of none a line more than nothing ('none'): the
    longest gives up a row first (of equal ones, the first)."""
    rows = dict(rows)
    over = sum(n + 1 for n in rows.values() if n) - room  # beyond the line each part has anyway
    while over > 0 and any(rows.values()):
        longest = max(rows, key=lambda field: rows[field])
        over -= 2 if rows[longest] == 1 else 1
        rows[longest] -= 1
    return rows


def _rows(found: Page | list[dict]) -> list[dict]:
    return found.rows if isinstance(found, Page) else found


@contextmanager
def keys() -> Iterator[Callable[[float], frozenset[int]]]:
    """Standard input in cbreak mode (each key as it is typed, not echoed; Ctrl-C still
    interrupts) for the block, which gets pressed(timeout): the bytes typed within timeout
    seconds. The terminal's mode is restored however the block ends. When standard input is not
    a terminal, pressed() only waits."""
    stdin = sys.stdin
    if not stdin.isatty():
        yield _wait
        return
    import termios
    import tty

    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def pressed(timeout: float) -> frozenset[int]:
        ready, _, _ = select.select([fd], [], [], timeout)
        return frozenset(os.read(fd, 64)) if ready else frozenset()

    try:
        yield pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _wait(timeout: float) -> frozenset[int]:
    time.sleep(timeout)
    return frozenset()


COMMANDS = [watch]
