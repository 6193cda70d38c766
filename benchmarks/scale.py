"""Figures for docs/scale.md: a Prometheus scrape and `monitor import` on a generated database.

    python benchmarks/scale.py --executions 1000000            # scrape on 1M, import of its export
    python benchmarks/scale.py --executions 1000000 --no-import

Scrape: `monitor.read.metrics.collect()` alone (the database's part), then
`monitor.exporters.prometheus.exposition()` (what one GET /metrics does: open the file
read-only, read the roll-ups, format) timed in-process, best and median of --scrapes; then one real
HTTP scrape of `monitor metrics --serve` on 127.0.0.1. Import: `monitor export` of the database to a
file, then `monitor import` of that file into a new database as a subprocess, with its wall time,
rows per second and peak RSS (the child's VmHWM, polled).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate  # noqa: E402

from monitor import open_db  # noqa: E402
from monitor.exporters.prometheus import exposition  # noqa: E402
from monitor.read.metrics import collect  # noqa: E402

MONITOR = [sys.executable, "-m", "monitor"]


def scrape_figures(db: Path, scrapes: int) -> None:
    with open_db(db, create=False, readonly=True) as opened:
        reads = []
        for _ in range(scrapes):
            began = time.perf_counter()
            collect(opened)
            reads.append(time.perf_counter() - began)
    print(f"read (collect): best {min(reads) * 1000:.1f} ms, median {statistics.median(reads) * 1000:.1f} ms")
    times = []
    text = ""
    for _ in range(scrapes):
        began = time.perf_counter()
        text = exposition(db)
        times.append(time.perf_counter() - began)
    print(f"scrape in-process: best {min(times) * 1000:.1f} ms, median {statistics.median(times) * 1000:.1f} ms"
          f" over {scrapes}; {len(text.splitlines()):,} lines, {len(text):,} bytes")
    server = subprocess.Popen([*MONITOR, "metrics", "--serve", "127.0.0.1:0", "--db", str(db)],
                              stderr=subprocess.PIPE, text=True)
    try:
        url = server.stderr.readline().split()[3]  # type: ignore[union-attr]
        http = []
        for _ in range(scrapes):
            began = time.perf_counter()
            with urllib.request.urlopen(url, timeout=30) as response:
                response.read()
            http.append(time.perf_counter() - began)
        print(f"scrape over HTTP: best {min(http) * 1000:.1f} ms, median {statistics.median(http) * 1000:.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=10)


def _hwm_kib(pid: int) -> int:
    """VmHWM (peak resident memory) of a running process, in KiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def import_figures(db: Path, folder: Path) -> None:
    export = folder / "export.json"
    began = time.perf_counter()
    subprocess.run([*MONITOR, "export", "--db", str(db), "-o", str(export)], check=True, capture_output=True)
    print(f"export: {time.perf_counter() - began:.1f} s, {export.stat().st_size / 2**20:,.0f} MiB")
    target = folder / "imported.db"
    began = time.perf_counter()
    child = subprocess.Popen([*MONITOR, "import", "--db", str(target), str(export), "--json"],
                             stdout=subprocess.PIPE, text=True)
    peak = 0
    while child.poll() is None:  # the child's own high-water mark (getrusage's would include this
        peak = max(peak, _hwm_kib(child.pid))  # process's pages, inherited at fork)
        time.sleep(0.2)
    seconds = time.perf_counter() - began
    assert child.returncode == 0 and child.stdout is not None
    result = json.loads(child.stdout.read())["files"][0]
    rows = result["orchestrations"]["inserted"] + result["executions"]["inserted"]
    print(f"import: {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s;"
          f" peak RSS {peak / 1024:,.0f} MiB")
    began = time.perf_counter()
    subprocess.run([*MONITOR, "import", "--db", str(target), str(export)], check=True, capture_output=True)
    print(f"import again (nothing changes): {time.perf_counter() - began:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--no-import", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the files (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        db = Path(folder) / "bench.db"
        built = generate.generate(db, args.executions)
        print(f"generated {built['executions']:,} executions + {built['orchestrations']:,} orchestrations"
              f" in {built['seconds']:.1f} s")
        scrape_figures(db, args.scrapes)
        if not args.no_import:
            import_figures(db, Path(folder))


if __name__ == "__main__":
    main()
