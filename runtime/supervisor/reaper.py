"""The process groups this runtime started, so none outlives it: fed to the watchdog, recorded in
the data dir for the next `up`, and killed at once when a stop cannot wait."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime import system
from runtime.datadir.datafile import DataFile
from runtime.errors import SpaceDevError
from runtime.supervisor import watchdog

Notify = Callable[[str], None]
WATCHDOG_SCRIPT = Path(watchdog.__file__).resolve()


def this_process() -> dict[str, Any]:
    """Who this process is, in a form that survives pid reuse: pid, start time, boot."""
    pid = os.getpid()
    return {"pid": pid, "start": system.start_time(pid), "boot": system.boot_id()}


def still_running(who: object) -> bool:
    """Whether a recorded process (`this_process()` of some earlier moment) still runs.

    Where start times are unknown (no /proc: recorded as None), a live pid counts as still
    running, as nothing else can be known there.
    """
    if not isinstance(who, dict) or who.get("boot") != system.boot_id():
        return False
    pid, start = who.get("pid"), who.get("start")
    if not isinstance(pid, int) or not (start is None or isinstance(start, int)):
        return False
    return system.same_process(pid, start)


class Reaper:
    """The live process groups of this runtime's micros and `commands`, by group id.

    Mutations hold a lock (the feed and the record must see them in order); `kill_all` takes
    no lock and only reads a copy, so a signal handler may call it whatever the main thread
    was doing.
    """

    def __init__(self) -> None:
        self._groups: dict[int, int] = {}  # pgid -> the leader's start time
        self._leaderless: set[int] = set()  # leader exited; members may remain
        self._lock = threading.Lock()
        self._feed: int | None = None  # write end of the watchdog's stdin
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._record: Callable[[dict[str, Any]], None] | None = None
        self._notify: Notify = lambda _: None
        self._base: dict[str, Any] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closing = False

    # --- the hooks the supervisor calls ------------------------------------------------------

    def track(self, pgid: int) -> None:
        """A process group started (its leader's pid is its id)."""
        start = system.start_time(pgid)
        if start is None:
            # The leader already exited and was reaped (or this system has no start times):
            # members it left can only be younger than this moment (less a tick for rounding).
            start = system.ticks_since_boot() - 1
        with self._lock:
            self._groups[pgid] = start
            self._leaderless.discard(pgid)
            self._send(f"+{pgid} {start}\n")
        self._wake.set()

    def untrack(self, pgid: int) -> None:
        """A process group has ended (killed and waited for)."""
        with self._lock:
            if self._groups.pop(pgid, None) is not None:
                self._send(f"-{pgid}\n")
            self._leaderless.discard(pgid)
        self._wake.set()

    def leader_exited(self, pgid: int) -> None:
        """The group's leader exited on its own: forget the group once no member is left."""
        with self._lock:
            if pgid in self._groups:
                self._leaderless.add(pgid)
        self._wake.set()

    def groups(self) -> dict[int, int]:
        """The groups tracked now, pgid -> leader start time."""
        return self._groups.copy()

    # --- ending them ------------------------------------------------------------------------

    def kill_all(self) -> None:
        """SIGKILL every tracked group now. Safe in a signal handler or another thread."""
        groups = self._groups.copy()  # one C-level copy: no lock, no iteration of a live dict
        if groups:
            watchdog.signal_members(watchdog.members(groups), groups, signal.SIGKILL)

    def end_all(self, grace: float, *, leaderless_only: bool = False) -> int:
        """SIGTERM to every group still tracked (or only those whose leader exited: what a micro
        left behind), SIGKILL after `grace`; returns how many had processes left."""
        groups = self.groups()
        if leaderless_only:
            groups = {g: s for g, s in groups.items() if g in self._leaderless}
        ended = watchdog.end_groups(groups, grace) if groups else 0
        for pgid in groups:
            self.untrack(pgid)
        return ended

    # --- the watchdog and the record ---------------------------------------------------------

    def start(
        self, grace: float, record: Callable[[dict[str, Any]], None] | None, notify: Notify
    ) -> None:
        """Start the watchdog, and keep `record(...)` told of the groups (off the event loop)."""
        if self._thread is not None:
            return
        self._notify, self._record, self._closing = notify, record, False
        self._base = this_process()
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, str(WATCHDOG_SCRIPT), f"{grace:g}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                cwd="/",  # holds no folder of the user's busy
                # Its own session: a SIGKILL to the runtime's process group, or the terminal's
                # Ctrl-C and SIGHUP, must not reach it.
                start_new_session=True,
            )
        except OSError as err:
            notify(
                f"cannot start the watchdog ({err.strerror or err}): if this runtime is "
                "killed, its micros keep running until the next `space-dev up` ends them"
            )
        else:
            assert self._watchdog.stdin is not None
            self._feed = self._watchdog.stdin.fileno()
            with self._lock:
                for pgid, start in self._groups.items():  # any tracked before the watchdog
                    self._send(f"+{pgid} {start}\n")
        self._thread = threading.Thread(target=self._keep_record, name="reaper", daemon=True)
        self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Let the watchdog go (every group should be untracked by now) and stop recording."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        proc, self._watchdog, self._feed = self._watchdog, None, None
        if proc is not None:
            assert proc.stdin is not None
            with contextlib.suppress(OSError):
                proc.stdin.close()  # EOF: with no group listed, it exits at once
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def record(self) -> dict[str, Any]:
        """What the data dir keeps: this runtime, its watchdog, its groups."""
        out: dict[str, Any] = {"runtime": self._base, "groups": sorted(self.groups().items())}
        proc = self._watchdog
        if proc is not None:
            out["watchdog"] = {
                "pid": proc.pid,
                "start": system.start_time(proc.pid),
                "boot": self._base.get("boot"),
            }
        return out

    def _send(self, line: str) -> None:
        """Tell the watchdog (the caller holds the lock, so lines keep their order)."""
        if self._feed is None:
            return
        try:
            os.write(self._feed, line.encode())
        except OSError:
            self._feed = None
            self._notify(
                "the watchdog has gone: if this runtime is killed, its micros keep "
                "running until the next `space-dev up` ends them"
            )

    def _keep_record(self) -> None:
        """Forget groups that emptied, and rewrite the record when the groups changed."""
        written: object = None
        while True:
            self._wake.wait()
            self._wake.clear()
            self._prune()
            if self._closing:
                return
            current = self.record()
            if current != written and self._record is not None:
                try:
                    self._record(current)
                    written = current
                except (OSError, SpaceDevError) as err:
                    self._notify(
                        f"cannot record the micros' processes in the data dir ({err}); "
                        "the watchdog still ends them if this runtime dies"
                    )
                    self._record = None

    def _prune(self) -> None:
        with self._lock:
            leaderless = {g: self._groups[g] for g in self._leaderless if g in self._groups}
        if not leaderless:
            return
        found = watchdog.members(leaderless)
        with self._lock:
            for pgid, start in leaderless.items():
                # Unless the id was tracked anew meanwhile (a new group reusing it).
                if not found[pgid] and self._groups.get(pgid) == start:
                    del self._groups[pgid]
                    self._leaderless.discard(pgid)
                    self._send(f"-{pgid}\n")


