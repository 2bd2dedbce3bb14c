"""Bodies stream both ways without being held in memory; WebSockets pass through the runtime."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from tests.integration.conftest import run_up
from tests.integration.micros import PY_AIOHTTP, write_app

MIB = 1 << 20


@pytest.fixture(scope="module")
def streaming(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("streaming")
    app = write_app(
        root / "app",
        """
        v: 0
        micros:
          - name: io
            src: .
            engine: python3.9
            public: true
        """,
        {"main.py": PY_AIOHTTP},  # served by the legacy default: main.py's `app`
    )
    # Past the default cap (100 MiB): the uploads below are 1 GiB and 256 MiB.
    (root / "space-dev.toml").write_text('[runtime]\nmax_body_size = "2 GiB"\n')
    up = run_up(app, "--no-reload")
    try:
        up.wait_ready(60)
        yield up
    finally:
        up.stop()


def _rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def test_large_upload_streams_with_its_content_length(streaming) -> None:
    size = 1024 * MIB
    block = b"u" * MIB
    before = _rss_peak_kib(streaming.proc.pid)

    async def body():
        for _ in range(size // MIB):
            yield block

    async with aiohttp.ClientSession() as session:
        async with session.post(
            streaming.url + "/upload",
            data=body(),
            headers={"Content-Length": str(size)},
            timeout=aiohttp.ClientTimeout(total=120),
        ) as resp:
            assert resp.status == 200
            result = await resp.json()
    assert result == {"received": size, "content_length": str(size), "chunked": False}
    grown_mib = (_rss_peak_kib(streaming.proc.pid) - before) / 1024
    assert grown_mib < 16, f"the runtime's peak memory grew by {grown_mib:.1f} MiB"


async def test_chunked_upload_reaches_the_micro_with_its_length(streaming) -> None:
    """Collected first, then sent with `Content-Length`: no micro can misread chunked framing."""

    async def body():
        for _ in range(8):
            yield b"c" * 1000

    async with aiohttp.ClientSession() as session:
        async with session.post(streaming.url + "/upload", data=body()) as resp:
            result = await resp.json()
    assert result == {"received": 8000, "content_length": "8000", "chunked": False}


async def test_large_chunked_upload_is_spooled_with_flat_memory(streaming) -> None:
    size = 256 * MIB
    block = b"k" * MIB
    before = _rss_peak_kib(streaming.proc.pid)

    async def body():
        for _ in range(size // MIB):
            yield block

    async with aiohttp.ClientSession() as session:
        async with session.post(
            streaming.url + "/upload", data=body(), timeout=aiohttp.ClientTimeout(total=120)
        ) as resp:
            result = await resp.json()
    assert result == {"received": size, "content_length": str(size), "chunked": False}
    grown_mib = (_rss_peak_kib(streaming.proc.pid) - before) / 1024
    assert grown_mib < 16, f"the runtime's peak memory grew by {grown_mib:.1f} MiB"


async def test_large_download_streams(streaming) -> None:
    before = _rss_peak_kib(streaming.proc.pid)
    received = 0
    async with aiohttp.ClientSession() as session:
        async with session.get(streaming.url + "/download?mib=256") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Length"] == str(256 * MIB)
            async for chunk in resp.content.iter_chunked(MIB):
                received += len(chunk)
    assert received == 256 * MIB
    grown_mib = (_rss_peak_kib(streaming.proc.pid) - before) / 1024
    assert grown_mib < 16, f"the runtime's peak memory grew by {grown_mib:.1f} MiB"


async def test_websocket_passes_through(streaming) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(streaming.url + "/ws", protocols=("chat",)) as ws:
            assert ws.protocol == "chat"
            await ws.send_str("hello")
            assert (await ws.receive(timeout=5)).data == "echo:hello"
            await ws.send_bytes(b"abc")
            assert (await ws.receive(timeout=5)).data == b"cba"
            await ws.close()


async def test_websocket_to_missing_route_is_refused(streaming) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(streaming.url + "/nope")
    assert err.value.status == 404


async def test_many_concurrent_requests(streaming) -> None:
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> int:
            async with session.post(streaming.url + "/upload", data=b"x" * i) as resp:
                return json.loads(await resp.read())["received"]

        results = await asyncio.gather(*(one(i) for i in range(200)))
    assert results == list(range(200))
