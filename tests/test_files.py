"""Files monitor writes: through a unique temporary file, never following a planted link, owner-only
when new (whatever the umask), keeping an existing file's mode, updating a symlink's target."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from monitor import Tracker, open_db
from monitor.capture.claude import settings as hooks
from monitor.ops.export import export_to_file

MONITOR = Path(sys.executable).with_name("monitor")


@pytest.fixture(autouse=True)
def umask022():
    """The usual umask, under which a file made without care is readable by everyone (0644)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def project(tmp_path: Path) -> Path:
    """A cloned repository: a git work tree with a .claude folder."""
    repo = tmp_path / "repo"
    (repo / ".claude").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def install(repo: Path, *args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HOME": str(repo.parent)}
    environment.pop("MONITOR_DB", None)
    return subprocess.run([str(MONITOR), "hook", "install", "--db", str(repo / "m.db"), *args], cwd=repo,
                          env=environment, capture_output=True, text=True, timeout=60)


def test_install_never_writes_through_a_link_planted_at_a_temporary_name(tmp_path):
    repo = project(tmp_path)
    outside = tmp_path / "victim.txt"
    outside.write_text("keep me\n")
    (repo / ".claude" / "settings.local.json.tmp").symlink_to(outside)
    result = install(repo)
    assert result.returncode == 0, result.stderr
    assert outside.read_text() == "keep me\n"
    assert "hooks" in json.loads((repo / ".claude" / "settings.local.json").read_text())
    assert sorted(p.name for p in (repo / ".claude").iterdir()) == ["settings.local.json", "settings.local.json.tmp"]


def test_a_settings_file_keeps_its_mode_and_so_does_its_backup(tmp_path):
    repo = project(tmp_path)
    path = repo / ".claude" / "settings.local.json"
    path.write_text('{"model": "opus"}\n')
    path.chmod(0o600)
    change = hooks.install(path, "python -m monitor.hooks --db /m.db")
    assert (mode(path), mode(change.backup)) == (0o600, 0o600)
    path.chmod(0o640)
    hooks.uninstall(path)
    assert mode(path) == 0o640


def test_new_settings_are_readable_by_their_owner_only(tmp_path):
    path = project(tmp_path) / ".claude" / "settings.local.json"
    hooks.install(path, "python -m monitor.hooks --db /m.db")
    assert mode(path) == 0o600


def test_a_settings_file_that_is_a_symlink_is_updated_at_its_target(tmp_path):
    repo = project(tmp_path)
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "claude-settings.json"
    target.write_text('{"model": "opus"}\n')
    target.chmod(0o644)
    link = repo / ".claude" / "settings.local.json"
    link.symlink_to(target)
    hooks.install(link, "python -m monitor.hooks --db /m.db")
    assert link.is_symlink() and os.readlink(link) == str(target)
    settings = json.loads(target.read_text())
    assert settings["model"] == "opus" and "PreToolUse" in settings["hooks"]
    assert mode(target) == 0o644
    assert sorted(p.name for p in dotfiles.iterdir()) == ["claude-settings.json"]  # no temporary file left


def test_an_export_is_owner_only_when_new_and_keeps_an_existing_files_mode(tmp_path, db_path):
    Tracker(db_path).close()
    new = tmp_path / "new.json"
    with open_db(db_path) as db:
        export_to_file(db, new)
        assert mode(new) == 0o600
        shared = tmp_path / "shared.json"
        shared.write_text("old")
        shared.chmod(0o644)
        export_to_file(db, shared)
        assert mode(shared) == 0o644 and json.loads(shared.read_text())["orchestrations"] == []
        target = tmp_path / "elsewhere.json"
        link = tmp_path / "link.json"
        link.symlink_to(target)
        export_to_file(db, link)
        assert link.is_symlink() and json.loads(target.read_text())["orchestrations"] == []


def test_a_new_database_and_its_wal_and_shm_are_owner_only(tmp_path):
    db = tmp_path / "monitoring.db"
    result = subprocess.run([str(MONITOR), "run", "--db", str(db), "--agent", "a", "--", sys.executable, "-c", "pass"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with open_db(db):  # open: the -wal and -shm files exist
        assert {p.name: mode(p) for p in tmp_path.iterdir()} == {
            "monitoring.db": 0o600, "monitoring.db-wal": 0o600, "monitoring.db-shm": 0o600}


def test_an_existing_database_keeps_its_mode(tmp_path):
    db = tmp_path / "monitoring.db"
    Tracker(db).close()
    db.chmod(0o644)
    with Tracker(db) as t:
        t.start_orchestration("s1")
        assert {p.name: mode(p) for p in tmp_path.iterdir()} == {
            "monitoring.db": 0o644, "monitoring.db-wal": 0o644, "monitoring.db-shm": 0o644}


def test_check_reports_are_written_atomically_and_owner_only(tmp_path):
    db = tmp_path / "m.db"
    Tracker(db).close()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (tmp_path / ".check.md.tmp").symlink_to(victim)
    result = subprocess.run([str(MONITOR), "check", "--db", str(db), "--markdown", str(tmp_path / "check.md"),
                             "--junit", str(tmp_path / "check.xml")], capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"})
    assert result.returncode == 0, result.stderr
    assert (mode(tmp_path / "check.md"), mode(tmp_path / "check.xml")) == (0o600, 0o600)
    assert victim.read_text() == "keep me\n" and "<testsuite" in (tmp_path / "check.xml").read_text()


def hook(tmp_path: Path, log: Path, data: bytes = b"not json") -> subprocess.CompletedProcess:
    environment = {**os.environ, "MONITOR_HOOK_LOG": str(log), "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "monitor.hooks", "--db", str(tmp_path / "m.db")], input=data,
                          capture_output=True, env=environment, timeout=30)


def test_the_hook_log_and_its_folder_are_owner_only(tmp_path):
    log = tmp_path / "home" / ".monitor" / "hook.log"
    assert hook(tmp_path, log).returncode == 0
    assert "payload is not JSON" in log.read_text()
    assert (mode(log.parent), mode(log)) == (0o700, 0o600)


def test_the_hook_log_never_follows_a_planted_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    log = tmp_path / "hook.log"
    log.symlink_to(victim)
    assert hook(tmp_path, log).returncode == 0
    assert victim.read_text() == "keep me\n" and log.is_symlink()


def test_a_fifo_at_the_hook_logs_place_does_not_hang_the_hook(tmp_path):
    log = tmp_path / "hook.log"
    os.mkfifo(log)
    assert hook(tmp_path, log).returncode == 0  # no reader: opening it to write would block forever


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    from monitor.store.files import atomic_write

    path = tmp_path / "data.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write("half of the new")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_appending_refuses_links_and_what_is_not_a_file(tmp_path):
    from monitor.store.files import open_append

    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(OSError):
        open_append(tmp_path / "link")
    assert not (tmp_path / "target").exists()
    with pytest.raises(OSError):
        open_append("/dev/null")
    with open_append(tmp_path / "spool") as f:
        f.write(b"one\n")
    with open_append(tmp_path / "spool") as f:
        f.write(b"two\n")
    assert (tmp_path / "spool").read_bytes() == b"one\ntwo\n" and mode(tmp_path / "spool") == 0o600
