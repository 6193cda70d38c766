"""Reliability: what monitor was put through, and what it lost (nothing).

    python benchmarks/reliability.py             # about two minutes on 2 cores; prints a Markdown table
    python benchmarks/reliability.py --quick     # a lighter load, under a minute

Every scenario runs real processes (`python -m monitor`, `python -m monitor.hooks`) on real files in a
fresh temporary folder: local files only, no network, each step bounded in count and time. Each ends
with an account: the rows that must be there (every execution a writer saw committed, every hook
payload that could be stored, every `monitor run`), how many of them are missing (rows lost: must be
0), `PRAGMA integrity_check` and `foreign_key_check`, and the worst wall time of one hook process
(Claude Code waits for it on every tool call).

The real full disk (a 4 MB tmpfs) needs root (`mount`); without it that scenario is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import open_db  # noqa: E402
from monitor.capture import runs  # noqa: E402
from monitor.capture.ingest import catch_up  # noqa: E402
from monitor.capture.processes import this_process  # noqa: E402
from monitor.capture.runner import Recorder  # noqa: E402
from monitor.store import spool  # noqa: E402
from monitor.store.writes import end_execution, start_execution  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ENV.pop("MONITOR_DB", None)
LOCK_HOLDER = ("import select, sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
               " c.execute(sys.argv[2]); c.execute('SELECT count(*) FROM sqlite_master').fetchone();"
               " print('held', flush=True); select.select([sys.stdin], [], [], 60)")
WRITER = textwrap.dedent("""
    import sys
    from monitor import Tracker
    db, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with Tracker(db) as t:
        for i in range(count):
            run_id = f"{name}-{i}"
            t.start_agent_execution(run_id, "writer", orchestration=f"{name}-s{i // 10}")
            t.complete_agent_execution(run_id, "completed" if i % 7 else "failed", "E" * (i % 3) * 100 or None)
            print(run_id, flush=True)
""")


@dataclass
class Result:
    scenario: str
    held: str
    expected: int
    lost: int
    integrity: str
    worst_hook: float | None
    notes: list[str] = field(default_factory=list)
    refused: int = 0  # what could not be stored at all, each said (hook log, stderr)


class Bench:
    """One scenario's folder, database, hook log and the hook latencies seen."""

    def __init__(self, root: Path, name: str) -> None:
        self.dir = root / name
        self.dir.mkdir()
        self.db = self.dir / "monitoring.db"
        self.log = self.dir / "hook.log"
        self.hook_times: list[float] = []

    def env(self) -> dict:
        return {**ENV, "MONITOR_HOOK_LOG": str(self.log), "HOME": str(self.dir)}

    def start_hook(self, payload: bytes, db: Path | None = None) -> tuple[subprocess.Popen, float]:
        process = subprocess.Popen([sys.executable, "-m", "monitor.hooks", "--db", str(db or self.db)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=self.env(), cwd=self.dir)
        assert process.stdin is not None
        process.stdin.write(payload)
        process.stdin.close()
        process.stdin = None  # communicate() then only reads
        return process, time.monotonic()

    def finish_hook(self, process: subprocess.Popen, began: float) -> None:
        out, err = process.communicate(timeout=60)
        self.hook_times.append(time.monotonic() - began)
        if process.returncode or out or err:
            raise SystemExit(f"a hook misbehaved: exit {process.returncode}, {out[:200]!r} {err[:500]!r}")

    def hooks(self, payloads: list[bytes], at_once: int = 1, db: Path | None = None) -> None:
        for first in range(0, len(payloads), at_once):
            started = [self.start_hook(p, db) for p in payloads[first:first + at_once]]
            for process, began in started:
                self.finish_hook(process, began)

    def monitor(self, *args: str, db: Path | None = None, **kwargs: object) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "monitor", *args, "--db", str(db or self.db)] if args[0] != "run"
                              else [sys.executable, "-m", "monitor", "run", "--db", str(db or self.db), *args[1:]],
                              capture_output=True, text=True, env=self.env(), cwd=self.dir, timeout=120,
                              **kwargs)  # type: ignore[call-overload]

    def hold(self, statement: str = "BEGIN IMMEDIATE", db: Path | None = None) -> subprocess.Popen:
        holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(db or self.db), statement],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        return holder

    def result(self, scenario: str, held: str, expected: set[str], found: set[str], notes: list[str] | None = None,
               db: Path | None = None, refused: int = 0) -> Result:
        return Result(scenario, held, len(expected), len(expected - found), integrity(db or self.db),
                      max(self.hook_times) if self.hook_times else None, notes or [], refused)


