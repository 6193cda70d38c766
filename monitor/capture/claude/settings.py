"""Claude Code's settings files: add monitor's hooks to them, and take them out again."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from datetime import datetime
from pathlib import Path

from monitor.capture.claude.hook import HOOK_EVENTS, HOOK_TIMEOUT_S, TOOL_EVENTS, project_root
from monitor.errors import InvalidInput
from monitor.store.db import DEFAULT_PATH
from monitor.store.files import write_atomic, write_new
from monitor.timeutil import utcnow

#: Our command in settings.json: `monitor hook ...` or `python -m monitor.hooks ...`.
_OURS = re.compile(r"\bmonitor(['\"]?\s+hook\b|\.hooks\b)")


class SettingsChange:
    """What install() or uninstall() did to a settings file."""

    def __init__(self, path: Path, backup: Path | None, events: list[str], command: str) -> None:
        self.path, self.backup, self.events, self.command = path, backup, events, command
        #: For a project file: False when git would not ignore it (it holds this machine's paths).
        self.git_ignored: bool | None = None


def hook_command(db_path: str | os.PathLike[str] | None) -> str:
    """The command Claude Code runs: this Python, monitor's hook module (it starts faster than the
    `monitor hook` command, which loads the whole CLI), and the database as an absolute path, or
    none: then each payload goes to its own project's database (hook.session_db_path())."""
    import shlex

    db = ["--db", str(Path(db_path).resolve())] if db_path is not None else []
    return shlex.join([sys.executable, "-m", "monitor.hooks", *db])


def installed_db_path(user: bool, chosen: str | os.PathLike[str] | None,
                      project_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The database an install pins in the hook command: the one chosen (--db or $MONITOR_DB at
    install time), else for a project its monitoring.db at the top of the project, else (--user)
    none, so that no project's sessions go to the folder the install happened to run in."""
    if chosen:
        return Path(chosen).resolve()
    if user:
        return None
    return project_root(Path(project_dir or Path.cwd())) / DEFAULT_PATH


def settings_path(user: bool, project_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where install() writes: ~/.claude/settings.json (or $CLAUDE_CONFIG_DIR's), or the project's
    .claude/settings.local.json, Claude Code's settings file for this machine only (the hook
    command holds this machine's paths: .claude/settings.json is shared with the team). The
    project is hook.project_root() of project_dir (default: here)."""
    if user:
        return Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude") / "settings.json"
    return project_root(Path(project_dir or Path.cwd())) / ".claude" / "settings.local.json"


def settings_paths(user: bool, project_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where uninstall() looks: settings_path(), and for a project also its .claude/settings.json
    (where monitor installed before it used settings.local.json)."""
    path = settings_path(user, project_dir)
    return [path] if user else [path, path.with_name("settings.json")]


def git_ignored(path: Path) -> bool | None:
    """Whether git ignores path; None outside a git work tree or without git."""
    import subprocess

    try:
        result = subprocess.run(["git", "check-ignore", "-q", "--", path.name], cwd=path.parent,
                                capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: True, 1: False}.get(result.returncode)


def is_ours(command: object) -> bool:
    return isinstance(command, str) and bool(_OURS.search(command))


def _load_settings(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not valid JSON ({exc}): fix it first; nothing was changed") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("hooks", {}), dict):
        raise InvalidInput(f"{path} does not hold a settings object with a 'hooks' object; nothing was changed")
    return settings


def _backup(path: Path, now: datetime) -> Path:
    """Copy path to path.<time>.bak next to it, with its mode, never over an earlier backup (nor
    through a link planted there): a second one in the same second is path.<time>-2.bak, and so on."""
    data = path.read_bytes()
    mode = stat.S_IMODE(path.stat().st_mode)
    stamp = now.strftime("%Y%m%dT%H%M%S")
    for n in range(1, 10_000):
        backup = path.with_name(f"{path.name}.{stamp}{f'-{n}' if n > 1 else ''}.bak")
        try:
            write_new(backup, data, mode)  # fails if it exists, even when made just now by another process
        except FileExistsError:
            continue
        return backup
    raise InvalidInput(f"too many backups of {path} made at {stamp}: remove some; nothing was changed")


def _write_settings(path: Path, settings: dict, now: datetime) -> Path | None:
    """Back up path, then replace it atomically (a symlink's target is written; its mode kept)."""
    backup = _backup(path, now) if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(settings, indent=2, ensure_ascii=False) + "\n")
    return backup


def _without_ours(groups: object) -> list:
    """The event's matcher groups with our commands removed (and groups left empty dropped)."""
    kept = []
    for group in groups if isinstance(groups, list) else []:
        if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
            kept.append(group)
            continue
        hooks = [h for h in group["hooks"] if not (isinstance(h, dict) and is_ours(h.get("command")))]
        if hooks:
            kept.append({**group, "hooks": hooks})
        elif not group["hooks"]:
            kept.append(group)
    return kept


def install(path: Path, command: str, now: datetime | None = None) -> SettingsChange:
    """Add our hook to every event in the settings file at path, keeping everything else as it
    is (a copy of the old file is kept next to it). Installing again replaces our entries."""
    settings = _load_settings(path)
    hooks = settings.setdefault("hooks", {})
    for event in HOOK_EVENTS:
        group: dict = {"matcher": "*"} if event in TOOL_EVENTS else {}
        group["hooks"] = [{"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}]
        hooks[event] = [*_without_ours(hooks.get(event)), group]
    backup = _write_settings(path, settings, now or utcnow())
    change = SettingsChange(path, backup, list(HOOK_EVENTS), command)
    if path.name == "settings.local.json":
        change.git_ignored = git_ignored(path)
    return change


def uninstall(path: Path, now: datetime | None = None) -> SettingsChange:
    """Remove our hook entries, and only ours, from the settings file at path."""
    settings = _load_settings(path)
    hooks = settings.get("hooks", {})
    removed = []
    for event in list(hooks):
        kept = _without_ours(hooks[event])
        if kept != hooks[event]:
            removed.append(event)
            if kept:
                hooks[event] = kept
            else:
                del hooks[event]
    if not removed:
        return SettingsChange(path, None, [], "")
    if not hooks:
        del settings["hooks"]
    backup = _write_settings(path, settings, now or utcnow())
    return SettingsChange(path, backup, removed, "")
