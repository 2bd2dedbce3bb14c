"""What the runtime asks the operating system about processes, sockets and its own memory.

Linux answers through `/proc` and `CLOCK_BOOTTIME`; elsewhere (macOS, the BSDs) each function
gives a portable answer or says it cannot know (None, an empty set, False), and its caller says
what is then not done. This is the one module that reads `/proc`.

It imports nothing but the standard library: the watchdog script, started by path, imports it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

# Where the kernel's process table is; tests point it at a folder that does not exist to run
# the runtime as it runs where there is no /proc.
PROC = Path("/proc")
# The clock /proc's start times count from (absent outside Linux); tests set it to None.
BOOT_CLOCK: int | None = getattr(time, "CLOCK_BOOTTIME", None)

# Fields of /proc/PID/stat, counted from 1 as proc(5) does.
_STATE, _PGRP, _START, _ENV_START, _ENV_END = 3, 5, 22, 50, 51
_FIRST = 3  # the first field after the command name


def has_proc() -> bool:
    """Whether this system has Linux's /proc to read."""
    return (PROC / "self" / "stat").exists()


# --- processes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessEntry:
    """One process of the kernel's table."""

    pid: int
    pgrp: int
    start: int  # clock ticks since boot
    zombie: bool


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (index 0 is field 3, the state)."""
    try:
        with open(PROC / str(pid) / "stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: it ends at the last ")".
    fields = raw.rsplit(b")", 1)[-1].split()
    return fields if len(fields) > _START - _FIRST else None


def _entry(pid: int | str) -> ProcessEntry | None:
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return ProcessEntry(
        int(pid),
        int(fields[_PGRP - _FIRST]),
        int(fields[_START - _FIRST]),
        fields[_STATE - _FIRST] == b"Z",
    )


def process(pid: int) -> ProcessEntry | None:
    """The process `pid`, or None when it is gone or this system cannot say (no /proc)."""
    return _entry(pid)


def processes() -> list[ProcessEntry] | None:
    """Every process this user can see, or None when this system has no table to read."""
    try:
        entries = os.listdir(PROC)
    except OSError:
        return None
    found = []
    for name in entries:
        if name.isdigit() and (entry := _entry(name)) is not None:
            found.append(entry)
    return found


def start_time(pid: int) -> int | None:
    """When the process started, in clock ticks since boot; None when gone or unknown here."""
    entry = _entry(pid)
    return entry.start if entry else None


def ticks_since_boot() -> int:
    """Now, in the clock ticks start times count in. Without CLOCK_BOOTTIME the monotonic clock
    stands in: only compared with start times this system cannot give anyway."""
    now = time.clock_gettime(BOOT_CLOCK) if BOOT_CLOCK is not None else time.monotonic()
    return int(now * os.sysconf("SC_CLK_TCK"))


def boot_id() -> str:
    """This boot's id (pids and start times from another boot mean nothing); "" when unknown."""
    try:
        return (PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """Whether some process has this pid (maybe another than the one meant, after reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, another user's
    return True


def same_process(pid: int, start: int | None) -> bool:
    """Whether `pid` is still the process that started at `start`. Where start times are not
    known (no /proc), whether the pid lives: a reused pid cannot be told apart there."""
    if start is None or not has_proc():
        return pid_alive(pid)
    entry = _entry(pid)
    return entry is not None and not entry.zombie and entry.start == start


def group_alive(pgid: int) -> bool:
    """Whether process group `pgid` has a member (a zombie counts where there is no /proc)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    table = processes()
    if table is None:
        return True
    return any(p.pgrp == pgid and not p.zombie for p in table)


# --- sockets ---------------------------------------------------------------------------------


def socket_table(version: int) -> str | None:
    """The kernel's table of TCP sockets for IPv4 (4) or IPv6 (6), or None where unreadable."""
    try:
        return (PROC / "net" / ("tcp6" if version == 6 else "tcp")).read_text()
    except OSError:
        return None


def has_socket_tables() -> bool:
    """Whether this system lets us see which ports a process listens on (Linux)."""
    return (PROC / "net" / "tcp").exists()


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process `pid` holds open (empty when gone or unknown here)."""
    fd_dir = PROC / str(pid) / "fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return set()
    inodes = set()
    for fd in fds:
        try:
            link = os.readlink(fd_dir / fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


# --- this process's own start environment ----------------------------------------------------


def blank_in_start_environment(name: str) -> bool:
    """Overwrite the value of `name` in the environment block this process started with (which
    `/proc/PID/environ` shows other processes of the user), through `/proc/self/mem`, which a
    process may always write for itself. False where there is no /proc: the block stays.
    OSError when the kernel refuses."""
    if not has_proc():
        return False
    start, end = _environment_block()
    prefix = name.encode() + b"="
    with open(PROC / "self" / "mem", "r+b", buffering=0) as mem:
        mem.seek(start)
        block = mem.read(end - start)
        offset = 0
        for entry in block.split(b"\0"):
            if entry.startswith(prefix):
                mem.seek(start + offset + len(prefix))
                mem.write(b"\0" * (len(entry) - len(prefix)))
            offset += len(entry) + 1
    return True


def _environment_block() -> tuple[int, int]:
    with open(PROC / "self" / "stat", "rb") as stat:
        text = stat.read()
    fields = text[text.rindex(b")") + 2 :].split()
    return int(fields[_ENV_START - _FIRST]), int(fields[_ENV_END - _FIRST])
