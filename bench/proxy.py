"""Benchmark the runtime's proxy: the same load straight to a micro and through `space-dev up`.

Run: python bench/proxy.py [--duration 5] [--warmup 1] [--repeat 1] [--python-load] [--no-nginx]
Prints one row per scenario (13-byte answers at 32 connections: public, with a session, with an
API key; 1 MiB answers at 8), for the runtime on uvloop and on the plain asyncio loop. Each row
holds, measured in turns in the same run: the micro direct, nginx in front of it (when
installed), the runtime with aiohttp's client upstream (the proxy before it had its own), and the
runtime with its own client.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from runtime.supervisor.environment import GATE_PROOF_HEADER as PROOF_HEADER

SPACEFILE = """\
v: 0
app_name: bench
micros:
  - name: api
    src: ./api
    engine: python3.9
    run: python main.py
    primary: true
    public: true
  - name: private
    src: ./api
    engine: python3.9
    run: python main.py
    presets:
      api_keys: true
"""

MICRO = """\
import os

from aiohttp import web

PORT = os.environ["PORT"]
SMALL = b"Hello, world!"  # 13 bytes
BIG = bytes(range(256)) * 4096  # 1 MiB, built once
# Where it listens and the gate's proof its guard wants, for the direct and nginx loads (a bench
# micro only: a real one never shows the proof).
HEADERS = {"X-Micro-Port": PORT, "X-Micro-Proof": os.environ.get("SPACE_DEV_GATE_PROOF", "")}


async def small(request):
    return web.Response(body=SMALL, headers=HEADERS)


async def big(request):
    return web.Response(body=BIG, headers=HEADERS)


app = web.Application()
app.router.add_get("/small", small)
app.router.add_get("/big", big)
web.run_app(app, host="127.0.0.1", port=int(PORT), access_log=None, print=None)
"""

# Put first on PYTHONPATH, this makes `import uvloop` fail, so the runtime keeps asyncio's loop.
NO_UVLOOP = 'raise ImportError("uvloop disabled by bench/proxy.py")\n'

READY_RE = re.compile(r"ready: \S+ (http://\S+?)/?(?:\s|$)")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Scenario:
    """One load shape: a path, a connection count."""

    name: str
    path: str  # on the micro
    connections: int
    mount: str = ""  # where the micro is mounted on the runtime's origin
    credential: str = ""  # "key" (an API key) or "session" (the owner's cookie), to /private


@dataclass(frozen=True)
class Result:
    """What one load run measured; latencies in milliseconds."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int = 0


SCENARIOS = (
    Scenario("13 B public", "/small", 32),
    Scenario("13 B session", "/small", 32, mount="/private", credential="session"),
    Scenario("13 B API key", "/small", 32, mount="/private", credential="key"),
    Scenario("1 MiB public", "/big", 8),
)
KEY_HEADER = "X-Space-App-Key"
PASSWORD = "bench password"
# The runtime's upstream client: its own ("new"), or aiohttp's ("old": the proxy before it had
# its own, rebuilt by bench/aiohttp_client.py around the same gate and relay).
CLIENTS = ("old", "new")
COMMANDS = {
    "new": [sys.executable, "-m", "runtime"],
    "old": [sys.executable, str(Path(__file__).resolve().with_name("aiohttp_client.py"))],
}


# --- load generators ---------------------------------------------------------------------------

_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"unexpected wrk time {text!r}")
    return float(match[1]) * _UNIT_MS[match[2]]


def run_wrk(
    url: str, connections: int, duration: float, headers: dict[str, str], threads: int = 1
) -> Result:
    """One wrk run; its Requests/sec and the 50% and 99% lines of its latency distribution."""
    threads = min(threads, connections)
    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            *header_args,
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if rps is None or p50 is None or p99 is None or count is None:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|timeout):?\s*(\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write) (\d+)", out))
    return Result(float(rps[1]), _ms(p50[1]), _ms(p99[1]), int(count[1]), errors)


