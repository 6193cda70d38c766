"""Commands that hand monitor's data to other systems: metrics (Prometheus)."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import click

from monitor.cli.options import Age, command, db_option, read_db


class HostPort(click.ParamType):
    """HOST:PORT, as 127.0.0.1:9464, [::1]:9464 or :9464 (every address); port 0 takes any free one."""

    name = "host:port"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value
        host, sep, port = str(value).rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            self.fail(f"{value!r} is not HOST:PORT (for example 127.0.0.1:9464)", param, ctx)
        return host.strip("[]") or "0.0.0.0", int(port)


@command()
@db_option
@click.option("--serve", "address", type=HostPort(), metavar="HOST:PORT",
              help="Serve /metrics over HTTP on HOST:PORT until Ctrl-C, reading the database at each scrape.")
@click.option("--textfile", metavar="PATH",
              help="Write the metrics to PATH atomically (node_exporter's textfile collector: name it *.prom).")
@click.option("--stale-after", type=Age(), default="1h", show_default=True, metavar="AGE",
              help="An execution in progress for longer than AGE counts as stale.")
def metrics(db_path: str, address: tuple[str, int] | None, textfile: str | None,
            stale_after: timedelta) -> None:
    """Print Prometheus metrics (text exposition format), or serve or write them.

    \b
    Example:
      monitor metrics
      monitor metrics --serve 127.0.0.1:9464
      monitor metrics --textfile /var/lib/node_exporter/textfile/monitor.prom
    """
    if address and textfile:
        raise click.UsageError("--serve and --textfile do not go together: choose one.")
    read_db(db_path).close()  # a missing database is an error now, not at the first scrape
    from monitor.exporters import prometheus

    if textfile:
        prometheus.write_textfile(db_path, textfile, stale_after)
    elif address:
        server, thread = prometheus.serve(db_path, *address, stale_after)
        click.echo(f"Serving metrics on http://{_url_host(address[0])}:{server.server_port}/metrics"
                   " (Ctrl-C to stop).", err=True)
        try:
            thread.join()
        except KeyboardInterrupt:
            server.shutdown()
    else:
        sys.stdout.write(prometheus.exposition(db_path, stale_after))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


COMMANDS = [metrics]
