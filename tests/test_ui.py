"""`monitor ui`: Datasette on the database, with monitor's metadata.

The server tests start the real command on 127.0.0.1 against a database of known rows, fetch each
canned query as JSON and compare it with the `--json` output of the report it mirrors. They are
skipped where Datasette is not installed (the `ui` extra); the message for that case is tested
everywhere. The browser test runs when Chromium is installed (Debian: apt-get install chromium).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Clock
from hypothesis import given, strategies as st

from monitor import Tracker, open_db
from monitor.cli import cli
from monitor.exporters.datasette import schema_docs
from monitor.read.reports import percentile_rank, percentile_rank_sql, rounded_ratio_sql
from monitor.store.migrations import schema_sql, statements

try:
    import datasette  # noqa: F401

    HAS_DATASETTE = True
except ImportError:
    HAS_DATASETTE = False

needs_datasette = pytest.mark.skipif(not HAS_DATASETTE, reason="Datasette is not installed (pip install -e '.[ui]')")


# --- the metadata, without a server ---------------------------------------------------------

def schema_columns() -> dict[str, list[str]]:
    conn = sqlite3.connect(":memory:")
    for statement in statements(schema_sql()):
        try:
            conn.execute(statement)
        except sqlite3.OperationalError:
            pass  # FTS5 missing: search tables skipped, as monitor does
    return {name: [c[1] for c in conn.execute(f"PRAGMA table_xinfo({name})")]
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                                        " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%fts%'")}


def test_every_table_and_view_has_a_description_from_the_schema():
    docs = schema_docs()
    assert sorted(set(schema_columns()) - set(docs)) == []
    assert all(doc.description for doc in docs.values())
    assert docs["agent_executions"].description.startswith("Agent executions: one run of one agent each")
    assert "(migration" not in docs["events"].description


@pytest.mark.parametrize("table", ["orchestrations", "agent_executions", "events", "llm_usage", "tool_calls"])
def test_every_column_people_read_is_described_once(table):
    columns = schema_docs()[table].columns
    undocumented = [c for c in schema_columns()[table] if c not in columns]
    # The self-evident ones a table's comment already names (llm_usage: tokens and cost per request).
    obvious = {"llm_usage": set(schema_columns()["llm_usage"]), "tool_calls": {"id", "tool", "server", "dedup_key"},
               "events": {"id"}}.get(table, set())
    assert [c for c in undocumented if c not in obvious] == []
    assert [c for c in columns if c not in schema_columns()[table]] == []  # no description of a column that is gone


def test_column_descriptions_are_read_as_written():
    docs = schema_docs("""-- A table (migration 3).
-- Columns:
--   a   first
--       and more
--   bb  second
CREATE TABLE IF NOT EXISTS t (a, bb);
CREATE TABLE IF NOT EXISTS t_too (c);
-- an index's comment
CREATE INDEX IF NOT EXISTS i ON t (a);

