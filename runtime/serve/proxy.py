"""Forward one HTTP request or WebSocket to a micro, streaming both ways over pooled connections."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable

import aiohttp
from aiohttp import WSMsgType, web
from yarl import URL

from runtime.serve.bodies import CollectedBody
from runtime.serve.forwarded import ForwardedHeaders, connection_tokens
from runtime.serve.micro_call import host_literal
from runtime.serve.upstream import (
    ONE_WRITE,
    RequestBody,
    StreamedBody,
    Upstream,
    UpstreamFailed,
    UpstreamResponse,
    UpstreamUnavailable,
)

__all__ = ["Proxy", "UpgradeRefused", "UpstreamFailed", "UpstreamUnavailable"]

# The WebSocket handshake headers the client library sets itself for the upstream leg.
_WS_HANDSHAKE = (
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Accept",
)
# Bodies up to this size are read whole and sent in one write: fewer syscalls for small answers.
_SMALL_BODY = 64 * 1024

Address = tuple[str, int]


class UpgradeRefused(Exception):
    """The micro answered a WebSocket handshake with something else than `101`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}".strip())
        self.status = status


class InFlight:
    """`with proxy.busy(address):` counts one call; a class, not a generator, as it is entered
    on every request."""

    __slots__ = ("_counts", "_idle", "_address")

    def __init__(self, counts: Counter[Address], idle: asyncio.Event, address: Address) -> None:
        self._counts, self._idle, self._address = counts, idle, address

    def __enter__(self) -> None:
        self._counts[self._address] += 1

    def __exit__(self, *exc: object) -> None:
        counts, address = self._counts, self._address
        counts[address] -= 1
        if counts[address] <= 0:
            del counts[address]
            self._idle.set()


def rewritable(headers: list[tuple[str, str]]) -> bool:
    """An answer whose body is plain HTML a page may be added to: `text/html`, not compressed
    (no Content-Encoding other than identity), not a range of something larger."""
    html = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-type":
            html = value.split(";", 1)[0].strip().lower() == "text/html"
        elif lowered == "content-encoding" and value.strip().lower() not in ("", "identity"):
            return False
        elif lowered == "content-range":
            return False
    return html


def has_no_body(method: str, status: int) -> bool:
    """An answer that never has a body: to HEAD, and every 1xx, 204 and 304."""
    return method == "HEAD" or status < 200 or status in (204, 304)


def is_websocket(request: web.Request) -> bool:
    return (
        request.method == "GET"
        and request.headers.get("Upgrade", "").lower() == "websocket"
        and "upgrade" in connection_tokens(request.headers.getall("Connection", ()))
    )


