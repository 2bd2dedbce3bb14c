"""The reaper and the watchdog: which process groups are still ours, and ending only those."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import system
from runtime.datadir.datafile import DataFile
from runtime.errors import DataDirError, SpaceDevError
from runtime.supervisor import reaper, watchdog

SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]
# A leader that starts a member of its group, says its pid, and exits when stdin closes.
LEADER = [
    sys.executable,
    "-c",
    (
        "import subprocess, sys\n"
        "m = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(m.pid, flush=True)\n"
        "sys.stdin.read()\n"
    ),
]


def _alive(pid: int) -> bool:
    entry = system.process(pid)
    return entry is not None and not entry.zombie


def _gone_within(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def group() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(SLEEP, start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_a_group_whose_leader_has_another_start_time_is_not_ours(group) -> None:
    start = system.start_time(group.pid)
    assert start is not None
    assert watchdog.end_groups({group.pid: start + 1}, grace=0.5) == 0  # a reused id
    assert group.poll() is None
    assert watchdog.end_groups({group.pid: start}, grace=0.5) == 1
    assert group.wait(2) == -15  # SIGTERM was enough


def test_with_the_leader_gone_only_members_younger_than_the_record_are_ours() -> None:
    leader = subprocess.Popen(
        LEADER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
    )
    assert leader.stdout and leader.stdin
    member = int(leader.stdout.readline())
    leader_start = system.start_time(leader.pid)
    member_start = system.start_time(member)
    assert leader_start is not None and member_start is not None
    leader.stdin.close()
    leader.wait(5)
    try:
        assert watchdog.end_groups({leader.pid: member_start + 1}, grace=0.5) == 0
        assert _alive(member)
        assert watchdog.end_groups({leader.pid: leader_start}, grace=0.5) == 1
        assert _gone_within(member, 2)
    finally:
        if _alive(member):
            os.kill(member, signal.SIGKILL)


def test_a_group_that_ignores_sigterm_gets_sigkill_after_the_grace() -> None:
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint(flush=True)\ntime.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert stubborn.stdout
    stubborn.stdout.readline()  # the handler is in place
    start = system.start_time(stubborn.pid)
    assert start is not None
    began = time.monotonic()
    assert watchdog.end_groups({stubborn.pid: start}, grace=0.3) == 1
    assert stubborn.wait(2) == -9
    assert time.monotonic() - began >= 0.3


def _watchdog() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(reaper.WATCHDOG_SCRIPT), "0.5"],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )


def test_the_watchdog_ends_the_groups_still_listed_at_eof(group) -> None:
    dog = _watchdog()
    assert dog.stdin
    dog.stdin.write(f"+{group.pid} {system.start_time(group.pid)}\n".encode())
    dog.stdin.close()  # as when the runtime dies
    assert dog.wait(5) == 0
    assert group.wait(2) == -15


def test_the_watchdog_leaves_removed_groups_alone(group) -> None:
    dog = _watchdog()
    assert dog.stdin
    dog.stdin.write(
        f"+{group.pid} {system.start_time(group.pid)}\nnonsense\n-{group.pid}\n".encode()
    )
    dog.stdin.close()
    assert dog.wait(5) == 0
    assert group.poll() is None


def test_a_recorded_process_is_identified_by_pid_start_time_and_boot() -> None:
    me = reaper.this_process()
    assert reaper.still_running(me)
    assert not reaper.still_running({**me, "start": me["start"] + 1})  # the pid was reused
    assert not reaper.still_running({**me, "boot": "another boot"})
    assert not reaper.still_running({"pid": "1"})
    assert not reaper.still_running(None)


def test_claim_refuses_a_data_dir_whose_runtime_still_runs(tmp_path: Path) -> None:
    data = DataFile(tmp_path)
    data.write_processes({"runtime": reaper.this_process(), "groups": []})
    with pytest.raises(SpaceDevError, match=r"already running \(pid \d+\)"):
        reaper.claim(data, 0.5, print)


def test_claim_takes_over_from_a_dead_runtime_and_ends_its_groups(tmp_path: Path, group) -> None:
    data = DataFile(tmp_path)
    dead = {**reaper.this_process(), "start": 1}  # this pid, but not this process
    record = {"runtime": dead, "groups": [[group.pid, system.start_time(group.pid)]]}
    data.write_processes(record)
    said: list[str] = []
    reaper.claim(data, 0.5, said.append)
    try:
        assert group.wait(2) == -15
        assert said and "ended 1 process group left running" in said[0]
        mine = json.loads(data.processes_path.read_text())
        assert mine["runtime"] == reaper.this_process()
    finally:
        reaper.release(data)
    assert not data.processes_path.exists()


def test_a_foreign_process_record_is_an_error_and_kept(tmp_path: Path) -> None:
    data = DataFile(tmp_path)
    data.processes_path.write_text('{"pid": 1}')
    with pytest.raises(DataDirError, match="not a space-dev process record"):
        reaper.claim(data, 0.5, print)
    assert data.processes_path.read_text() == '{"pid": 1}'
