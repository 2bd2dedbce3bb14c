"""Ends the micros of a runtime that died: reads their process groups from a pipe until EOF.

The runtime starts this script by path (`python watchdog.py GRACE`) in a session of its own and
keeps the write end of its stdin. It writes `+PGID START` when a micro's process group starts
(START: the group leader's start time, `system.start_time`) and `-PGID` when the group
has ended. When the pipe reaches EOF the runtime is gone, however it went (SIGKILL, the OOM
killer, a closed terminal): every group still listed gets SIGTERM, then SIGKILL after GRACE
seconds. A clean stop removes every group first, so the script just exits.

It imports nothing but the standard library and `runtime.system` (itself stdlib only), and the
runtime imports `members` and `end_groups` from it, so the two agree on what "the same process
group" means.
"""

from __future__ import annotations

import os
import signal
import sys
import time

if __name__ == "__main__" and not __package__:
    # Started by path: the folder holding the package is not on sys.path yet.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from runtime import system  # noqa: E402

_POLL_S = 0.05


# --- which groups are still ours ------------------------------------------------------------


def members(groups: dict[int, int]) -> dict[int, list[int]]:
    """The live processes of each group that is still the one recorded, by group id.

    A group is ours while its leader (pid == pgid) has the recorded start time. With the leader
    gone, its members are those of that pgrp that started no earlier than the leader did: a
    group id is only reused once every member of the old group has gone, so an older member
    cannot be ours. A leader with another start time means the id was reused: not ours.
    Zombies are left out: they are already dead and only wait for their parent.
    Where the process table cannot be read (no /proc), a group with any member stands for
    itself (its id in place of its members' pids): start times cannot be checked there.
    """
    table = system.processes()
    if table is None:
        return {g: [g] if system.group_alive(g) else [] for g in groups}
    found: dict[int, list[int]] = {g: [] for g in groups}
    leader_seen: dict[int, bool] = {}
    for proc in table:
        if proc.pgrp not in groups:
            continue
        if proc.pid == proc.pgrp:
            leader_seen[proc.pgrp] = proc.start == groups[proc.pgrp]
        if not proc.zombie and proc.start >= groups[proc.pgrp]:
            found[proc.pgrp].append(proc.pid)
    for pgrp, ours in leader_seen.items():
        if not ours:
            found[pgrp] = []
    return found


def signal_members(found: dict[int, list[int]], groups: dict[int, int], sig: int) -> None:
    """Send `sig` to each group found: to the whole group while its leader is the recorded one
    (or where members cannot be told apart: no /proc), else to each member that is ours."""
    whole_groups = not system.has_proc()
    for pgid, pids in found.items():
        if not pids:
            continue
        try:
            if whole_groups or system.same_process(pgid, groups[pgid]):
                os.killpg(pgid, sig)
                continue
        except (ProcessLookupError, PermissionError):
            pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def end_groups(groups: dict[int, int], grace: float) -> int:
    """SIGTERM to every group still ours, SIGKILL to what is left after `grace` seconds.

    Returns how many groups had live processes.
    """
    found = members(groups)
    alive = {g: p for g, p in found.items() if p}
    if not alive:
        return 0
    signal_members(alive, groups, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        time.sleep(_POLL_S)
        left = {g: p for g, p in members(groups).items() if p}
        if not left:
            return len(alive)
    signal_members(members(groups), groups, signal.SIGKILL)
    return len(alive)


# --- the watchdog ----------------------------------------------------------------------------


def _say(text: str) -> None:
    try:
        os.write(2, f"space-dev | {text}\n".encode())
    except OSError:
        pass  # no terminal any more (it was closed): nobody to tell


def watch(fd: int) -> dict[int, int]:
    """Read `+PGID START` / `-PGID` lines from `fd` until EOF; the groups still listed."""
    groups: dict[int, int] = {}
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            return groups
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            parts = line.split()
            try:
                if line.startswith(b"+") and len(parts) == 2:
                    groups[int(parts[0][1:])] = int(parts[1])
                elif line.startswith(b"-"):
                    groups.pop(int(parts[0][1:]), None)
            except ValueError:
                continue  # not a line of ours: ignore it rather than die and protect nothing


def main(argv: list[str]) -> int:
    grace = float(argv[1]) if len(argv) > 1 else 5.0
    # Its own session has no terminal, but a Ctrl-C aimed at a shell's job or a SIGHUP sent to
    # a session by hand must not take the watchdog before the runtime it guards.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    groups = watch(0)
    if not groups:
        return 0  # a clean stop: the runtime ended its micros itself
    ended = end_groups(groups, grace)
    if ended:
        _say(
            f"the runtime stopped without ending its micros: ended {ended} process "
            f"group{'s' if ended != 1 else ''} it had started"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
