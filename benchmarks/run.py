"""Measure monitor against baselines taken in the same run, and print one table of ratios.

    python benchmarks/run.py                             # 10k, 100k and 1M executions (10-15 minutes)
    python benchmarks/run.py --scaling 10000,100000      # a quick run: 100k is the big one
    python benchmarks/run.py startup                     # the three start-up ratios alone (about a minute)
    python benchmarks/run.py tracker --tracker-ops 2000  # the Tracker against the reference recorder alone
    python benchmarks/run.py cleanup --scaling 1000000   # cleanup against a raw DELETE alone, on 1M

Every figure is a ratio to a baseline measured a moment before or after on the same machine, because
absolute times on shared machines mean little. Generated databases are cached in --dir (default
$TMPDIR/monitor-bench) and rebuilt when older than --max-age hours, so that "the last 24 hours"
still holds the data.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from click.testing import CliRunner  # noqa: E402

import generate  # noqa: E402
from monitor.store import migrations  # noqa: E402
from monitor.cli import cli  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
RESULTS: list[tuple[str, str, str, float, str, bool | None]] = []


def record(what: str, measured: str, baseline: str, ratio: float, target: str, ok: bool | None) -> None:
    RESULTS.append((what, measured, baseline, ratio, target, ok))
    verdict = "" if ok is None else ("ok" if ok else "MISSED")
    print(f"  {what}: {measured} vs {baseline} -> {ratio:.2f}x (target {target}) {verdict}", flush=True)


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


# -- databases ------------------------------------------------------------------------------------

def database(folder: Path, executions: int, days: float, max_age_hours: float) -> Path:
    """A generated database, from the cache when it is recent and of the current schema."""
    path = folder / f"bench-{executions}-{days:g}d-v{migrations.LATEST}.db"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        if time.time() - info["created"] < max_age_hours * 3600:
            return path
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    result = generate.generate(path, executions, days=days)
    print(f"  generated {path.name}: {result['executions']:,} executions + {result['orchestrations']:,}"
          f" orchestrations in {result['seconds']:.1f}s = {result['rows_per_second']:,.0f} rows/s", flush=True)
    meta.write_text(json.dumps({"created": time.time(), **result}))
    return path


def cli_time(args: list[str], repeat: int) -> float:
    runner = CliRunner()

    def call() -> None:
        result = runner.invoke(cli, args, catch_exceptions=False)
        assert result.exit_code in (0, 1, 3, 4), result.output  # health: 3 degraded, 4 unhealthy

    call()  # warm the page cache
    return best(call, repeat)


# -- 1. tracker vs the reference tool's recorder -------------------------------------------------

REFERENCE_SCHEMA = ROOT / "tests" / "fixtures" / "reference_schema.sql"


def fresh(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def reference_recorder(path: Path, ops: int) -> tuple[float, float]:
    """What the reference tool's recorder does per execution, in Python's sqlite3: its own schema
    (text UUID ids, nine indexes), WAL with synchronous NORMAL, an INSERT when an execution starts
    and an UPDATE when it completes, each its own transaction. Returns the seconds taken, and the
    CPU seconds (this process's, the kernel's work for it included)."""
    import uuid
    from datetime import datetime, timezone

    conn = sqlite3.connect(fresh(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(REFERENCE_SCHEMA.read_text())

    def iso() -> str:
        return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    began, cpu = time.perf_counter(), time.process_time()
    for i in range(ops):
        conn.execute("INSERT INTO agent_executions (id, agent_session_id, agent_name, status, started_at)"
                     " VALUES (?, ?, 'agent', 'in_progress', ?)", (str(uuid.uuid4()), f"e{i}", iso()))
        conn.execute("UPDATE agent_executions SET status = 'completed', completed_at = ?, duration_ms = ?"
                     " WHERE agent_session_id = ?", (iso(), 5, f"e{i}"))
    elapsed = time.perf_counter() - began, time.process_time() - cpu
    conn.close()
    return elapsed


def tracker_recorder(path: Path, ops: int, batch: int = 0) -> tuple[float, float]:
    """The same executions through monitor's Tracker: each call its own transaction, or `batch`
    executions per Tracker.batch(). Seconds and CPU seconds, as reference_recorder."""
    from monitor import Tracker

    with Tracker(fresh(path)) as t:
        began, cpu = time.perf_counter(), time.process_time()
        for first in range(0, ops, batch or 1):
            with t.batch() if batch else contextlib.nullcontext():
                for i in range(first, min(ops, first + (batch or 1))):
                    t.start_agent_execution(f"e{i}", "agent")
                    t.complete_agent_execution(f"e{i}", "completed")
        return time.perf_counter() - began, time.process_time() - cpu


def bench_tracker(folder: Path, ops: int) -> None:
    reference, single, batched = [], [], []
    for _ in range(3):  # interleaved, best of three each
        reference.append(reference_recorder(folder / "reference.db", ops))
        single.append(tracker_recorder(folder / "tracker.db", ops))
        batched.append(tracker_recorder(folder / "batch.db", ops, batch=100))
    ref_rate, rate, batch_rate = (ops / min(t[0] for t in times) for times in (reference, single, batched))
    record("tracker start+complete, each committed (executions/s)", f"{rate:,.0f}/s",
           f"reference recorder {ref_rate:,.0f}/s", rate / ref_rate, ">= 1x", rate / ref_rate >= 1)
    record("tracker.batch(), 100 executions a transaction", f"{batch_rate:,.0f}/s",
           f"reference recorder {ref_rate:,.0f}/s", batch_rate / ref_rate, "report", None)
    # CPU time per execution: what the wall-clock ratio becomes when the machine is busy (the disk's
    # part, the checkpoints' fsyncs, is small: see benchmarks/README.md).
    ref_cpu, cpu = (min(t[1] for t in times) / ops for times in (reference, single))
    record("  the same in CPU time per execution (executions/CPU-s)", f"{1 / cpu:,.0f}/s ({cpu * 1e6:.0f} us)",
           f"reference recorder {1 / ref_cpu:,.0f}/s ({ref_cpu * 1e6:.0f} us)", ref_cpu / cpu, "report", None)


# -- 2. eight writers vs one ----------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    from monitor import Tracker
    worker, count, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    errors = 0
    with Tracker(db) as t:
        t.start_orchestration(f"o-{worker}", git_commit_hash="x")
        began = time.time()
        for i in range(count):
            t.start_agent_execution(f"{worker}-{i}", "agent", f"o-{worker}")
            t.complete_agent_execution(f"{worker}-{i}", "completed")
        print(began, time.time())
""")


