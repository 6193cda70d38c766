"""The exact text of every report's table, on a fixed clock (as sqlite-utils' tests pin theirs).

The data is recorded by a Tracker on the test Clock, and the CLI reads "now" from the same clock:
CliRunner().invoke(cli, args, obj=Settings(now=clock)) (monitor.cli.options.Settings is how the CLI
takes its clock from its caller; only tests give it one). Tables are as wide as a terminal of
120 columns ($COLUMNS), whatever the terminal running the tests.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor import Tracker, open_db
from monitor.cli import cli
from monitor.cli.options import Settings

from conftest import T0, Clock

NOW = T0 + timedelta(minutes=30)


def at(clock: Clock, **delta: float) -> None:
    clock.now = T0 + timedelta(**delta)


def record(path: Path, clock: Clock) -> None:
    """Two orchestrations (one partial with a failed tester, one completed a day ago), a lone
    execution, and one stuck in progress for hours; events, tokens and costs, priced or not."""
    with Tracker(path, clock=clock) as t:
        at(clock, days=-1)
        t.start_orchestration("deploy-3", "Deploy v3", total_tasks=1, git_commit_hash="9f8e7d6")
        t.start_agent_execution("deploy-3-deployer", "deployer", "deploy-3")
        at(clock, days=-1, milliseconds=850)
        t.complete_agent_execution("deploy-3-deployer", files_modified=1, input_tokens=300)
        t.complete_orchestration("deploy-3")

        at(clock, hours=-3)
        t.start_agent_execution("stuck-1", "slowpoke")

        at(clock)
        t.start_orchestration("build-7", "Nightly refactor of the payment service", total_tasks=3,
                              git_commit_hash="abc1234")
        t.start_agent_execution("build-7-planner", "planner", "build-7", task_id="T-1", task_number=1)
        at(clock, seconds=2.5)
        t.complete_agent_execution("build-7-planner", model="claude-sonnet-4-5", input_tokens=12_000,
                                   output_tokens=800, cost_usd=0.048)
        at(clock, seconds=3)
        t.start_agent_execution("build-7-coder", "coder", "build-7", task_id="T-2", task_number=2)
        at(clock, seconds=10)
        t.event("tool_call", "Edit payments/api.py", {"tool": "Edit"}, execution="build-7-coder")
        at(clock, minutes=1, seconds=8)
        t.complete_agent_execution("build-7-coder", files_created=2, files_modified=5, retry_count=1,
                                   model="claude-sonnet-4-5", input_tokens=250_000, output_tokens=40_000,
                                   cost_usd=1.35)
        at(clock, minutes=1, seconds=10)
        t.start_agent_execution("build-7-tester", "tester", "build-7", task_id="T-3", task_number=3)
        at(clock, minutes=1, seconds=20)
        t.event("error", "2 tests failed", execution="build-7-tester")
        at(clock, minutes=1, seconds=22.4)
        t.complete_agent_execution("build-7-tester", "failed",
                                   "Traceback (most recent call last):\n  ...\nFAILED test_login - 2 != 3",
                                   model="local-llama", input_tokens=5_000, exit_code=1)
        t.complete_orchestration("build-7")
        t.event("status", "build-7 finished: partial", orchestration="build-7")

        at(clock, minutes=5)
        t.start_agent_execution("lint-1", "lint")
        at(clock, minutes=5, milliseconds=900)
        t.complete_agent_execution("lint-1")
    with open_db(path) as db, db.transaction() as conn:  # fixed uuids instead of random ones
        for table in ("orchestrations", "agent_executions"):
            conn.execute(f"UPDATE {table} SET uuid = '00000000-0000-4000-8000-' || printf('%012d', id)")
    clock.now = NOW


@pytest.fixture
def recorded(db_path: Path, clock: Clock) -> Path:
    record(db_path, clock)
    return db_path


@pytest.fixture
def show(recorded: Path, clock: Clock):
    """Run monitor at NOW on the recorded database; the output (stdout and stderr) as text."""

    def run(*args: str, exit_code: int = 0) -> str:
        result = invoke(recorded, clock, *args)
        assert result.exit_code == exit_code, result.output
        return result.output

    return run


def invoke(db_path: Path, clock: Clock, *args: str) -> Result:
    return CliRunner(env={"COLUMNS": "120"}).invoke(cli, [*args, "--db", str(db_path)], obj=Settings(now=clock))


def test_list(show):
    assert show("list") == """\
