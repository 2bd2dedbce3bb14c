"""Benchmark stopping: how long `space-dev up` takes to stop, and how long micros outlive a kill.

Run: python bench/stop.py [--runs 5]
It starts `space-dev up` on a temp app of three micros (a stdlib python server, a Node.js
server, and a python server that started a child of its own), then times, N times each:
Ctrl-C (SIGINT) to the runtime's exit, SIGTERM to its exit, and SIGKILL of the runtime's
process group to the moment the last process of the micros is gone (the watchdog's work).
Each row gives the median and the worst; after every exit it also checks that no process of
the micros is left.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READY_RE = re.compile(r"ready: \S+ (http://\S+)")
START_TIMEOUT_S = 60.0
GONE_TIMEOUT_S = 20.0

SPACEFILE = """\
v: 0
app_name: stopbench
micros:
  - name: py
    src: ./py
    engine: python3.9
    run: python main.py
    primary: true
    public: true
  - name: node
    src: ./node
    engine: nodejs16
    public: true
  - name: parent
    src: ./parent
    engine: python3.9
    run: python main.py
    public: true
"""

PY = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""

PY_WITH_CHILD = (
    """\
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
"""
    + PY
)

NODE = """\
require("http").createServer((req, res) => res.end("ok"))
  .listen(Number(process.env.PORT), "127.0.0.1");
"""

Proc = tuple[int, int]  # pid and start time, so a reused pid is not taken for it


def _stat(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None


def _alive(proc: Proc) -> bool:
    fields = _stat(proc[0])
    return fields is not None and fields[0] != b"Z" and int(fields[19]) == proc[1]


def micro_processes(runtime_pid: int) -> list[Proc]:
    """Every process below the runtime except the watchdog: the micros and their children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[Proc] = []
    todo = list(children.get(runtime_pid, ()))
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if fields is None or b"watchdog.py" in cmdline:
            continue
        found.append((pid, int(fields[19])))
        todo.extend(children.get(pid, ()))
    return found


def wait_gone(procs: list[Proc], timeout: float) -> list[Proc]:
    """Poll until every process is gone or `timeout` passes; those still alive."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in procs if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.005)
    return left


class Up:
    """`space-dev up` on the bench app in a session of its own, its output drained."""

    def __init__(self, app: Path, data: Path) -> None:
        self.lines: list[str] = []
        self._ready = threading.Event()
        env = dict(os.environ, SPACE_DEV_PASSWORD="bench-password")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runtime",
                "up",
                str(app),
                "--port",
                "0",
                "--data-dir",
                str(data),
                "--no-reload",
                "--no-schedule",
            ],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if READY_RE.search(line):
                self._ready.set()

    def wait_ready(self) -> list[Proc]:
        """The micros' processes, once the app is ready."""
        if not self._ready.wait(START_TIMEOUT_S):
            self.proc.kill()
            raise RuntimeError("space-dev did not get ready:\n" + "\n".join(self.lines))
        procs = micro_processes(self.proc.pid)
        # The two python micros' shells and servers, node's, and the child.
        if len(procs) < 4:
            raise RuntimeError(f"expected the micros and a child, found {procs}")
        return procs


def one_stop(app: Path, data: Path, how: str) -> float:
    """Seconds from the signal to the runtime's exit (SIGINT, SIGTERM) or, for SIGKILL, to the
    end of the last micro process."""
    up = Up(app, data)
    procs: list[Proc] = []
    try:
        procs = up.wait_ready()
        began = time.monotonic()
        if how == "SIGKILL":
            os.killpg(up.proc.pid, signal.SIGKILL)
            left = wait_gone(procs, GONE_TIMEOUT_S)
            took = time.monotonic() - began
        else:
            up.proc.send_signal(signal.SIGINT if how == "Ctrl-C" else signal.SIGTERM)
            code = up.proc.wait(GONE_TIMEOUT_S)
            took = time.monotonic() - began
            if code != 0:
                raise RuntimeError(f"exit code {code} after {how}:\n" + "\n".join(up.lines))
            left = wait_gone(procs, 1.0)
        if left:
            raise RuntimeError(f"{len(left)} micro processes outlived the runtime after {how}")
        return took
    finally:
        # Whatever happened, leave nothing running behind the bench.
        if up.proc.poll() is None:
            os.killpg(up.proc.pid, signal.SIGKILL)
            up.proc.wait(5)
        for pid, _ in [p for p in procs if _alive(p)]:
            os.kill(pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="stops of each kind (default 5)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="space-dev-stop-"))
    app = tmp / "app"
    for rel, text in {
        "Spacefile": SPACEFILE,
        "py/main.py": PY,
        "node/index.js": NODE,
        "parent/main.py": PY_WITH_CHILD,
    }.items():
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_text(text)
    rows = []
    try:
        for how, what in (
            ("Ctrl-C", "SIGINT -> runtime exited"),
            ("SIGTERM", "SIGTERM -> runtime exited"),
            ("SIGKILL", "SIGKILL of the runtime -> last micro process gone"),
        ):
            times = []
            for run in range(args.runs):
                times.append(one_stop(app, tmp / "data", how))
                print(f"  {how} run {run + 1}: {times[-1] * 1e3:.0f} ms", file=sys.stderr)
            rows.append((how, what, statistics.median(times), max(times)))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("| stop | measured | median | worst |")
    print("|---|---|---:|---:|")
    for how, what, median, worst in rows:
        print(f"| {how} | {what} | {median * 1e3:.0f} ms | {worst * 1e3:.0f} ms |")
    print(
        f"\n3 micros (python, node, python with a child); {args.runs} runs each; "
        f"cores: {os.cpu_count()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
