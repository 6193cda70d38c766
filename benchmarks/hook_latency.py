"""Time the Claude Code hook as Claude Code runs it: one process per PostToolUse payload.

    python benchmarks/generate.py --executions 1000000 --db /tmp/bench-1m.db
    python benchmarks/hook_latency.py /tmp/bench-1m.db --events 1000000 --runs 50

--events first copies that many tool_call events into the database (one per execution, with
messages for the FTS index), as a database that has recorded hooks for a while would hold.
Prints the median, p90 and max wall time per process, for `python -m monitor.hooks` (the
installed command), `monitor hook` (through the CLI) and a bare `python -c pass` for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def add_events(db: str, count: int) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    have = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    if have >= count:
        return
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO events (orchestration_id, execution_id, timestamp, type, message, payload)"
        " SELECT orchestration_id, id, started_at, CASE WHEN id % 7 = 0 THEN 'error' ELSE 'tool_call' END,"
        " 'Bash: pytest -q tests/test_' || (id % 500) || '.py done in ' || (id % 900) || ' ms',"
        " '{\"tool_use_id\":\"toolu_' || id || '\"}' FROM agent_executions ORDER BY id LIMIT ?",
        (count - have,),
    )
    conn.execute("COMMIT")
    conn.close()


def time_runs(argv: list[str], runs: int, log: Path) -> list[float]:
    env = {**os.environ, "MONITOR_HOOK_LOG": str(log)}
    base = {"session_id": f"bench-{time.time_ns()}", "transcript_path": "/nonexistent.jsonl", "cwd": "/tmp"}
    subprocess.run(argv, input=json.dumps({**base, "hook_event_name": "SessionStart"}).encode(), env=env)
    times = []
    for i in range(runs):
        payload = {**base, "hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": f"toolu_{i}",
                   "tool_input": {"command": "ls -la"}, "tool_response": {"stdout": "x" * 200, "stderr": ""}}
        start = time.perf_counter()
        done = subprocess.run(argv, input=json.dumps(payload).encode(), env=env, capture_output=True)
        times.append((time.perf_counter() - start) * 1000)
        if done.returncode or done.stdout:
            sys.exit(f"{argv[0]} misbehaved: exit {done.returncode}, stdout {done.stdout[:200]!r}")
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db")
    parser.add_argument("--events", type=int, default=0, help="make sure the db holds this many events")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    if args.events:
        add_events(args.db, args.events)
    monitor = str(Path(sys.executable).with_name("monitor"))
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "hook.log"
        for label, argv in (("python -c pass", [sys.executable, "-c", "pass"]),
                            ("python -m monitor.hooks", [sys.executable, "-m", "monitor.hooks", "--db", args.db]),
                            ("monitor hook", [monitor, "hook", "--db", args.db])):
            t = time_runs(argv, args.runs, log)
            print(f"{label:24s} median {statistics.median(t):6.1f} ms  p90 {t[int(len(t) * 0.9)]:6.1f} ms"
                  f"  max {t[-1]:6.1f} ms  ({len(t)} runs)")
        if log.exists() and log.read_text().strip():
            print("hook log:", log.read_text()[-500:], file=sys.stderr)
    with sqlite3.connect(args.db) as conn:
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("agent_executions", "events")]
    print(f"database: {counts[0]:,} executions, {counts[1]:,} events")


if __name__ == "__main__":
    main()
