"""The runtime where Linux's /proc and CLOCK_BOOTTIME do not exist (macOS, the BSDs).

`runtime.system` is blinded in this process (its /proc points at a folder that does not exist,
its boot clock is gone); real micros are then started, reloaded and stopped through
`MicroRunner`, and the reaper ends what a micro left. A whole `space-dev up` runs blinded the
same way (a `sitecustomize` on its PYTHONPATH): the gate, a reload, Base, Drive and the stop.
The test itself still reads the real /proc to see what is left running.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from runtime import system
from runtime.config.secret_env import take_secret
from runtime.supervisor import reaper
from runtime.supervisor.manager import LaunchSpec, MicroRunner, State, Timings
from runtime.supervisor.output import Printer
from tests.integration.conftest import get_json, run_up
from tests.integration.micros import write_app

PACKAGE = Path(__file__).resolve().parents[2] / "runtime"
TIMINGS = Timings(
    ready_timeout=20, backoff_start=0.5, backoff_max=5, healthy_after=60, stop_grace=1
)

# A micro that starts a helper in its own process group (one that ignores SIGTERM, as a stuck
# child would) and answers every request with both pids and its version.
MICRO = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    helper = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"pid": os.getpid(), "helper": helper.pid,
                               "version": open("version.txt").read()}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Answer).serve_forever()
    """
)


@pytest.fixture
def no_proc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Make `runtime.system` see a system without /proc and without CLOCK_BOOTTIME."""
    monkeypatch.setattr(system, "PROC", tmp_path / "no-proc")
    monkeypatch.setattr(system, "BOOT_CLOCK", None)
    assert not system.has_proc() and not system.has_socket_tables()
    assert system.processes() is None and system.start_time(os.getpid()) is None


def _gone(pid: int) -> bool:
    """Seen from the real /proc: no such process, or only a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat.rsplit(b")", 1)[1].split()[0] == b"Z"