def run_writers(path: Path, processes: int, count: int) -> tuple[float, int, int]:
    """(executions/s over all writers, executions stored, writers that failed)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    from monitor import open_db

    open_db(path).close()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(w), str(count), str(path)], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(processes)]
    spans, failed = [], 0
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0 or "locked" in err:
            failed += 1
            print(err, file=sys.stderr)
        else:
            spans.append(tuple(map(float, out.split())))
    conn = sqlite3.connect(path)
    stored = conn.execute("SELECT count(*) FROM agent_executions WHERE status = 'completed'").fetchone()[0]
    conn.close()
    elapsed = max(s[1] for s in spans) - min(s[0] for s in spans)
    return processes * count / elapsed, stored, failed


def bench_writers(folder: Path, count: int) -> None:
    single = max(run_writers(folder / "one.db", 1, count * 8)[0] for _ in range(2))
    runs = [run_writers(folder / "eight.db", 8, count) for _ in range(2)]
    rate = max(r[0] for r in runs)
    lost = sum(8 * count - r[1] for r in runs)
    errors = sum(r[2] for r in runs)
    record(f"8 writer processes, aggregate (lost rows {lost}, lock errors {errors})", f"{rate:,.0f}/s",
           f"1 process {single:,.0f}/s", rate / single, ">= 0.8x, 0 lost, 0 errors",
           rate / single >= 0.8 and lost == 0 and errors == 0)


# -- 3. performance, all time ----------------------------------------------------------------------

def newest_session(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:  # a finished orchestration near the end, as someone would look at
        return conn.execute("SELECT session_id FROM orchestrations WHERE status != 'running'"
                            " ORDER BY id DESC LIMIT 1 OFFSET 5").fetchone()[0]
    finally:
        conn.close()


def bench_performance(big: Path, label: str) -> None:
    """The all-time `performance` (per-agent totals kept by triggers, percentiles from the agents'
    duration index) against the GROUP BY it replaces; the windows are in the scaling table."""
    t_perf = cli_time(["performance", "--json", "--db", str(big)], 3)
    conn = sqlite3.connect(big)
    raw = "SELECT agent_name, count(*), avg(duration_ms) FROM agent_executions GROUP BY agent_name"
    conn.execute(raw).fetchall()
    t_raw = best(lambda: conn.execute(raw).fetchall(), 3)
    conn.close()
    record(f"performance (p50/p95), all time, on {label}", ms(t_perf), f"raw GROUP BY {ms(t_raw)}", t_perf / t_raw,
           "<= 2x", t_perf / t_raw <= 2)


# -- 5b. scaling: the same window at 10k, 100k and 1M --------------------------------------------

#: Executions per day in the scaling databases: the smallest one (10k) then spans 8 days, so that
#: every window below (up to 7 days) holds the same rows at each size.
SCALING_DENSITY = 1250
#: Reports whose answer has a fixed size (a window, one agent, one session, N newest matches, a
#: grouped total). {agent} is the busiest agent, {session} a recent finished orchestration.
SCALING = [
    ("health 24", ["health", "24"]),
    ("list", ["list", "--limit", "50"]),
    ("list --since 1d", ["list", "--since", "1d", "--limit", "50"]),
    ("list --agent NAME --since 1d", ["list", "--agent", "{agent}", "--since", "1d", "--limit", "50"]),
    ("executions", ["executions", "--limit", "100"]),
    ("executions --since 1d", ["executions", "--since", "1d", "--limit", "100"]),
    ("executions --agent NAME --since 1d", ["executions", "--agent", "{agent}", "--since", "1d", "--limit", "100"]),
    ("executions --status failed --since 1d", ["executions", "--status", "failed", "--since", "1d",
                                               "--limit", "100"]),
    ("executions SESSION", ["executions", "{session}"]),
    ("show SESSION", ["show", "{session}"]),
    ("failures", ["failures", "--limit", "50"]),
    ("failures --since 7d --agent NAME", ["failures", "--since", "7d", "--agent", "{agent}", "--limit", "50"]),
    ("failures --executions --since 1d", ["failures", "--executions", "--since", "1d", "--limit", "50"]),
    ("failures --since 1d", ["failures", "--since", "1d", "--limit", "50"]),
    ("agent NAME --since 24h", ["agent", "{agent}", "--since", "24h"]),
    ("agent NAME (all time)", ["agent", "{agent}"]),
    ("performance (all time)", ["performance"]),
    ("performance --since 7d", ["performance", "--since", "7d"]),
    ("performance --since 24h", ["performance", "--since", "24h"]),
    ("cost --by model", ["cost", "--by", "model"]),
    ("cost --by agent", ["cost", "--by", "agent"]),
    ("cost --by model --since 7d", ["cost", "--by", "model", "--since", "7d"]),
    ("cost --by agent --since 7d", ["cost", "--by", "agent", "--since", "7d"]),
    ("cost --by session --since 1d", ["cost", "--by", "session", "--since", "1d"]),
    ("search WORD (in every event)", ["search", "done", "--limit", "50"]),
    ("search WORD --since 1d", ["search", "done", "--since", "1d", "--limit", "50"]),
    ("logs SESSION", ["logs", "{session}"]),
    ("logs SESSION --since 1d", ["logs", "{session}", "--since", "1d"]),
    ("export --since 1d", ["export", "--since", "1d", "-o", "{out}"]),
    ("export SESSION", ["export", "{session}", "-o", "{out}"]),
    ("tools --since 1d", ["tools", "--since", "1d"]),
    ("check (24 hours, default rules)", ["check"]),
    ("check --session SESSION", ["check", "--session", "{session}"]),
    ("metrics (a Prometheus scrape)", ["metrics"]),
]
#: Commands without --json: their own output is timed.
NO_JSON = {"export", "metrics"}


def busiest_agent(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT agent_name FROM agent_totals ORDER BY executions DESC LIMIT 1").fetchone()[0]
    finally:
        conn.close()


def bench_scaling(paths: dict[int, Path], repeat: int = 7) -> None:
    """Each report of SCALING at every size, as a ratio to the smallest: the best of `repeat` calls,
    taken in turn at each size so that a busy moment of the machine falls on all of them."""
    sizes = sorted(paths)
    out = next(iter(paths.values())).parent / "work" / "scaling-export.json"
    values = {n: {"agent": busiest_agent(p), "session": newest_session(p), "out": str(out)} for n, p in paths.items()}
    runner = CliRunner()
    for name, args in SCALING:
        argvs = {n: [*(a.format(**values[n]) for a in args), *([] if args[0] in NO_JSON else ["--json"]),
                     "--db", str(path)] for n, path in paths.items()}
        times: dict[int, list[float]] = {n: [] for n in sizes}
        for _ in range(repeat + 1):  # the first round warms the page cache
            for n in sizes:
                began = time.perf_counter()
                result = runner.invoke(cli, argvs[n], catch_exceptions=False)
                times[n].append(time.perf_counter() - began)
                assert result.exit_code in (0, 1, 3, 4), result.output
        best_of = {n: min(t[1:]) for n, t in times.items()}
        for n in sizes[1:]:
            ratio = best_of[n] / best_of[sizes[0]]
            record(f"scaling: {name}, {size_label(n)} vs {size_label(sizes[0])}", ms(best_of[n]),
                   ms(best_of[sizes[0]]), ratio, "<= 2x", ratio <= 2)


def size_label(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n // 1000:,}k"


# -- 6. export memory -----------------------------------------------------------------------------

MAXRSS = textwrap.dedent("""
    import resource, subprocess, sys
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
""")


def peak_rss_kb(argv: list[str]) -> tuple[int, float]:
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", MAXRSS, *argv], env=ENV, capture_output=True, text=True,
                         check=True).stdout
    return int(out), time.perf_counter() - began


def wall(argv: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, env=ENV, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - began


def bench_export(big: Path, small: Path, label: str, small_label: str) -> None:
    command = [sys.executable, "-m", "monitor", "export", "--db"]
    small_kb, small_s = peak_rss_kb([*command, str(small)])
    big_kb, big_s = peak_rss_kb([*command, str(big)])
    record(f"export peak RSS, {label} ({big_s:.0f}s) vs {small_label} ({small_s:.1f}s)", f"{big_kb / 1024:.0f} MiB",
           f"{small_kb / 1024:.0f} MiB", big_kb / small_kb, "<= 1.5x", big_kb / small_kb <= 1.5)
    sqlite3_cli = shutil.which("sqlite3")
    if sqlite3_cli is None:
        print("  export vs sqlite3 -json: no sqlite3 command here (apt-get install sqlite3)")
        return
    dump = [sqlite3_cli, "-json", str(big), "SELECT * FROM orchestrations; SELECT * FROM agent_executions;"]
    exports, dumps = [], []
    for _ in range(2):  # interleaved, best of two each
        dumps.append(wall(dump))
        exports.append(wall([*command, str(big)]))
    ratio = min(exports) / min(dumps)
    record(f"export on {label}, all of it", ms(min(exports)), f"sqlite3 -json of both tables {ms(min(dumps))}",
           ratio, "<= 1.5x", ratio <= 1.5)


# -- 7. cleanup -----------------------------------------------------------------------------------

LATENCY_WRITER = textwrap.dedent("""
    import os, sys, time
    from monitor import Tracker
    db, stop = sys.argv[1], sys.argv[2]
    worst, n = 0.0, 0
    with Tracker(db) as t:
        print("ready", flush=True)
        while not os.path.exists(stop):
            began = time.perf_counter()
            t.start_agent_execution(f"live-{n}", "live")
            t.complete_agent_execution(f"live-{n}", "completed")
            worst = max(worst, time.perf_counter() - began)
            n += 1
            time.sleep(0.005)
    print(worst, n)
