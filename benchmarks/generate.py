"""Build a realistic monitor database fast, for benchmarks.

    python benchmarks/generate.py --executions 1000000 --db /tmp/bench-1m.db

Orchestrations of 1-20 executions, ~30 agent names, ~8% failed executions, retries, tokens, cost,
models, start times spread over --days days ending now (ids follow time, as AUTOINCREMENT does),
the newest executions still in progress and a few stale ones (in progress for hours), plus ~2%
stand-alone executions (`monitor run` without --session).

The file is created by monitor.open_db, so schema, triggers and migrations are the real ones.
Rows go in with executemany on one connection in large transactions. The secondary indexes are
dropped before the load and recreated afterwards from their own stored SQL, so the result is the
same database as row-by-row inserts would give; every timestamp is already in the stored format,
so the normalising triggers have nothing to do.
"""

from __future__ import annotations

import argparse
import queue
import random
import sqlite3
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor import open_db  # noqa: E402

AGENTS = [
    "planner", "architect", "backend", "frontend", "database", "api-designer", "tests", "e2e-tests",
    "reviewer", "security-audit", "docs", "refactor", "migrations", "ci-fixer", "deps-updater",
    "perf-tuner", "lint", "typecheck", "release", "changelog", "infra", "terraform", "k8s-deployer",
    "data-pipeline", "ml-eval", "i18n", "accessibility", "mobile", "designer", "triage",
]
# Busy agents are busier: a Zipf-like weight per agent.
AGENT_WEIGHTS = [1 / (i + 1) ** 0.7 for i in range(len(AGENTS))]
MODELS = [("claude-sonnet-4-5", 3.0, 15.0), ("claude-opus-4-1", 15.0, 75.0),
          ("claude-haiku-4-5", 1.0, 5.0), ("gpt-5", 1.25, 10.0)]
MODEL_WEIGHTS = [60, 10, 25, 5]
ERRORS = [
    "AssertionError: expected 200, got 500",
    "TimeoutError: agent exceeded 600s",
    "exited with code 1",
    "ModuleNotFoundError: No module named 'foo'",
    "merge conflict in src/app.py",
    "rate limited by provider (429)",
    "tests failed: 3 of 412",
]
TASKS = ["Implement feature", "Fix bug", "Refactor module", "Upgrade dependencies", "Write docs",
         "Add tests", "Deploy to staging", "Investigate flaky test"]

FAILURE_RATE = 0.08
STANDALONE_RATE = 0.02
STALE_EXECUTIONS_PER_MILLION = 40
RUNNING_WINDOW_MS = 10 * 60 * 1000  # executions that started in the last 10 minutes may still run
BATCH = 50_000


class Stamp:
    """Fast stored-format timestamps: everything up to the minute is cached."""

    def __init__(self) -> None:
        self.minutes: dict[int, str] = {}

    def __call__(self, epoch_ms: int) -> str:
        minute, ms = divmod(epoch_ms, 60_000)
        prefix = self.minutes.get(minute)
        if prefix is None:
            if len(self.minutes) > 100_000:
                self.minutes.clear()
            prefix = self.minutes[minute] = datetime.fromtimestamp(minute * 60, timezone.utc
                                                                   ).strftime("%Y-%m-%dT%H:%M:")
        return f"{prefix}{ms // 1000:02d}.{ms % 1000:03d}Z"


PROFILE_BITS = 14


def profiles(rnd: random.Random) -> list[tuple]:
    """2**PROFILE_BITS finished executions drawn from the distributions below; each generated row
    takes one at random, which keeps the generator fast and the statistics realistic.
    (agent_name, status, duration_ms, retry_count, self_healed, files_created, files_modified,
     error_message, model, input_tokens, output_tokens, cache_read, cache_write, cost_usd, exit_code)"""
    result = []
    for _ in range(2 ** PROFILE_BITS):
        name = rnd.choices(AGENTS, AGENT_WEIGHTS)[0]
        model, price_in, price_out = rnd.choices(MODELS, MODEL_WEIGHTS)[0]
        duration = int(rnd.lognormvariate(10.3, 1.0))  # median ~30 s, long tail
        fail = rnd.random() < FAILURE_RATE
        retry = 0 if rnd.random() < 0.85 else rnd.randrange(1, 4)
        tokens_in, tokens_out = rnd.randrange(2_000, 200_000), rnd.randrange(200, 20_000)
        result.append((
            name, "failed" if fail else "completed", duration, retry,
            1 if retry and not fail and rnd.random() < 0.5 else 0, rnd.randrange(6), rnd.randrange(15),
            rnd.choice(ERRORS) if fail else None, model, tokens_in, tokens_out, tokens_in * 3,
            tokens_in // 4, round((tokens_in * price_in + tokens_out * price_out) / 1e6, 6),
            1 if fail else 0,
        ))
    return result


