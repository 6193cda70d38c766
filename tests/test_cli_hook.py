"""`monitor hook` as Claude Code runs it (a real process reading stdin), install/uninstall,
and the session showing up in list, show, logs, search and cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.capture.claude import settings as hooks
from monitor.cli import cli

PAYLOADS = Path(__file__).parent / "payloads"
MONITOR = Path(sys.executable).with_name("monitor")
SESSION = ["session_start", "pre_write", "post_write", "post_edit", "subagent_start", "sub_pre_bash",
           "sub_post_bash_failure", "sub_post_multiedit", "subagent_stop", "stop", "session_end"]


@pytest.fixture
def env(tmp_path):
    for name in ("main_transcript.jsonl", "sub_transcript.jsonl"):
        (tmp_path / name).write_bytes((PAYLOADS / name).read_bytes())
    return tmp_path


def payload(env: Path, name: str, cwd: Path | None = None) -> bytes:
    """A real payload, its transcripts in env and its cwd env (or cwd)."""
    text = (PAYLOADS / f"{name}.json").read_text()
    return (text.replace("SUBTRANSCRIPT", str(env / "sub_transcript.jsonl"))
            .replace("TRANSCRIPT", str(env / "main_transcript.jsonl")).replace("CWD", str(cwd or env))).encode()


def run_hook(env: Path, data: bytes, argv: list[str] | str, cwd: Path | None = None,
             **variables: str) -> subprocess.CompletedProcess:
    """Run the hook as Claude Code does (a command line is run by a shell), in cwd (default env)."""
    environment = {**os.environ, "MONITOR_HOOK_LOG": str(env / "hook.log"), "HOME": str(env), **variables}
    return subprocess.run(argv, input=data, capture_output=True, env=environment, cwd=cwd or env, timeout=60,
                          shell=isinstance(argv, str))


COMMANDS = {
    "monitor hook": lambda db: [str(MONITOR), "hook", "--db", str(db)],
    "python -m monitor.hooks": lambda db: [sys.executable, "-m", "monitor.hooks", "--db", str(db)],
}
#: The whole session through what `hook install` writes; its lifecycle alone through the CLI's
#: `monitor hook` (what differs between the two is the entry point, not the payload handling).
PAYLOADS_SENT = {
    "python -m monitor.hooks": [*SESSION, "malformed", "missing_session", "unknown_event"],
    "monitor hook": ["session_start", "subagent_start", "subagent_stop", "stop", "session_end", "malformed",
                     "missing_session"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_the_hook_process_records_and_stays_silent(env, command):
    db = env / "m.db"
    for name in PAYLOADS_SENT[command]:
        result = run_hook(env, payload(env, name), COMMANDS[command](db))
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), name
    invoke = CliRunner().invoke
    listed = invoke(cli, ["list", "--db", str(db), "--json"])
    assert listed.exit_code == 0, listed.output
    (session,) = json.loads(listed.output)
    assert (session["session_id"], session["status"], session["executions"]) == ("sess-1", "completed", 2)
    assert session["cost_usd"] == pytest.approx(0.0273 + 0.00825)
    log = (env / "hook.log").read_text()
    assert "not JSON" in log and "no session_id" in log


def test_the_hook_never_fails_even_without_a_usable_database(env):
    (env / "dir.db").mkdir()
    for argv in (COMMANDS["monitor hook"](env / "dir.db"), COMMANDS["python -m monitor.hooks"](env / "dir.db"),
                 COMMANDS["python -m monitor.hooks"](env / "no-such-dir" / "m.db")):
        result = run_hook(env, payload(env, "post_write"), argv)
        assert (result.returncode, result.stdout) == (0, b"")
    assert "is a directory" in (env / "hook.log").read_text()
    assert "does not exist" in (env / "hook.log").read_text()


def test_a_recorded_session_in_show_logs_search_and_cost(env):
    db = env / "m.db"
    for name in SESSION:
        run_hook(env, payload(env, name), COMMANDS["python -m monitor.hooks"](db))

    def invoke(*args: str):
        result = CliRunner().invoke(cli, [*args, "--db", str(db)])
        assert result.exit_code == 0, result.output
        return result.output

    shown = json.loads(invoke("show", "sess-1", "--json"))
    assert (shown["executions"]["files_created"], shown["executions"]["files_modified"]) == (1, 2)
    assert shown["executions"]["input_tokens"] == 7000 and shown["executions"]["unpriced"] == 0
    lines = [json.loads(line) for line in invoke("logs", "sess-1", "--nl").splitlines()]
    assert len(lines) == 16 and lines[1]["message"] == "session started (startup)"  # usage read at the first hook
    errors = invoke("logs", "sess-1", "--type", "error", "--agent", "code-reviewer", "--csv").splitlines()
    assert len(errors) == 2 and "2 tests failed" in errors[1]
    found = json.loads(invoke("search", "tests failed", "--json"))
    assert [(f["kind"], f["agent_name"]) for f in found] == [("event", "code-reviewer")]
    by_model = json.loads(invoke("cost", "--by", "model", "--json"))
    assert [(r["model"], r["cost_usd"]) for r in by_model] == [("claude-sonnet-4-5-20250929", 0.0273),
                                                              ("claude-haiku-4-5-20251001", 0.00825)]
    table = invoke("cost", "--by", "session").splitlines()
    assert table[-1].split()[:2] == ["total", "2"] and table[-1].split()[-2:] == ["0.0355", "0"]


def settings_file(env: Path) -> Path:
    return env / ".claude" / "settings.local.json"


def install(env: Path, *args: str):
    old = os.getcwd()
    os.chdir(env)
    try:
        return CliRunner().invoke(cli, ["hook", *args])
    finally:
        os.chdir(old)


EXISTING = {
    "model": "opus",
    "permissions": {"allow": ["Bash(npm test)"]},
    "hooks": {
        "PostToolUse": [{"matcher": "Write|Edit", "hooks": [{"type": "command", "command": "prettier --write"}]}],
        "Notification": [{"hooks": [{"type": "command", "command": "notify-send claude"}]}],
    },
}


def test_install_merges_keeps_a_backup_and_uninstall_removes_only_ours(env):
    path = settings_file(env)
    path.parent.mkdir()
    path.write_text(json.dumps(EXISTING))
    result = install(env, "install", "--db", str(env / "m.db"))
    assert result.exit_code == 0, result.output
    assert f"to {path}" in result.output and "previous file kept as" in result.output
    settings = json.loads(path.read_text())
    assert settings["model"] == "opus" and settings["permissions"] == EXISTING["permissions"]
    assert settings["hooks"]["Notification"] == EXISTING["hooks"]["Notification"]
    post = settings["hooks"]["PostToolUse"]
    assert post[0] == EXISTING["hooks"]["PostToolUse"][0] and post[1]["matcher"] == "*"
    ours = post[1]["hooks"][0]
    assert ours["type"] == "command" and ours["command"].endswith(f"-m monitor.hooks --db {env / 'm.db'}")
    assert sorted(settings["hooks"]) == sorted(["Notification", "PostToolUse", "PreToolUse", "PostToolUseFailure",
                                                "SessionStart", "SessionEnd", "StopFailure", "SubagentStart", "SubagentStop",
                                                "Stop"])
    assert "matcher" not in settings["hooks"]["Stop"][0]
    backups = list(path.parent.glob("settings.local.json.*.bak"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == EXISTING

    assert install(env, "install", "--db", str(env / "m.db")).exit_code == 0  # again: no duplicates
    assert json.loads(path.read_text()) == settings

    result = install(env, "uninstall")
    assert result.exit_code == 0, result.output
    assert json.loads(path.read_text()) == EXISTING
    assert "nothing to remove" in install(env, "uninstall").output


def test_backups_made_in_the_same_second_never_overwrite_each_other(env):
    path = settings_file(env)
    path.parent.mkdir()
    path.write_text(json.dumps(EXISTING))
    same_second = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)
    first = hooks.install(path, "python -m monitor.hooks --db /a.db", now=same_second).backup
    second = hooks.install(path, "python -m monitor.hooks --db /b.db", now=same_second).backup
    third = hooks.uninstall(path, now=same_second.replace(microsecond=999_999)).backup
    assert [b.name for b in (first, second, third)] == [
        "settings.local.json.20261120T120000.bak", "settings.local.json.20261120T120000-2.bak",
        "settings.local.json.20261120T120000-3.bak"]
    assert json.loads(first.read_text()) == EXISTING and json.loads(path.read_text()) == EXISTING
    assert "/a.db" in second.read_text() and "/b.db" in third.read_text()


def test_project_install_keeps_machine_paths_out_of_the_shared_settings(env):
    shared = env / ".claude" / "settings.json"
    shared.parent.mkdir()
    shared.write_text(json.dumps(EXISTING))
    assert install(env, "install", "--project").exit_code == 0
    assert json.loads(shared.read_text()) == EXISTING
    assert hooks.is_ours(json.loads(settings_file(env).read_text())["hooks"]["Stop"][0]["hooks"][0]["command"])


def test_uninstall_also_removes_an_install_from_the_shared_project_settings(env):
    """monitor used to install into .claude/settings.json."""
    shared = env / ".claude" / "settings.json"
    shared.parent.mkdir()
    shared.write_text(json.dumps(EXISTING))
    hooks.install(shared, "python -m monitor.hooks --db /old.db")
    hooks.install(settings_file(env), "python -m monitor.hooks --db /new.db")
    result = install(env, "uninstall")
    assert result.exit_code == 0, result.output
    assert [line.split(" in ")[1].split(" (")[0] for line in result.output.splitlines()] == [
        str(settings_file(env)), str(shared)]
    assert json.loads(shared.read_text()) == EXISTING and json.loads(settings_file(env).read_text()) == {}
    assert install(env, "uninstall").output == (
        f"No monitor hook in {settings_file(env)} or {shared}: nothing to remove.\n")


@pytest.mark.parametrize("ignored", [False, True])
def test_install_says_when_git_would_not_ignore_the_local_settings(env, ignored):
    subprocess.run(["git", "init", "-q", str(env)], check=True)
    if ignored:
        (env / ".gitignore").write_text(".claude/settings.local.json\n")
    result = install(env, "install")
    assert result.exit_code == 0, result.output
    assert ("git does not ignore" in result.output) is not ignored


def installed_command(settings: Path) -> str:
    return json.loads(settings.read_text())["hooks"]["SessionStart"][0]["hooks"][0]["command"]


def test_installed_command_really_runs(env):
    install(env, "install", "--db", str(env / "m.db"))
    result = run_hook(env, payload(env, "session_start"), installed_command(settings_file(env)))
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert (env / "m.db").exists()


def test_install_without_settings_creates_them_and_uninstall_leaves_an_empty_object(env):
    assert install(env, "install").exit_code == 0
    assert str(env / "monitoring.db") in settings_file(env).read_text()
    assert install(env, "uninstall").exit_code == 0
    assert json.loads(settings_file(env).read_text()) == {}


# -- which database: --project pins the project's, --user each session's own project's -------------

USER_SETTINGS = "claude-home/settings.json"


def project(env: Path, name: str) -> Path:
    """A git project with a subfolder, as Claude Code may be running in either."""
    root = env / name
    (root / ".git").mkdir(parents=True)
    (root / "src").mkdir()
    return root


def sessions_in(db: Path) -> list[tuple[str, str]]:
    result = CliRunner().invoke(cli, ["list", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    return [(o["session_id"], o["task_description"]) for o in json.loads(result.output)]


@pytest.fixture
def user_install(env, monkeypatch):
    """`monitor hook install --user [ARGS]` run from an unrelated folder; returns the installed command."""
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(env / "claude-home"))
    elsewhere = env / "where-install-ran"
    elsewhere.mkdir()

    def run(*args: str) -> str:
        result = install(elsewhere, "install", "--user", *args)
        assert result.exit_code == 0, result.output
        return installed_command(env / USER_SETTINGS)

    return run


def test_a_user_install_records_each_session_in_its_own_projects_database(env, user_install):
    command = user_install()
    assert "--db" not in command
    alpha, beta = project(env, "alpha"), project(env, "beta")
    # Claude Code in alpha's subfolder and in beta; the hook process itself runs elsewhere.
    for cwd in (alpha / "src", beta):
        for name in ("session_start", "post_write"):
            result = run_hook(env, payload(env, name, cwd=cwd), command, cwd=env / "where-install-ran")
            assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert sessions_in(alpha / "monitoring.db") == [("sess-1", f"Claude Code session in {alpha / 'src'}")]
    assert sessions_in(beta / "monitoring.db") == [("sess-1", f"Claude Code session in {beta}")]
    assert sorted(p.name for p in env.rglob("monitoring.db")) == ["monitoring.db", "monitoring.db"]
    assert not (env / "hook.log").exists()


def test_a_user_install_honours_monitor_db_where_claude_code_runs(env, user_install):
    command = user_install()
    alpha = project(env, "alpha")
    run_hook(env, payload(env, "session_start", cwd=alpha), command, MONITOR_DB=str(env / "mine.db"))
    assert sessions_in(env / "mine.db") == [("sess-1", f"Claude Code session in {alpha}")]
    assert not (alpha / "monitoring.db").exists()


@pytest.mark.parametrize("how", ["--db", "MONITOR_DB"])
def test_a_user_install_pins_a_database_chosen_at_install_time(env, user_install, monkeypatch, how):
    chosen = env / "all-sessions.db"
    if how == "--db":
        command = user_install("--db", str(chosen))
    else:
        monkeypatch.setenv("MONITOR_DB", str(chosen))
        command = user_install()
    assert command.endswith(f"-m monitor.hooks --db {chosen}")
    alpha = project(env, "alpha")
    run_hook(env, payload(env, "session_start", cwd=alpha), command)
    assert sessions_in(chosen) == [("sess-1", f"Claude Code session in {alpha}")]
    assert not (alpha / "monitoring.db").exists()


def test_a_project_install_pins_the_projects_database_from_any_subfolder(env):
    alpha = project(env, "alpha")
    result = install(alpha / "src", "install")
    assert result.exit_code == 0, result.output
    assert f"Sessions will be recorded in {alpha / 'monitoring.db'};" in result.output
    command = installed_command(settings_file(alpha))
    assert command.endswith(f"-m monitor.hooks --db {alpha / 'monitoring.db'}")
    run_hook(env, payload(env, "session_start", cwd=alpha / "src"), command, cwd=env)
    assert sessions_in(alpha / "monitoring.db") == [("sess-1", f"Claude Code session in {alpha / 'src'}")]


def test_install_user_scope_honours_claude_config_dir(env, monkeypatch):
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(env / "claude-home"))
    assert install(env, "install", "--user").exit_code == 0
    assert (env / "claude-home" / "settings.json").exists() and not settings_file(env).exists()


def test_install_refuses_to_touch_broken_settings(env):
    path = settings_file(env)
    path.parent.mkdir()
    path.write_text("{ not json")
    result = install(env, "install")
    assert result.exit_code == 2 and "not valid JSON" in result.output
    assert path.read_text() == "{ not json" and not list(path.parent.glob("*.bak"))


@pytest.mark.slow
def test_parallel_subagents_hooking_at_once_lose_nothing(env):
    """Claude Code runs subagents in parallel: their hook processes write the same file at once."""
    db = env / "m.db"
    run_hook(env, payload(env, "session_start"), COMMANDS["python -m monitor.hooks"](db))
    script = (
        "import json, subprocess, sys\n"
        "agent, count, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]\n"
        "for i in range(count):\n"
        "    p = {'session_id': 'sess-1', 'hook_event_name': 'PostToolUse', 'agent_id': agent,\n"
        "         'agent_type': 'worker', 'tool_name': 'Write', 'tool_use_id': f'{agent}-{i}',\n"
        "         'tool_input': {'file_path': f'/src/{agent}/{i}.py'}, 'tool_response': {'type': 'create'}}\n"
        "    subprocess.run([sys.executable, '-m', 'monitor.hooks', '--db', db], input=json.dumps(p).encode(),\n"
        "                   check=True)\n"
    )
    environment = {**os.environ, "MONITOR_HOOK_LOG": str(env / "hook.log")}
    procs = [subprocess.Popen([sys.executable, "-c", script, f"agent-{n}", "6", str(db)], env=environment)
             for n in range(4)]
    assert [p.wait(timeout=240) for p in procs] == [0, 0, 0, 0]
    result = CliRunner().invoke(cli, ["executions", "sess-1", "--json", "--db", str(db)])
    rows = json.loads(result.output)
    assert sorted((r["agent_name"], r["task_id"], r["files_created"]) for r in rows) == [
        ("claude-code", None, 0), *[("worker", f"agent-{n}", 6) for n in range(4)]]
    assert not (env / "hook.log").exists()


def test_install_from_a_subfolder_writes_the_project_settings(env):
    (env / ".git").mkdir()
    (env / "src" / "deep").mkdir(parents=True)
    assert install(env / "src" / "deep", "install", "--db", str(env / "m.db")).exit_code == 0
    assert settings_file(env).exists() and not (env / "src" / "deep" / ".claude").exists()


def test_install_never_mistakes_the_home_folder_for_the_project(env, monkeypatch):
    monkeypatch.setenv("HOME", str(env))
    (env / ".claude").mkdir()
    (env / "project").mkdir()
    assert install(env / "project", "install").exit_code == 0
    assert settings_file(env / "project").exists() and not settings_file(env).exists()