""")


CLEANUP = textwrap.dedent("""
    import sys, time
    from datetime import timedelta
    from monitor import open_db
    from monitor.ops.retention import cleanup, cutoff_for
    from monitor.ops.rollup import days_to_roll_up, roll_up
    from monitor.timeutil import parse_timestamp
    db_path, cutoff, days = sys.argv[1], sys.argv[2], int(sys.argv[3])
    now = parse_timestamp(cutoff) + timedelta(days=days)
    with open_db(db_path) as db:
        # The days cleanup rolls up first, timed apart: the raw DELETE keeps no trends.
        began = time.perf_counter()
        rolled = roll_up(db, days_to_roll_up(db, cutoff_for(days, now), now), now)
        rolling = time.perf_counter() - began
        began = time.perf_counter()
        result = cleanup(db, days, now=now)
        assert result.rolled_up_days == 0, result
        print(time.perf_counter() - began, result.executions, result.cutoff, rolling, rolled)
""")


def bench_cleanup(big: Path, folder: Path, label: str) -> None:
    """`cleanup` against one DELETE of the same rows: the cutoff is taken once, from the execution
    in the middle, and both sides delete what started before it."""
    def copy(name: str) -> Path:
        target = fresh(folder / name)
        shutil.copyfile(big, target)
        return target

    conn = sqlite3.connect(big)
    cutoff = conn.execute("SELECT started_at FROM agent_executions ORDER BY id"
                          " LIMIT 1 OFFSET (SELECT count(*) / 2 FROM agent_executions)").fetchone()[0]
    conn.close()
    days = 30  # cleanup's argument; its `now` is the cutoff plus as many days

    raw_path = copy("cleanup-raw.db")
    conn = sqlite3.connect(raw_path, isolation_level=None)
    # The settings every monitor connection has (open_db): foreign keys for the cascade, and
    # secure_delete, so that the deleted rows are overwritten on both sides (about 10% of the raw
    # DELETE's time at 100k; it was left out before).
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    began = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    raw_removed = conn.execute("DELETE FROM agent_executions WHERE orchestration_id IN"
                               " (SELECT id FROM orchestrations WHERE started_at < ?)", (cutoff,)).rowcount
    conn.execute("DELETE FROM orchestrations WHERE started_at < ?", (cutoff,))
    raw_removed += conn.execute("DELETE FROM agent_executions WHERE orchestration_id IS NULL"
                                " AND started_at < ?", (cutoff,)).rowcount
    conn.execute("COMMIT")
    t_raw = time.perf_counter() - began
    conn.close()

    path = copy("cleanup.db")
    stop = folder / "cleanup.stop"
    stop.unlink(missing_ok=True)
    writer = subprocess.Popen([sys.executable, "-c", LATENCY_WRITER, str(path), str(stop)], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    result = subprocess.run([sys.executable, "-c", CLEANUP, str(path), cutoff, str(days)], env=ENV,
                            capture_output=True, text=True)
    stop.touch()
    out, err = writer.communicate()
    worst, writes = out.split()
    seconds, removed, used, rolling, rolled = (result.stdout.split() if result.returncode == 0
                                               else ("nan", "-1", "", "nan", "0"))
    t_cleanup = float(seconds)
    record(f"cleanup before {cutoff[:10]} on {label}: removed {int(removed):,} (raw {raw_removed:,}) executions",
           ms(t_cleanup), f"raw DELETE {ms(t_raw)}", t_cleanup / t_raw, "<= 1.5x, same rows",
           t_cleanup / t_raw <= 1.5 and int(removed) == raw_removed and used == cutoff)
    record(f"  writer during cleanup: worst wait of {writes} writes", ms(float(worst)), "1 s limit",
           float(worst), "<= 1 s", float(worst) <= 1.0 and writer.returncode == 0)
    record(f"  cleanup's roll-up of the {int(rolled):,} days it deletes, before (not in the ratio)",
           ms(float(rolling)), f"raw DELETE {ms(t_raw)}", float(rolling) / t_raw, "report", None)
    for p in (raw_path, path):
        fresh(p)


# -- 8. start-up ----------------------------------------------------------------------------------

#: Start-up targets, as ratios to `python -c "import sqlite3"` measured in the same run.
STARTUP_TARGETS = {"table": 7.0, "json": 5.0, "hook": 3.0}
#: Where start-up time goes: each module's import time is charged to the nearest of these that
#: imported it (itself included), else to 'python' (the interpreter's own start and the script).
IMPORT_GROUPS = ("click", "tabulate", "dateutil", "sqlite_utils", "monitor")
PAYLOAD = ROOT / "tests" / "payloads" / "post_write.json"


class StartupCommand:
    """One command line timed from process start to exit, with what it reads on stdin."""

    def __init__(self, name: str, argv: list[str], stdin: Callable[[int], bytes] = lambda run: b"") -> None:
        self.name, self.argv, self.stdin = name, argv, stdin
        self.times: list[float] = []

    def run(self, number: int, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.argv[:1], *extra, *self.argv[1:]], input=self.stdin(number), env=ENV,
                              capture_output=True)

    def time_once(self, number: int) -> None:
        began = time.perf_counter()
        done = self.run(number)
        self.times.append(time.perf_counter() - began)
        if done.returncode not in (0, 1, 3, 4):  # health: 3 degraded, 4 unhealthy
            sys.exit(f"{self.name}: exit {done.returncode}: {done.stderr.decode()[-500:]}")

    def median(self) -> float:
        return statistics.median(self.times)

    def imports(self, runs: int = 1) -> dict[str, float]:
        """Milliseconds of import time by IMPORT_GROUPS, the median of `runs` runs under
        `python -X importtime` (which slows imports a little: the shares are what it tells)."""
        found = [self._imports_once() for _ in range(runs)]
        groups = {g: statistics.median(f.get(g, 0.0) for f in found) for g in found[0]}
        return {g: ms for g, ms in groups.items() if ms >= 0.05}

    def _imports_once(self) -> dict[str, float]:
        """One run: its lines come children first, each indented two spaces deeper than the module
        that imported it."""
        stderr = self.run(10**6, "-X", "importtime").stderr.decode()
        groups = dict.fromkeys([*IMPORT_GROUPS, "python"], 0.0)
        pending: list[tuple[int, float]] = []  # (depth, ms) not yet charged to a group
        for line in stderr.splitlines():
            parts = line.split("|")
            if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
                continue
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2
            name = name.strip()
            spent = int(parts[0].split(":")[1]) / 1000
            while pending and pending[-1][0] > depth:  # what this module imported
                spent += pending.pop()[1]
            group = next((g for g in IMPORT_GROUPS if name == g or name.startswith(g + ".")), None)
            if group:
                groups[group] += spent
            else:
                pending.append((depth, spent))
        groups["python"] += sum(ms for _, ms in pending)
        return groups


def hook_payload(number: int) -> bytes:
    """A real PostToolUse payload (tests/payloads), a new tool call each time."""
    payload = json.loads(PAYLOAD.read_text().replace("CWD", tempfile.gettempdir()).replace("TRANSCRIPT", ""))
    payload["tool_use_id"] = f"toolu_startup_{time.time_ns()}_{number}"
    return json.dumps(payload).encode()


def startup_commands(folder: Path, max_age: float) -> list[StartupCommand]:
    """The baseline and the three measured start-ups. The table's cost includes drawing it with
    tabulate: if monitor does not import tabulate itself yet, the table command imports it too.

    monitor's modules are compiled to bytecode first, as `pip install` does: run from a source tree
    with PYTHONDONTWRITEBYTECODE set, every start would compile them again (~35 ms)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "monitor")], check=True)
    small = database(folder, 1000, 1, max_age)
    hook_db = folder / "work" / "hook-startup.db"
    hook_db.parent.mkdir(exist_ok=True)
    from monitor import open_db

    open_db(hook_db).close()  # current schema: the hook's common case, no migration
    python = sys.executable
    cli = [python, "-c", "import sys; from monitor.cli import main; sys.argv[0] = 'monitor'; main()"]
    table = StartupCommand("table", [*cli, "health", "24", "--db", str(small)])
    if "tabulate" not in table.imports():  # imported once the CLI is loaded, as a lazy import would
        table.argv[2] = table.argv[2].replace("import main; ", "import main; import tabulate; ")
        table.name = "table (+ import tabulate)"
    return [
        StartupCommand("baseline", [python, "-c", "import sqlite3"]),
        table,
        StartupCommand("json", [*cli, "health", "24", "--json", "--db", str(small)]),
        StartupCommand("hook", [python, "-m", "monitor.hooks", "--db", str(hook_db)], hook_payload),
    ]