REAPER = Reaper()  # one per process: the supervisor's hooks and the signal handlers share it


def track(pgid: int) -> None:
    """A process group started: see Reaper.track."""
    REAPER.track(pgid)


def untrack(pgid: int) -> None:
    """A process group ended: see Reaper.untrack."""
    REAPER.untrack(pgid)


def leader_exited(pgid: int) -> None:
    """A group's leader exited on its own: see Reaper.leader_exited."""
    REAPER.leader_exited(pgid)


# --- the data dir's record: one runtime per data dir, leftovers of a dead one ended ----------


def claim(data: DataFile, grace: float, notify: Notify) -> None:
    """Make this process the data dir's runtime, start the watchdog and keep the record.

    If the recorded runtime still runs, a SpaceDevError. If it died without ending its
    micros (and its watchdog did not either), its groups are ended first, so their ports
    are free again before this runtime binds its own.
    """
    previous = data.claim_processes(this_process(), lambda rec: still_running(rec.get("runtime")))
    if previous is not None and still_running(previous.get("runtime")):
        pid = previous["runtime"]["pid"]
        raise SpaceDevError(
            f"space-dev up is already running (pid {pid}) with the data dir {data.data_dir}",
            f"stop it first (Ctrl-C in its terminal, or `kill {pid}`), or give this one "
            "another --data-dir",
        )
    if previous is not None:
        ended = end_recorded(previous, grace)
        if ended:
            old = previous.get("runtime", {}).get("pid")
            notify(
                f"ended {ended} process group{'s' if ended != 1 else ''} left running by a "
                f"previous space-dev up (pid {old}) that did not stop cleanly"
            )
    REAPER.start(grace, data.write_processes, notify)


def end_recorded(record: dict[str, Any], grace: float) -> int:
    """End the groups of a dead runtime's record that are still the same groups.

    Not where this system cannot tell a boot or a process's start time (no /proc): a group id
    recorded before a crash may by now be another program's, which is left alone.
    """
    if not system.has_proc():
        return 0
    runtime = record.get("runtime")
    if not isinstance(runtime, dict) or runtime.get("boot") != system.boot_id():
        return 0  # another boot: every process of that run is long gone
    groups: dict[int, int] = {}
    for entry in record.get("groups") or ():
        if (
            isinstance(entry, list)
            and len(entry) == 2
            and all(isinstance(v, int) and v > 0 for v in entry)
        ):
            groups[entry[0]] = entry[1]
    return watchdog.end_groups(groups, grace) if groups else 0


def release(data: DataFile) -> None:
    """At the end of a stop: let the watchdog go and remove this runtime's record."""
    REAPER.close()
    data.clear_processes(this_process())