def rows(executions: int, days: float, now_ms: int, seed: int):
    """Yield ('o', row) and ('e', row) tuples in id order, oldest first."""
    rnd = random.Random(seed)
    pool = profiles(rnd)
    stamp = Stamp()
    span_ms = int(days * 86_400_000)
    per_execution_ms = span_ms / executions
    stale_below = int(STALE_EXECUTIONS_PER_MILLION / 1_000_000 * 2 ** 32)
    task_ids = [f"T-{n + 1}" for n in range(20)]
    suffixes = [f"-{n:02d}" for n in range(20)]
    randrange, random_, getrandbits = rnd.randrange, rnd.random, rnd.getrandbits
    oid = eid = 0
    while eid < executions:
        # Start times follow the execution count, so every day holds the same share of the rows.
        t = now_ms - span_ms + int((eid + random_() * 5) * per_execution_ms)
        if t > now_ms:
            t = now_ms - randrange(1000)
        if random_() < STANDALONE_RATE:
            size, oid_ref, session = 1, None, None
        else:
            size = min(randrange(1, 21), executions - eid)
            oid += 1
            oid_ref, session = oid, f"orch-{oid:08d}"
        done = failed = running = 0
        start = o_end = t
        for n in range(size):
            eid += 1
            (name, status, duration, retry, healed, files_c, files_m, error, model, tokens_in, tokens_out,
             cache_r, cache_w, cost, exit_code) = pool[getrandbits(PROFILE_BITS)]
            if getrandbits(32) < stale_below or (now_ms - start < RUNNING_WINDOW_MS and random_() < 0.5):
                status, completed_at, duration_ms = "in_progress", None, None
                error = exit_code = tokens_in = tokens_out = cache_r = cache_w = cost = None
                retry = healed = files_c = files_m = 0
                running += 1
            else:
                end = start + duration
                if end > now_ms:
                    end = now_ms
                duration_ms = end - start
                completed_at = stamp(end)
                if end > o_end:
                    o_end = end
                if exit_code:
                    failed += 1
                else:
                    done += 1
            if session:
                agent_session = session + suffixes[n]
                yield "e", (eid, oid_ref, agent_session, name, task_ids[n], n + 1, status, stamp(start),
                            completed_at, duration_ms, retry, healed, files_c, files_m, error, None,
                            f"logs/{agent_session}.jsonl", model, tokens_in, tokens_out, cache_r, cache_w,
                            cost, exit_code)
            else:
                yield "e", (eid, None, f"run-{eid:08d}", name, None, None, status, stamp(start),
                            completed_at, duration_ms, retry, healed, files_c, files_m, error, None, None,
                            model, tokens_in, tokens_out, cache_r, cache_w, cost, exit_code)
            if n % 3:  # some run in parallel, the others one after the other
                start += duration >> 1
                if start > now_ms:
                    start = now_ms
        if oid_ref:
            if running:
                o_status, o_completed, o_duration = "running", None, None
            else:
                o_status = "partial" if failed and done else "failed" if failed else "completed"
                o_completed, o_duration = stamp(o_end), o_end - t
            yield "o", (oid, session, f"{TASKS[oid % len(TASKS)]} #{oid}", o_status, stamp(t), o_completed,
                        o_duration, size, done, failed, f"{getrandbits(160):040x}",
                        f"plans/{session}.md", None)


EXECUTION_INSERT = (
    "INSERT INTO agent_executions (id, orchestration_id, agent_session_id, agent_name, task_id,"
    " task_number, status, started_at, completed_at, duration_ms, retry_count, self_healed,"
    " files_created, files_modified, error_message, summary_report_path, session_log_path, model,"
    " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, exit_code)"
    " VALUES (" + ", ".join("?" * 24) + ")"
)
ORCHESTRATION_INSERT = (
    "INSERT INTO orchestrations (id, session_id, task_description, status, started_at, completed_at,"
    " duration_ms, total_tasks, completed_tasks, failed_tasks, git_commit_hash, plan_file_path,"
    " progress_file_path) VALUES (" + ", ".join("?" * 13) + ")"
)


