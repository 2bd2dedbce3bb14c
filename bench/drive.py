"""Times a Drive upload (3 chunked parts) and download of one big file, over HTTP and HTTPS.

`python bench/drive.py [--size-mib 25] [--runs 3]` (about ten seconds)

It serves the Drive API (`handle_drive` over a `DriveStore` in a temp folder) from a child
process, first over plain HTTP, then over HTTPS with the local CA, and from this process uploads
one random file as a chunked upload in 10 MiB parts (as the SDKs do), then downloads it as a
stream. The table gives the best upload and download MiB/s of the runs and how much the server's
peak RSS (`VmHWM`, Linux only) grew over them: it should stay a few MiB and not grow with
`--size-mib`, since bodies stream between socket and disk and are never held whole. Upload
includes the fsyncs that make a put crash-safe, so it moves with the disk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote

import aiohttp
from aiohttp import web

MiB = 1024 * 1024
PART = 10 * MiB


async def serve(root: Path, use_tls: bool) -> None:
    """The server half, in its own process so its memory is measured alone."""
    from runtime.cloud.drive.handlers import handle_drive
    from runtime.cloud.drive.store import DriveStore
    from runtime.cloud.tls import ensure_tls, server_ssl_context

    store = DriveStore(root / "drive")
    context = server_ssl_context(ensure_tls(root / "tls")) if use_tls else None

    async def route(request: web.Request) -> web.StreamResponse:
        match = re.fullmatch(r"/v1/([^/]+)/([^/]+)(.*)", request.rel_url.raw_path)
        if match is None:
            raise web.HTTPNotFound()
        return await handle_drive(request, store, unquote(match[2]), match[3])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", route)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def one_run(base: str, data: bytes, context: ssl.SSLContext | bool) -> tuple[float, float]:
    async with aiohttp.ClientSession() as http:
        began = time.perf_counter()
        async with http.post(f"{base}/uploads?name=big.bin", ssl=context) as resp:
            upload = (await resp.json())["upload_id"]
        for number, start in enumerate(range(0, len(data), PART), start=1):
            part = data[start : start + PART]
            url = f"{base}/uploads/{upload}/parts?name=big.bin&part={number}"
            async with http.post(url, data=part, ssl=context) as resp:
                assert resp.status == 200, await resp.text()
        async with http.patch(f"{base}/uploads/{upload}?name=big.bin", ssl=context) as resp:
            assert resp.status == 200
        up = time.perf_counter() - began
        began = time.perf_counter()
        received = 0
        async with http.get(f"{base}/files/download?name=big.bin", ssl=context) as resp:
            async for chunk in resp.content.iter_chunked(256 * 1024):
                received += len(chunk)
        assert received == len(data)
        return up, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=25)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--tls", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(Path(args.serve), args.tls))
        return
    data = os.urandom(args.size_mib * MiB)
    print(f"{args.size_mib} MiB file, best of {args.runs}; server peak RSS growth in MiB")
    print(f"{'':6} {'upload MiB/s':>13} {'download MiB/s':>15} {'server RSS +':>13}")
    for scheme in ("http", "https"):
        with tempfile.TemporaryDirectory() as folder:
            argv = [sys.executable, __file__, "--serve", folder]
            server = subprocess.Popen(
                argv + (["--tls"] if scheme == "https" else []), stdout=subprocess.PIPE, text=True
            )
            try:
                assert server.stdout is not None
                port = int(server.stdout.readline())
                context: ssl.SSLContext | bool = True
                if scheme == "https":
                    context = ssl.create_default_context(cafile=f"{folder}/tls/bundle.pem")
                base = f"{scheme}://localhost:{port}/v1/bench/files"
                asyncio.run(one_run(base, b"warm up", context))
                before = peak_rss_kib(server.pid)
                runs = [asyncio.run(one_run(base, data, context)) for _ in range(args.runs)]
                grown = (peak_rss_kib(server.pid) - before) / 1024
            finally:
                server.terminate()
                server.wait()
        up = args.size_mib / min(r[0] for r in runs)
        down = args.size_mib / min(r[1] for r in runs)
        print(f"{scheme:6} {up:13.0f} {down:15.0f} {grown:13.1f}")


if __name__ == "__main__":
    main()