def release(holder: subprocess.Popen) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchall()
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        halfway = conn.execute("SELECT count(*) FROM orchestrations o WHERE o.status != 'running' AND EXISTS"
                               " (SELECT 1 FROM agent_executions e WHERE e.orchestration_id = o.id"
                               " AND e.status = 'in_progress')").fetchone()[0]
    finally:
        conn.close()
    problems = ([] if check == [("ok",)] else [str(check[:3])]) + ([f"{len(broken)} broken references"] if broken else [])
    problems += [f"{halfway} finished orchestrations with executions in progress"] if halfway else []
    return "ok" if not problems else "; ".join(problems)


def executions(db: Path, status: str | None = None) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        sql = "SELECT agent_session_id FROM agent_executions" + (" WHERE status = ?" if status else "")
        return {r[0] for r in conn.execute(sql, (status,) if status else ())}
    finally:
        conn.close()


def event_keys(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT dedup_key FROM events WHERE dedup_key IS NOT NULL")}
    finally:
        conn.close()


def tool_payload(session: str, n: int, **extra: object) -> bytes:
    return json.dumps({"session_id": session, "hook_event_name": "PreToolUse", "tool_name": "Bash",
                       "tool_use_id": f"t{n}", "cwd": "/tmp", "tool_input": {"command": f"pytest -q #{n}"},
                       **extra}).encode()


def tool_key(session: str, n: int) -> str:
    return f"{session}:PreToolUse:t{n}"


def seed_old(db: Path, orchestrations: int, per: int) -> None:
    """Old rows (40 days ago) for cleanup to delete, in one transaction."""
    with open_db(db) as conn, conn.transaction() as c:
        for o in range(orchestrations):
            for e in range(per):
                at = "2020-01-01T00:00:00.000Z"
                execution = start_execution(c, f"old-{o}-{e}", "old", at, session_id=f"old-{o}")
                end_execution(c, execution, None, "completed", at, {})


# -- scenarios -------------------------------------------------------------------------------

def load(root: Path, quick: bool) -> Result:
    """Writers at full speed while hooks, runs, exports and cleanups run beside them, each in a
    loop of its own, and two writers are SIGKILLed."""
    b = Bench(root, "load")
    writers, count = (3, 150) if quick else (4, 400)
    seed_old(b.db, 100 if quick else 300, 10)
    procs = {f"w{w}": subprocess.Popen([sys.executable, "-c", WRITER, str(b.db), f"w{w}", str(count)],
                                       stdout=subprocess.PIPE, text=True, env=ENV) for w in range(writers)}
    writing = lambda: any(p.poll() is None for p in procs.values())  # noqa: E731
    sent: dict[str, set[str]] = {"hooks": set(), "runs": set()}
    done = {"exports": 0, "cleanups": 0}

    def hooks() -> None:
        n = 0
        while writing():
            b.hooks([tool_payload("load", n), tool_payload("load", n + 1)], at_once=2)
            sent["hooks"] |= {tool_key("load", n), tool_key("load", n + 1)}
            n += 2

    def runs_loop() -> None:
        n = 0
        while writing():
            if b.monitor("run", "--agent", "step", "--session", "load-runs", "--id", f"run-{n}", "--",
                         "true").returncode == 0:
                sent["runs"].add(f"run-{n}")
            n += 1

    def exports() -> None:
        while writing():
            out = b.dir / "export.json"
            assert b.monitor("export", "-o", str(out)).returncode == 0
            json.loads(out.read_text())
            done["exports"] += 1

    def cleanups() -> None:
        while writing():
            assert b.monitor("cleanup", "30", "--vacuum").returncode == 0
            done["cleanups"] += 1

    loops = [threading.Thread(target=f) for f in (hooks, runs_loop, exports, cleanups)]
    for loop in loops:
        loop.start()
    for victim in ("w0", "w1"):  # SIGKILL two writers mid-stream
        time.sleep(1.5)
        procs[victim].send_signal(signal.SIGKILL)
    for loop in loops:
        loop.join()
    committed = set()
    for process in procs.values():
        assert process.stdout is not None
        committed |= set(process.stdout.read().split())
    b.monitor("list")  # one more command: catches up
    found = executions(b.db) | event_keys(b.db)
    held = (f"{writers} writers × {count} executions ({len(committed):,} committed), 2 SIGKILLed mid-stream;"
            f" at the same time {len(sent['hooks'])} hooks, {len(sent['runs'])} `monitor run`, {done['exports']}"
            f" exports, {done['cleanups']} `cleanup 30 --vacuum`")
    return b.result("load", held, committed | sent["hooks"] | sent["runs"], found)


def killed_writers(root: Path, quick: bool) -> Result:
    b = Bench(root, "kills")
    open_db(b.db).close()
    committed: set[str] = set()
    rounds = 4 if quick else 8
    for r in range(rounds):
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(b.db), f"k{r}", "100000"],
                                   stdout=subprocess.PIPE, text=True, env=ENV)
        time.sleep(random.uniform(0.6, 1.2))
        process.send_signal(signal.SIGKILL)
        assert process.stdout is not None
        committed |= set(process.stdout.read().split())
        process.wait()
    b.monitor("list")
    return b.result("writers SIGKILLed mid-transaction", f"{rounds} writers killed at random moments",
                    committed, executions(b.db))


