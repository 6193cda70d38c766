"""Many writer processes on one database file: nothing lost, nothing stuck, no lock errors."""

from __future__ import annotations

import subprocess
import sys

from monitor import open_db

WORKER = """
import sys
from monitor import Tracker

worker, count, db = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with Tracker(db) as t:
    session = f"orch-{worker}"
    t.start_orchestration(session, total_tasks=count)
    for i in range(count):
        name = f"w{worker}-e{i}"
        t.start_agent_execution(name, f"agent-{i % 5}", session, task_number=i)
        t.complete_agent_execution(name, "failed" if i % 10 == 0 else "completed", files_created=i)
    t.complete_orchestration(session)
print("done", worker)
"""


def test_eight_processes_writing_at_once_lose_nothing(db_path):
    open_db(db_path).close()  # created up front, as a user's first `monitor run` would
    workers, count = 8, 200
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(w), str(count), str(db_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(workers)]
    results = [(p.wait(timeout=240), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0, err
        assert "locked" not in err
    with open_db(db_path, create=False) as db:
        assert db.execute("SELECT count(*) FROM agent_executions").fetchone()[0] == workers * count
        assert db.execute("SELECT count(*) FROM agent_executions WHERE status = 'in_progress'").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM agent_executions WHERE status = 'failed'").fetchone()[0] == (
            workers * count // 10)
        per_orchestration = db.execute(
            "SELECT o.session_id, o.status, o.completed_tasks, o.failed_tasks, count(e.id) FROM orchestrations o"
            " JOIN agent_executions e ON e.orchestration_id = o.id GROUP BY o.id ORDER BY o.session_id").fetchall()
        assert per_orchestration == [(f"orch-{w}", "partial", 180, 20, 200) for w in range(workers)]
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_processes_creating_a_new_database_at_once(db_path):
    """The first open of a new file migrates it; racing processes must not trip over each other."""
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(w), "5", str(db_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(6)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with open_db(db_path, create=False) as db:
        assert db.execute("SELECT count(*) FROM agent_executions").fetchone()[0] == 30
