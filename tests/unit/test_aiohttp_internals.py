"""The parts of aiohttp below its documented API that the runtime's servers and proxy rely on,
each checked to exist with the shape used, so that an aiohttp upgrade that changes one fails
here, naming what to look at, instead of quietly weakening a limit or a refusal.

- `web.AppRunner._make_server()`: a coroutine returning the `web.Server`, whose
  `request_handler` `GuardedRunner._make_server` replaces with its own first step
  (serve/client_limits.py, serve/front.py); each connection's `RequestHandler` must read it
  when the connection is made, not when the server is;
- `web.AppRunner.server`, which a site calls with no argument to make each connection's
  protocol: `GuardedRunner.server` returns a factory of `GuardedConnection` in its place;
- `web.Server()` returning aiohttp's `RequestHandler`, an asyncio protocol that
  `GuardedConnection` wraps, forwarding connection_made, data_received, eof_received,
  connection_lost, pause_writing and resume_writing; `request.transport.get_protocol()` is
  then the wrapper (`GuardedConnection.of`), so aiohttp must not swap the transport's protocol;
- `RequestHandler`'s `keepalive_timeout`, counted from the connection's start: it closes a
  connection that sends no request head in time;
- `StreamReader.total_bytes` (the body bytes received, checked against the cap on every
  read), `set_exception` (what the body's reader then raises: `BodyTooLarge`), `is_eof` and
  `feed_eof`;
- aiohttp's flow control pausing the socket itself when a body is not read (the transport's
  `pause_reading`): the stall check reads `transport.is_reading()` to tell a client that
  stopped sending from a runtime that stopped reading;
- `request.writer.output_size`, the bytes of the answer written so far, which is 0 until an
  answer starts (`GuardedConnection.refuse`) and which the gate sets back to 0 after writing a
  `100 Continue` itself (serve/gate.py);
- `ClientSession._retry_connection`, which the proxy sets to False (serve/proxy.py): without it
  aiohttp's client sends an idempotent request again when the connection drops, though the
  micro may have done the work already.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import time

import aiohttp
import pytest
from aiohttp import web, web_protocol
from aiohttp.base_protocol import BaseProtocol

from runtime.serve.client_limits import (
    ClientLimits,
    GuardedConnection,
    GuardedRunner,
    OpenConnections,
)
from runtime.serve.proxy import Proxy

UPGRADE = "aiohttp changed under the runtime: "


def _limits(timeout: float = 30.0) -> ClientLimits:
    return ClientLimits(lambda: 64 << 20, timeout=timeout, connections=OpenConnections(16))


def _refusal(request: web.BaseRequest, message: str) -> web.StreamResponse:
    return web.Response(status=413, text=message)


async def test_the_runner_builds_its_server_in_a_coroutine_we_can_wrap() -> None:
    make = getattr(web.AppRunner, "_make_server", None)
    assert make is not None and inspect.iscoroutinefunction(make), (
        UPGRADE + "web.AppRunner._make_server is gone or no coroutine; "
        "GuardedRunner._make_server (serve/client_limits.py) overrides it to put the limits and "
        "the front step before every request"
    )
    assert isinstance(inspect.getattr_static(web.AppRunner, "server"), property), (
        UPGRADE + "web.AppRunner.server is no property any more; GuardedRunner.server "
        "(serve/client_limits.py) returns the factory of guarded connections in its place"
    )
    params = inspect.signature(web_protocol.RequestHandler.__init__).parameters
    assert "keepalive_timeout" in params, (
        UPGRADE + "RequestHandler takes no keepalive_timeout; GuardedRunner passes it to close "
        "connections that send no request head in time (serve/client_limits.py)"
    )


async def test_the_request_handler_is_read_per_connection_and_is_a_plain_protocol() -> None:
    async def original(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response()

    async def replaced(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response()

    server = web.Server(original)
    server.request_handler = replaced  # as GuardedRunner._make_server does, after it is made
    protocol = server()
    assert isinstance(protocol, web_protocol.RequestHandler), (
        UPGRADE + "web.Server() no longer makes a RequestHandler; GuardedConnection "
        "(serve/client_limits.py) wraps what it makes"
    )
    for method in (
        "connection_made",
        "data_received",
        "eof_received",
        "connection_lost",
        "pause_writing",
        "resume_writing",
    ):
        assert callable(getattr(protocol, method, None)), (
            UPGRADE + f"RequestHandler.{method} is gone; GuardedConnection forwards it"
        )
    assert getattr(protocol, "_request_handler", None) is replaced, (
        UPGRADE + "a connection no longer takes web.Server.request_handler when it is made; "
        "GuardedRunner._make_server replaces it after the server is built, so the limits and "
        "the front step (serve/front.py) would be skipped"
    )


async def test_a_site_makes_each_protocol_with_the_runners_server_and_keeps_it() -> None:
    seen: dict[str, object] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        seen["guarded"] = GuardedConnection.of(request)
        writer = request.writer
        seen["before"] = writer.output_size
        await writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        seen["after_continue"] = writer.output_size
        writer.output_size = 0  # as the gate does after its own 100 Continue
        seen["reset"] = writer.output_size
        response = web.StreamResponse()
        response.content_length = 2
        await response.prepare(request)
        await response.write(b"ok")
        seen["answer"] = writer.output_size
        await response.write_eof()
        return response

    async def upload(request: web.Request) -> web.StreamResponse:
        # Nobody reads the body yet: aiohttp's flow control must pause the socket itself.
        transport = request.transport
        assert transport is not None
        deadline = time.monotonic() + 5
        while transport.is_reading() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        seen["paused"] = not transport.is_reading()
        while await request.content.readany():
            pass
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handler)
    app.router.add_post("/upload", upload)
    runner = GuardedRunner(app, _limits(timeout=0.5), _refusal)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"ok"), 5)
        assert b"200 OK" in head
        writer.close()

        assert isinstance(seen["guarded"], GuardedConnection), (
            UPGRADE + "a site no longer makes its connections with runner.server, or aiohttp "
            "changed the transport's protocol: request.transport.get_protocol() is not the "
            "GuardedConnection, so no limit on bodies or slow clients applies "
            "(serve/client_limits.py)"
        )
        assert seen["before"] == 0 and seen["reset"] == 0, (
            UPGRADE + "request.writer.output_size is not 0 before an answer, or cannot be set "
            "back to 0; GuardedConnection.refuse and the gate's 100 Continue rely on it"
        )
        after_continue, answer = seen["after_continue"], seen["answer"]
        assert isinstance(after_continue, int) and after_continue > 0, (
            UPGRADE + "request.writer.output_size does not count the bytes written"
        )
        assert isinstance(answer, int) and answer > 0

        size = 8 << 20
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        writer.write(b"u" * size)
        assert b"200 OK" in await asyncio.wait_for(reader.readuntil(b"ok"), 10)
        writer.close()
        assert seen["paused"], (
            UPGRADE + "a request body nobody reads no longer pauses the socket "
            "(transport.is_reading() stays True); the stall check "
            "(GuardedConnection._check_stall) reads it to tell a stalled client from a runtime "
            "that is behind"
        )

        # A connection that sends nothing is closed after the keep-alive timeout, counted
        # from its start: the runtime's timeout for a request head.
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        started = time.monotonic()
        try:
            assert await asyncio.to_thread(idle.recv, 1) == b"", (
                UPGRADE + "a connection that sends no request head is not closed"
            )
        finally:
            idle.close()
        assert time.monotonic() - started < 4, (
            UPGRADE + "RequestHandler's keepalive_timeout no longer counts from the "
            "connection's start; the runtime's timeout for a request head relies on it"
        )
    finally:
        await runner.cleanup()


async def test_the_body_stream_counts_bytes_and_raises_what_it_is_given() -> None:
    loop = asyncio.get_running_loop()
    body = aiohttp.StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    body.feed_data(b"x" * 10)
    assert body.total_bytes == 10, (
        UPGRADE + "StreamReader.total_bytes no longer counts the bytes received; the cap on "
        "request bodies (GuardedConnection.data_received) reads it"
    )
    assert not body.is_eof()
    error = ValueError("over the cap")
    body.set_exception(error)
    with pytest.raises(ValueError) as raised:
        await body.read(100)
    assert raised.value is error, (
        UPGRADE + "StreamReader.set_exception no longer makes its reader raise that exception; "
        "the handler of a body over the cap must get BodyTooLarge"
    )
    other = aiohttp.StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    other.feed_eof()
    assert other.is_eof()


async def test_the_client_session_has_the_retry_switch_the_proxy_turns_off() -> None:
    proxy = Proxy()
    await proxy.start()
    try:
        assert hasattr(proxy.session, "_retry_connection"), (
            UPGRADE + "ClientSession._retry_connection is gone: see whether aiohttp's client "
            "still sends an idempotent request again when its connection drops, and how to stop "
            "it (Proxy.start, serve/proxy.py)"
        )
        assert proxy.session._retry_connection is False
        assert "_retry_connection" in inspect.getsource(aiohttp.ClientSession._request), (
            UPGRADE + "ClientSession._request no longer reads _retry_connection: setting it "
            "may not stop the client's own retry any more (Proxy.start, serve/proxy.py)"
        )
    finally:
        await proxy.close()
