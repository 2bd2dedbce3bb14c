"""Benchmark a data import through the running runtime: its peak memory, and the longest stall of
its event loop while `POST /__space/api/data/import` takes a zip of 200,000 Base items.

Run: python bench/data_import.py [--items 200000] [--source DIR]
It writes the zip (one JSON document, `bases/many.json`: the layout every version reads),
starts `space-dev up` on a temp app of one stdlib python micro, with a ticker task added to the
runtime's own event loop (it sleeps 1 ms and notes how late it wakes), signs in as the owner and
posts the zip to the data API. It prints the runtime's RSS before, its peak RSS (VmHWM) after,
how long the import took, and the loop's stalls during it: the longest, the 99th percentile
and how many passed 10 ms (first for 5 idle seconds, what the machine alone adds). Then it
exports the data (`GET .../export`), deletes it all, and imports that export the same way (a
current export is JSON Lines). `--source DIR` runs the runtime from another copy of the
project (for example `git archive <commit> | tar -x -C DIR`), for figures before and after a
change.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READY_RE = re.compile(r"ready: \S+ (http://\S+)")
PASSWORD = "bench-password"
START_TIMEOUT_S = 60.0

SPACEFILE = """\
v: 0
app_name: importbench
micros:
  - name: py
    src: .
    engine: python3.9
    run: python main.py
    primary: true
"""

MICRO = """\
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