def generate(path: str | Path, executions: int, *, days: float = 90, now: datetime | None = None,
             seed: int = 1) -> dict:
    """Create path (which must not exist) with `executions` executions; return counts and timing."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: remove it first")
    now = now or datetime.now(timezone.utc)
    now_ms = int(now.timestamp() * 1000)
    open_db(path).close()  # the real schema and migrations, in WAL mode
    began = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    # Bulk-load settings, for this connection only; the file goes back to WAL at the end.
    conn.execute("PRAGMA journal_mode = OFF")  # a failed load leaves a file to throw away anyway
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    conn.execute("PRAGMA threads = 2")  # the sorter behind CREATE INDEX may use both cores
    conn.execute("PRAGMA foreign_keys = OFF")  # ids are consistent by construction; checked below
    indexes = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('orchestrations', 'agent_executions')")]
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('orchestrations', 'agent_executions')")]
    triggers = [r for r in conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_normalize\\_%' ESCAPE '\\'"
        " AND tbl_name IN ('orchestrations', 'agent_executions')")]
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("BEGIN")
    for name in names:
        conn.execute(f"DROP INDEX {name}")
    for name, _ in triggers:  # the timestamp normalisers are no-ops: every timestamp is already stored-format
        conn.execute(f"DROP TRIGGER {name}")
    # Rows go to an unindexed temp table by executemany, then into the real table by one
    # INSERT ... SELECT per batch: per-row AUTOINCREMENT bookkeeping happens once per batch.
    for table in ("orchestrations", "agent_executions"):
        conn.execute(f"CREATE TEMP TABLE stage_{table} AS SELECT * FROM main.{table} WHERE 0")
    stage_e = EXECUTION_INSERT.replace("INTO agent_executions", "INTO temp.stage_agent_executions")
    stage_o = ORCHESTRATION_INSERT.replace("INTO orchestrations", "INTO temp.stage_orchestrations")

    def flush(table: str, insert: str, batch: list[tuple]) -> None:
        conn.executemany(insert, batch)
        conn.execute(f"INSERT INTO main.{table} SELECT * FROM temp.stage_{table}")
        conn.execute(f"DELETE FROM temp.stage_{table}")

    batches: queue.Queue = queue.Queue(maxsize=4)

    def produce() -> None:
        o_batch: list[tuple] = []
        e_batch: list[tuple] = []
        for kind, row in rows(executions, days, now_ms, seed):
            if kind == "e":
                e_batch.append(row)
                if len(e_batch) >= BATCH:
                    batches.put((e_batch, o_batch))
                    o_batch, e_batch = [], []
            else:
                o_batch.append(row)
        batches.put((e_batch, o_batch))
        batches.put(None)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    n_orch = n_exec = 0
    while (item := batches.get()) is not None:
        e_batch, o_batch = item
        flush("agent_executions", stage_e, e_batch)
        flush("orchestrations", stage_o, o_batch)
        n_exec += len(e_batch)
        n_orch += len(o_batch)
    producer.join()
    loaded = time.perf_counter()
    for sql in indexes:
        conn.execute(sql)
    for _, sql in triggers:
        conn.execute(sql)
    conn.execute("COMMIT")
    indexed = time.perf_counter()
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise RuntimeError(f"could not put {path} back in WAL mode ({mode})")
    dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
    conn.close()
    elapsed = time.perf_counter() - began
    if dangling:
        raise RuntimeError(f"generator bug: {len(dangling)} rows break a foreign key")
    return {"executions": n_exec, "orchestrations": n_orch, "seconds": elapsed,
            "load_seconds": loaded - began, "index_seconds": indexed - loaded, "rows_per_second": (n_exec + n_orch) / elapsed,
            "bytes": path.stat().st_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="output file (default bench-N.db here)")
    parser.add_argument("--days", type=float, default=90, help="history span ending now (default 90)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="replace the file if it exists")
    args = parser.parse_args()
    path = Path(args.db or f"bench-{args.executions}.db")
    if args.force:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    result = generate(path, args.executions, days=args.days, seed=args.seed)
    print(f"{path}: {result['executions']:,} executions and {result['orchestrations']:,} orchestrations"
          f" in {result['seconds']:.1f}s ({result['load_seconds']:.1f}s load, {result['index_seconds']:.1f}s indexes) ="
          f" {result['rows_per_second']:,.0f} rows/s, {result['bytes'] / result['executions']:.0f} bytes"
          f" per execution")


if __name__ == "__main__":
    main()