session id    status       tasks    done    failed    executions    duration    cost $  started at               description
------------  ---------  -------  ------  --------  ------------  ----------  --------  -----------------------  -------------
build-7       partial          3       2         1             3      1m 22s    1.3980  2026-11-20 12:00:00 UTC  Nightly refa…
deploy-3      completed        1       1         0             1       850ms            2026-11-19 12:00:00 UTC  Deploy v3
"""


def test_show(show):
    assert show("show", "build-7") == """\
id                2
uuid              00000000-0000-4000-8000-000000000002
session id        build-7
task description  Nightly refactor of the payment service
status            partial
started at        2026-11-20 12:00:00 UTC
completed at      2026-11-20 12:01:22 UTC
duration          1m 22s
total tasks       3
completed tasks   2
failed tasks      1
git commit hash   abc1234

Executions
  executions      3
  completed       2
  failed          1
  in progress     0
  success rate    66.7%
  avg duration    26.6s
  p50 duration    12.4s
  p95 duration    1m 05s
  min duration    2.5s
  max duration    1m 05s
  retries         1
  self healed     0
  files created   2
  files modified  5
  input tokens    267,000
  output tokens   40,800
  cost $          1.3980
  unpriced        1

Agents
  agent name      executions    failed    total duration    cost $    unpriced
  ------------  ------------  --------  ----------------  --------  ----------
  coder                    1         0            1m 05s    1.3500           0
  planner                  1         0              2.5s    0.0480           0
  tester                   1         1             12.4s                     1
"""


def test_agent(show):
    assert show("agent", "coder") == """\
agent name      coder
executions      1
completed       1
failed          0
in progress     0
success rate    100.0%
avg duration    1m 05s
p50 duration    1m 05s
p95 duration    1m 05s
min duration    1m 05s
max duration    1m 05s
retries         1
self healed     0
files created   2
files modified  5
input tokens    250,000
output tokens   40,000
cost $          1.3500
unpriced        0

Recent executions
  session id    agent session id    status       duration  started at
  ------------  ------------------  ---------  ----------  -----------------------
  build-7       build-7-coder       completed      1m 05s  2026-11-20 12:00:03 UTC
"""


def test_executions(show):
    assert show("executions", "build-7") == """\
agent session id    agent name    task id    status       duration    retries    exit code    cost $  started at               error message
------------------  ------------  ---------  ---------  ----------  ---------  -----------  --------  -----------------------  ---------------
build-7-planner     planner       T-1        completed        2.5s          0                 0.0480  2026-11-20 12:00:00 UTC
build-7-coder       coder         T-2        completed      1m 05s          1                 1.3500  2026-11-20 12:00:03 UTC
build-7-tester      tester        T-3        failed          12.4s          0            1            2026-11-20 12:01:10 UTC  FAILED test_lo…
"""


def test_executions_of_all(show):
    assert show("executions") == """\
agent session id    agent name    task id    status         duration    retries    exit code    cost $  started at               error message
------------------  ------------  ---------  -----------  ----------  ---------  -----------  --------  -----------------------  ---------------
lint-1              lint                     completed         900ms          0                         2026-11-20 12:05:00 UTC
build-7-tester      tester        T-3        failed            12.4s          0            1            2026-11-20 12:01:10 UTC  FAILED test_lo…
build-7-coder       coder         T-2        completed        1m 05s          1                 1.3500  2026-11-20 12:00:03 UTC
build-7-planner     planner       T-1        completed          2.5s          0                 0.0480  2026-11-20 12:00:00 UTC
stuck-1             slowpoke                 in_progress                      0                         2026-11-20 09:00:00 UTC
deploy-3-deployer   deployer                 completed         850ms          0                         2026-11-19 12:00:00 UTC
"""


def test_health(show):
    assert show("health", "24", exit_code=4) == """\
status        unhealthy
reasons       success rate 75.0% is below 80%, 1 execution in progress for over 1h 00m
window hours  24
since         2026-11-19 12:30:00 UTC
generated at  2026-11-20 12:30:00 UTC

Orchestrations
  total      1
  running    0
  completed  0
  partial    1
  failed     0