def bench_startup(folder: Path, max_age: float, runs: int) -> None:
    """Start-up is what a command costs before it does any work: `monitor health 24` on a database of
    1,000 executions over a day (the report itself takes about a millisecond), as a table and as
    JSON, and the Claude Code hook with one PostToolUse payload. Each run of a command is paired
    with a run of the baseline just before it, and the ratio is the median of the pairs' ratios:
    on a shared machine the load moves within seconds, and a pair sees the same moment."""
    commands = startup_commands(folder, max_age)
    baseline, measured = commands[0], commands[1:]
    for command in commands:
        command.time_once(-1)  # warm the page cache
        command.times.clear()
    for number in range(runs):
        for command in measured:
            baseline.time_once(number)
            command.time_once(number)
    for index, command in enumerate(measured):
        key = command.name.split()[0]
        pairs = baseline.times[index::len(measured)]
        ratio = statistics.median(c / b for c, b in zip(command.times, pairs))
        what = {"table": "`monitor health 24` start-up (table)", "json": "`monitor health 24 --json` start-up",
                "hook": "`python -m monitor.hooks` start-up, one PostToolUse payload"}[key]
        if command.name != key:
            what += f", {command.name[len(key):].strip(' ()')}"
        record(what, ms(command.median()), f"python -c 'import sqlite3' {ms(statistics.median(pairs))}", ratio,
               f"<= {STARTUP_TARGETS[key]:g}x", ratio <= STARTUP_TARGETS[key])
    for command in measured:
        spent = ", ".join(f"{group} {ms:.1f} ms" for group, ms in command.imports(runs=5).items())
        print(f"    {command.name}: import time under -X importtime, by who imported: {spent}")


