"""`report --html`: one self-contained HTML file, with charts drawn as inline SVG by pygal.

Nothing in the page is fetched: no script, stylesheet, font or image from anywhere (pygal's own
tooltip script and its config are taken out of each chart; they would be the only script). Every
text that comes from the database (agent names, models, sessions, error messages) is escaped,
by html.escape here and by the XML serializer inside pygal's SVG. Colours: the Okabe-Ito palette,
told apart with colour blindness, on light and dark backgrounds (prefers-color-scheme). Every chart
has a caption with its main numbers and a table of all of them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from monitor.read.report import STATUSES, TOKEN_KINDS, Period, ReportData
from monitor.timeutil import format_duration

if TYPE_CHECKING:
    from datetime import datetime

    import pygal

    from monitor.alerts.rules import Config
    from monitor.store.db import Database

#: Okabe & Ito (2008), the palette for colour-blind readers; yellow last (weak on white).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999", "#F0E442")
STATUS_COLOURS = {"completed": "#009E73", "failed": "#D55E00", "in_progress": "#56B4E9"}
#: Series beyond these many (models, agents) are summed as "other".
MOST_SERIES = 7
MOST_AGENTS = 20

_CSS = """
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1b1f24; --muted: #57606a; --grid: #d0d7de;
        --card: #f6f8fa; --pass: #1a7f37; --warn: #9a6700; --fail: #cf222e; --badge: #ffffff; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9da7b3; --grid: #30363d; --card: #161b22;
          --pass: #3fb950; --warn: #d29922; --fail: #f85149; --badge: #0d1117; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 1.5rem; background: var(--bg); color: var(--fg);
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { margin: 0 0 .5rem; font-size: 1.6rem; } h2 { margin: 2rem 0 .5rem; font-size: 1.2rem; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.verdict { display: inline-block; padding: .1rem .6rem; border-radius: 1rem; font-weight: 700; color: var(--badge); }
.verdict.pass { background: var(--pass); } .verdict.warn { background: var(--warn); }
.verdict.fail { background: var(--fail); }
ul.rules { margin: .3rem 0 0; padding-left: 1.2rem; } .rule-warn { color: var(--warn); } .rule-fail { color: var(--fail); }
figure { margin: 1rem 0 1.5rem; padding: 1rem; background: var(--card); border-radius: 8px; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { margin-top: .4rem; color: var(--muted); }
details { margin-top: .4rem; } summary { cursor: pointer; color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; font-size: .9rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--grid); vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.err { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; overflow-wrap: anywhere; }
p.empty { color: var(--muted); }
"""


def render(data: ReportData) -> str:
    """The whole page."""
    parts = [_header(data)]
    if not data.periods and not data.agents:
        parts.append('<p class="empty">No executions in this window.</p>')
    else:
        parts += [_executions_chart(data), _success_chart(data), _duration_chart(data), _cost_chart(data),
                  _tokens_chart(data)]
    parts += [_slowest_table(data), _failures_table(data), _stale_table(data), _sessions_table(data)]
    title = "monitor report" + (f": {data.session}" if data.session else "")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            # No request can leave the page: nothing but inline styles and data: images may load.
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline';"
            " img-src data:\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


# -- header --------------------------------------------------------------------------------------

def _window(data: ReportData) -> str:
    scope = [f"session {data.session}"] if data.session else []
    scope.append(f"since {_time(data.since)}" if data.since else "all recorded history")
    if data.agent:
        scope.append(f"agent {data.agent}")
    return ", ".join(scope) + f" (charts per {data.period})"


def _header(data: ReportData) -> str:
    check = data.check
    verdict = check["verdict"]
    rules = "".join(f'<li class="rule-{escape(r["status"])}">{escape(r["status"])}: {escape(r["message"])}</li>'
                    for r in check["rules"] if r["status"] != "skip")
    check_scope = (f"session {check['session']}" if check["scope"] == "session"
                   else f"last {check['window_hours']:g} h")
    return (
        f"<header><h1>{escape('monitor report' + (': ' + data.session if data.session else ''))}</h1>"
        '<dl class="meta">'
        f"<dt>Window</dt><dd>{escape(_window(data))}</dd>"
        f"<dt>Database</dt><dd>{escape(data.database)}</dd>"
        f'<dt>monitor check</dt><dd><span class="verdict {escape(verdict)}">{escape(verdict.upper())}</span>'
        f" ({escape(check_scope)}{', rules from ' + escape(check['config']) if check.get('config') else ''})"
        f'<ul class="rules">{rules}</ul></dd>'
        f"<dt>Generated</dt><dd>{escape(_time(data.generated_at))}</dd>"
        "</dl></header>")


# -- charts --------------------------------------------------------------------------------------

def _style(colours: Sequence[str]) -> pygal.style.Style:
    from pygal.style import Style

    # Colours of text and lines are the page's (CSS variables), so that one SVG suits both schemes.
    return Style(background="transparent", plot_background="transparent", foreground="var(--fg)",
                 foreground_strong="var(--fg)", foreground_subtle="var(--grid)", colors=tuple(colours),
                 font_family="inherit", opacity="1", opacity_hover="1", transition="none",
                 label_font_size=12, major_label_font_size=12, legend_font_size=13, title_font_size=15)


def _short(value: float) -> str:
    """An axis label: 1.2k, 35M, 0.25."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}"


def _chart(kind: str, colours: Sequence[str], labels: Sequence[str], **config: object) -> pygal.Graph:
    import pygal

    every = 1 if kind.startswith("Horizontal") else max(1, math.ceil(len(labels) / 14))
    settings: dict[str, object] = dict(
        style=_style(colours), js=[], disable_xml_declaration=True, width=900, height=340,
        legend_at_bottom=True, legend_at_bottom_columns=4, truncate_legend=40, truncate_label=30,
        x_label_rotation=0 if every == 1 and len(labels) <= 8 or kind.startswith("Horizontal") else 30,
        show_minor_x_labels=every == 1, print_values=False, margin=10, margin_bottom=30, value_formatter=_short)
    chart = getattr(pygal, kind)(**{**settings, **config})
    chart.x_labels = list(labels)
    if every > 1:
        chart.x_labels_major = list(labels)[::every]
    return chart


def _svg(chart: pygal.Graph, label: str) -> str:
    """The chart's SVG without pygal's script (its config, for its tooltips), the tooltips' <desc>
    texts and its comments: nothing runs, and the page stays small. The serializer escaped every
    text, a '</script>' or '</desc>' in a name included, so the first closing tag is the real one."""
    svg = chart.render(is_unicode=True)
    svg = re.sub(r"<script\b.*?</script>", "", svg, flags=re.S)
    svg = re.sub(r"<desc\b[^>]*>.*?</desc>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)


def _figure(title: str, svg: str, caption: str, table: str) -> str:
    return (f"<section><h2>{escape(title)}</h2><figure>{svg}<figcaption>{escape(caption)}</figcaption>"
            f"<details><summary>Data as a table</summary>{table}</details></figure></section>")


def _executions_chart(data: ReportData) -> str:
    labels = [p.start for p in data.periods]
    chart = _chart("StackedBar", [STATUS_COLOURS[s] for s in STATUSES], labels)
    for status in STATUSES:
        chart.add(status, [getattr(p, status) or None for p in data.periods])
    total = sum(p.executions for p in data.periods)
    busiest = max(data.periods, key=lambda p: p.executions, default=None)
    caption = (f"{total:,} executions in {len(data.periods)} {_periods(data)}: "
               + ", ".join(f"{sum(getattr(p, s) for p in data.periods):,} {s}" for s in STATUSES)
               + (f"; busiest {data.period} {busiest.start} with {busiest.executions:,}." if busiest else "."))
    table = _table([data.period, "executions", *STATUSES],
                   [[p.start, p.executions, *(getattr(p, s) for s in STATUSES)] for p in data.periods],
                   numeric=set(range(1, 5)))
    return _figure(f"Executions per {data.period}, by status", _svg(chart, caption), caption, table)


def _success_chart(data: ReportData) -> str:
    labels = [p.start for p in data.periods]
    chart = _chart("Line", [PALETTE[0]], labels, range=(0, 100), show_legend=False, y_title="% succeeded",
                   allow_interruptions=True, dots_size=3, margin_right=40,
                   stroke_style={"width": 3})
    chart.add("success rate", [p.success_rate for p in data.periods])
    done = [(p, p.success_rate) for p in data.periods if p.success_rate is not None]
    completed, failed = sum(p.completed for p in data.periods), sum(p.failed for p in data.periods)
    overall = f"{100.0 * completed / (completed + failed):.1f}%" if completed + failed else "no finished execution"
    caption = f"Success rate (completed of completed and failed) over the window: {overall}"
    if done:
        low = min(done, key=lambda x: x[1])
        caption += f"; lowest {low[1]:.1f}% ({data.period} {low[0].start}); latest {done[-1][1]:.1f}% ({done[-1][0].start})."
    table = _table([data.period, "success_rate", "completed", "failed"],
                   [[p.start, _pct(p.success_rate), p.completed, p.failed] for p in data.periods],
                   numeric={1, 2, 3})
    return _figure("Success rate over time", _svg(chart, caption), caption, table)


def _duration_chart(data: ReportData) -> str:
    agents = [a for a in data.agents if a["p50_duration_ms"] is not None][:MOST_AGENTS]
    chart = _chart("HorizontalBar", [PALETTE[0], PALETTE[1]], [a["agent_name"] for a in agents],
                   x_title="seconds", height=max(240, 60 + 34 * len(agents)))
    chart.add("p50", [round(a["p50_duration_ms"] / 1000, 1) for a in agents])
    chart.add("p95", [round(a["p95_duration_ms"] / 1000, 1) for a in agents])
    slow = max(agents, key=lambda a: a["p95_duration_ms"], default=None)
    caption = (f"Duration per agent (the {len(agents)} busiest of the executions kept), p50 and p95"
               + (f"; slowest p95: {slow['agent_name']} {format_duration(slow['p95_duration_ms'])}"
                  f" (p50 {format_duration(slow['p50_duration_ms'])})." if slow else "."))
    table = _table(["agent", "executions", "p50", "p95", "p50_ms", "p95_ms"],
                   [[a["agent_name"], a["executions"], format_duration(a["p50_duration_ms"]),
                     format_duration(a["p95_duration_ms"]), a["p50_duration_ms"], a["p95_duration_ms"]]
                    for a in agents], numeric={1, 2, 3, 4, 5})
    return _figure("p50 and p95 duration per agent", _svg(chart, caption), caption, table)


def _cost_chart(data: ReportData) -> str:
    shown = data.models[:MOST_SERIES]
    other = data.models[MOST_SERIES:]
    series = [*shown, *(["other"] if other else [])]

    def cost(p: Period, model: str) -> float:
        if model == "other" and other:
            return sum(p.cost_by_model.get(m, 0.0) for m in other)
        return p.cost_by_model.get(model, 0.0)

    labels = [p.start for p in data.periods]
    chart = _chart("StackedBar", PALETTE, labels, y_title="USD")
    for model in series:
        chart.add(model, [round(cost(p, model), 2) or None for p in data.periods])
    totals = {m: sum(cost(p, m) for p in data.periods) for m in series}
    caption = (f"Cost per {data.period} by model: {_usd(sum(totals.values()))} in all"
               + "".join(f"; {m} {_usd(c)}" for m, c in totals.items()) + ".")
    table = _table([data.period, *series, "total"],
                   [[p.start, *(_usd(cost(p, m)) for m in series), _usd(sum(p.cost_by_model.values()))]
                    for p in data.periods], numeric=set(range(1, len(series) + 2)))
    return _figure(f"Cost per {data.period} by model", _svg(chart, caption), caption, table)


def _tokens_chart(data: ReportData) -> str:
    agents = data.tokens_by_agent[:MOST_AGENTS]
    chart = _chart("HorizontalStackedBar", PALETTE, [a["agent_name"] for a in agents],
                   x_title="tokens", height=max(240, 60 + 30 * len(agents)))
    for kind in TOKEN_KINDS:
        chart.add(kind.replace("_tokens", "").replace("_", " "), [a[kind] or None for a in agents])
    total = sum(a["total_tokens"] for a in data.tokens_by_agent)
    caption = (f"Tokens by agent over the window: {total:,} in all"
               + "".join(f"; {a['agent_name']} {a['total_tokens']:,}" for a in agents[:3]) + ".")
    table = _table(["agent", *TOKEN_KINDS, "total_tokens"],
                   [[a["agent_name"], *(a[k] for k in TOKEN_KINDS), a["total_tokens"]] for a in agents],
                   numeric=set(range(1, 6)))
    return _figure("Tokens by agent", _svg(chart, caption), caption, table)


# -- tables --------------------------------------------------------------------------------------

def _section(title: str, note: str, body: str) -> str:
    return f"<section><h2>{escape(title)}</h2><p>{escape(note)}</p>{body}</section>"


def _slowest_table(data: ReportData) -> str:
    body = _table(["agent", "executions", "failed", "success_rate", "p50", "p95", "max", "cost_usd"],
                  [[a["agent_name"], a["executions"], a["failed"], _pct(a["success_rate"]),
                    format_duration(a["p50_duration_ms"]), format_duration(a["p95_duration_ms"]),
                    format_duration(a["max_duration_ms"]), _usd(a["cost_usd"])] for a in data.slowest],
                  numeric=set(range(1, 8)), empty="No timed executions.")
    return _section("Slowest agents", "By p95 duration, of the executions kept.", body)


def _failures_table(data: ReportData) -> str:
    body = _table(["started", "session", "agent", "exit", "first error line"],
                  [[_time(f["started_at"]), f["session_id"] or "", f["agent_name"],
                    "" if f["exit_code"] is None else f["exit_code"], f["error"] or ""] for f in data.failures],
                  numeric={3}, error_column=4, empty="No failed executions.")
    return _section("Latest failures", "Failed executions, newest first.", body)


def _stale_table(data: ReportData) -> str:
    body = _table(["started", "running for", "session", "agent", "execution"],
                  [[_time(s["started_at"]), format_duration(s["age_ms"]), s["session_id"] or "", s["agent_name"],
                    s["agent_session_id"]] for s in data.stale], numeric={1}, empty="No stale executions.")
    return _section("Stale executions",
                    f"In progress for more than {format_duration(data.stale_after_ms)}, oldest first.", body)


def _sessions_table(data: ReportData) -> str:
    body = _table(["session", "status", "started", "executions", "cost_usd"],
                  [[s["session_id"], s["status"], _time(s["started_at"]), s["executions"], _usd(s["cost_usd"])]
                   for s in data.costliest_sessions], numeric={3, 4}, empty="No cost recorded.")
    return _section("Costliest sessions", "Cost of each orchestration's executions in the window.", body)


def _table(head: Sequence[str], body: Sequence[Sequence[object]], *, numeric: set[int] = set(),
           error_column: int | None = None, empty: str = "Nothing.") -> str:
    if not body:
        return f'<p class="empty">{escape(empty)}</p>'

    def cell(i: int, value: object, tag: str = "td") -> str:
        cls = ' class="n"' if i in numeric else ' class="err"' if i == error_column and tag == "td" else ""
        text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
        return f"<{tag}{cls}>{escape(text)}</{tag}>"

    rows = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in body)
    return (f"<table><thead><tr>{''.join(cell(i, h, 'th') for i, h in enumerate(head))}</tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _time(stamp: str | None) -> str:
    return f"{stamp[:10]} {stamp[11:19]} UTC" if stamp else ""


def _pct(rate: float | None) -> str:
    return "" if rate is None else f"{rate:.1f}%"


def _usd(value: float | None) -> str:
    return "" if value is None else f"${value:,.2f}" if abs(value) >= 1 or value == 0 else f"${value:.4f}"


def _periods(data: ReportData) -> str:
    return f"{data.period}s" if len(data.periods) != 1 else data.period


def write_report(data: ReportData, path: str) -> int:
    """Write the page to path atomically; return its size in bytes."""
    from monitor.store.files import write_atomic

    page = render(data).encode("utf-8")
    write_atomic(path, page)
    return len(page)


def report_to_file(db: Database, path: str, config: Config, *, since: str | None = None, session: str | None = None,
                   agent: str | None = None, now: datetime | None = None) -> int:
    """`report --html`: gather the figures (with `check`'s verdict under `config`) and write the page
    to path; return its size in bytes."""
    from monitor.alerts.check import check
    from monitor.read.report import gather

    verdict = check(db, config, session=session, now=now)
    data = gather(db, since=since, session=session, agent=agent, check_result=verdict,
                  stale_after=config.stale_after, now=now)
    return write_report(data, path)