CREATE TABLE IF NOT EXISTS u (
    -- a comment inside is not the table's
    d
);
""")
    assert docs["t"].description == "A table."
    assert docs["t"].columns == {"a": "first and more", "bb": "second"}
    assert docs["t_too"] == docs["t"]  # one comment above a group of statements
    assert "u" not in docs


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=10**6), st.sampled_from([0, 1]))
def test_rounding_in_sql_is_pythons(numerator, denominator, digits):
    conn = sqlite3.connect(":memory:")
    sql = rounded_ratio_sql(str(numerator), str(denominator), digits)
    expected = round(numerator / denominator, digits) if digits else round(numerator / denominator)
    assert conn.execute(f"SELECT {sql}").fetchone()[0] == expected


@pytest.mark.parametrize("numerator, denominator, digits, expected",
                         [(21, 2, 0, 10), (23, 2, 0, 12), (625, 100, 1, 6.2), (675, 100, 1, 6.8), (2, 3, 1, 0.7)])
def test_ties_round_to_even_as_python_does(numerator, denominator, digits, expected):
    conn = sqlite3.connect(":memory:")
    assert conn.execute(f"SELECT {rounded_ratio_sql(str(numerator), str(denominator), digits)}").fetchone()[0] == expected


def test_percentile_rank_in_sql_is_the_nearest_rank():
    conn = sqlite3.connect(":memory:")
    counts = range(1, 20_001)
    for p in (50, 95):
        expected = [max(1, math.ceil(p / 100 * n)) for n in counts]
        assert [percentile_rank(p, n) for n in counts] == expected
        found = conn.execute(f"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 20000)"
                             f" SELECT {percentile_rank_sql(p, 'n')} FROM c ORDER BY n").fetchall()
        assert [r[0] for r in found] == expected


def test_without_datasette_the_command_says_what_to_install(tmp_path):
    """A real process in which `import datasette` fails, as where the extra is not installed."""
    db = tmp_path / "monitoring.db"
    Tracker(db).close()
    block = ("import sys\n"
             "class Block:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name == 'datasette' or name.startswith('datasette.'):\n"
             "            raise ImportError(f'No module named {name!r}')\n"
             "sys.meta_path.insert(0, Block())\n"
             "from monitor.cli import main\n"
             "sys.argv = ['monitor', 'ui', '--db', sys.argv[1], '--no-open']\n"
             "main()\n")
    result = subprocess.run([sys.executable, "-c", block, str(db)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "Error: monitor ui needs Datasette, an optional extra: pip install 'monitor[ui]'\n"


# --- a server on known rows ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(path: Path) -> None:
    """Known rows around the real present (the canned queries read SQLite's clock): a session two
    hours ago, a flaky agent five hours ago, sessions 30 and 54 hours ago, a stale execution."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    clock = Clock(now)
    with Tracker(path, clock=clock) as t:

        def run(agent: str, name: str, start: datetime, ms: int | None, status: str = "completed",
                session: str | None = None, **done: object) -> None:
            clock.now = start
            t.start_agent_execution(name, agent, orchestration=session, task_id=f"T-{name}")
            if ms is not None:
                clock.now = start + timedelta(milliseconds=ms)
                t.complete_agent_execution(name, status, **done)  # type: ignore[arg-type]

        start = now - timedelta(hours=2)
        clock.now = start
        t.start_orchestration("s-today", task_description="Build the login page", total_tasks=4)
        run("planner", "s-today-planner", start, 10_000, session="s-today", model="claude-sonnet-4-5",
            input_tokens=12_000, output_tokens=800, cost_usd=0.048)
        clock.now = start + timedelta(seconds=11)
        t.event("tool_call", "ran pytest -q in the login package", {"tool": "Bash"}, orchestration="s-today")
        run("tests", "s-today-tests", start + timedelta(seconds=10), 10_500, "failed", session="s-today",
            error_message="AssertionError: 2 != 3 in test_login", model="claude-haiku-4-5", input_tokens=3_000,
            output_tokens=200, cost_usd=0.004)
        clock.now = start + timedelta(seconds=15)
        t.event("error", "AssertionError in test_login", execution="s-today-tests")
        run("coder", "s-today-coder-1", start + timedelta(seconds=30), 10, session="s-today")
        run("coder", "s-today-coder-2", start + timedelta(seconds=31), 11, session="s-today")  # avg 10.5: a tie
        for i in range(16):  # 1 of 16 succeeds: 6.25%, another tie
            run("flaky", f"flaky-{i}", now - timedelta(hours=5, minutes=i), 100 * (i + 1),
                "completed" if i == 0 else "failed", error_message=None if i == 0 else f"flaky failure {i}")
        old = now - timedelta(hours=30)
        clock.now = old
        t.start_orchestration("s-old", task_description="Nightly")
        run("tests", "s-old-tests", old, 30_000, "failed", session="s-old", error_message="timeout after 30s",
            model="claude-haiku-4-5", input_tokens=1_000, output_tokens=100, cost_usd=0.01)
        run("planner", "s-old-planner", old + timedelta(minutes=1), 9_000, session="s-old",
            model="claude-sonnet-4-5", input_tokens=5_000, output_tokens=500, cost_usd=0.02)
        run("planner", "s-older-planner", now - timedelta(hours=54), 8_000, model="claude-sonnet-4-5",
            input_tokens=4_000, output_tokens=400, cost_usd=0.03)
        run("deploy", "hung-1", now - timedelta(hours=3), None)  # stale
        run("deploy", "fresh-1", now - timedelta(minutes=10), None)  # in progress, not stale


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`monitor ui` on known rows: (base URL of the database, its path)."""
    if not HAS_DATASETTE:
        pytest.skip("Datasette is not installed (pip install -e '.[ui]')")
    path = tmp_path_factory.mktemp("ui") / "monitoring.db"
    record(path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MONITOR_DB", "MONITOR_PRICES")}
    process = subprocess.Popen([sys.executable, "-m", "monitor", "ui", "--db", str(path), "--port", str(port),
                                "--no-open"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stderr is not None
    first = process.stderr.readline()
    assert first == f"Serving {path} on http://127.0.0.1:{port}/monitoring (Ctrl-C to stop).\n"
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/-/versions.json", timeout=5).read()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise AssertionError(f"Datasette did not start: {process.stderr.read()}") from None
            time.sleep(0.2)
    meta = metadata_file(process.pid)
    try:
        yield f"{base}/monitoring", path
    finally:
        process.terminate()  # SIGTERM: the command stops Datasette and removes its metadata
        assert process.wait(timeout=20) == 143
    if meta is not None:
        assert not meta.parent.exists()


def metadata_file(pid: int) -> Path | None:
    """The metadata file `monitor ui` (process pid) gave Datasette, read from its child's command
    line; checked to be readable by its owner only. None where there is no /proc."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if not children.exists():
        return None
    (child,) = children.read_text().split()
    argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
    meta = Path(argv[argv.index(b"--metadata") + 1].decode())
    assert (meta.stat().st_mode & 0o777, meta.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert json.loads(meta.read_text())["databases"]["monitoring"]["queries"]
    return meta


def fetch(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def canned(server, name: str, **params: str) -> list[dict]:
    base, _ = server
    return fetch(f"{base}/{name}.json?" + urllib.parse.urlencode({**params, "_shape": "array"}))


def cli_json(path: Path, *args: str):
    result = CliRunner().invoke(cli, [*args, "--db", str(path), "--json"])
    assert result.exit_code in (0, 3, 4), result.output
    return json.loads(result.stdout)


def booleans(row: dict) -> dict:
    return {k: bool(v) if k == "self_healed" and v is not None else v for k, v in row.items()}


@needs_datasette
def test_failures_in_the_last_24_hours_are_the_clis(server):
    _, path = server
    found = canned(server, "failures_24h")
    assert [booleans(r) for r in found] == cli_json(path, "failures", "--executions", "--since", "24h")
    names = [r["agent_session_id"] for r in found]
    assert len(names) == 16 and "s-today-tests" in names and "s-old-tests" not in names
    with_48h = [r["agent_session_id"] for r in canned(server, "failures_24h", hours="48")]
    assert [booleans(r) for r in canned(server, "failures_24h", hours="48")] == \
        cli_json(path, "failures", "--executions", "--since", "48h")
    assert "s-old-tests" in with_48h


@needs_datasette
@pytest.mark.parametrize("minutes, age", [("", "1h"), ("5", "5m")])
def test_stale_executions_are_healths(server, minutes, age):
    _, path = server
    found = canned(server, "stale_executions", minutes=minutes)
    health = cli_json(path, "health", "--stale-after", age)["stale"]
    keys = ("session_id", "agent_name", "agent_session_id", "started_at")
    assert [{k: r[k] for k in keys} for r in found] == [{k: r[k] for k in keys} for r in health["executions"]]
    assert len(found) == health["count"] == (1 if age == "1h" else 2)
    for ui_row, cli_row in zip(found, health["executions"]):  # measured a moment apart
        assert abs(ui_row["running_ms"] - cli_row["running_ms"]) < 10_000


@needs_datasette
def test_cost_by_agent_per_day_is_cost_day_by_day(server):
    _, path = server
    found = canned(server, "cost_by_agent_per_day")
    days = sorted({r["day"] for r in found})
    assert len(days) >= 2
    columns = ["executions", "input_tokens", "output_tokens", "cost_usd", "unpriced"]

    def by_agent(since: str) -> dict:
        return {r["agent"]: r for r in cli_json(path, "cost", "--by", "agent", "--since", since)}

    for day in days:  # a day's cost is what `cost --since DAY` adds to `cost --since DAY+1`
        following = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
        from_day, after = by_agent(day), by_agent(following)
        expected = {agent: {c: round((row[c] or 0) - (after.get(agent, {}).get(c) or 0), 6) for c in columns}
                    for agent, row in from_day.items()}
        got = {r["agent"]: {c: round(r[c] or 0, 6) for c in columns} for r in found if r["day"] == day}
        assert got == {a: v for a, v in expected.items() if v["executions"]}
    totals: dict[str, float] = {}
    for r in found:
        totals[r["agent"]] = round(totals.get(r["agent"], 0) + r["cost_usd"], 6)
    assert totals == {r["agent"]: r["cost_usd"] for r in cli_json(path, "cost", "--by", "agent")}
    assert [r["day"] for r in found] == sorted((r["day"] for r in found), reverse=True)
    since = canned(server, "cost_by_agent_per_day", since=days[-1])
    assert {r["day"] for r in since} == {days[-1]}


@needs_datasette
@pytest.mark.parametrize("since", [None, "today"])
def test_slowest_agents_are_performances(server, since):
    _, path = server
    params = {}
    args = ["performance"]
    if since:
        day = datetime.now(timezone.utc).date().isoformat()
        params, args = {"since": day}, [*args, "--since", day]
    found = canned(server, "slowest_agents", **params)
    performance = {r["agent_name"]: r for r in cli_json(path, *args)}
    assert {r["agent_name"] for r in found} == set(performance)
    for row in found:
        assert row == {k: performance[row["agent_name"]][k] for k in row}, row["agent_name"]
    p95 = [r["p95_duration_ms"] for r in found if r["p95_duration_ms"] is not None]
    assert p95 == sorted(p95, reverse=True)
    if not since:  # the ties: Python's rounding, not SQLite's
        rows = {r["agent_name"]: r for r in found}
        assert (rows["coder"]["avg_duration_ms"], rows["flaky"]["success_rate"]) == (10, 6.2)
        assert (rows["flaky"]["p50_duration_ms"], rows["flaky"]["p95_duration_ms"]) == (800, 1600)


@needs_datasette
def test_a_sessions_timeline_is_its_log_and_its_executions(server):
    _, path = server
    found = canned(server, "session_timeline", session="s-today")
    events = [r for r in found if r["kind"] == "event"]
    logs = cli_json(path, "logs", "s-today")
    assert len(events) == len(logs) == 2
    for row, event in zip(events, logs):
        assert {k: row[k] for k in ("timestamp", "agent_name", "agent_session_id", "type", "message")} == \
            {k: event[k] for k in ("timestamp", "agent_name", "agent_session_id", "type", "message")}
        assert (json.loads(row["payload"]) if row["payload"] else None) == event["payload"]
    executions = cli_json(path, "executions", "s-today")
    starts = [(r["timestamp"], r["agent_session_id"]) for r in found if r["type"] == "started"]
    ends = [(r["timestamp"], r["agent_session_id"], r["type"], r["duration_ms"]) for r in found
            if r["kind"] == "execution" and r["type"] != "started"]
    assert starts == [(e["started_at"], e["agent_session_id"]) for e in executions]
    assert sorted(ends) == sorted((e["completed_at"], e["agent_session_id"], e["status"], e["duration_ms"])
                                  for e in executions)
    assert [r["timestamp"] for r in found] == sorted(r["timestamp"] for r in found)
    lone = canned(server, "session_timeline", session="hung-1")  # an execution of no orchestration
    assert [(r["kind"], r["type"], r["agent_session_id"], r["message"], r["duration_ms"]) for r in lone] == [
        ("execution", "started", "hung-1", "T-hung-1", None)]
    assert canned(server, "session_timeline", session="no-such-session") == []


@needs_datasette
@pytest.mark.parametrize("table, word, column", [("events", "pytest", "message"),
                                                 ("agent_executions", "AssertionError", "error_message")])
def test_full_text_search_finds_what_monitor_search_finds(server, table, word, column):
    base, path = server
    found = fetch(f"{base}/{table}.json?_search={word}&_shape=array")
    kind = "event" if table == "events" else "error"
    expected = [r["message"] for r in cli_json(path, "search", word) if r["kind"] == kind]
    assert sorted(r[column] for r in found) == sorted(expected) != []


@needs_datasette
def test_executions_are_faceted_by_status_agent_and_model(server):
    base, path = server
    page = fetch(f"{base}/agent_executions.json")
    facets = page["facet_results"]
    assert sorted(facets) == ["agent_name", "model", "status"]
    with open_db(path, create=False) as db:
        statuses = dict(db.execute("SELECT status, count(*) FROM agent_executions GROUP BY 1").fetchall())
    assert {v["value"]: v["count"] for v in facets["status"]["results"]} == statuses
    assert page["human_description_en"] == "sorted by started_at descending"


@needs_datasette
def test_tables_carry_the_schemas_descriptions_and_internal_ones_are_hidden(server):
    base, _ = server
    listing = fetch(f"{base}.json")
    hidden = {t["name"] for t in listing["tables"] if t["hidden"]}
    shown = {t["name"] for t in listing["tables"] if not t["hidden"]}
    assert shown == {"orchestrations", "agent_executions", "events", "llm_usage", "tool_calls"}
    assert {"agent_totals", "cost_rollup", "alert_state", "spool_offsets", "transcript_offsets"} <= hidden
    meta = fetch(base.rsplit("/", 1)[0] + "/-/metadata.json")["databases"]["monitoring"]
    docs = schema_docs()
    assert meta["tables"]["agent_executions"]["columns"] == docs["agent_executions"].columns
    assert meta["tables"]["agent_executions"]["description"] == docs["agent_executions"].description
    table = urllib.request.urlopen(f"{base}/agent_executions", timeout=30).read().decode()
    assert docs["agent_executions"].columns["duration_ms"] in table
    queries = {q["name"] for q in listing["queries"]}
    assert queries == {"failures_24h", "stale_executions", "cost_by_agent_per_day", "slowest_agents",
                       "session_timeline"}


@needs_datasette
def test_recorders_keep_writing_while_the_ui_is_open(server):
    """Datasette reads through read-only connections: a Tracker records (with a short busy timeout,
    so a blocked writer would fail) while pages are served, and the next page shows the new rows."""
    _, path = server
    before = canned(server, "failures_24h")
    canned(server, "slowest_agents")  # a query that reads every execution
    with Tracker(path) as t:
        t.db.set_busy_timeout(200)
        for i in range(5):
            t.start_agent_execution(f"live-{i}", "live")
            canned(server, "failures_24h")
            t.complete_agent_execution(f"live-{i}", "failed", error_message=f"live failure {i}")
    after = canned(server, "failures_24h")
    assert len(after) == len(before) + 5
    assert [r["agent_session_id"] for r in after[:5]] == [f"live-{i}" for i in reversed(range(5))]
    with open_db(path, create=False) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@needs_datasette
def test_a_port_in_use_is_an_error(tmp_path):
    db = tmp_path / "monitoring.db"
    Tracker(db).close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["ui", "--db", str(db), "--port", str(port), "--no-open"])
    assert result.exit_code == 1, result.output
    assert result.output == (f"Error: cannot serve on 127.0.0.1:{port}: Address already in use; choose another"
                             f" --port or --host\n")


@needs_datasette
@pytest.mark.parametrize("args, error", [
    (["--port", "0"], "Error: Invalid value for '--port': 0 is not in the range 1<=x<=65535."),
    (["--port", "http"], "Error: Invalid value for '--port': 'http' is not a valid integer range."),
    (["--host", "256.1.1.1"], None),  # not this machine's: refused when it is bound, exit 1
])
def test_bad_arguments(tmp_path, args, error):
    db = tmp_path / "monitoring.db"
    Tracker(db).close()
    result = CliRunner().invoke(cli, ["ui", "--db", str(db), "--no-open", *args])
    if error is None:
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: cannot serve on 256.1.1.1:8001: ")
    else:
        assert result.exit_code == 2, result.output
        assert result.output.splitlines()[-1] == error


@needs_datasette
def test_a_missing_database_is_an_error(tmp_path):
    result = CliRunner().invoke(cli, ["ui", "--db", str(tmp_path / "none.db"), "--no-open"])
    assert result.exit_code == 1
    assert "no monitor database" in result.output
    assert not (tmp_path / "none.db").exists()


@needs_datasette
@pytest.mark.slow
def test_a_browser_shows_the_executions_page(server, tmp_path):
    """Headless Chromium (Debian's `chromium`) renders a page: a screenshot that is not blank."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    base, _ = server
    shot = tmp_path / "executions.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900",
                    f"--screenshot={shot}", f"{base}/agent_executions"], capture_output=True, timeout=120)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # Not blank: a blank page compresses to a few KB; the table, facets and text do not.
    assert len(data) > 20_000
    if os.environ.get("MONITOR_UI_SCREENSHOT"):
        shutil.copy(shot, os.environ["MONITOR_UI_SCREENSHOT"])


#: What each canned query may read from end to end: its own CTEs and subqueries (a few rows),
#: agent_totals (a row per agent), and for slowest_agents the walk of each agent's durations in the
#: order of their index. Anything else is a search through an index.
SCANS_ALLOWED = {
    "failures_24h": set(), "stale_executions": set(), "cost_by_agent_per_day": set(),
    "session_timeline": {"named", "lone", "runs"},
    "slowest_agents": {"t", "s", "r", "agent_executions USING INDEX idx_executions_agent_duration"},
}


@pytest.mark.parametrize("name, params", [("failures_24h", {"hours": ""}), ("stale_executions", {"minutes": ""}),
                                          ("cost_by_agent_per_day", {"since": "2026-11-01"}),
                                          ("session_timeline", {"session": "s-today"}),
                                          ("slowest_agents", {"since": ""}), ("slowest_agents", {"since": "2026-11-01"})])
def test_canned_queries_read_through_indexes(tmp_path, name, params):
    from monitor.read.canned import QUERIES

    path = tmp_path / "monitoring.db"
    Tracker(path).close()
    with open_db(path, create=False) as db:
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {QUERIES[name]['sql']}", params)]
    scanned = {step[5:] for step in plan if step.startswith("SCAN ") and not step.startswith("SCAN (subquery-")}
    assert scanned == SCANS_ALLOWED[name], plan
