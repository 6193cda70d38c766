"""`report --html`: the page's structure and numbers against the database, read with html.parser."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.cli.options import Settings

from conftest import T0, Clock

EVIL = "<script>alert('x')</script>"
ERROR = "collected 3 items\nFAILED tests/test_x.py::test_y - <img src=x onerror=alert(1)> broke\n1 failed in 0.12s"


class Page(HTMLParser):
    """The parts of a page the tests read: every start tag, the sections (h2) with their tables
    (rows of cell texts), figure captions, and the text of the header."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.sections: dict[str, list[list[list[str]]]] = {}
        self.captions: dict[str, str] = {}
        self.header = ""
        self._section: str | None = None
        self._in: list[str] = []
        self._text = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("h2", "td", "th", "figcaption", "header"):
            self._text = ""
        if tag == "table" and self._section is not None and "svg" not in self._in:
            self.sections[self._section].append([])
        if tag == "tr" and self._section is not None and "svg" not in self._in:
            self.sections[self._section][-1].append([])
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._section = self._text
            self.sections[self._section] = []
        elif tag in ("td", "th") and self._section is not None:
            self.sections[self._section][-1][-1].append(self._text)
        elif tag == "figcaption":
            self.captions[self._section or ""] = self._text
        elif tag == "header":
            self.header = self._text
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        self._text += data

    def table(self, section: str, index: int = 0) -> list[dict[str, str]]:
        head, *body = self.sections[section][index]
        return [dict(zip(head, row)) for row in body]


@pytest.fixture
def recorded(tracker, clock):
    """Three days of work by three agents (one named like a script), with tokens, cost, failures."""
    clock.now = T0 - timedelta(days=2)
    for day in range(3):
        session = f"s-{day}"
        tracker.start_orchestration(session, "work")
        for i, agent in enumerate(["coder", "tester", EVIL]):
            sid = f"{session}-{agent}"
            tracker.start_agent_execution(sid, agent, session)
            clock.advance(seconds=10 * (i + 1) + day)
            failed = agent == "tester" and day == 1
            tracker.complete_agent_execution(
                sid, "failed" if failed else "completed", ERROR if failed else None, model=f"model-{i % 2}",
                input_tokens=1000 * (i + 1), output_tokens=100, cost_usd=0.5 * (i + 1), exit_code=1 if failed else 0)
        tracker.start_agent_execution(f"{session}-stuck", "coder", session) if day == 0 else None
        clock.advance(days=1)
    clock.now = T0
    return tracker.db


def report(db_path: Path, out: Path, *args: str, now=T0):
    result = CliRunner().invoke(cli, ["report", "--html", str(out), "--db", str(db_path), *args],
                                obj=Settings(now=Clock(now)))
    return result


def test_the_page_has_every_chart_and_table_with_the_databases_numbers(recorded, db_path, tmp_path):
    out = tmp_path / "report.html"
    result = report(db_path, out)
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    page = Page(text)

    assert list(page.sections) == [
        "Executions per day, by status", "Success rate over time", "p50 and p95 duration per agent",
        "Cost per day by model", "Tokens by agent", "Slowest agents", "Latest failures", "Stale executions",
        "Costliest sessions"]
    svgs = [attrs for tag, attrs in page.tags if tag == "svg"]
    assert len(svgs) == 5 and all(a["role"] == "img" and a["aria-label"] for a in svgs)

    db = recorded
    per_day = {day: (n, c, f, p) for day, n, c, f, p in db.execute(
        "SELECT substr(started_at, 1, 10), count(*), sum(status = 'completed'), sum(status = 'failed'),"
        " sum(status = 'in_progress') FROM agent_executions GROUP BY 1")}
    shown = {r["day"]: (int(r["executions"]), int(r["completed"]), int(r["failed"]), int(r["in_progress"]))
             for r in page.table("Executions per day, by status")}
    assert shown == per_day
    assert page.captions["Executions per day, by status"].startswith("10 executions in 3 days: 8 completed, 1 failed,"
                                                                     " 1 in_progress")
    rates = {r["day"]: r["success_rate"] for r in page.table("Success rate over time")}
    assert rates == {"2026-11-18": "100.0%", "2026-11-19": "66.7%", "2026-11-20": "100.0%"}

    tokens = {r["agent"]: int(r["total_tokens"].replace(",", "")) for r in page.table("Tokens by agent")}
    assert tokens == dict(db.execute("SELECT agent_name, sum(input_tokens) + sum(output_tokens)"
                                     " FROM agent_executions WHERE input_tokens IS NOT NULL GROUP BY 1"))
    cost = page.table("Cost per day by model")
    assert [r["total"] for r in cost] == ["$3.00"] * 3
    durations = {r["agent"]: int(r["p95_ms"].replace(",", "")) for r in page.table("p50 and p95 duration per agent")}
    assert durations == {"coder": 12_000, "tester": 22_000, EVIL: 32_000}

    failures = page.table("Latest failures")
    started = db.execute("SELECT started_at FROM agent_executions WHERE status = 'failed'").fetchone()[0]
    assert failures == [{"started": f"{started[:10]} {started[11:19]} UTC", "session": "s-1", "agent": "tester", "exit": "1",
                         "first error line": "FAILED tests/test_x.py::test_y - <img src=x onerror=alert(1)> broke"}]
    stale = page.table("Stale executions")
    assert [(r["agent"], r["session"]) for r in stale] == [("coder", "s-0")]
    sessions = page.table("Costliest sessions")
    assert [(r["session"], r["cost_usd"]) for r in sessions] == [("s-0", "$3.00"), ("s-1", "$3.00"), ("s-2", "$3.00")]

    check = CliRunner().invoke(cli, ["check", "--json", "--db", str(db_path)], obj=Settings(now=Clock(T0)))
    verdict = json.loads(check.output)["verdict"]
    assert f"monitor check{verdict.upper()}" in page.header
    assert f"Database{db_path}" in page.header and "Generated2026-11-20 12:00:00 UTC" in page.header