# Runs `space-dev` with a ticker on the runtime's loop. Into the file named by its first
# argument go "S <monotonic time> <seconds late>" for each wake later than 2 ms, and every
# half second "T <monotonic time> <wakes since the last T>" (for the percentiles). A thread
# writes the file: a write on the loop could itself wait on the disk the import is busy with.
LAUNCHER = """\
import asyncio, sys, threading, time
sys.path.insert(0, sys.argv.pop(1))
import runtime.app.runtime as module

STALLS = sys.argv.pop(1)
started = module.Runtime.start
noted = []


def write_down():
    with open(STALLS, "a") as out:
        while True:
            time.sleep(0.5)
            while noted:
                out.write(noted.pop(0))
            out.flush()


async def tick():
    threading.Thread(target=write_down, daemon=True).start()
    wakes, counted = 0, time.monotonic()
    while True:
        began = time.monotonic()
        await asyncio.sleep(0.001)
        now = time.monotonic()
        wakes += 1
        if now - began - 0.001 > 0.002:
            noted.append(f"S {now} {now - began - 0.001}\\n")
        if now - counted > 0.5:
            noted.append(f"T {now} {wakes}\\n")
            wakes, counted = 0, now


async def start(self, *args, **kwargs):
    self.bench_ticker = asyncio.get_running_loop().create_task(tick())
    return await started(self, *args, **kwargs)


module.Runtime.start = start
from runtime.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def write_items_zip(path: Path, count: int) -> None:
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("bases/many.json", "w") as out,
    ):
        out.write(b"[")
        for i in range(count):
            item = {
                "key": f"k{i:07d}",
                "title": f"item number {i}",
                "n": i,
                "tags": ["a", "b", str(i % 97)],
                "done": i % 2 == 0,
            }
            out.write(((", " if i else "") + json.dumps(item)).encode())
        out.write(b"]")


class Up:
    """`space-dev up` with the ticker, in a session of its own, its output drained."""

    def __init__(self, source: Path, app: Path, data: Path, stalls: Path) -> None:
        self.lines: list[str] = []
        self.url = ""
        self._ready = threading.Event()
        env = dict(os.environ, SPACE_DEV_PASSWORD=PASSWORD)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                LAUNCHER,
                str(source),
                str(stalls),
                "up",
                str(app),
                "--port",
                "0",
                "--data-dir",
                str(data),
                "--no-reload",
                "--no-schedule",
            ],
            cwd=source,
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
            if not self.url and (match := READY_RE.search(line)):
                self.url = match.group(1).rstrip("/")
                self._ready.set()

    def wait_ready(self) -> str:
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("space-dev did not get ready:\n" + "\n".join(self.lines))
        return self.url

    def memory(self) -> dict[str, int]:
        """VmRSS and VmHWM (the peak) of the runtime's process, in MiB."""
        found = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) // 1024
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def sign_in(origin: str) -> str:
    """The owner's session cookie, from the login form."""
    form = urllib.parse.urlencode({"username": "dev", "password": PASSWORD, "next": "/"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    request = urllib.request.Request(
        origin + "/__space/login",
        data=form.encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        urllib.request.build_opener(NoRedirect).open(request, timeout=10)
    except urllib.error.HTTPError as err:
        for line in err.headers.get_all("Set-Cookie") or ():
            name, _, rest = line.partition("=")
            if name.strip() == "space_session":
                return f"space_session={rest.split(';', 1)[0]}"
    raise RuntimeError("signing in to the runtime gave no session cookie")


def call(origin: str, cookie: str, method: str, path: str, body: bytes | None = None) -> bytes:
    request = urllib.request.Request(
        origin + path, data=body, method=method, headers={"Cookie": cookie}
    )
    with urllib.request.urlopen(request, timeout=1800) as resp:
        return resp.read()


def stalls_between(stalls: Path, began: float, ended: float) -> str:
    """The loop's longest stall, its 99th percentile wake and how many wakes were later than
    10 ms, between two moments."""
    late: list[float] = []
    wakes = 0
    worst, worst_at = 0.0, began
    for line in stalls.read_text().splitlines():
        kind, at, value = line.split()
        if not began <= float(at) <= ended:
            continue
        if kind == "S":
            late.append(float(value))
            if late[-1] > worst:
                worst, worst_at = late[-1], float(at)
        else:
            wakes += int(value)
        # (a T line counts the wakes of the half second before it: close enough at the edges)
    late.sort(reverse=True)
    rank = wakes // 100
    p99 = late[rank] if rank < len(late) else 0.002
    return (
        f"longest loop stall {worst * 1000:.1f} ms (ending {worst_at - began:.1f} s in), "
        f"99% of {wakes} wakes within {p99 * 1000:.1f} ms, "
        f"{sum(x > 0.010 for x in late)} later than 10 ms"
    )


def idle(stalls: Path, seconds: float) -> None:
    """The same figures with nothing asked of the runtime: what the machine itself adds."""
    began = time.monotonic()
    time.sleep(seconds + 0.6)
    print(f"idle for {seconds:.0f} s: {stalls_between(stalls, began, began + seconds)}")


def timed_import(up: Up, origin: str, cookie: str, body: bytes, stalls: Path, what: str) -> None:
    before = up.memory()
    began = time.monotonic()
    answer = json.loads(call(origin, cookie, "POST", "/__space/api/data/import", body))
    took = time.monotonic() - began
    time.sleep(0.6)  # the ticker writes down the last wakes
    after = up.memory()
    print(
        f"{what}: {answer['items']} in {took:.1f} s; runtime RSS {before['VmRSS']} MiB "
        f"before, peak {after['VmHWM']} MiB (was {before['VmHWM']}); "
        f"{stalls_between(stalls, began, began + took)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument(
        "--source",
        type=Path,
        default=REPO,
        help="the project copy the runtime runs from (default: this one)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="space-dev-import-bench-"))
    up: Up | None = None
    try:
        app = tmp / "app"
        app.mkdir()
        (app / "Spacefile").write_text(SPACEFILE)
        (app / "main.py").write_text(MICRO)
        source_zip = tmp / "items.zip"
        write_items_zip(source_zip, args.items)
        print(
            f"runtime from {args.source}; {args.items} items in a "
            f"{source_zip.stat().st_size / 2**20:.1f} MiB zip"
        )
        stalls = tmp / "stalls.txt"
        stalls.touch()
        up = Up(args.source.resolve(), app, tmp / "data", stalls)
        origin = up.wait_ready()
        cookie = sign_in(origin)
        time.sleep(1.0)  # let start-up settle before measuring
        idle(stalls, 5.0)
        timed_import(up, origin, cookie, source_zip.read_bytes(), stalls, "import (one document)")
        began = time.monotonic()
        exported = call(origin, cookie, "GET", "/__space/api/data/export")
        took = time.monotonic() - began
        time.sleep(0.6)
        print(
            f"export: {len(exported) / 2**20:.1f} MiB in {took:.1f} s; "
            f"{stalls_between(stalls, began, began + took)}"
        )
        call(origin, cookie, "DELETE", "/__space/api/data")
        timed_import(up, origin, cookie, exported, stalls, "import of that export")
    finally:
        if up is not None:
            up.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
