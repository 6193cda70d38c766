"""Who this process is, and whether another one is still there.

`monitor run` stores its own identity on the execution it records; a later command on the same
host compares it with the process table to tell that the run was killed. The identity is the pid,
the host name, and the moment the process started (on Linux: the boot id and the start time in
clock ticks from /proc), so that a pid reused by another process does not pass for the run.
"""

from __future__ import annotations

import os
from typing import NamedTuple


class ProcessIdentity(NamedTuple):
    pid: int
    host: str
    start: str | None  # None where the start time cannot be read (no /proc)


def host_name() -> str:
    return os.uname().nodename


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) from /proc/PID/stat; None without one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # the command name, in parentheses, may hold spaces
    return (fields[0], fields[19]) if len(fields) > 19 else None


def start_of(pid: int) -> str | None:
    """When process pid started, as 'BOOT_ID:TICKS'; None when it cannot be told."""
    boot, stat = _boot_id(), _stat(pid)
    return f"{boot}:{stat[1]}" if boot and stat else None


def this_process() -> ProcessIdentity:
    pid = os.getpid()
    return ProcessIdentity(pid, host_name(), start_of(pid))


def is_gone(identity: ProcessIdentity) -> bool:
    """Whether the process is certainly no longer running: on this host, its pid is free, a zombie,
    or now another process's (its start differs). A process on another host is never judged."""
    if identity.host != host_name():
        return False
    stat = _stat(identity.pid)
    if stat is not None:
        return stat[0] == "Z" or (identity.start is not None and start_of(identity.pid) != identity.start)
    try:
        os.kill(identity.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False
