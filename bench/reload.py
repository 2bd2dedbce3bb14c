"""Benchmark hot reload: the time from saving a micro's main.py to its new answer via the runtime.

Run: python bench/reload.py [--runs 10] [--plain-write] [--poll-interval 0]
For a stdlib micro (`run: python main.py`) and an aiohttp micro (the python engine's default,
`main.py`'s `app`), it times N saves through `space-dev up`, each after one cold start of the
same micro alone (`python main.py` as a plain subprocess to its first answer), then prints one
row per kind with the overhead (save->new response minus cold start) against the 100 ms target.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

TARGET_OVERHEAD_MS = 100.0
START_TIMEOUT_S = 60.0
ANSWER_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# After a new answer, wait this long for the runtime's log line and any second reload a split
# burst would cause, so one run's reload never overlaps the next run's save.
SETTLE_S = 0.5

SPACEFILE = """\
v: 0
app_name: bench
micros:
  - name: api
    src: ./api
    engine: python3.9
{run}    public: true
"""

STDLIB_MICRO = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = {version}
BODY = str(VERSION).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the runtime's proxy expects

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

AIOHTTP_MICRO = """\
import os

from aiohttp import web

VERSION = {version}


async def index(request):
    return web.Response(text=str(VERSION))


app = web.Application()
app.router.add_get("/", index)

