"""The `monitor` command line: parse, call one library function, render. Nothing else.

The commands live by job in reports.py, record.py, maintenance.py, watchdog.py, live.py (watch) and
exporters.py; what they share (options, output, errors) in options.py; all formatting in output.py.
"""

from __future__ import annotations

import click

from monitor import __version__
from monitor.cli import exporters, live, maintenance, record, reports, watchdog
from monitor.cli.options import CONTEXT_SETTINGS, MonitorGroup, root_db_option


@click.group(cls=MonitorGroup, context_settings=CONTEXT_SETTINGS)
@root_db_option
@click.version_option(__version__, prog_name="monitor")
def cli(db_path: str | None) -> None:
    """Record AI-agent orchestrations and executions in SQLite, and report on them.

    \b
    Example:
      monitor run --agent tests -- pytest -q
      monitor health 24
    """


for _command in (*reports.COMMANDS, *record.COMMANDS, *maintenance.COMMANDS, *watchdog.COMMANDS,
                 *live.COMMANDS, *exporters.COMMANDS):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="monitor")


__all__ = ["cli", "main"]
