"""Commands that hand monitor's data to other systems: metrics (Prometheus), otel (OpenTelemetry traces),
report (an HTML page), ui (Datasette)."""

from __future__ import annotations

import io
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from monitor.cli.options import (Age, FilePath, MonitorCommand, MonitorGroup, agent_option, command, db_option, now,
                                 read_db, since_option)
from monitor.cli.output import megabytes, otel_summary, render_record
from monitor.store.db import open_db


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


@command()
@db_option
@click.option("--html", "html_path", required=True, type=FilePath(writable=True), metavar="FILE",
              help="Write the report to FILE (one self-contained HTML page, replaced atomically).")
@since_option
@click.option("--session", metavar="SESSION", help="Only this orchestration's executions (one CI run's report).")
@agent_option
@click.option("--config", "config_path", type=FilePath(), metavar="FILE",
              help="Rules of the `check` verdict in the header (default: ./monitor.toml, else ./pyproject.toml's"
                   " [tool.monitor]).")
@click.pass_context
def report(ctx: click.Context, db_path: str, html_path: str, since: str | None, session: str | None,
           agent: str | None, config_path: str | None) -> None:
    """Write an HTML report with charts and tables: one file that opens offline in any browser.

    \b
    Example:
      monitor report --html report.html --since 30d
      monitor report --html ci-report.html --session "ci-$GITHUB_RUN_ID"
    """
    from monitor.cli.watchdog import _config
    from monitor.exporters.html import report_to_file

    with read_db(db_path) as db:
        size = report_to_file(db, html_path, _config(None, (), None, config_path), since=since, session=session,
                              agent=agent, now=now(ctx))
    click.echo(f"Wrote {html_path} ({megabytes(size)}).", err=True)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class Header(click.ParamType):
    """KEY=VALUE, as an HTTP header to send."""

    name = "key=value"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, text = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"{value!r} is not KEY=VALUE (for example Authorization='Bearer abc')", param, ctx)
        return key.strip(), text.strip()


def service_name_option(f: Any) -> Any:
    return click.option("--service-name", metavar="NAME",
                        help="The resource's service.name (default: $OTEL_SERVICE_NAME, else monitor).")(f)


@click.group(cls=MonitorGroup)
@db_option
def otel(db_path: str) -> None:
    """Export or push traces to OpenTelemetry (OTLP): Phoenix, Langfuse, Jaeger, Tempo, a collector.

    \b
    Example:
      monitor otel export -o traces.json
      monitor otel push --endpoint http://127.0.0.1:4318
    """


@otel.command("export", cls=MonitorCommand)
@db_option
@click.argument("session", required=False)
@since_option
@click.option("-o", "--output", type=FilePath(writable=True, allow_dash=True), metavar="FILE",
              help="Write to FILE (atomically) instead of standard output; - is standard output.")
@service_name_option
def otel_export(db_path: str, session: str | None, since: str | None, output: str | None,
                service_name: str | None) -> None:
    """Write finished executions and orchestrations as OTLP/JSON spans (all, or one SESSION).

    \b
    Example:
      monitor otel export --since 24h -o traces.json
    """
    from monitor.exporters import otel as spans

    resource = spans.resource_attributes(service_name)
    with read_db(db_path) as db:
        if output and output != "-":
            from monitor.store.files import atomic_write

            with atomic_write(Path(output)) as out:
                counts = spans.write_json(db, out, resource=resource, session_id=session, since=since)
            click.echo(otel_summary(counts, f"Exported to {output}:"), err=True)
            return
        stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
        try:
            spans.write_json(db, stdout, resource=resource, session_id=session, since=since)
            stdout.flush()
        finally:
            stdout.detach()


@otel.command("push", cls=MonitorCommand)
@db_option
@click.option("--endpoint", metavar="URL",
              help="OTLP/HTTP traces URL; one without a path gets /v1/traces (default:"
                   " $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else $OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces,"
                   " else http://localhost:4318/v1/traces).")
