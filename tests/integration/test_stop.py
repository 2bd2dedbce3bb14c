"""Stopping: no micro outlives the runtime, whether it is stopped, killed, or wedged."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, Up, get_json
from tests.integration.micros import PY_ECHO, PY_WITH_CHILD, write_app

SPACEFILE = """
v: 0
micros:
  - name: parent
    src: ./parent
    engine: python3.9
    run: python main.py
    primary: true
    public: true
  - name: echo
    src: ./echo
    engine: python3.9
    run: python echo.py
    public: true
"""

# Starts a child, then exits: the runner restarts it, and each run leaves a child in its group.
PY_LEAVES_A_CHILD = textwrap.dedent(
    """
    import os, subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.environ["CHILD_PID_FILE"], "a") as f:
        f.write(f"{child.pid}\\n")
    sys.exit(1)
    """
)

Proc = tuple[int, int]  # pid and start time: a pid alone may be reused


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _ident(pid: int) -> Proc:
    fields = _stat(pid)
    assert fields is not None, f"process {pid} is not running"
    return pid, int(fields[19])


def _alive(proc: Proc) -> bool:
    """Still that process, and not a zombie (dead, only waiting for its parent)."""
    fields = _stat(proc[0])
    return fields is not None and fields[0] != "Z" and int(fields[19]) == proc[1]


def _descendants(pid: int) -> list[Proc]:
    """Every process below `pid`, found through /proc's parent pids."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        try:
            found.append(_ident(child))
        except AssertionError:
            continue  # ended meanwhile
        todo.extend(children.get(child, ()))
    return found


def _cmdline(proc: Proc) -> str:
    try:
        return Path(f"/proc/{proc[0]}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _left_after(procs: list[Proc], timeout: float) -> list[Proc]:
    """The processes still alive when they are all gone or `timeout` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in procs if _alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.02)


def _port_free(port: int) -> bool:
    """Free for a server: as servers do, SO_REUSEADDR, so a closed connection's TIME_WAIT on
    the old port (the kernel keeps one after a killed micro) does not count as a listener."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write_app(
        tmp_path / "app",
        SPACEFILE,
        {"parent/main.py": PY_WITH_CHILD, "echo/echo.py": PY_ECHO},
    )


def _start(up_factory, app: Path) -> tuple[Up, list[Proc]]:
    """A running app and every process the runtime started (micros, grandchild, watchdog)."""
    up = up_factory(app, env={"CHILD_PID_FILE": str(app / "child.pid")})
    up.wait_ready()
    procs = _descendants(up.proc.pid)
    grandchild = int((app / "child.pid").read_text())
    assert grandchild in {pid for pid, _ in procs}
    return up, procs


def test_micros_and_their_children_die_with_a_killed_runtime(app: Path, up_factory) -> None:
    up, procs = _start(up_factory, app)
    assert len(procs) >= 4  # two micros under their shells, the grandchild, the watchdog
    up.kill()  # SIGKILL to the runtime's whole process group: nothing of it can clean up
    left = _left_after(procs, 10)
    assert not left, f"outlived a killed runtime: {[_cmdline(p) for p in left]}"
    up.wait_for("the runtime stopped without ending its micros", 5)


def test_next_up_ends_what_a_killed_runtime_and_watchdog_left(app: Path, up_factory) -> None:
    up, procs = _start(up_factory, app)
    _, echoed = get_json(up.url + "/echo/")
    old_port = int(echoed["env"]["PORT"])
    watchdogs = [p for p in procs if "watchdog" in _cmdline(p)]
    micros = [p for p in procs if p not in watchdogs]
    for proc in watchdogs:
        os.kill(proc[0], signal.SIGKILL)
    up.kill()
    assert all(_alive(p) for p in micros), "nothing left to end: the test proves nothing"
    assert not _port_free(old_port)

    again = up_factory(app, env={"CHILD_PID_FILE": str(app / "child.pid")})
    again.wait_ready()
    left = [p for p in micros if _alive(p)]
    assert not left, f"still running once the new up was ready: {[_cmdline(p) for p in left]}"
    assert _port_free(old_port)
    out = again.output
    assert f"left running by a previous space-dev up (pid {up.proc.pid})" in out
    assert out.index("left running by a previous") < out.index("ready: ")