Executions
  executions      5
  completed       3
  failed          1
  in progress     1
  success rate    75.0%
  avg duration    20.2s
  p50 duration    2.5s
  p95 duration    1m 05s
  min duration    900ms
  max duration    1m 05s
  retries         1
  self healed     0
  files created   2
  files modified  5
  input tokens    267,000
  output tokens   40,800
  cost $          1.3980
  unpriced        1

Stale
  threshold  1h 00m
  count      1

  Executions
    agent name    agent session id    started at                 running
    ------------  ------------------  -----------------------  ---------
    slowpoke      stuck-1             2026-11-20 09:00:00 UTC     3h 30m
"""


def test_performance(show):
    assert show("performance") == """\
agent name      executions    failed    success     avg     p50     p95     max    retries    cost $    unpriced
------------  ------------  --------  ---------  ------  ------  ------  ------  ---------  --------  ----------
coder                    1         0     100.0%  1m 05s  1m 05s  1m 05s  1m 05s          1    1.3500           0
deployer                 1         0     100.0%   850ms   850ms   850ms   850ms          0                     1
lint                     1         0     100.0%   900ms   900ms   900ms   900ms          0                     0
planner                  1         0     100.0%    2.5s    2.5s    2.5s    2.5s          0    0.0480           0
slowpoke                 1         0                                                     0                     0
tester                   1         1       0.0%   12.4s   12.4s   12.4s   12.4s          0                     1
"""


def test_failures(show):
    assert show("failures") == """\
session id    status      done    failed    tasks    completion    duration  started at               first error
------------  --------  ------  --------  -------  ------------  ----------  -----------------------  ------------------
build-7       partial        2         1        3         66.7%      1m 22s  2026-11-20 12:00:00 UTC  FAILED test_login…
"""


def test_failed_executions(show):
    assert show("failures", "--executions") == """\
session id    agent name    agent session id      exit code    duration  started at               error message
------------  ------------  ------------------  -----------  ----------  -----------------------  ----------------------
build-7       tester        build-7-tester                1       12.4s  2026-11-20 12:01:10 UTC  FAILED test_login - 2…
"""


@pytest.mark.parametrize("by", ["agent", "model", "session"])
def test_cost(show, by):
    assert show("cost", "--by", by) == {"agent": """\
agent       executions    tokens in    tokens out    cost $    unpriced
--------  ------------  -----------  ------------  --------  ----------
coder                1      250,000        40,000    1.3500           0
planner              1       12,000           800    0.0480           0
deployer             1          300                                   1
tester               1        5,000                                   1
total                4      267,300        40,800    1.3980           2
""", "model": """\
model                executions    tokens in    tokens out    cost $    unpriced
-----------------  ------------  -----------  ------------  --------  ----------
claude-sonnet-4-5             2      262,000        40,800    1.3980           0
(none)                        1          300                                   1
local-llama                   1        5,000                                   1
total                         4      267,300        40,800    1.3980           2
""", "session": """\
session      executions    tokens in    tokens out    cost $    unpriced
---------  ------------  -----------  ------------  --------  ----------
build-7               3      267,000        40,800    1.3980           1
deploy-3              1          300                                   1
total                 4      267,300        40,800    1.3980           2
"""}[by]


def test_logs(show):
    assert show("logs", "build-7") == """\
timestamp                agent name    type       message
-----------------------  ------------  ---------  -------------------------
2026-11-20 12:00:10 UTC  coder         tool_call  Edit payments/api.py
2026-11-20 12:01:20 UTC  tester        error      2 tests failed
2026-11-20 12:01:22 UTC                status     build-7 finished: partial
"""


def test_search(show):
    assert show("search", "failed") == """\
kind    timestamp                session id    agent name    agent session id    type    message
------  -----------------------  ------------  ------------  ------------------  ------  --------------------------
error   2026-11-20 12:01:22 UTC  build-7       tester        build-7-tester      failed  FAILED test_login - 2 != 3
event   2026-11-20 12:01:20 UTC  build-7       tester        build-7-tester      error   2 tests failed
"""


def test_cleanup_dry_run(show):
    assert show("cleanup", "0", "--dry-run") == """\
Would delete 2 orchestrations and 6 executions that started before 2026-11-20 12:30:00 UTC. Would roll up 1 day \
first (kept for trends).
"""
