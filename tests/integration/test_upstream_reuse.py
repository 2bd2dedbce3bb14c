"""A micro that closes its kept-alive connection right after answering (uvicorn does after an
error) costs the next request nothing, whatever its method, through the whole runtime."""

from __future__ import annotations

import aiohttp
import pytest

from tests.integration.conftest import run_up
from tests.integration.micros import write_app

STARLETTE_500 = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

orders = []


async def boom(request):
    # Starlette answers 500, then uvicorn logs the error and closes the connection.
    raise RuntimeError("boom")


async def page(request):
    return PlainTextResponse("page")


async def order(request):
    orders.append((await request.body()).decode())
    return PlainTextResponse("ordered")


async def seen(request):
    return JSONResponse(orders)


app = Starlette(routes=[
    Route("/boom", boom),
    Route("/page", page),
    Route("/order", order, methods=["POST"]),
    Route("/orders", seen),
])
"""


async def test_the_request_after_a_500_that_closed_the_connection_is_answered(tmp_path) -> None:
    pytest.importorskip("uvicorn")
    pytest.importorskip("starlette")
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: web
            src: .
            engine: python3.9
            run: uvicorn main:app
            public: true
        """,
        {"main.py": STARLETTE_500},
    )
    up = run_up(app, "--no-reload")
    try:
        up.wait_ready(30)
        # One connection to the runtime, as a browser tab's: each request follows the last
        # answer at once, as the next fetch of a page does.
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            failed = []
            for i in range(40):
                for method, path, body in (("GET", "/page", None), ("POST", "/order", str(i))):
                    async with session.get(up.url + "/boom") as resp:
                        assert resp.status == 500
                        await resp.read()
                    async with session.request(method, up.url + path, data=body) as resp:
                        if resp.status != 200:
                            failed.append(f"{method} {path} #{i}: {resp.status}")
                        await resp.read()
            assert not failed, f"{len(failed)} of 80 failed: {failed[:5]}"
            async with session.get(up.url + "/orders") as resp:
                assert await resp.json() == [str(i) for i in range(40)]  # each once
    finally:
        up.stop()
