"""`monitor report --html` at scale: seconds and bytes of the page for a generated database.

    python benchmarks/report_html.py                      # 1M executions over 800 days (1,250 a day)
    python benchmarks/report_html.py --executions 100000 --days 80

Measures, each as a fresh `monitor report` process (start-up included): the whole history, the
last 30 days, one session, one agent; then `cleanup 30` (which rolls up the days it deletes, timed
too) and the whole history again, now read from the roll-ups for all but the last 30 days. The
database is built once (generate.py) and kept in --folder; the cleanup works on a copy.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate  # noqa: E402


def timed(args: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "monitor", *args], check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=800)
    parser.add_argument("--folder", default="/tmp/monitor-bench-report")
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"report-{args.executions}.db"
    if not db.exists():
        result = generate(db, args.executions, days=args.days, events=0)
        print(f"generated {db}: {result['executions']:,} executions in {result['seconds']:.0f} s")
    subprocess.run([sys.executable, "-m", "monitor", "list", "--limit", "1", "--db", str(db)], check=True,
                   capture_output=True)  # the upgrade to this schema, if any, is not the report's time
    with sqlite3.connect(db) as conn:
        session, agent = conn.execute("SELECT o.session_id, e.agent_name FROM orchestrations o"
                                      " JOIN agent_executions e ON e.orchestration_id = o.id"
                                      " ORDER BY o.started_at DESC LIMIT 1").fetchone()
    page = folder / "report.html"
    rows = []
    for name, extra in [("all history", []), ("--since 30d", ["--since", "30d"]), ("--session", ["--session", session]),
                        ("--agent", ["--agent", agent])]:
        seconds = timed(["report", "--html", str(page), "--db", str(db), *extra])
        rows.append((name, seconds, page.stat().st_size))
    copy = folder / "cleaned.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copy(db, copy)
    cleanup = timed(["cleanup", "30", "--yes", "--db", str(copy)])
    seconds = timed(["report", "--html", str(page), "--db", str(copy)])
    rows.append(("all history after cleanup 30", seconds, page.stat().st_size))
    print(f"{args.executions:,} executions over {args.days:g} days")
    print(f"{'report':32} {'seconds':>8} {'bytes':>10}")
    for name, seconds, size in rows:
        print(f"{name:32} {seconds:8.2f} {size:10,}")
    print(f"cleanup 30 (rolling up the days it deletes) took {cleanup:.1f} s")


if __name__ == "__main__":
    main()