CHATTY = "import sys, time\nfor i in range(20):\n    print(f'line {i}', file=sys.stderr, flush=True)\n" \
         "    time.sleep(0.05)\nopen(sys.argv[1], 'w').write('done')\n"


def killed_runs(root: Path, quick: bool) -> Result:
    b = Bench(root, "run-kills")
    open_db(b.db).close()
    count = 3 if quick else 5
    finished = 0
    for r in range(count):
        marker = b.dir / f"done-{r}"
        wrapper = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--db", str(b.db), "--agent", "chatty",
                                    "--id", f"chatty-{r}", "--", sys.executable, "-c", CHATTY, str(marker)],
                                   stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
        assert wrapper.stderr is not None and wrapper.stderr.readline() == "line 0\n"
        time.sleep(0.3)
        wrapper.send_signal(signal.SIGKILL)  # monitor run alone, not its process group
        wrapper.stderr.read()
        wrapper.wait()
        finished += marker.exists() and marker.read_text() == "done"
    b.monitor("list")
    failed = {e for e in executions(b.db, "failed")}
    expected = {f"chatty-{r}" for r in range(count)}
    notes = [f"`kill -9` of `monitor run`: {finished} of {count} commands went on writing to stderr and finished;"
             f" {len(failed & expected)} executions then recorded failed (`{runs.KILLED}`) by the next command"]
    return b.result("`monitor run` SIGKILLed", f"{count} wrappers killed while their command wrote to stderr",
                    expected | {f"command {r}" for r in range(count - finished)}, failed, notes)


def locked(root: Path, quick: bool) -> Result:
    b = Bench(root, "lock")
    b.hooks([tool_payload("lock", -1)])
    hooks, seconds = (20, 8) if quick else (40, 15)
    holder = b.hold()
    began = time.monotonic()
    sent, run_ids, run_times = set(), set(), []
    for n in range(hooks):
        b.hooks([tool_payload("lock", n)])
        sent.add(tool_key("lock", n))
        if n % 8 == 0:
            t = time.monotonic()
            result = b.monitor("run", "--agent", "step", "--id", f"locked-run-{n}", "--", "sh", "-c", "exit 3")
            run_times.append(time.monotonic() - t)
            assert result.returncode == 3, result.stderr
            run_ids.add(f"locked-run-{n}")
    time.sleep(max(0.0, seconds - (time.monotonic() - began)))
    release(holder)
    b.monitor("list")
    found = event_keys(b.db) | executions(b.db, "failed")
    notes = [f"write lock held {seconds} s (BEGIN IMMEDIATE in another process): each `monitor run` exited with"
             f" its command's code 3 in at most {max(run_times):.1f} s; all recorded by the next command"]
    return b.result("database locked", f"{hooks} hooks and {len(run_ids)} `monitor run` against a held write lock",
                    sent | run_ids, found, notes)