class Proxy:
    """Every request to every micro of the runtime, over connections pooled per micro; the
    WebSockets and the runtime's own calls (actions) over one aiohttp client session."""

    def __init__(self) -> None:
        self._upstream = Upstream()
        self._session: aiohttp.ClientSession | None = None
        self._inflight: Counter[Address] = Counter()
        self._idle = asyncio.Event()

    async def start(self) -> None:
        # Idle connections close after 4 s, before the micro's own idle timeout (5 s in Node.js
        # and uvicorn) can close one just as a request is sent on it.
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=4)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # pass bytes through exactly as the micro sent them
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        # aiohttp sends an idempotent request again when the connection drops; the micro may
        # have done the work (or crashed on it) already, so the gate decides instead.
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False
        self._upstream.start()

    async def close(self) -> None:
        await self._upstream.close()
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "Proxy.start() was not awaited"
        return self._session

    async def wait_idle(self, host: str, port: int, timeout: float = 30.0) -> None:
        """Return once no request is being served by host:port (or after `timeout`)."""
        deadline = time.monotonic() + timeout
        while self._inflight[(host, port)] > 0 and time.monotonic() < deadline:
            self._idle.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), 0.1)

    def busy(self, address: Address) -> InFlight:
        """Count a call to a micro as in flight, so a reload lets it finish before stopping the
        old process (forwarded requests, WebSockets, and the runtime's own action calls)."""
        return InFlight(self._inflight, self._idle, address)

    async def forward(
        self,
        request: web.Request,
        address: Address,
        path_qs: str,
        headers: ForwardedHeaders,
        body: CollectedBody | None = None,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> web.StreamResponse:
        """Send the request to the micro and stream its answer back.

        The body is the client's own stream, or `body` when the gate collected it (a chunked
        one, which then goes with its `Content-Length`: never chunked upstream). `rewrite`, if
        given, may change a small uncompressed HTML answer read whole (`rewritable`); any other
        answer passes as it is.
        """
        sent: RequestBody = None
        if body is not None:
            sent = body.content()
        elif request.body_exists:
            if request.content_length is None:
                raise ValueError("a chunked request body is collected before it is forwarded")
            if request.content_length <= ONE_WRITE:
                # Read whole (aiohttp keeps it), so a retry after the micro could not be reached
                # sends it again instead of an already drained stream.
                sent = await request.read()
            else:
                sent = StreamedBody(request.content, request.content_length)
        with self.busy(address):
            upstream = await self._upstream.request(address, request.method, path_qs, headers, sent)
            try:
                return await self._relay(request, upstream, rewrite)
            finally:
                await upstream.release()

    async def _relay(
        self,
        request: web.Request,
        upstream: UpstreamResponse,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> web.StreamResponse:
        headers = upstream.headers  # without Content-Length: each answer below sets its own
        length = upstream.content_length
        if has_no_body(request.method, upstream.status):
            # Whatever its headers say, no body follows (RFC 9112 6.3), so none is read. The
            # micro's Content-Length stays: to HEAD it is the length a GET would have.
            if upstream.length_header is not None:
                headers = [*headers, ("Content-Length", upstream.length_header)]
            response = web.StreamResponse(
                status=upstream.status, reason=upstream.reason, headers=headers
            )
            await response.prepare(request)
            await response.write_eof()
            return response
        if length is not None and length <= _SMALL_BODY:
            body = await upstream.read()
            if rewrite is not None and len(body) == length and rewritable(headers):
                changed = rewrite(body)  # web.Response sets the new Content-Length
                if changed is not body:
                    # The validators name the micro's body, not this one: a later 304 would
                    # keep the notice in the browser's cache after the micro is back.
                    headers = [
                        (n, v) for n, v in headers if n.lower() not in ("etag", "last-modified")
                    ]
                    body = changed
            return web.Response(
                status=upstream.status, reason=upstream.reason, headers=headers, body=body
            )
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers
        )
        if length is not None:
            response.content_length = length
        await response.prepare(request)
        try:
            # Pieces go on as they arrive: re-cutting them to a fixed size copies every byte
            # again (uvloop reads 256,000 bytes at a time, not 256 KiB; see bench/proxy.py).
            while chunk := await upstream.next_chunk():
                await response.write(chunk)
        except (ConnectionError, UpstreamFailed):
            # The browser went away, or the micro broke off mid-body. The answer is already
            # started, so the client's connection is closed: it sees a cut body, not a hang.
            upstream.close()
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response

    async def forward_websocket(
        self, request: web.Request, address: Address, path_qs: str, forwarded: ForwardedHeaders
    ) -> web.StreamResponse:
        """Open the same WebSocket on the micro and relay messages both ways."""
        url = upstream_url("ws", address, path_qs)
        headers = forwarded.as_multidict()
        protocols = tuple(
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        )
        for name in _WS_HANDSHAKE:
            headers.popall(name, None)
        try:
            upstream = await self.session.ws_connect(
                url,
                headers=headers,
                protocols=protocols,
                autoping=False,
                max_msg_size=0,
                autoclose=False,
            )
        except aiohttp.WSServerHandshakeError as exc:
            # A 101 with bad handshake headers shows as 101 here: report what the micro sent.
            raise UpgradeRefused(exc.status, exc.message) from exc
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamUnavailable(str(exc)) from exc
        downstream = web.WebSocketResponse(
            protocols=(upstream.protocol,) if upstream.protocol else (),
            autoping=False,
            max_msg_size=0,
            autoclose=False,
        )
        await downstream.prepare(request)
        with self.busy(address):
            await _relay_websockets(downstream, upstream)
        return downstream


async def _relay_websockets(
    downstream: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse
) -> None:
    async def pump(
        source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    ) -> None:
        async for msg in source:
            if msg.type == WSMsgType.TEXT:
                await sink.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await sink.send_bytes(msg.data)
            elif msg.type == WSMsgType.PING:
                await sink.ping(msg.data)
            elif msg.type == WSMsgType.PONG:
                await sink.pong(msg.data)
            elif msg.type == WSMsgType.CLOSE:
                await sink.close(code=msg.data or 1000, message=(msg.extra or "").encode())
                return
            else:
                return
        await sink.close()

    tasks = [
        asyncio.create_task(pump(downstream, upstream)),
        asyncio.create_task(pump(upstream, downstream)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()
        await downstream.close()


def upstream_url(scheme: str, address: Address, path_qs: str) -> URL:
    """The micro's URL for exactly this path and query, byte for byte as the gate checked them.

    Built as already encoded: parsing or quoting it again could turn `%2C` into `,` or read a
    `#` as the start of a fragment, and the micro would get something else than was allowed.
    """
    host, port = address
    path, _, query = path_qs.partition("?")
    return URL.build(
        scheme=scheme,
        host=host_literal(host),
        port=port,
        path=path,
        query_string=query,
        encoded=True,
    )
