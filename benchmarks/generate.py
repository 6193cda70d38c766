"""Build a realistic monitor database fast, for benchmarks.

    python benchmarks/generate.py --executions 1000000 --db /tmp/bench-1m.db

Orchestrations of 1-20 executions, ~30 agent names (busy agents busier, Zipf-like), ~8% failed
executions with error messages, retries, tokens, cost, models, start times spread over --days days
ending now (ids follow time, as AUTOINCREMENT does), the newest executions still in progress and a
few stale ones (in progress for hours), plus ~2% stand-alone executions (`monitor run` without
--session), and --events tool_call events per execution (default 1), each message holding the word
"done" (the benchmarks' word found in every event). Each orchestration's status, counts and end follow from its executions.

The file is created by monitor.open_db, so schema, triggers and migrations are the real ones. The
rows are made inside SQLite, with no per-row Python work:

- Python draws 2**14 finished-execution "profiles" (agent, status, duration, tokens, cost, ...)
  from the distributions below with random.Random(--seed), into a temp table.
- A recursive CTE lays out the groups (an orchestration, or one stand-alone execution): size,
  first execution id, orchestration id, start time, and the gap between members that run one
  after the other.
- One INSERT ... SELECT joins the groups to a 0-19 numbers table (so rows come in id order) and
  each execution to a profile by a multiplicative hash of its id; timestamps are made by strftime
  in the stored format. An UPDATE then marks the ones still in progress.
- Orchestrations are summed from their executions' id range.

Pseudo-random numbers come from hashes of the row number and --seed, not from random(), so the
same --seed and --executions give the same rows (timestamps follow now). The secondary indexes
and the triggers listed in REPLAYED_TRIGGERS are dropped before the load and recreated afterwards
from their own stored SQL (the timestamp normalisers have nothing to do: every timestamp is made
in the stored format); errors_fts is filled the way migration 2 fills it, with every error message
and only those, events_fts with every event's message, and the roll-ups (migrations.TOTALS: agent_totals,
agent_model_totals, orchestration_totals, cost_rollup) are recounted by migrations.refill_agent_totals:
what their triggers would have done row by row. Then ANALYZE gathers the planner's statistics, as
after any large change. Any other trigger stays in place. --check runs
SQLite's integrity checks (the database's, the foreign keys', the FTS indexes') and recounts
agent_totals after the load.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor import open_db  # noqa: E402
from monitor.store import migrations  # noqa: E402

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
PROFILE_BITS = 14
# Triggers dropped for the load, and what stands in for them: the timestamp normalisers have
# nothing to do (every timestamp is made in the stored format), errors_fts is filled in one
# statement, the roll-ups are recounted by migrations.refill_agent_totals.
REPLAYED_TRIGGERS = ("orchestrations_normalize_", "agent_executions_normalize_", "errors_fts_", "events_fts_",
                     *(f"{table}_" for table in migrations.TOTALS))
#: Tables whose secondary indexes are dropped for the load and rebuilt after it.
LOADED_TABLES = "('orchestrations', 'agent_executions', 'events')"
#: Every event's message holds this word, for the "a word found in every event" search.
EVERY_EVENT_WORD = "done"
P = 2_147_483_647  # 2**31 - 1: hashes are below it, so products of two stay inside 64 bits


def profiles(rnd: random.Random) -> list[tuple]:
    """2**PROFILE_BITS finished executions drawn from the distributions above; each generated row
    takes one by its hash, which keeps the generator fast and the statistics realistic.
    (k, agent_name, status, duration_ms, retry_count, self_healed, files_created, files_modified,
     error_message, model, input_tokens, output_tokens, cache_read, cache_write, cost_usd, exit_code)"""
    result = []
    for k in range(2 ** PROFILE_BITS):
        name = rnd.choices(AGENTS, AGENT_WEIGHTS)[0]
        model, price_in, price_out = rnd.choices(MODELS, MODEL_WEIGHTS)[0]
        duration = int(rnd.lognormvariate(10.3, 1.0))  # median ~30 s, long tail
        fail = rnd.random() < FAILURE_RATE
        retry = 0 if rnd.random() < 0.85 else rnd.randrange(1, 4)
        tokens_in, tokens_out = rnd.randrange(2_000, 200_000), rnd.randrange(200, 20_000)
        result.append((
            k, name, "failed" if fail else "completed", duration, retry,
            1 if retry and not fail and rnd.random() < 0.5 else 0, rnd.randrange(6), rnd.randrange(15),
            rnd.choice(ERRORS) if fail else None, model, tokens_in, tokens_out, tokens_in * 3,
            tokens_in // 4, round((tokens_in * price_in + tokens_out * price_out) / 1e6, 6),
            1 if fail else 0,
        ))
    return result


def hashed(x: str, salt: int) -> str:
    """SQL for a pseudo-random integer in [0, P) from the integer expression x: a degree-4
    polynomial modulo the prime P, so consecutive x give unrelated values."""
    a = f"((({x}) * 48271 + {salt}) % {P})"
    b = f"({a} * {a} % {P})"
    return f"(({b} * {b} + {a}) % {P})"


def stamp(ms: str) -> str:
    """SQL for the stored-format timestamp of an epoch-milliseconds expression."""
    return f"strftime('%Y-%m-%dT%H:%M:%fZ', ({ms}) / 1000.0, 'unixepoch')"


def generate(path: str | Path, executions: int, *, days: float = 90, now: datetime | None = None,
             seed: int = 1, events: int = 1) -> dict:
    """Create path (which must not exist) with `executions` executions and `events` tool_call
    events per execution; return counts and timing."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: remove it first")
    if executions < 1:
        raise ValueError("executions must be at least 1")
    now = now or datetime.now(timezone.utc)
    now_ms = int(now.timestamp() * 1000)
    span_ms = int(days * 86_400_000)
    per_execution_ms = span_ms / executions
    salt = [random.Random(f"{seed}-{n}").randrange(1, P) for n in range(8)]
    open_db(path).close()  # the real schema and migrations, in WAL mode
    began = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    # Bulk-load settings, for this connection only; the file goes back to WAL at the end.
    conn.execute("PRAGMA journal_mode = OFF")  # a failed load leaves a file to throw away anyway
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    conn.execute("PRAGMA threads = 2")  # the sorter behind CREATE INDEX may use both cores
    conn.execute("PRAGMA foreign_keys = OFF")  # ids are consistent by construction; checked below
    conn.execute("PRAGMA temp_store = MEMORY")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        f" AND tbl_name IN {LOADED_TABLES}").fetchall()
    # Only the triggers whose effect is replayed in bulk below are dropped; any other stays and
    # fires row by row, so a trigger added by a later migration is never silently skipped.
    triggers = [(name, sql) for name, sql in conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
        f" AND tbl_name IN {LOADED_TABLES}") if name.startswith(REPLAYED_TRIGGERS)]
    conn.execute("BEGIN")
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    for name, _ in triggers:
        conn.execute(f"DROP TRIGGER {name}")

    conn.execute("CREATE TEMP TABLE profile (k INTEGER PRIMARY KEY, agent_name, status, duration_ms,"
                 " retry_count, self_healed, files_created, files_modified, error_message, model,"
                 " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, exit_code)")
    conn.executemany("INSERT INTO temp.profile VALUES (" + ", ".join("?" * 16) + ")",
                     profiles(random.Random(seed)))
    conn.execute("CREATE TEMP TABLE task (k INTEGER PRIMARY KEY, description TEXT)")
    conn.executemany("INSERT INTO temp.task VALUES (?, ?)", enumerate(TASKS))

    # Groups: an orchestration (oid set) of 1-20 executions, or one stand-alone execution.
    # A group is stand-alone with the chance that makes STANDALONE_RATE of the executions so.
    group_rate = STANDALONE_RATE * 10.5 / (1 - STANDALONE_RATE + STANDALONE_RATE * 10.5)

    def standalone(g: str) -> str:
        return f"({hashed(g, salt[0])} < {int(group_rate * P)})"

    def size(g: str) -> str:
        return f"(CASE WHEN {standalone(g)} THEN 1 ELSE 1 + {hashed(g, salt[1])} % 20 END)"

    # gap: how far apart the members that run one after the other start (half a typical duration).
    conn.execute("CREATE TEMP TABLE grp (g INTEGER PRIMARY KEY, first INTEGER, size INTEGER, oid INTEGER,"
                 " t INTEGER, gap INTEGER)")
    conn.execute(f"""
        INSERT INTO temp.grp (g, first, size, oid, t, gap)
        WITH RECURSIVE layout (g, first, size, standalone, oids) AS (
            SELECT 1, 1, min({size('1')}, :n), {standalone('1')}, 1 - {standalone('1')}
            UNION ALL
            SELECT g + 1, first + size, min({size('g + 1')}, :n - first - size + 1),
                   {standalone('g + 1')}, oids + 1 - {standalone('g + 1')}
            FROM layout WHERE first + size <= :n
        )
        SELECT g, first, size, CASE WHEN standalone THEN NULL ELSE oids END,
               -- Start times follow the execution count, so every day holds the same share of rows.
               :now - :span + CAST((first - 1 + {hashed('g', salt[2])} * 5.0 / {P}) * :per AS INTEGER),
               p.duration_ms >> 1
        FROM layout JOIN temp.profile p ON p.k = {hashed('g', salt[6])} % {2 ** PROFILE_BITS}
    """, {"n": executions, "now": now_ms, "span": span_ms, "per": per_execution_ms})
    conn.execute(f"UPDATE temp.grp SET t = :now - {hashed('g', salt[3])} % 1000 WHERE t > :now",
                 {"now": now_ms})
    conn.execute("CREATE TEMP TABLE nums (n INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO temp.nums VALUES (?)", [(n,) for n in range(20)])

    # Executions, in id order (groups, then members), all finished at first. Member n of a group
    # starts n - ceil(n / 3) gaps after the group: two in three run one after the other, the rest
    # in parallel with the previous one; never after now. The profile comes from a multiplicative
    # (Fibonacci) hash of the id: the profiles are independent draws, so any spread-out walk over
    # them is as random as they are.
    knuth = (2_654_435_761 + 2 * seed) % 2 ** 32 | 1

    def mixed(x: str, multiplier: int, bits: int) -> str:
        return f"((({x}) * {multiplier} & {2 ** 32 - 1}) >> {32 - bits})"

    start = "min(grp.t + (nums.n - (nums.n + 2) / 3) * grp.gap, :now)"
    end = f"min({start} + p.duration_ms, :now)"
    eid = "grp.first + nums.n"
    conn.execute(f"""
        INSERT INTO main.agent_executions (id, orchestration_id, agent_session_id, agent_name, task_id,
            task_number, status, started_at, completed_at, duration_ms, retry_count, self_healed,
            files_created, files_modified, error_message, summary_report_path, session_log_path, model,
            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, exit_code)
        SELECT {eid}, grp.oid,
               CASE WHEN grp.oid IS NULL THEN printf('run-%08d', {eid})
                    ELSE printf('orch-%08d-%02d', grp.oid, nums.n) END,
               p.agent_name,
               CASE WHEN grp.oid IS NOT NULL THEN 'T-' || (nums.n + 1) END,
               CASE WHEN grp.oid IS NOT NULL THEN nums.n + 1 END,
               p.status, {stamp(start)}, {stamp(end)}, {end} - {start},
               p.retry_count, p.self_healed, p.files_created, p.files_modified, p.error_message, NULL,
               CASE WHEN grp.oid IS NOT NULL THEN printf('logs/orch-%08d-%02d.jsonl', grp.oid, nums.n) END,
               p.model, p.input_tokens, p.output_tokens, p.cache_read_tokens, p.cache_write_tokens,
               p.cost_usd, p.exit_code
        FROM temp.grp
        JOIN temp.nums ON nums.n < grp.size
        JOIN temp.profile p ON p.k = {mixed(eid, knuth, PROFILE_BITS)}
        ORDER BY grp.g, nums.n
    """, {"now": now_ms})
    # Then the ones still in progress: about half of those that started in the last 10 minutes,
    # and a few stale ones (from any time) per million.
    conn.execute(f"""
        UPDATE main.agent_executions
        SET status = 'in_progress', completed_at = NULL, duration_ms = NULL, retry_count = 0,
            self_healed = 0, files_created = 0, files_modified = 0, error_message = NULL,
            input_tokens = NULL, output_tokens = NULL, cache_read_tokens = NULL,
            cache_write_tokens = NULL, cost_usd = NULL, exit_code = NULL
        WHERE {mixed('id', 2_246_822_519, 32)} < {round(STALE_EXECUTIONS_PER_MILLION / 1e6 * 2 ** 32)}
           OR (started_at > {stamp(':now - ' + str(RUNNING_WINDOW_MS))} AND {mixed('id', 3_266_489_917, 1)})
    """, {"now": now_ms})

    # Orchestrations, summed from their executions' id range.
    git_hash = ", ".join(f"{hashed('oid', s)} * 2 + (oid & 1)" for s in salt[3:8])
    conn.execute(f"""
        INSERT INTO main.orchestrations (id, session_id, task_description, status, started_at,
            completed_at, duration_ms, total_tasks, completed_tasks, failed_tasks, git_commit_hash,
            plan_file_path, progress_file_path)
        SELECT oid, session, description || ' #' || oid,
               CASE WHEN running THEN 'running' WHEN failed AND done THEN 'partial'
                    WHEN failed THEN 'failed' ELSE 'completed' END,
               {stamp('t')},
               CASE WHEN NOT running THEN last_end END,
               CASE WHEN NOT running
                    THEN CAST(round((julianday(last_end) - 2440587.5) * 86400000) AS INTEGER) - t END,
               size, done, failed, printf('%08x%08x%08x%08x%08x', {git_hash}),
               'plans/' || session || '.md', NULL
        FROM (
            SELECT grp.oid, grp.t, grp.size, printf('orch-%08d', grp.oid) AS session, task.description,
                   sum(e.status = 'in_progress') AS running, sum(e.status = 'failed') AS failed,
                   sum(e.status = 'completed') AS done, max(e.completed_at) AS last_end
            FROM temp.grp
            JOIN main.agent_executions e ON e.id BETWEEN grp.first AND grp.first + grp.size - 1
            JOIN temp.task ON task.k = grp.oid % {len(TASKS)}
            WHERE grp.oid IS NOT NULL
            GROUP BY grp.g
        )
    """)
    if events:
        _add_events(conn, min(events, 20), any(name == "events_fts_insert" for name, _ in triggers))
    n_exec = conn.execute("SELECT count(*) FROM main.agent_executions").fetchone()[0]
    n_events = conn.execute("SELECT count(*) FROM main.events").fetchone()[0]
    n_orch = conn.execute("SELECT count(*) FROM main.orchestrations").fetchone()[0]
    for table in ("profile", "task", "grp", "nums"):
        conn.execute(f"DROP TABLE temp.{table}")
    if any(name == "errors_fts_insert" for name, _ in triggers):
        # What the trigger would have done row by row (and what migration 2 does): index every
        # error message, and only those.
        conn.execute("INSERT INTO errors_fts (rowid, error_message) SELECT id, error_message"
                     " FROM main.agent_executions WHERE error_message IS NOT NULL")
    migrations.refill_agent_totals(conn)  # the roll-ups, counted once
    loaded = time.perf_counter()
    for _, sql in indexes + triggers:
        conn.execute(sql)
    migrations.analyze(conn)
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
    return {"executions": n_exec, "orchestrations": n_orch, "events": n_events, "seconds": elapsed,
            "load_seconds": loaded - began, "index_seconds": indexed - loaded,
            "rows_per_second": (n_exec + n_orch + n_events) / elapsed, "bytes": path.stat().st_size}