def _all_gone(pids: list[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not all(_gone(p) for p in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _get(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
        return json.loads(answer.read())


@pytest.fixture
def micro_dir(tmp_path: Path) -> Path:
    (tmp_path / "main.py").write_text(MICRO)
    (tmp_path / "version.txt").write_text("one")
    return tmp_path


def _runner(micro_dir: Path, command: str, out: io.StringIO) -> MicroRunner:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    spec = LaunchSpec(command, micro_dir, env, source="the `run` field of micro api")
    return MicroRunner("api", spec, Printer(out, colour=False, live=False), TIMINGS)


async def _ready(runner: MicroRunner, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while runner.address is None:
        assert time.monotonic() < deadline, "the micro never answered"
        await runner.wait_changed(0.5)


async def test_a_micro_starts_answers_reloads_and_stops_without_proc(
    no_proc: None, micro_dir: Path
) -> None:
    out = io.StringIO()
    runner = _runner(micro_dir, f"{sys.executable} main.py", out)
    runner.start()
    try:
        await _ready(runner)
        assert runner.state is State.READY
        _, port = runner.address or ("", 0)
        first = await asyncio.to_thread(_get, port)
        first_shell = runner.pid or 0
        assert first["version"] == "one"

        (micro_dir / "version.txt").write_text("two")
        assert await runner.reload("a saved file")
        _, new_port = runner.address or ("", 0)
        second = await asyncio.to_thread(_get, new_port)
        assert second["version"] == "two" and second["pid"] != first["pid"]
        second_shell = runner.pid or 0
        # The replaced process and the helper that ignores SIGTERM are ended (SIGKILL after
        # the grace period, as nothing tells a zombie from a live member here).
        old = [first_shell, int(first["pid"]), int(first["helper"])]  # type: ignore[call-overload]
        assert await asyncio.to_thread(_all_gone, old, TIMINGS.stop_grace + 5)
    finally:
        await runner.stop()
    assert runner.state is State.STOPPED
    last = [second_shell, int(second["pid"]), int(second["helper"])]  # type: ignore[call-overload]
    assert await asyncio.to_thread(_all_gone, last)
    assert not reaper.REAPER.groups(), "every group was untracked"


async def test_a_server_on_another_port_is_said_not_looked_for(
    no_proc: None, micro_dir: Path
) -> None:
    out = io.StringIO()
    # Serves, but on a port of its own rather than $PORT: without socket tables it is not found.
    runner = _runner(micro_dir, f"PORT=0 {sys.executable} main.py", out)
    runner._timings = Timings(
        ready_timeout=1.5, backoff_start=0.5, backoff_max=5, healthy_after=60, stop_grace=1
    )
    runner.start()
    try:
        deadline = time.monotonic() + 15
        while runner.state is not State.NOT_LISTENING:
            assert time.monotonic() < deadline, out.getvalue()
            await runner.wait_changed(0.5)
        hint = runner.notices["listening"]
        assert "a server on another port is not looked for on this system" in hint
        assert "nor on any other loopback port" not in hint
    finally:
        await runner.stop()


def test_the_reaper_ends_what_a_micro_left_without_proc(no_proc: None) -> None:
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import subprocess, sys\n"
                "m = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
                "print(m.pid, flush=True)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert leader.stdout is not None
    member = int(leader.stdout.readline())
    try:
        reaper.track(leader.pid)  # no start time here: the boot-clock fallback stands in
        assert leader.wait(5) == 0
        reaper.leader_exited(leader.pid)
        assert not _gone(member)
        assert reaper.REAPER.end_all(1.0, leaderless_only=True) == 1
        assert _all_gone([member])
        assert leader.pid not in reaper.REAPER.groups()
    finally:
        if not _gone(member):
            os.kill(member, signal.SIGKILL)


def test_who_runs_is_known_by_pid_alone_without_proc(no_proc: None) -> None:
    me = reaper.this_process()
    assert me == {"pid": os.getpid(), "start": None, "boot": ""}
    assert reaper.still_running(me)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not reaper.still_running({**me, "pid": dead.pid})
    # A recorded group cannot be told from another program's here: it is left alone.
    assert reaper.end_recorded({"runtime": me, "groups": [[os.getpgid(0), 1]]}, 0.1) == 0


def test_a_secret_is_still_taken_out_of_the_environment_without_proc(
    no_proc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPACE_DEV_TEST_SECRET", "hunter2")
    assert take_secret("SPACE_DEV_TEST_SECRET") == "hunter2"
    assert "SPACE_DEV_TEST_SECRET" not in os.environ


# Loaded by every python process `up` starts with it on PYTHONPATH (the runtime, its watchdog;
# a python micro finds its own sitecustomize first): blinds runtime.system there, and says so.
BLINDING = textwrap.dedent(
    """
    import os
    from pathlib import Path

    from runtime import system

    system.PROC = Path({missing!r})
    system.BOOT_CLOCK = None
    with open({marker!r}, "a") as f:
        f.write(f"{{os.getpid()}}\\n")
    """
)

# A public python micro that keeps a note in Base and a file in Drive on each request.
DATA_MICRO = textwrap.dedent(
    """
    import json, os
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from deta import Deta

    VERSION = "one"
    deta = Deta()
    notes, files = deta.Base("notes"), deta.Drive("files")

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):
            notes.put({"text": "kept"}, "note")
            files.put("hello.txt", data=b"hello drive")
            body = json.dumps({"version": VERSION, "note": notes.get("note")["text"],
                               "file": files.get("hello.txt").read().decode()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Answer).serve_forever()
    """
)


def _below(pid: int) -> list[int]:
    """Every live process below `pid`, by the real /proc's parent pids."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, ()))
    return found


def test_up_serves_reloads_keeps_data_and_stops_without_proc(tmp_path: Path) -> None:
    marker = tmp_path / "blinded"
    blind = tmp_path / "blind"
    blind.mkdir()
    (blind / "sitecustomize.py").write_text(
        BLINDING.format(missing=str(tmp_path / "no-proc"), marker=str(marker))
    )
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: api
            src: ./api
            engine: python3.9
            run: python main.py
            primary: true
            public: true
        """,
        {"api/main.py": DATA_MICRO},
    )
    inherited = os.environ.get("PYTHONPATH")
    up = run_up(
        app,
        env={
            "PYTHONPATH": os.pathsep.join(
                [str(blind), str(PACKAGE.parent), *([inherited] if inherited else [])]
            )
        },
    )
    try:
        up.wait_ready(60)
        up.wait_for("watching for changes")
        blinded = marker.read_text().split()
        assert str(up.proc.pid) in blinded  # the runtime itself, and its watchdog
        assert len(blinded) >= 2, blinded
        status, first = get_json(up.url + "/")  # through the gate (a public micro)
        assert status == 200, first
        assert first == {"version": "one", "note": "kept", "file": "hello drive"}

        main = app / "api" / "main.py"
        main.write_text(main.read_text().replace('VERSION = "one"', 'VERSION = "two"'))
        deadline = time.monotonic() + 30
        while get_json(up.url + "/")[1].get("version") != "two":
            assert time.monotonic() < deadline, up.output
            time.sleep(0.1)
        assert "reloaded in" in up.output or "restarting" in up.output
        running = _below(up.proc.pid)
        assert running, "the micro's processes and the watchdog run below up"
    finally:
        code = up.stop()
    assert code == 0, up.output
    assert "watchdog" not in up.output and "Traceback" not in up.output, up.output
    deadline = time.monotonic() + 5
    while left := [pid for pid in running if not _gone(pid)]:
        assert time.monotonic() < deadline, f"left running: {left}\n{up.output}"
        time.sleep(0.05)


# Code, not comments or docstrings, that reaches for a Linux-only source.
_LINUX_ONLY = re.compile(r"""["']/proc|CLOCK_BOOTTIME|self/mem""")


def test_only_the_system_module_reads_linux_only_sources() -> None:
    """Every use of /proc and CLOCK_BOOTTIME goes through runtime/system.py, where each has its
    fallback (the in-micro guards import nothing of the runtime and check for /proc themselves)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "system.py" and path.parent == PACKAGE or "in_micro" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if _LINUX_ONLY.search(code):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