@click.option("--header", "headers", type=Header(), multiple=True, metavar="KEY=VALUE",
              help="An HTTP header to send (repeatable; added to $OTEL_EXPORTER_OTLP_HEADERS).")
@click.option("--protocol", type=click.Choice(["http/protobuf", "http/json"]),
              help="Wire format (default: $OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf).")
@click.option("--compression", type=click.Choice(["gzip", "none"]),
              help="Compress each request (default: $OTEL_EXPORTER_OTLP_COMPRESSION, else none).")
@click.option("--batch-size", type=click.IntRange(min=1, max=100_000), default=500, show_default=True,
              metavar="N", help="Executions (with their tool and LLM calls) per request; fewer once a request holds"
                   " 10,000 spans.")
@click.option("--follow", is_flag=True, help="Keep pushing what finishes from now on, until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, metavar="SECONDS",
              help="With --follow: how often to look for newly finished rows.")
@service_name_option
@click.option("--json", "as_json", is_flag=True, help="Print what was sent as JSON.")
def otel_push(db_path: str, endpoint: str | None, headers: tuple[tuple[str, str], ...], protocol: str | None,
              compression: str | None, batch_size: int, follow: bool, interval: float, service_name: str | None, as_json: bool) -> None:
    """Send finished executions and orchestrations not sent yet to an OTLP endpoint as spans.

    \b
    Example:
      monitor otel push --endpoint http://127.0.0.1:6006/v1/traces
      OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 monitor otel push --follow
    """
    from monitor.exporters import otel as spans
    from monitor.exporters import otel_push, otlp_http

    where = otlp_http.target(endpoint, dict(headers), protocol, compression=compression)
    resource = spans.resource_attributes(service_name)
    read_db(db_path).close()  # a missing database is an error, and what waits in the spool is recorded
    with open_db(db_path, create=False) as db:
        if not follow:
            result = otel_push.push(db, where, resource=resource, batch_size=batch_size)
        else:
            click.echo(f"Pushing to {where.url} every {interval:g}s (Ctrl-C to stop).", err=True)
            total = otel_push.PushResult(where.url)

            def sent(round_: otel_push.PushResult) -> None:
                total.add(round_)
                click.echo(otel_summary(round_.as_dict()), err=True)

            try:
                otel_push.follow(db, where, resource=resource, batch_size=batch_size, interval=interval,
                                 on_round=sent,
                                 on_error=lambda m: click.echo(f"monitor: {m}; trying again in {interval:g}s",
                                                               err=True))
            except KeyboardInterrupt:
                pass
            result = total
    click.echo(render_record(result.as_dict(), "json") if as_json else otel_summary(result.as_dict()))


@command()
@db_option
@click.option("--port", type=click.IntRange(1, 65535), default=8001, show_default=True, help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on; 0.0.0.0 lets other machines read every row (and run any read-only SQL).")
@click.option("--no-open", is_flag=True, help="Do not open a browser.")
@click.pass_context
def ui(ctx: click.Context, db_path: str, port: int, host: str, no_open: bool) -> None:
    """Browse and query the database in Datasette (pip install 'monitor[ui]') until Ctrl-C.

    \b
    Example:
      monitor ui
      monitor ui --port 8002 --no-open
    """
    from monitor.exporters import datasette

    datasette.require_datasette()  # before anything else: the one thing to fix may be the install
    with read_db(db_path) as db:
        tables, views = datasette.table_names(db)
    previous = signal.signal(signal.SIGTERM, _terminated)  # stop the server and remove its metadata, as Ctrl-C
    try:
        with datasette.serve(db_path, tables, views, host=host, port=port, open_browser=not no_open) as server:
            click.echo(f"Serving {db_path} on {datasette.url(host, port, db_path)} (Ctrl-C to stop).", err=True)
            try:
                code = server.wait()
            except KeyboardInterrupt:
                ctx.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code:
        raise click.ClickException(f"Datasette stopped with exit code {code} (its message is above).")


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


COMMANDS = [metrics, otel, report, ui]