if __name__ == "__main__":  # the runtime serves `app` itself; this is for the cold start
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), access_log=None, print=None)
"""


@dataclass(frozen=True)
class Kind:
    """One kind of micro: its Spacefile `run` line and its main.py template."""

    name: str
    run: str | None
    template: str

    def spacefile(self) -> str:
        return SPACEFILE.format(run=f"    run: {self.run}\n" if self.run else "")

    def source(self, version: int) -> str:
        return self.template.format(version=version)


KINDS = (
    Kind("stdlib http.server (run: python main.py)", "python main.py", STDLIB_MICRO),
    Kind("aiohttp app (engine default)", None, AIOHTTP_MICRO),
)

READY_RE = re.compile(r"ready: \S+ (http://\S+?)/?(?:\s|$)")
WATCHING_RE = re.compile(r"watching for changes")
RELOADED_RE = re.compile(r"(\S+): reloaded in ([\d.]+) s \((.*)\)")


@dataclass
class Result:
    """What one kind measured; times in milliseconds."""

    kind: str
    cold_ms: list[float]
    save_ms: list[float] = field(default_factory=list)
    logged_ms: list[float] = field(default_factory=list)  # the runtime's `reloaded in X s`
    before_ms: list[float] = field(default_factory=list)  # save->answer minus that run's X
    reloads: int = 0
    errors: int = 0


# --- talking HTTP ---------------------------------------------------------------------------------


class Poller:
    """One keep-alive connection, reopened after any error; `get()` returns the body or None."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._conn: http.client.HTTPConnection | None = None
        self.errors = 0

    def get(self) -> str | None:
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=5)
            self._conn.request("GET", "/")
            resp = self._conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                self.errors += 1
                return None
            return body.decode(errors="replace").strip()
        except (OSError, http.client.HTTPException):
            self.errors += 1
            self.close()
            return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def wait_for_answer(poller: Poller, expected: str, timeout: float, interval: float) -> float:
    """Poll until the body is `expected`; the time it was seen (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while True:
        body = poller.get()
        now = time.perf_counter()
        if body == expected:
            return now
        if now > deadline:
            raise RuntimeError(f"no answer {expected!r} within {timeout:g} s (last: {body!r})")
        if interval > 0:
            time.sleep(interval)


def free_port() -> int:
    """A port the OS says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(proc: subprocess.Popen[str] | subprocess.Popen[bytes], sig: int) -> None:
    """Signal `sig`, SIGKILL to the whole group after a deadline; never raises on a gone group."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever the group started goes too
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


# --- the micro alone -----------------------------------------------------------------------------


def cold_start(src: Path, interval: float) -> float:
    """Milliseconds from starting `python main.py` in `src` to its first HTTP answer."""
    port = free_port()
    env = dict(os.environ, PORT=str(port))
    poller = Poller("127.0.0.1", port)
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=src,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = began + ANSWER_TIMEOUT_S
        while poller.get() is None:
            if proc.poll() is not None:
                raise RuntimeError(f"main.py exited with {proc.returncode} before answering")
            if time.perf_counter() > deadline:
                raise RuntimeError("main.py did not answer")
            if interval > 0:
                time.sleep(interval)
        return (time.perf_counter() - began) * 1e3
    finally:
        poller.close()
        with no_interrupts():
            stop_group(proc, signal.SIGTERM)


# --- the runtime under test ---------------------------------------------------------------------


class RuntimeProcess:
    """`space-dev up` on the bench app, its output drained by a thread so it never blocks."""

    def __init__(self, app_dir: Path, data_dir: Path, cwd: Path) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=200)
        self.origin = ""
        self.reloads: list[float] = []  # seconds, as each `reloaded in X s` line says
        self._ready = threading.Event()
        self._watching = threading.Event()
        env = dict(os.environ, SPACE_DEV_PASSWORD="bench password")
        # A session of its own: Ctrl-C reaches only this script, which then stops the runtime
        # in order (SIGINT first) instead of both racing to exit.
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runtime",
                "up",
                str(app_dir),
                "--port",
                "0",
                "--data-dir",
                str(data_dir),
                "--no-schedule",
            ],
            cwd=cwd,
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
            if (match := RELOADED_RE.search(line)) is not None:
                self.reloads.append(float(match[2]))
            elif (match := READY_RE.search(line)) is not None and not self._ready.is_set():
                self.origin = match[1]
                self._ready.set()
            elif WATCHING_RE.search(line):
                self._watching.set()

    def wait_started(self, timeout: float) -> str:
        """The origin, once both `ready:` and `watching for changes` were printed."""
        deadline = time.monotonic() + timeout
        while not (self._ready.wait(0.1) and self._watching.wait(0.1)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self.lines)
                raise RuntimeError(f"space-dev did not start (ready and watching):\n{tail}")
        return self.origin

    def wait_reloads(self, count: int, timeout: float) -> bool:
        """Wait until at least `count` reload lines were printed."""
        deadline = time.monotonic() + timeout
        while len(self.reloads) < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        """SIGINT (the runtime stops its micros), then SIGKILL on the group after a deadline.

        Micros run in sessions of their own, out of reach of the runtime's group: any that
        outlive a runtime killed at the deadline are killed here too.
        """
        micros = _children(self.proc.pid)
        stop_group(self.proc, signal.SIGINT)
        for pid in micros:
            try:
                os.killpg(pid, signal.SIGKILL)  # each micro leads its own group
            except (ProcessLookupError, PermissionError):
                pass


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc; empty where there is no /proc."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


@contextmanager
def no_interrupts() -> Iterator[None]:
    """Hold off Ctrl-C and SIGTERM while cleaning up, so a second one cannot strand processes."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def save(path: Path, text: str, atomic: bool) -> None:
    """Write `text` as an editor would: to a temp file renamed over it, or in place."""
    if not atomic:
        path.write_text(text)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def measure(kind: Kind, tmp: Path, args: argparse.Namespace) -> Result:
    """N saves through a running `space-dev up`, each after one cold start of the micro alone."""
    app = tmp / "app"
    src = app / "api"
    src.mkdir(parents=True)
    (app / "Spacefile").write_text(kind.spacefile())
    main_py = src / "main.py"
    version = 1
    main_py.write_text(kind.source(version))
    # Cold starts run from a copy outside the app, so they never wake the runtime's watcher.
    alone = tmp / "alone"
    alone.mkdir()
    (alone / "main.py").write_text(kind.source(version))
    cold_start(alone, args.poll_interval)  # discarded: it warms the page cache

    result = Result(kind.name, [])
    runtime = RuntimeProcess(app, tmp / "data", tmp)
    poller: Poller | None = None
    try:
        origin = runtime.wait_started(START_TIMEOUT_S)
        host, _, port = origin.removeprefix("http://").partition(":")
        poller = Poller(host, int(port))
        wait_for_answer(poller, str(version), ANSWER_TIMEOUT_S, args.poll_interval)
        poller.errors = 0  # only errors while reloading count
        for run in range(args.runs):
            # Interleaved with the saves (the runtime sits idle meanwhile), so both see the
            # same background load on a shared machine.
            cold = cold_start(alone, args.poll_interval)
            result.cold_ms.append(cold)
            seen = len(runtime.reloads)
            version += 1
            save(main_py, kind.source(version), atomic=not args.plain_write)
            saved = time.perf_counter()
            answered = wait_for_answer(poller, str(version), ANSWER_TIMEOUT_S, args.poll_interval)
            elapsed = (answered - saved) * 1e3
            result.save_ms.append(elapsed)
            if runtime.wait_reloads(seen + 1, STOP_TIMEOUT_S):
                logged = runtime.reloads[seen] * 1e3
                result.before_ms.append(elapsed - logged)
            time.sleep(SETTLE_S)
            print(
                f"  {kind.name} run {run + 1}: cold start {cold:.0f} ms, "
                f"save->new response {elapsed:.0f} ms",
                flush=True,
            )
        result.logged_ms = [s * 1e3 for s in runtime.reloads]
        result.reloads = len(runtime.reloads)
        result.errors = poller.errors
    finally:
        if poller is not None:
            poller.close()
        with no_interrupts():
            runtime.stop()
    return result