def test_user_data_is_escaped_and_nothing_is_fetched(recorded, db_path, tmp_path):
    out = tmp_path / "report.html"
    assert report(db_path, out).exit_code == 0
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    tags = {tag for tag, _ in page.tags}
    assert "script" not in tags and "img" not in tags and "link" not in tags and "iframe" not in tags
    assert EVIL not in text and "<img src=x" not in text  # only escaped
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text or "&lt;script&gt;" in text
    fetching = [(tag, name, value) for tag, attrs in page.tags for name, value in attrs.items()
                if name in ("src", "href", "xlink:href", "action", "data", "poster") and value]
    assert fetching == []
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text)
    assert not re.search(r"@import", text)
    assert [a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]


def test_a_sessions_report_counts_that_session_only(recorded, db_path, tmp_path):
    out = tmp_path / "s1.html"
    result = report(db_path, out, "--session", "s-1")
    assert result.exit_code == 0, result.output
    page = Page(out.read_text(encoding="utf-8"))
    assert page.table("Executions per day, by status") == [
        {"day": "2026-11-19", "executions": "3", "completed": "2", "failed": "1", "in_progress": "0"}]
    assert "session s-1" in page.header
    assert page.sections["Stale executions"] == []  # the stuck execution is s-0's
    assert [r["session"] for r in page.table("Costliest sessions")] == ["s-1"]


def test_an_agents_report_and_a_window(recorded, db_path, tmp_path):
    out = tmp_path / "coder.html"
    result = report(db_path, out, "--agent", "coder", "--since", "2026-11-19")
    assert result.exit_code == 0, result.output
    page = Page(out.read_text(encoding="utf-8"))
    assert [(r["day"], r["executions"]) for r in page.table("Executions per day, by status")] == [
        ("2026-11-19", "1"), ("2026-11-20", "1")]
    assert [r["agent"] for r in page.table("Tokens by agent")] == ["coder"]
    assert "Latest failures" in page.sections and page.sections["Latest failures"] == []  # "No failed executions."


def test_trends_survive_cleanup_through_the_roll_ups(recorded, db_path, tmp_path):
    before, after = tmp_path / "before.html", tmp_path / "after.html"
    later = T0 + timedelta(days=40)
    assert report(db_path, before, now=later).exit_code == 0
    cleaned = CliRunner().invoke(cli, ["cleanup", "30", "--yes", "--db", str(db_path)],
                                 obj=Settings(now=Clock(later)))
    assert cleaned.exit_code == 0 and "Deleted 3 orchestrations" in cleaned.output, cleaned.output
    assert report(db_path, after, now=later).exit_code == 0
    old, new = Page(before.read_text(encoding="utf-8")), Page(after.read_text(encoding="utf-8"))
    for section in ("Executions per day, by status", "Success rate over time", "Cost per day by model",
                    "Tokens by agent"):
        assert new.table(section) == old.table(section), section
    assert new.sections["Latest failures"] == [] and old.table("Latest failures")  # raw rows are gone


def test_an_empty_database_and_bad_input(db_path, tmp_path, tracker):
    out = tmp_path / "empty.html"
    assert report(db_path, out).exit_code == 0
    assert "No executions in this window." in out.read_text(encoding="utf-8")
    result = report(db_path, out, "--session", "nope")
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "nope" in result.output
    missing = CliRunner().invoke(cli, ["report", "--db", str(db_path)])
    assert missing.exit_code == 2 and "--html" in missing.output
    nowhere = report(db_path, tmp_path / "no" / "r.html")
    assert (nowhere.exit_code, nowhere.output) == (
        1, f"Error: cannot write {tmp_path}/no/r.html: No such file or directory (no directory {tmp_path}/no)\n")


def test_the_projects_workflow_uploads_each_jobs_report_next_to_its_export():
    workflow = (Path(__file__).resolve().parent.parent / ".github" / "workflows" / "ci.yml").read_text()
    assert ('monitor report --html monitoring-report.html --session "ci-${{ github.run_id }}-${{ matrix.python-version }}"'
            in workflow)
    uploaded = workflow.split("name: Upload monitoring data")[1].split("retention-days")[0]
    assert "monitoring-export.json" in uploaded and "monitoring-report.html" in uploaded