# -- 9. size --------------------------------------------------------------------------------------

def bench_size(big: Path, executions: int) -> None:
    conn = sqlite3.connect(big)
    size = big.stat().st_size
    try:
        parts = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
    except sqlite3.OperationalError:
        parts = []
    conn.close()
    record("bytes on disk per execution (orchestrations and indexes included)", f"{size / executions:.0f} B",
           "-", size / executions, "report", None)
    for name, pgsize in parts:
        if pgsize > size / 100:
            print(f"    {name}: {pgsize / executions:.0f} B per execution")


def unused_indexes(small: Path) -> list[str]:
    """Indexes that no report's plan mentions (traced the way tests/test_query_plans.py does)."""
    from monitor import open_db
    from monitor.ops import retention
    from monitor.read import queries, reports

    db = open_db(small, create=False)
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    session = newest_session(small)
    agent = db.execute("SELECT agent_name FROM agent_executions LIMIT 1").fetchone()[0]
    since = db.execute("SELECT max(started_at) FROM orchestrations").fetchone()[0]
    for filters in (queries.Filters(limit=50), queries.Filters(since, "failed", agent, 50)):
        queries.list_orchestrations(db, filters)
        queries.list_executions(db, None, filters)
        reports.failures(db, 50, filters)
        reports.failures(db, 50, filters, executions=True)
    queries.list_executions(db, session)
    reports.orchestration_summary(db, session)
    reports.agent_report(db, agent)
    reports.agent_report(db, agent, since)
    queries.list_executions(db, None, queries.Filters(since, None, agent, 50))
    reports.performance(db)
    reports.performance(db, since)
    reports.health(db, 24)
    retention.count_old(db, since)
    db.conn.set_trace_callback(None)
    used: set[str] = set()
    for sql in statements:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"):
                used.update(w for w in row[3].split() if w.startswith(("idx_", "sqlite_autoindex")))
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                                      " AND tbl_name IN ('orchestrations', 'agent_executions')")]
    db.close()
    # UNIQUE constraints back upserts by session id, not reports; TRIGGER_INDEXES serve triggers,
    # whose statements no trace shows.
    return [n for n in names if n not in used and not n.startswith("sqlite_autoindex") and n not in TRIGGER_INDEXES]