def upgrading(root: Path, quick: bool) -> Result:
    b = Bench(root, "upgrade")
    conn = sqlite3.connect(b.db)
    conn.executescript((ROOT / "tests" / "fixtures" / "monitor_v3.sql").read_text())
    conn.close()
    holder = b.hold()  # as the process upgrading the file does, for as long as it takes
    sent = set()
    for n in range(6 if quick else 12):
        b.hooks([tool_payload("upgrade", n)])
        sent.add(tool_key("upgrade", n))
    release(holder)
    b.monitor("list")
    return b.result("upgrade in progress", f"{len(sent)} hooks while another process held an older file's lock",
                    sent, event_keys(b.db))


def database_full(root: Path, quick: bool) -> Result:
    """The database may not grow (max_page_count) while its folder has room: ends are spooled."""
    b = Bench(root, "db-full")
    count = 10 if quick else 20
    db = open_db(b.db)
    recorders = []
    for r in range(count):
        recorder = Recorder(b.db, db, warn=lambda m: None)
        recorder.begin(runs.start_record(f"full-{r}", "step", "2026-11-20T12:00:00.000Z", this_process(),
                                         session="full"))
        recorder.thread.join()
        recorders.append(recorder)
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    for r, recorder in enumerate(recorders):
        end = runs.end_record(f"full-{r}", "2026-11-20T12:00:01.000Z", "failed", 1, "E" * 20_000)
        recorder.finish(end, 1, time.monotonic() + 1)
    in_spool = len(spool.spool_path(b.db).read_bytes().splitlines()) if spool.spool_path(b.db).exists() else 0
    db.close()
    with open_db(b.db) as fresh:
        catch_up(fresh, wait=None)
    notes = [f"database full ({count} completions failed with SQLITE_FULL): {in_spool} ends spooled, the"
             " orchestration stayed `running` meanwhile, all recorded once it could grow"]
    return b.result("database full", f"{count} `monitor run` completions refused by SQLite (max_page_count)",
                    {f"full-{r}" for r in range(count)}, executions(b.db, "failed"), notes)


def disk_full(root: Path, quick: bool) -> Result | None:
    """A real full disk: a 4 MB tmpfs filled up while hooks and runs arrive."""
    mount = root / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                                           capture_output=True).returncode:
        return None
    try:
        b = Bench(mount, "disk")
        b.log = root / "disk-hook.log"  # on another disk, so that the hook can say what it could not store
        b.hooks([tool_payload("disk", n) for n in range(10)])
        before = event_keys(b.db)
        filler = mount / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        refused_payloads = [tool_payload("disk", n) for n in range(10, 20)]
        b.hooks(refused_payloads)
        result = b.monitor("run", "--agent", "step", "--id", "during-full", "--", "sh", "-c", "exit 4")
        said = [line for line in (b.log.read_text().splitlines() if b.log.exists() else [])]
        filler.unlink()
        b.hooks([tool_payload("disk", n) for n in range(20, 30)])
        b.monitor("list")
        after = event_keys(b.db)
        expected = before | {tool_key("disk", n) for n in range(20, 30)}
        refused = len({tool_key("disk", n) for n in range(10, 20)} - after)
        notes = [f"disk full (a 4 MB tmpfs filled up): nothing recorded before was lost; {refused} of 10 hook payloads"
                 f" and the `monitor run` that arrived while not one byte could be written were not stored, each"
                 f" said ({len(said)} hook log lines; run: exit {result.returncode},"
                 f" `{result.stderr.strip().splitlines()[-1][:60] if result.stderr.strip() else ''}...`);"
                 " recording went on once space was freed"]
        out = b.result("disk full", "a 4 MB tmpfs filled while 10 hooks and a `monitor run` arrived", expected,
                       after, notes, refused=refused + 1)
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
    return out