def test_up_on_a_data_dir_in_use_exits_1(app: Path, up_factory) -> None:
    first = up_factory(app, env={"CHILD_PID_FILE": str(app / "child.pid")})
    first.wait_ready()
    second = up_factory(app)
    assert second.proc.wait(20) == 1
    second.wait_for(rf"already running \(pid {first.proc.pid}\)", 5)
    second.wait_for(r"stop it first", 5)
    assert "Traceback" not in second.output
    status, _ = get_json(first.url + "/__space/health")
    assert status == 200  # the first one was left alone


def test_sighup_stops_like_sigterm(app: Path, up_factory) -> None:
    up, procs = _start(up_factory, app)
    assert up.stop(signal.SIGHUP) == 0
    assert not _left_after(procs, 5)
    assert "stopped" in up.output


def test_a_child_left_by_a_micro_that_exited_is_ended_at_stop(tmp_path: Path, up_factory) -> None:
    pids = tmp_path / "children"
    app = write_app(
        tmp_path / "app",
        "v: 0\nmicros:\n  - name: flaky\n    src: .\n    engine: python3.9\n"
        "    run: python main.py\n    public: true\n",
        {"main.py": PY_LEAVES_A_CHILD},
    )
    up = up_factory(app, env={"CHILD_PID_FILE": str(pids)})
    # Two runs: the runner stops the current one's group itself; the first's is left over.
    up.wait_for(r"flaky: exited with code 1; starting again in 1 s", 20)
    children = [_ident(int(line)) for line in pids.read_text().split()]
    assert len(children) >= 2
    assert all(_alive(c) for c in children)
    assert up.stop(signal.SIGINT) == 0
    assert not _left_after(children, 5), "a child of an exited micro outlived the runtime"


# --- the signal handlers and their deadline, with a loop no coroutine lets go of ------------

WEDGED = textwrap.dedent(
    """
    import asyncio, subprocess, sys
    from runtime.supervisor.reaper import REAPER
    from runtime.supervisor.shutdown import StopSignals

    async def main():
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                 start_new_session=True)
        REAPER.track(child.pid)
        signals = StopSignals(asyncio.get_running_loop(),
                              lambda: print("the loop ran the stop", flush=True),
                              float(sys.argv[1]))
        signals.install()
        print(child.pid, flush=True)
        while True:  # never awaits: the loop cannot run anything, a signal handler can
            pass

    asyncio.run(main())
    """
)


def _wedged(tmp_path: Path, deadline: float) -> tuple[subprocess.Popen[str], Proc]:
    script = tmp_path / "wedged.py"
    script.write_text(WEDGED)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(deadline)],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout
    child = _ident(int(proc.stdout.readline()))
    return proc, child


def test_a_wedged_loop_still_stops_by_the_deadline(tmp_path: Path) -> None:
    proc, child = _wedged(tmp_path, 1.0)
    try:
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert 1.0 <= took < 3.0, took
    assert "did not finish within 1 s" in err and err.count("\n") == 1, err
    assert "the loop ran the stop" not in out  # it really was wedged
    assert not _left_after([child], 2), "its registered group outlived it"


def test_a_second_signal_kills_at_once(tmp_path: Path) -> None:
    proc, child = _wedged(tmp_path, 30.0)
    try:
        sent = time.monotonic()
        # Two signals that arrive before Python runs the handler count as one, as the kernel
        # folds them: repeat until it is gone, as an impatient user would.
        while proc.poll() is None and time.monotonic() - sent < 10:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(0.1)
            except subprocess.TimeoutExpired:
                pass
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert took < 2.0, took
    assert "SIGINT again: killed every micro at once" in err
    assert not _left_after([child], 2)


CALM = textwrap.dedent(
    """
    import asyncio, sys
    from runtime.supervisor.shutdown import StopSignals

    async def main():
        stop = asyncio.Event()
        signals = StopSignals(asyncio.get_running_loop(), stop.set, 30.0)
        signals.install()
        print("installed", flush=True)
        await stop.wait()
        signals.restore()
        print("stopped", flush=True)

    asyncio.run(main())
    """
)


def test_under_nohup_sighup_is_left_ignored(tmp_path: Path) -> None:
    script = tmp_path / "calm.py"
    script.write_text(CALM)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),  # as nohup does
    )
    try:
        assert proc.stdout and proc.stdout.readline() == "installed\n"
        proc.send_signal(signal.SIGHUP)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(0.5)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0 and out == "stopped\n"
