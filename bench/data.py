"""Benchmark the Base emulator through space-dev's python `deta` module, over TLS, against the
wire's floor: the same client calling a do-nothing TLS handler.

Run: python bench/data.py [--items 1000,10000,100000] [--seconds 3] [--code DIR]

It starts two servers in their own processes, on uvloop as the runtime runs: the runtime's data
site (`DataSite`: the guarded runner, TLS, the project-key check, the Base handlers, SQLite in a
temporary data dir), and a plain aiohttp server on TLS with the same certificate whose one handler
answers `{"key": "k"}` at once (the floor). This process is the client, with the `deta` module a
python micro imports, its kept-alive connection and the environment a micro gets. It times, for
`--seconds` each: get against the floor; put, get, insert, update and delete of one item;
`put_many` of 25; and a filtered fetch (`{"name?pfx": "item99"}`, 100 a page) on Bases of each
`--items` size: the first page per second, and the seconds to page through every match. Each rate
is also given as a ratio of the floor's requests per second in the same run.

`--code DIR` runs the servers from another checkout of space-dev (the client stays this one's),
so the code before a change and after it are compared on the same machine, back to back.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROJECT_KEY = "bench0_benchsecret"
APP = "bench"

SERVER = r"""
import asyncio, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import uvloop
from aiohttp import web
from runtime.cloud.tls import ensure_tls, server_ssl_context

mode, data_dir = sys.argv[2], Path(sys.argv[3])

async def floor(request):
    await request.read()
    return web.json_response({"key": "k"})

async def main():
    if mode == "data":
        from runtime.cloud.site import DataSite
        from runtime.serve.client_limits import ClientLimits, OpenConnections
        limits = ClientLimits(lambda: 100 * 2**20, timeout=60.0,
                              connections=OpenConnections(1000))
        site = DataSite(data_dir, lambda: {"bench": "bench0_benchsecret"}, limits)
        await site.start()
        port = site.port
    else:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", floor)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        tcp = web.TCPSite(runner, "127.0.0.1", 0,
                          ssl_context=server_ssl_context(ensure_tls(data_dir / "tls")))
        await tcp.start()
        port = runner.addresses[0][1]
    print(port, flush=True)
    await asyncio.Event().wait()

uvloop.run(main())
"""


def start_server(code: Path, mode: str, data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(code), mode, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        raise SystemExit(f"the {mode} server did not start")
    return process, int(line)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux: /proc), or 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Rates of calls against the floor's, taken in alternating slices so that a busy machine
    slows both alike, and the CPU the server spent on each call (steadier still: other programs
    take wall time, not the server's CPU time)."""

    def __init__(self, seconds: float, floor_call: Callable[[int], Any], floor_pid: int) -> None:
        self.seconds = seconds
        self.floor_call = floor_call
        self.floor_pid = floor_pid
        self.server = 0
        self.results: dict[str, tuple[float, float | None, float | None]] = {}

    def rate(self, name: str, call: Callable[[int], Any], slices: int = 6) -> float:
        """Calls per second of `call(n)`, called back to back for `seconds` in all, in slices
        between which the floor is timed as long."""
        call(0)  # warm: connection made, code paths loaded
        self.floor_call(0)
        counts = {"call": 0, "floor": 0}
        spent = {"call": 0.0, "floor": 0.0}
        cpu = {"call": 0.0, "floor": 0.0}
        n = 1
        for _ in range(slices):
            for which, fn, pid in (
                ("call", call, self.server),
                ("floor", self.floor_call, self.floor_pid),
            ):
                before = cpu_seconds(pid)
                start = time.perf_counter()
                end = start + self.seconds / slices
                while time.perf_counter() < end:
                    fn(n)
                    n += 1
                    counts[which] += 1
                spent[which] += time.perf_counter() - start
                cpu[which] += cpu_seconds(pid) - before
        per_s = counts["call"] / spent["call"]
        floor = counts["floor"] / spent["floor"]
        self.results[name] = (per_s, per_s / floor, cpu["call"] / counts["call"] * 1e6)
        self.results.setdefault(FLOOR, (0.0, 1.0, 0.0))
        runs = self.__dict__.setdefault("_floor_runs", [])
        runs.append((floor, cpu["floor"] / counts["floor"] * 1e6))
        self.results[FLOOR] = (
            sum(r for r, _ in runs) / len(runs),
            1.0,
            sum(c for _, c in runs) / len(runs),
        )
        return per_s