#: Indexes that serve something other than a report: idx_executions_agent_success finds an agent's
#: latest success for the agent_model_totals triggers when the row holding it goes;
#: idx_executions_agent_failed, an agent's recent failures for `monitor run --breaker`.
TRIGGER_INDEXES = {"idx_executions_agent_success", "idx_executions_agent_failed"}


def print_results(began: float) -> None:
    print(f"\nmonitor benchmarks, {time.perf_counter() - began:.0f}s: nproc {os.cpu_count()}, Python"
          f" {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}\n")
    print("| what | measured | baseline | ratio | target | |")
    print("|---|---|---|---|---|---|")
    for what, measured, baseline, ratio, target, ok in RESULTS:
        verdict = "" if ok is None else ("met" if ok else "**missed**")
        print(f"| {what} | {measured} | {baseline} | {ratio:.2f} | {target} | {verdict} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["all", "startup", "tracker", "cleanup"], default="all",
                        help="all (default), or one comparison alone: startup (the three start-up ratios in"
                             " about a minute), tracker (no database needed), cleanup (on the largest"
                             " --scaling database)")
    parser.add_argument("--runs", type=int, default=21, help="runs of each start-up command (median)")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "monitor-bench"))
    parser.add_argument("--max-age", type=float, default=2.0, help="hours a cached database stays usable")
    parser.add_argument("--skip", default="",
                        help="comma-separated: tracker,writers,reports,scaling,export,cleanup,startup")
    parser.add_argument("--scaling", default="10000,100000,1000000",
                        help=f"sizes of the scaling databases ({SCALING_DENSITY:,} executions a day)")
    parser.add_argument("--tracker-ops", type=int, default=1000,
                        help="executions per round of the tracker comparison (three rounds, best taken)")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    began = time.perf_counter()
    if args.what == "startup":
        bench_startup(folder, args.max_age, args.runs)
        print_results(began)
        return
    if args.what == "tracker":
        (folder / "work").mkdir(exist_ok=True)
        bench_tracker(folder / "work", args.tracker_ops)
        print_results(began)
        return

    # The scaling databases hold the same executions per day at every size: the largest is the big
    # one of every other comparison, the smallest its small one.
    sizes = sorted(int(n) for n in args.scaling.split(","))
    print("databases", flush=True)
    paths = {n: database(folder, n, n / SCALING_DENSITY, args.max_age) for n in sizes}
    big, small = paths[sizes[-1]], paths[sizes[0]]
    label, small_label = size_label(sizes[-1]), size_label(sizes[0])
    work = folder / "work"
    work.mkdir(exist_ok=True)
    if args.what == "cleanup":
        bench_cleanup(big, work, label)
        print_results(began)
        return
    meta = json.loads(big.with_suffix(".json").read_text())
    record(f"generate.py: {meta['executions']:,} executions + {meta['orchestrations']:,} orchestrations"
           f" + {meta.get('events', 0):,} events", f"{meta['rows_per_second']:,.0f} rows/s", "200,000 rows/s",
           meta["rows_per_second"] / 200_000, ">= 1x", meta["rows_per_second"] >= 200_000)
    if "tracker" not in skip:
        print("tracker", flush=True)
        bench_tracker(work, args.tracker_ops)
    if "writers" not in skip:
        print("writers", flush=True)
        bench_writers(work, 250)
    if "reports" not in skip:
        print("reports", flush=True)
        bench_performance(big, label)
    if "scaling" not in skip:
        print("scaling", flush=True)
        bench_scaling(paths)
    if "export" not in skip:
        print("export", flush=True)
        bench_export(big, small, label, small_label)
    if "cleanup" not in skip:
        print("cleanup", flush=True)
        bench_cleanup(big, work, label)
    if "startup" not in skip:
        print("start-up", flush=True)
        bench_startup(folder, args.max_age, args.runs)
    bench_size(big, sizes[-1])
    unused = unused_indexes(small)
    record(f"indexes no report uses: {', '.join(unused) or 'none'}", str(len(unused)), "0", len(unused), "0",
           not unused)

    print_results(began)


if __name__ == "__main__":
    main()