def vacuum_with_reader(root: Path, quick: bool) -> Result:
    b = Bench(root, "vacuum")
    seed_old(b.db, 200 if quick else 500, 10)
    reader = b.hold("BEGIN")  # a report reading, for as long as it likes
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(b.db), "v", "100000"], stdout=subprocess.PIPE,
                              text=True, env=ENV)
    time.sleep(0.5)
    began = time.monotonic()
    result = b.monitor("cleanup", "30", "--vacuum")
    took = time.monotonic() - began
    b.hooks([tool_payload("vacuum", n) for n in range(5)])
    writer.send_signal(signal.SIGKILL)
    assert writer.stdout is not None
    committed = set(writer.stdout.read().split())
    writer.wait()
    release(reader)
    b.monitor("list")
    notes = [f"`cleanup 30 --vacuum` with a reader open took {took:.1f} s and said: "
             f"\"{result.stdout.strip().split('. ', 1)[-1]}\""]
    return b.result("vacuum with a reader open", f"cleanup --vacuum while a reader and a writer run",
                    committed | {tool_key("vacuum", n) for n in range(5)}, executions(b.db) | event_keys(b.db), notes)


def corrupt_files(root: Path, quick: bool) -> Result:
    b = Bench(root, "corrupt")
    b.hooks([tool_payload("corrupt", -1)])
    spool.append(b.db, {"kind": "hook", "at": "2026-11-20T12:00:00.000Z", "prices": None,
                        "payload": json.loads(tool_payload("corrupt", 0))})
    with open(spool.spool_path(b.db), "ab") as f:
        f.write(b"garbage that is not JSON\n{\"kind\": \"nonsense\"}\n{\"kind\": \"hook\", \"at\": \"2026-11-2")
    os.mkfifo(b.dir / "monitoring.db.spool.00000000000000000001-1-abcdef")  # a FIFO planted as a claimed file
    outside = root / "outside.txt"
    outside.write_text("not monitor's\n")
    b.hooks([tool_payload("corrupt", 1)])  # drains: the valid line, the garbage refused, the FIFO removed
    os.symlink(outside, spool.spool_path(b.db))  # a link planted where the spool goes
    holder = b.hold()
    b.hooks([tool_payload("corrupt", 2)])  # must spool: refuses to follow the link (logged)
    release(holder)
    b.hooks([tool_payload("corrupt", 3)])
    junk = b.dir / "junk.db"
    junk.write_bytes(os.urandom(8192))
    b.hooks([tool_payload("corrupt", 4)], db=junk)
    run = b.monitor("run", "--agent", "x", "--", "sh", "-c", "exit 5", db=junk)
    assert run.returncode == 5
    found = event_keys(b.db)
    expected = {tool_key("corrupt", n) for n in (0, 1, 3)}
    target = "untouched" if outside.read_text() == "not monitor's\n" else "CHANGED"
    notes = ["corrupt spool (a line that is not JSON, an unknown kind, a torn last line, a FIFO planted as a"
             " claimed file, a symlink planted as the spool): valid lines recorded, the rest refused in the hook"
             f" log; the link's target {target}; a random-bytes database: the hook exits 0 at once, `monitor run`"
             " keeps its command's exit code 5"]
    said = len(b.log.read_text().splitlines())
    return b.result("corrupt files", "a corrupt spool, planted FIFO and symlink, a random-bytes database", expected,
                    found, notes, refused=said)