def fill(base: Any, count: int) -> None:
    for first in range(0, count, 25):
        base.put_many(
            [
                {"key": f"k{j:07d}", "name": f"item{j % 1000}", "n": j}
                for j in range(first, min(first + 25, count))
            ]
        )


def fetch_all(base: Any, query: dict[str, Any]) -> int:
    found, last = 0, None
    while True:
        page = base.fetch(query, limit=1000, last=last)
        found += page.count
        last = page.last
        if last is None:
            return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--items",
        default="1000,10000,100000",
        help="sizes of the Bases fetched from, comma-separated",
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--code", type=Path, default=ROOT, help="the space-dev checkout whose servers are measured"
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.items.split(",")]
    with tempfile.TemporaryDirectory(prefix="space-dev-databench-") as temp:
        data_dir = Path(temp)
        data, port = start_server(args.code.resolve(), "data", data_dir)
        floor, floor_port = start_server(args.code.resolve(), "floor", data_dir)
        try:
            results = measure(args.seconds, data.pid, floor.pid, data_dir, port, floor_port, sizes)
        finally:
            for process in (data, floor):
                process.kill()
                process.wait()
    report(results, args)
    return 0


FLOOR = "floor: do-nothing TLS handler"


def measure(
    seconds: float,
    data_pid: int,
    floor_pid: int,
    data_dir: Path,
    port: int,
    floor_port: int,
    sizes: list[int],
) -> dict[str, tuple[float, float | None, float | None]]:
    os.environ.update(
        {
            "DETA_PROJECT_KEY": PROJECT_KEY,
            "DETA_BASE_HOST": f"127.0.0.1:{port}",
            "SSL_CERT_FILE": str(data_dir / "tls" / "bundle.pem"),
        }
    )
    sys.path.insert(0, str(ROOT / "runtime" / "in_micro" / "site"))
    import deta  # space-dev's own, as a python micro imports it

    project = deta.Deta()
    floor = project.Base("floor", host=f"127.0.0.1:{floor_port}")
    small = project.Base("small")
    meter = Meter(seconds, lambda n: floor.get("k"), floor_pid)
    meter.server = data_pid
    small.put_many([{"key": f"p{n}", "n": n} for n in range(25)])
    meter.rate("put", lambda n: small.put({"n": n}, f"p{n}"))
    meter.rate("get", lambda n: small.get(f"p{n % 1000}"))
    meter.rate("insert", lambda n: small.insert({"n": n}, f"i{n}-{time.time_ns()}"))
    meter.rate("update", lambda n: small.update({"n": n}, f"p{n % 25}"))
    meter.rate("delete", lambda n: small.delete(f"p{n}"))
    meter.rate(
        "put_many of 25 (requests)",
        lambda n: small.put_many([{"key": f"m{n}-{j}", "n": j} for j in range(25)]),
    )
    query = {"name?pfx": "item99"}
    for size in sizes:
        base = project.Base(f"n{size}")
        fill(base, size)
        meter.rate(
            f"fetch first page, {size:,} items", lambda n, base=base: base.fetch(query, limit=100)
        )
        start = time.perf_counter()
        found = fetch_all(base, query)
        meter.results[f"fetch all {found:,} of {size:,}, ms"] = (
            (time.perf_counter() - start) * 1000,
            None,
            None,
        )
    return meter.results


def report(
    results: dict[str, tuple[float, float | None, float | None]], args: argparse.Namespace
) -> None:
    print(f"Base through the python deta module over TLS; servers from {args.code}")
    print(f"{'call':36} {'per s':>9} {'x floor':>8} {'server CPU us/call':>19}")
    for name, (value, ratio, cpu) in results.items():
        shown = "" if ratio is None else f"{ratio:8.2f}"
        used = "" if cpu is None else f"{cpu:19,.0f}"
        print(f"{name:36} {value:9,.0f} {shown:>8} {used}")


if __name__ == "__main__":
    raise SystemExit(main())
