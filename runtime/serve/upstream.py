"""The proxy's HTTP/1.1 client for micros: keep-alive connections pooled per address, the
request head written in one write, bodies streamed both ways with backpressure.

A request body is none, a stream of a length known before it starts (`StreamedBody`), or a
collected body of known length (bytes, or a seekable file read from its start). A request is
never sent chunked: whatever the client sent, the micro gets a Content-Length.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import IO, Protocol

from runtime.serve.forwarded import AS_SENT, HOP_BY_HOP, ForwardedHeaders, connection_tokens
from runtime.serve.micro_call import authority
from runtime.serve.upstream_connection import (
    Connection,
    Exchange,
    StaleConnection,
    UpstreamFailed,
    UpstreamUnavailable,
)

__all__ = [
    "StreamedBody",
    "Upstream",
    "UpstreamFailed",
    "UpstreamResponse",
    "UpstreamUnavailable",
]

Address = tuple[str, int]

# Idle connections close after 4 s, before the micro's own idle timeout (5 s in Node.js and
# uvicorn) can close one just as a request is sent on it.
IDLE_TIMEOUT = 4.0
CONNECT_TIMEOUT = 5.0
# Idle connections kept per micro: enough for a burst, not a file descriptor per request ever.
MAX_IDLE = 128
# A body this small goes out in the same write as the head: one syscall, and a request sent
# whole at once is one whose idle-closed connection can be told for sure (see `_never_read`).
ONE_WRITE = 16 * 1024
PIECE = 256 * 1024
# Characters a request line or header may not carry (RFC 9110 5.5), but for the CR and LF that
# end each line, which `encode_head` counts.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HOP_BY_HOP = frozenset(n.encode("ascii") for n in HOP_BY_HOP)
# Methods whose requests carry Content-Length: 0 when they have no body (RFC 9110 8.6).
_BODY_EXPECTED = frozenset({"POST", "PUT", "PATCH"})
# Requests that, done twice, leave what done once leaves (RFC 9110 9.2.2): sent once more when a
# reused connection closes before any byte of the answer, as browsers do.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class AsyncReadable(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


@dataclass(frozen=True)
class StreamedBody:
    """A body read from a stream as it arrives (aiohttp's `request.content`), of a length
    known before it starts (the client's Content-Length)."""

    source: AsyncReadable
    length: int


RequestBody = None | bytes | IO[bytes] | StreamedBody


class Upstream:
    """Connections to every micro of the runtime, pooled per address."""

    def __init__(self) -> None:
        self._idle: dict[Address, deque[Connection]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()

    async def request(
        self,
        address: Address,
        method: str,
        target: str,
        headers: ForwardedHeaders,
        body: RequestBody = None,
    ) -> UpstreamResponse:
        """Send one request and return once the final answer's head is in.

        Raises UpstreamUnavailable when the micro could not be reached (nothing was sent),
        UpstreamFailed when it was sent and no answer came. A pooled connection the micro closed
        without reading the request is not an answer: the request goes again, on another
        connection. An idempotent request the micro read on a reused connection and closed
        without a byte of answer goes once more, on a new connection.
        """
        length = _body_length(body)
        head = encode_head(method, target, headers, address, length)
        first: bytes | None = None
        if length is None or length == 0:
            first = head
        elif isinstance(body, bytes) and len(head) + length <= ONE_WRITE:
            first = head + body
        elif isinstance(body, StreamedBody) and length <= ONE_WRITE:
            # Small enough to wait for whole: then it goes out with the head, as one write.
            first = head + await _read_exactly(body.source, length)
        # Sent again only with a body still whole in hand: not a stream read as it came, nor a
        # file another thread may still be reading for the first attempt.
        replayable = method in _IDEMPOTENT and (
            length is None or isinstance(body, bytes) or first is not None
        )
        failure: UpstreamFailed | None = None  # the reused connection's, once sent again
        while True:
            try:
                # No await between this check of a pooled connection and the write below.
                conn = await self._connection(address, fresh=failure is not None)
            except UpstreamUnavailable:
                if failure is not None:
                    raise failure from None  # its micro is gone; it had the request
                raise
            exchange = conn.exchange_for(head_only=method == "HEAD")
            pump: asyncio.Task[None] | None = None
            if first is not None:
                conn.write(first, whole=True)
            else:
                conn.write(head)
                pump = asyncio.create_task(_send_body(conn, exchange, body, length or 0))
            try:
                status, reason, raw = await exchange.answer_head()
            except StaleConnection:
                conn.close()
                continue
            except UpstreamFailed as exc:
                conn.close()
                await _stop(pump)
                if failure is None and replayable and conn.exchanges > 0 and not exchange.answered:
                    failure = exc
                    continue
                raise
            except BaseException:
                conn.close()
                await _stop(pump)
                raise
            return UpstreamResponse(self, address, conn, exchange, pump, status, reason, raw)

    async def _connection(self, address: Address, fresh: bool = False) -> Connection:
        idle = None if fresh else self._idle.get(address)
        if idle:
            now = time.monotonic()
            while idle:
                conn = idle.pop()  # the most recently used: the least likely to be closed
                if conn.reusable(now, IDLE_TIMEOUT):
                    return conn
                conn.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, conn = await loop.create_connection(Connection, address[0], address[1])
        except (OSError, TimeoutError) as exc:
            raise UpstreamUnavailable(
                f"cannot connect to {address[0]}:{address[1]} ({exc or 'timed out'})"
            ) from exc
        return conn

    def _put_back(self, address: Address, conn: Connection) -> None:
        conn.done(time.monotonic())
        idle = self._idle.setdefault(address, deque())
        if self._closed or len(idle) >= MAX_IDLE:
            conn.close()
        else:
            idle.append(conn)
            conn.on_idle_close = functools.partial(_forget, idle)

    def _sweep(self) -> None:
        now = time.monotonic()
        for address, idle in list(self._idle.items()):
            while idle and (idle[0].closed or now - idle[0].idle_since >= IDLE_TIMEOUT):
                idle.popleft().close()
            if not idle:
                del self._idle[address]
        if not self._closed:
            self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)


class UpstreamResponse:
    """A micro's answer: its head at once, the body read as it comes. `release` when done."""

    def __init__(
        self,
        pool: Upstream,
        address: Address,
        conn: Connection,
        exchange: Exchange,
        pump: asyncio.Task[None] | None,
        status: int,
        reason: bytes,
        raw: list[tuple[bytes, bytes]],
    ) -> None:
        self._pool = pool
        self._address = address
        self._conn = conn
        self._exchange = exchange
        self._pump = pump
        self._released = False
        self.status = status
        self.reason = reason.decode(*AS_SENT)
        self.headers, self.length_header, coded = _end_to_end(raw)
        # The body's length, unless a Transfer-Encoding frames it instead.
        self.content_length = None if coded else _integer(self.length_header)

    async def read(self) -> bytes:
        """The whole body (for small ones)."""
        pieces = []
        while chunk := await self._exchange.next_chunk():
            pieces.append(chunk)
        return b"".join(pieces)

    async def next_chunk(self) -> bytes:
        """The next piece of the body as it came; b"" at its end."""
        return await self._exchange.next_chunk()

    async def release(self) -> None:
        """The connection goes back to the pool if the exchange ended cleanly, else closes."""
        if self._released:
            return
        self._released = True
        conn = self._conn
        if self._pump is not None and not self._pump.done():
            # The micro answered before it read the whole request: the connection is spent.
            conn.close()
            await _stop(self._pump)
            return
        if conn.finished_cleanly():
            self._pool._put_back(self._address, conn)
        else:
            conn.close()

    def close(self) -> None:
        """End the exchange at once: the connection is not reused."""
        self._conn.close()


def encode_head(
    method: str, target: str, headers: ForwardedHeaders, address: Address, length: int | None
) -> bytes:
    """The request line and headers, as the gate shaped them, with the body's own framing.

    The header lines go out as the bytes they came in as; the request line as aiohttp read it (as
    UTF-8 with surrogate escapes). Content-Length is the body's; Transfer-Encoding is never sent.
    """
    if " " in method or " " in target or "\t" in method or "\t" in target:
        raise ValueError("a space or tab in the request line")  # some servers split on either
    parts = [f"{method} {target} HTTP/1.1\r\n".encode(*AS_SENT), *headers.lines]
    if not headers.has_host:
        parts.append(f"Host: {authority(address)}\r\n".encode("ascii"))
    if length is not None:
        parts.append(b"Content-Length: %d\r\n" % length)
    elif headers.sent_length or method in _BODY_EXPECTED:
        parts.append(b"Content-Length: 0\r\n")
    parts.append(b"\r\n")
    head = b"".join(parts)
    # Each line ends in CRLF, and no CR or LF stands anywhere else: no header injection.
    lines = len(parts)
    if head.count(b"\n") != lines or head.count(b"\r") != lines or _CONTROL.search(head):
        raise ValueError("a control character in the request line or a header")
    return head


def _body_length(body: RequestBody) -> int | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return len(body)
    if isinstance(body, StreamedBody):
        return body.length
    body.seek(0, 2)
    size = body.tell()
    body.seek(0)
    return size


def _end_to_end(
    raw: list[tuple[bytes, bytes]],
) -> tuple[list[tuple[str, str]], str | None, bool]:
    """An answer's headers minus the hop-by-hop ones (and those its `Connection` names) and
    Content-Length, read in one pass; that Content-Length as the micro sent it; and whether a
    Transfer-Encoding came."""
    headers: list[tuple[str, str]] = []
    connection: list[str] = []
    length: str | None = None
    coded = False
    for name, value in raw:
        lower = name.lower()
        if lower in _HOP_BY_HOP:
            if lower == b"connection":
                connection.append(value.decode("latin-1"))
            elif lower == b"transfer-encoding":
                coded = True
            continue
        if lower == b"content-length":
            length = value.decode("latin-1")
            continue
        headers.append((name.decode(*AS_SENT), value.decode(*AS_SENT)))
    if connection:
        named = connection_tokens(connection) - HOP_BY_HOP
        if named:
            headers = [(n, v) for n, v in headers if n.lower() not in named]
    return headers, length, coded


def _integer(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


async def _read_exactly(source: AsyncReadable, length: int) -> bytes:
    pieces = []
    remaining = length
    while remaining > 0:
        piece = await source.read(remaining)
        if not piece:
            raise UpstreamFailed("the request body ended before its Content-Length")
        pieces.append(piece)
        remaining -= len(piece)
    return b"".join(pieces)


async def _send_body(conn: Connection, exchange: Exchange, body: RequestBody, length: int) -> None:
    """Write the body after the head, waiting whenever the micro reads slower than it comes.
    A body that breaks off (the client went away) closes the connection: the micro sees a cut
    request, never a shorter one that looks whole."""
    remaining = length
    try:
        if isinstance(body, bytes):
            conn.write(body)
            remaining = 0
        elif isinstance(body, StreamedBody):
            while remaining > 0 and not conn.closed:
                piece = await body.source.read(min(PIECE, remaining))
                if not piece:
                    break
                conn.write(piece)
                remaining -= len(piece)
                await conn.drain()
        elif body is not None:
            body.seek(0)
            while remaining > 0 and not conn.closed:
                # A collected body's file is read off the event loop: no request waits on a disk.
                piece = await asyncio.to_thread(body.read, min(PIECE, remaining))
                if not piece:
                    break
                conn.write(piece)
                remaining -= len(piece)
                await conn.drain()
    except Exception:
        # The connection closed (the answer, or its absence, tells what happened), or the
        # client's body broke off: either way this connection carries nothing more.
        conn.close()
        return
    if remaining > 0:
        conn.close()
    else:
        exchange.request_done = True


def _forget(idle: deque[Connection], conn: Connection) -> None:
    """A pooled connection the micro closed leaves the pool (its socket is closed already)."""
    with contextlib.suppress(ValueError):
        idle.remove(conn)


async def _stop(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