def _add_events(conn: sqlite3.Connection, per_execution: int, index_fts: bool) -> None:
    """`per_execution` tool_call events for every execution, in id order, at its start and a second
    apart, each message holding EVERY_EVENT_WORD; events_fts filled in one statement, as its
    trigger would have row by row."""
    conn.execute(f"""
        INSERT INTO main.events (orchestration_id, execution_id, timestamp, type, message, payload)
        SELECT e.orchestration_id, e.id,
               strftime('%Y-%m-%dT%H:%M:%fZ', e.started_at, '+' || nums.n || ' seconds'), 'tool_call',
               'Bash: pytest -q tests/test_' || (e.id % 500) || '.py {EVERY_EVENT_WORD} in ' || (e.id % 900) || ' ms',
               '{{"tool_use_id":"toolu_' || e.id || '_' || nums.n || '"}}'
        FROM main.agent_executions e JOIN temp.nums ON nums.n < :per
        ORDER BY e.id, nums.n
    """, {"per": per_execution})
    if index_fts:
        conn.execute("INSERT INTO events_fts (rowid, message) SELECT id, message FROM main.events")


def check(path: str | Path) -> list[str]:
    """Problems found by SQLite's own checks (empty when the database is sound)."""
    conn = sqlite3.connect(path)
    try:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"foreign key: {r}" for r in conn.execute("PRAGMA foreign_key_check")]
        for table in migrations.TOTALS:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
                continue
            # Rounded: the running sum of cost_usd and a fresh one differ in the last bits.
            columns = [(r[1], r[2]) for r in conn.execute(f"PRAGMA table_info({table})")]
            rounded = ", ".join(f"round({c}, 4)" if kind == "REAL" else c for c, kind in columns)
            differ = conn.execute(
                f"SELECT count(*) FROM (SELECT {rounded} FROM {table}"
                f" EXCEPT SELECT {rounded} FROM {table}_recount)"
            ).fetchone()[0]
            if differ:
                problems.append(f"{table}: {differ} rows differ from a recount")
        for fts in ("errors_fts", "events_fts"):
            try:
                conn.execute(f"INSERT INTO {fts} ({fts}) VALUES ('integrity-check')")
            except sqlite3.DatabaseError as exc:
                problems.append(f"{fts}: {exc}")
        return problems
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="output file (default bench-N.db here)")
    parser.add_argument("--days", type=float, default=90, help="history span ending now (default 90)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--events", type=int, default=1, help="tool_call events per execution, 0-20 (default 1)")
    parser.add_argument("--force", action="store_true", help="replace the file if it exists")
    parser.add_argument("--check", action="store_true",
                        help="afterwards, run integrity_check, foreign_key_check and the FTS integrity checks")
    args = parser.parse_args()
    path = Path(args.db or f"bench-{args.executions}.db")
    if args.force:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    result = generate(path, args.executions, days=args.days, seed=args.seed, events=args.events)
    print(f"{path}: {result['executions']:,} executions, {result['orchestrations']:,} orchestrations"
          f" and {result['events']:,} events"
          f" in {result['seconds']:.1f}s ({result['load_seconds']:.1f}s load, {result['index_seconds']:.1f}s indexes) ="
          f" {result['rows_per_second']:,.0f} rows/s, {result['bytes'] / result['executions']:.0f} bytes"
          f" per execution")
    if args.check:
        problems = check(path)
        print("checks: " + ("ok" if not problems else "; ".join(problems)))
        if problems:
            sys.exit(1)


if __name__ == "__main__":
    main()
