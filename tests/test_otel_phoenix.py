"""Opt-in: `monitor otel push` into a real Arize Phoenix server on 127.0.0.1, its spans read back
through Phoenix's REST API. Skipped unless Phoenix is installed: importable here (`pip install
arize-phoenix`), or its `phoenix` command named by $MONITOR_TEST_PHOENIX (a separate venv, since
Phoenix brings many packages: python3 -m venv .venv-phoenix && .venv-phoenix/bin/pip install arize-phoenix).
Phoenix takes a minute or more to start on a busy machine."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor import open_db
from monitor.exporters import otel, otel_push, otlp_http

from test_otel import record

PHOENIX = os.environ.get("MONITOR_TEST_PHOENIX") or shutil.which("phoenix")
if importlib.util.find_spec("phoenix") is not None:
    COMMAND = [sys.executable, "-m", "phoenix.server.main", "serve"]
elif PHOENIX and os.access(PHOENIX, os.X_OK):
    COMMAND = [PHOENIX, "serve"]
else:
    pytestmark = pytest.mark.skip(reason="Arize Phoenix is not installed (see the module docstring)")
    COMMAND = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("phoenix")
    port = free_port()
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(work), "PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": str(port),
           "PHOENIX_GRPC_PORT": str(free_port())}
    log = (work / "phoenix.log").open("wb")
    process = subprocess.Popen(COMMAND, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Phoenix did not start: " + (work / "phoenix.log").read_text()[-2000:])
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def phoenix_spans(url: str, expected: int) -> list[dict[str, Any]]:
    """The default project's spans, once Phoenix has stored `expected` of them (it ingests in the background)."""
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(f"{url}/v1/projects/default/spans?limit=1000", timeout=10) as response:
            spans = json.load(response)["data"]
        if len(spans) >= expected or time.monotonic() > deadline:
            return spans  # type: ignore[no-any-return]
        time.sleep(0.5)


@pytest.mark.slow
def test_phoenix_stores_the_span_tree_and_recognises_a_second_push(phoenix: str, db_path: Path, clock) -> None:
    record(db_path, clock)
    resource = otel.resource_attributes("monitor-tests", environ={})
    with open_db(db_path) as db:
        sent = otel_push.push(db, otlp_http.target(f"{phoenix}/v1/traces", environ={}), resource=resource)
    assert sent.spans == 6
    spans = {s["name"]: s for s in phoenix_spans(phoenix, 6)}
    assert set(spans) == {"invoke_workflow", "invoke_agent planner", "execute_tool create_issue",
                          "chat claude-sonnet-4-5", "invoke_agent tests", "invoke_agent lint"}
    workflow, planner = spans["invoke_workflow"], spans["invoke_agent planner"]
    assert workflow["parent_id"] is None
    assert planner["parent_id"] == workflow["context"]["span_id"]
    assert spans["chat claude-sonnet-4-5"]["parent_id"] == planner["context"]["span_id"]
    assert spans["invoke_agent tests"]["status_code"] == "ERROR"
    assert spans["invoke_agent tests"]["status_message"] == "2 tests failed"
    assert planner["attributes"]["gen_ai.agent.name"] == "planner"
    assert planner["attributes"]["gen_ai.conversation.id"] == "ci-1"
    assert spans["chat claude-sonnet-4-5"]["span_kind"] == "LLM"  # Phoenix read the GenAI conventions
    assert planner["span_kind"] == "AGENT"

    # The same rows pushed again (under another spelling of the URL, so monitor sends them again):
    # the same ids, so Phoenix still holds six spans.
    with open_db(db_path) as db:
        again = otel_push.push(db, otlp_http.target(f"{phoenix.replace('127.0.0.1', 'localhost')}/v1/traces",
                                                    environ={}), resource=resource)
    assert again.spans == 6
    time.sleep(5)  # (Phoenix ingests in the background)
    assert len(phoenix_spans(phoenix, 6)) == 6