def table(results: list[Result], args: argparse.Namespace) -> str:
    """The results as a Markdown table, then the runtime's own figures and the verdict."""
    out = [
        "| micro kind | cold start median | save->new response median | worst "
        "| overhead (median - cold) | target (cold + 100 ms) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    notes = []
    for r in results:
        cold, med = statistics.median(r.cold_ms), statistics.median(r.save_ms)
        overhead = med - cold
        verdict = "met" if overhead <= TARGET_OVERHEAD_MS else "NOT met"
        out.append(
            f"| {r.kind} | {cold:.0f} ms | {med:.0f} ms | {max(r.save_ms):.0f} ms "
            f"| {overhead:+.0f} ms | {verdict} |"
        )
        logged = f"{statistics.median(r.logged_ms):.0f} ms" if r.logged_ms else "none seen"
        before = f"{statistics.median(r.before_ms):.0f} ms" if r.before_ms else "n/a"
        notes.append(
            f"{r.kind}: runtime's `reloaded in` median {logged}; save->reload start + switch "
            f"(save->answer minus that) median {before}; {r.reloads} reloads for "
            f"{len(r.save_ms)} saves; {r.errors} failed requests while reloading"
        )
    out.append("")
    out.extend(notes)
    out.append(
        "the aiohttp cold start runs main.py's own `web.run_app`; the runtime serves its "
        "`app` through the python engine's launcher"
    )
    write = "plain write" if args.plain_write else "atomic write (temp file + rename)"
    poll = f"every {args.poll_interval * 1e3:g} ms" if args.poll_interval > 0 else "back to back"
    out.append(
        f"runs: {args.runs}; {write}; polling {poll} on one keep-alive connection; "
        f"cores: {os.cpu_count()} (poller, runtime, old and new micro share them)"
    )
    return "\n".join(out)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so every `finally` stops the runtime and removes the temp dir.
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="saves (and cold starts) per kind")
    parser.add_argument(
        "--plain-write",
        action="store_true",
        help="write main.py in place instead of a temp file renamed over it",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.0,
        help="seconds between polls (default 0: as fast as possible)",
    )
    parser.add_argument(
        "--kind",
        choices=("stdlib", "aiohttp"),
        action="append",
        help="only this kind (repeatable; default both)",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    kinds = [k for k in KINDS if not args.kind or k.name.split()[0] in args.kind]
    signal.signal(signal.SIGTERM, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="space-dev-reload-"))
    results = []
    try:
        for i, kind in enumerate(kinds):
            results.append(measure(kind, tmp / str(i), args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(table(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