def run_python(url: str, connections: int, duration: float, headers: dict[str, str]) -> Result:
    """The fallback without wrk: `connections` workers over one aiohttp session."""
    import aiohttp

    async def main() -> Result:
        latencies: list[float] = []
        errors = 0
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            deadline = time.perf_counter() + duration

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < deadline:
                    start = time.perf_counter()
                    try:
                        async with session.get(url, headers=headers) as resp:
                            await resp.read()
                            if resp.status >= 400:
                                errors += 1
                    except aiohttp.ClientError:
                        errors += 1
                        continue
                    latencies.append(time.perf_counter() - start)

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - began
        latencies.sort()
        if not latencies:
            return Result(0.0, float("nan"), float("nan"), 0, errors)

        def pct(q: float) -> float:
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3

        return Result(len(latencies) / elapsed, pct(0.50), pct(0.99), len(latencies), errors)

    return asyncio.run(main())


# --- the runtime under test -------------------------------------------------------------------


class RuntimeProcess:
    """`space-dev up` on the bench app, its output drained by a thread so it never blocks."""

    def __init__(
        self, command: list[str], app_dir: Path, data_dir: Path, env: dict[str, str], cwd: Path
    ) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=200)
        self.data_dir = data_dir
        self.origin = ""
        self._ready = threading.Event()
        # A session of its own: Ctrl-C reaches only this script, which then stops the runtime
        # in order (SIGINT first) instead of both racing to exit.
        self.proc = subprocess.Popen(
            [
                *command,
                "up",
                str(app_dir),
                "--port",
                "0",
                "--data-dir",
                str(data_dir),
                "--no-reload",
                "--no-schedule",
            ],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            match = READY_RE.search(line)
            if match and not self._ready.is_set():
                self.origin = match[1]
                self._ready.set()

    def wait_ready(self, timeout: float) -> str:
        """The origin from the `ready:` line; fails with the runtime's output if none came."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self.lines)
                raise RuntimeError(f"space-dev did not become ready:\n{tail}")
        return self.origin

    def uses_uvloop(self) -> bool | None:
        """Whether uvloop's extension is mapped into the runtime (None: cannot tell here)."""
        try:
            maps = Path(f"/proc/{self.proc.pid}/maps").read_text()
        except OSError:
            return None
        return "uvloop/loop." in maps  # the compiled loop, e.g. uvloop/loop.cpython-311-....so

    def cpu_seconds(self) -> float | None:
        """CPU time the runtime process itself used so far, not its micro (None: unknown here)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGINT (the runtime stops its micros), then SIGKILL on the group after a deadline."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                # The micros run in sessions of their own: find them before their parent dies.
                for pid in [self.proc.pid, *_descendants(self.proc.pid)]:
                    with contextlib.suppress(OSError):
                        os.killpg(os.getpgid(pid), signal.SIGKILL)
                self.proc.wait()


def _descendants(root: int) -> list[int]:
    """Every process below `root`, read from /proc (empty where there is none)."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, ppid in parent.items() if ppid in frontier]
        found += children
        frontier = children
    return found


@contextlib.contextmanager
def running(tmp: Path, *, uvloop: bool, client: str) -> Iterator[RuntimeProcess]:
    """A runtime serving the bench app from `tmp`, stopped on the way out whatever happens."""
    env = dict(os.environ, SPACE_DEV_PASSWORD=PASSWORD)
    if not uvloop:
        blocker = tmp / "no_uvloop"
        blocker.mkdir(exist_ok=True)
        (blocker / "uvloop.py").write_text(NO_UVLOOP)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(blocker), env.get("PYTHONPATH", "")) if p
        )
    data_dir = tmp / f"data-{'uvloop' if uvloop else 'asyncio'}-{client}"
    app = tmp / f"app-{client}"
    if not app.exists():
        shutil.copytree(tmp / "app", app)
    runtime = RuntimeProcess(COMMANDS[client], app, data_dir, env, tmp)
    try:
        yield runtime
    finally:
        runtime.stop()