def hostile_inputs(root: Path, quick: bool) -> Result:
    b = Bench(root, "hostile")
    base = {"session_id": "hostile", "hook_event_name": "PreToolUse", "tool_name": "Bash", "cwd": "/tmp"}

    def tool(n: int, **fields: object) -> bytes:
        return json.dumps({**base, "tool_use_id": f"h{n}", **fields}).encode()

    recordable: list[tuple[str, bytes]] = [
        ("lone surrogates", tool(1, tool_input={"command": "x\udc80", "\ud800": 1})),
        ("Latin-1 bytes", tool(2).replace(b'"/tmp"', b'"/caf\xe9 \xff"')),
        ("NUL and terminal controls", tool(3, tool_input={"command": "a\0b\x1b[2J\x1b]0;title\x07\r"})),
        ("UTF-16", tool(4).decode().encode("utf-16")),
        ("a 5 MB tool response", tool(5, hook_event_name="PostToolUse", tool_response={"stdout": "x" * 5_000_000})),
        ("a 100k-character command", tool(6, tool_input={"command": "y" * 100_000})),
        ("nesting 900 deep", tool(7, tool_input=json.loads("[" * 900 + "]" * 900))),
        ("emoji and a bidi override", tool(8, tool_input={"command": "echo \U0001f680 \u202eevil"})),
        ("odd paths", tool(9, cwd="/tmp/new\nline", transcript_path="/nonexistent\0")),
        ("a transcript that is a folder", tool(10, hook_event_name="PostToolUse", transcript_path="/tmp")),
    ]
    keys = {f"hostile:{'PostToolUse' if n in (5, 10) else 'PreToolUse'}:h{n}" for n in range(1, 11)}
    refused: list[tuple[str, bytes]] = [
        ("not JSON", b"\xff\xfe{not json"), ("nested 100k deep", b"[" * 100_000 + b"]" * 100_000),
        ("not an object", b"[1, 2]"), ("no session", b'{"hook_event_name": "Stop"}'), ("empty", b""),
    ]
    odd_db = b.dir / "a db with spaces, \u00fcn\u00efcode and\nnewline.db"
    b.hooks([raw for _, raw in recordable + refused], db=odd_db)
    loud = b.monitor("run", "--agent", "loud", "--id", "loud", "--", sys.executable, "-c",
                     "import sys; sys.stderr.write('z' * 2_000_000 + '\\nlast words\\n'); sys.exit(2)", db=odd_db)
    missing = b.monitor("run", "--agent", "missing", "--id", "missing", "--", "no-such-command-\u2603", db=odd_db)
    assert (loud.returncode, missing.returncode) == (2, 127), (loud.stderr[-300:], missing.stderr)
    found = event_keys(odd_db) | executions(odd_db, "failed")
    log = b.log.read_text().splitlines() if b.log.exists() else []
    notes = [f"hostile inputs: {len(recordable)} odd payloads recorded ({', '.join(n for n, _ in recordable)}),"
             f" {len(refused)} unusable ones ({', '.join(n for n, _ in refused)}) refused in the hook log"
             f" ({len(log)} lines), the hook exiting 0 in silence every time; a database path with spaces,"
             " non-ASCII letters and a newline; `monitor run` with 2 MB of stderr (exit 2 kept, the last lines"
             " recorded) and a command that does not exist (127)"]
    return b.result("hostile inputs", f"{len(recordable) + len(refused)} payloads, 2 runs", keys | {"loud", "missing"},
                    found, notes, db=odd_db, refused=len(refused))


SCENARIOS = [load, killed_writers, killed_runs, locked, upgrading, database_full, disk_full, vacuum_with_reader,
             corrupt_files, hostile_inputs]


def table(results: list[Result]) -> str:
    lines = ["| scenario | what it held | rows that must be there | rows lost | refused, and said | integrity |"
             " worst hook |", "|---|---|---|---|---|---|---|"]
    for r in results:
        worst = f"{r.worst_hook * 1000:,.0f} ms" if r.worst_hook is not None else "-"
        lines.append(f"| {r.scenario} | {r.held} | {r.expected:,} | {r.lost} | {r.refused} | {r.integrity} |"
                     f" {worst} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="A lighter load.")
    parser.add_argument("--only", nargs="*", help="Run only these scenarios (function names).")
    args = parser.parse_args()
    random.seed(8)
    began = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="monitor-reliability-") as folder:
        for scenario in SCENARIOS:
            if args.only and scenario.__name__ not in args.only:
                continue
            t = time.monotonic()
            result = scenario(Path(folder), args.quick)
            if result is None:
                print(f"{scenario.__name__}: left out (needs root to mount a tmpfs)", file=sys.stderr)
                continue
            print(f"{scenario.__name__}: {time.monotonic() - t:.1f} s, lost {result.lost}", file=sys.stderr)
            results.append(result)
    print(table(results))
    print()
    for r in results:
        for note in r.notes:
            print(f"- {note}")
    print(f"\n{sum(r.lost for r in results)} rows lost in all; {time.monotonic() - began:.0f} s.")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
