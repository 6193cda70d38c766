"""The README documents every command the CLI has, and gives the two set-up commands CI runs."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def command_names(group: click.Group, prefix: str = "monitor") -> list[str]:
    names = []
    for name, command in group.commands.items():
        names.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            names.extend(command_names(command, f"{prefix} {name}"))
    return names


def test_every_command_is_in_the_readme():
    missing = [name for name in command_names(cli) if f"`{name}" not in README]
    assert missing == []


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = next(line for line in README.splitlines() if "pytest" in line and line.startswith("python3 -m venv"))
    assert test_command in ci
    assert test_command.index("-m mypy monitor") < test_command.index("-m pytest")  # types first, then tests