NGINX_CONF = """\
worker_processes 1;
daemon off;
user root root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream micro {{ server 127.0.0.1:{micro}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://micro;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header {proof_header} "{proof}";
            # The runtime holds up to 512 KiB of a body per connection: so does nginx here.
            proxy_buffer_size 64k;
            proxy_buffers 8 64k;
            proxy_busy_buffers_size 128k;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx_in_front(tmp: Path, micro: int, proof: dict[str, str]) -> Iterator[str | None]:
    """nginx (one worker, keep-alive upstream) proxying to the micro; None if not installed."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        yield None
        return
    folder = tmp / f"nginx-{micro}"
    folder.mkdir(exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (folder / "nginx.conf").write_text(
        NGINX_CONF.format(
            dir=folder, micro=micro, port=port, proof_header=PROOF_HEADER, proof=proof[PROOF_HEADER]
        )
    )
    proc = subprocess.Popen(
        [binary, "-c", str(folder / "nginx.conf"), "-p", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    yield None
                    return
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def write_app(tmp: Path) -> None:
    """The one-micro app: an aiohttp server answering /small and /big."""
    api = tmp / "app" / "api"
    api.mkdir(parents=True)
    (tmp / "app" / "Spacefile").write_text(SPACEFILE)
    (api / "main.py").write_text(MICRO)


def micro_port(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    """The micro's own port and the gate's proof its guard wants (as the header to send), which
    it reports (asked through the runtime)."""
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return int(resp.headers["X-Micro-Port"]), {PROOF_HEADER: resp.headers["X-Micro-Proof"]}


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


def create_key(runtime: RuntimeProcess) -> str:
    """An API key for the private micro, made with the CLI as a user would."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime",
            "keys",
            "create",
            "--name",
            "bench",
            "--app",
            "bench",
            "--data-dir",
            str(runtime.data_dir),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=runtime.data_dir.parent,
    )
    return str(json.loads(done.stdout)["api_key"])


# --- the matrix --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table: every path in front of the same micro, measured in turns."""

    loop: str
    scenario: Scenario
    direct: Result
    nginx: Result | None
    via: dict[str, Result]  # by client
    cpu_us: dict[str, float | None]  # the runtime's own CPU time per request it proxied


def _median(results: list[Result]) -> Result:
    return sorted(results, key=lambda r: r.rps)[len(results) // 2]


def measure(tmp: Path, args: argparse.Namespace) -> list[Row]:
    """Every scenario: direct, nginx, the old client and the new, on uvloop then asyncio."""
    load = run_python if args.python_load else functools.partial(run_wrk, threads=args.wrk_threads)
    rows: list[Row] = []
    loops = [True, False] if args.loop == "both" else [args.loop == "uvloop"]
    for use_uvloop in loops:
        loop = "uvloop" if use_uvloop else "asyncio"
        with contextlib.ExitStack() as stack:
            runtimes = {
                c: stack.enter_context(running(tmp, uvloop=use_uvloop, client=c)) for c in CLIENTS
            }
            origins, credentials = {}, {}
            for client, runtime in runtimes.items():
                origins[client] = runtime.wait_ready(START_TIMEOUT_S)
                seen = runtime.uses_uvloop()
                if seen is not None and seen != use_uvloop:
                    raise RuntimeError(f"wanted the runtime on {loop}, but uvloop loaded: {seen}")
                credentials[client] = {
                    "key": {KEY_HEADER: create_key(runtime)},
                    "session": {"Cookie": sign_in(origins[client])},
                    "": {},
                }
            print(f"runtime on {loop}: new {origins['new']}/, old {origins['old']}/", flush=True)
            public_port, public_proof = micro_port(origins["new"] + "/small", {})
            nginx = (
                stack.enter_context(nginx_in_front(tmp, public_port, public_proof))
                if args.nginx
                else None
            )
            for sc in SCENARIOS:
                if args.only and args.only not in sc.name:
                    continue
                urls = {c: origins[c] + sc.mount + sc.path for c in CLIENTS}
                headers = {c: credentials[c][sc.credential] for c in CLIENTS}
                port, proof = micro_port(urls["new"], headers["new"])
                direct_url = f"http://127.0.0.1:{port}{sc.path}"
                nginx_url = nginx + sc.path if nginx and not sc.mount else None
                if args.warmup > 0:
                    load(direct_url, sc.connections, args.warmup, proof)
                    if nginx_url:
                        load(nginx_url, sc.connections, args.warmup, {})
                    for c in CLIENTS:
                        load(urls[c], sc.connections, args.warmup, headers[c])
                directs, nginxes = [], []
                vias: dict[str, list[Result]] = {c: [] for c in CLIENTS}
                cpus: dict[str, list[float]] = {c: [] for c in CLIENTS}
                # In turns, so a neighbour's burst of load spoils all of them alike.
                for _ in range(args.repeat):
                    directs.append(load(direct_url, sc.connections, args.duration, proof))
                    if nginx_url:
                        nginxes.append(load(nginx_url, sc.connections, args.duration, {}))
                    for c in CLIENTS:
                        before = runtimes[c].cpu_seconds()
                        result = load(urls[c], sc.connections, args.duration, headers[c])
                        vias[c].append(result)
                        after = runtimes[c].cpu_seconds()
                        if before is not None and after is not None and result.requests:
                            cpus[c].append((after - before) / result.requests * 1e6)
                row = Row(
                    loop,
                    sc,
                    _median(directs),
                    _median(nginxes) if nginxes else None,
                    {c: _median(vias[c]) for c in CLIENTS},
                    {c: sorted(cpus[c])[len(cpus[c]) // 2] if cpus[c] else None for c in CLIENTS},
                )
                rows.append(row)
                shown = ", ".join(f"{row.via[c].rps:,.0f} {c} client" for c in CLIENTS)
                front = f", {row.nginx.rps:,.0f} nginx" if row.nginx else ""
                print(
                    f"  {sc.name} c{sc.connections}: {row.direct.rps:,.0f} direct{front}, {shown}",
                    flush=True,
                )
    return rows


def table(rows: list[Row], tool: str) -> str:
    """The results as a Markdown table, then the machine and the ratios."""
    out = [
        "| scenario | direct | nginx | old client | new client | new / direct | new / nginx "
        "| new / old | p99 ms direct / nginx / old / new | CPU us/req old / new |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        d, n, old, new = r.direct, r.nginx, r.via["old"], r.via["new"]
        results = [d, *([n] if n else []), old, new]
        errors = sum(x.errors for x in results)
        errs = f" ({errors} errors)" if errors else ""
        cpu = " / ".join("n/a" if r.cpu_us[c] is None else f"{r.cpu_us[c]:,.0f}" for c in CLIENTS)
        p99 = " / ".join("-" if x is None else f"{x.p99_ms:.2f}" for x in (d, n, old, new))
        out.append(
            f"| {r.scenario.name}, c{r.scenario.connections}, {r.loop}{errs} "
            f"| {d.rps:,.0f} | {'-' if n is None else f'{n.rps:,.0f}'} | {old.rps:,.0f} "
            f"| {new.rps:,.0f} | {new.rps / d.rps:.2f}x "
            f"| {'-' if n is None else f'{new.rps / n.rps:.2f}x'} | {new.rps / old.rps:.2f}x "
            f"| {p99} | {cpu} |"
        )
    out.append("")
    out.append(
        f"cores: {os.cpu_count()}; load: {tool}; the load generator, nginx, the runtimes "
        "and the micro share them. req/s; nginx: one worker, keep-alive upstream, 8x64k "
        "buffers; it is measured on public rows only"
    )
    return "\n".join(out)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so every `finally` stops the runtime and removes the temp dir.
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per URL")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each pair this many times and keep the median",
    )
    parser.add_argument(
        "--python-load",
        action="store_true",
        help="use the aiohttp load generator even when wrk is installed",
    )
    parser.add_argument(
        "--no-nginx",
        dest="nginx",
        action="store_false",
        help="leave nginx out even when it is installed",
    )
    parser.add_argument(
        "--wrk-threads",
        type=int,
        default=1,
        help="wrk's threads (-t); the figures asked for were taken with 1",
    )
    parser.add_argument(
        "--only", default="", help='run only the scenarios whose name holds this text ("1 MiB")'
    )
    parser.add_argument(
        "--loop",
        choices=("both", "uvloop", "asyncio"),
        default="both",
        help="the runtime's event loop(s)",
    )
    args = parser.parse_args()
    if not args.python_load and shutil.which("wrk") is None:
        args.python_load = True
    tool = "aiohttp workers" if args.python_load else f"wrk -t{args.wrk_threads}"
    signal.signal(signal.SIGTERM, _interrupt)
    # Started in the background SIGINT may be ignored; Ctrl-C must still clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tmp = Path(tempfile.mkdtemp(prefix="space-dev-bench-"))
    try:
        write_app(tmp)
        rows = measure(tmp, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(table(rows, tool))
    return 0


if __name__ == "__main__":
    sys.exit(main())
