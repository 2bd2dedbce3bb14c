"""Pooled connections the micro closes: never used for a request, and the race with a close
that crosses the request told apart. The micro here is a threaded server on blocking sockets,
so it closes exactly as a real one does, whatever the test's event loop is doing."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import pytest

from runtime.serve.forwarded import ForwardedHeaders
from runtime.serve.upstream import Upstream, UpstreamFailed

# What the micro does after each answer:
#   "keep":       waits for the next request as long as it likes (a keep-alive micro);
#   "timeout":    waits 20 ms for the next request, then closes (a keep-alive timeout);
#   "close":      closes 20 ms later whatever came meanwhile, unread (uvicorn after an error);
#   "read-close": reads the next request, then closes without answering it (the request
#                 reached the micro, which may have done the work);
#   "read-first": the same from the first request on.
CLOSE_DELAY = 0.02


class ThreadedMicro:
    """A micro with a thread per connection; records every request it read."""

    def __init__(self, after: str, extra_headers: bytes = b"") -> None:
        self.after = after
        self.extra_headers = extra_headers
        self.accepted = 0
        self.handled: list[tuple[int, str, str, bytes]] = []  # connection, method, target, body
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = ("127.0.0.1", self._listener.getsockname()[1])
        self._open: list[socket.socket] = []
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.close()

    def targets(self, method: str) -> list[str]:
        return [target for _, m, target, _ in self.handled if m == method]

    def _accept(self) -> None:
        while not self._stopped:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                number = self.accepted
            self._open.append(sock)
            threading.Thread(target=self._serve, args=(sock, number), daemon=True).start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        pending = b""
        try:
            while True:
                got = _read_request(sock, pending)
                if got is None:
                    return
                method, target, body, pending = got
                with self._lock:
                    self.handled.append((number, method, target, body))
                if self.after == "read-first" or (
                    self.after == "read-close" and self._answered_once(number)
                ):
                    return  # read, maybe acted on, never answered
                answer = target.encode()
                sock.sendall(
                    b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s"
                    % (self.extra_headers, len(answer), answer)
                )
                if self.after == "close":
                    time.sleep(CLOSE_DELAY)  # whatever arrives meanwhile stays unread
                    return
                if self.after == "timeout" and not pending:
                    sock.settimeout(CLOSE_DELAY)
                    try:
                        pending = sock.recv(65536)
                    except TimeoutError:
                        return
                    finally:
                        sock.settimeout(None)
                    if not pending:
                        return
        except OSError:
            return
        finally:
            # A plain close, as asyncio's and uvloop's transports close: a FIN, or a reset when
            # something the micro never read is waiting in its socket.
            sock.close()

    def _answered_once(self, number: int) -> bool:
        with self._lock:
            return sum(1 for n, *_ in self.handled if n == number) > 1


def _read_request(sock: socket.socket, data: bytes) -> tuple[str, str, bytes, bytes] | None:
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return None
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(rest) < length:
        piece = sock.recv(65536)
        if not piece:
            return None
        rest += piece
    return method, target, rest[:length], rest[length:]


@pytest.fixture
async def pool():
    upstream = Upstream()
    upstream.start()
    yield upstream
    await upstream.close()


def headers() -> ForwardedHeaders:
    return ForwardedHeaders.of([("Host", "app.test")])


async def send(
    pool: Upstream, micro: ThreadedMicro, method: str, target: str, body: bytes | None = None
) -> tuple[int, bytes]:
    response = await pool.request(micro.address, method, target, headers(), body)
    try:
        return response.status, await response.read()
    finally:
        await response.release()


# The pace before each request: the loop runs meanwhile and sees the close ("wait"); nothing
# ("at once", before the micro closes); about the micro's close delay ("crossing"); or the loop
# is busy meanwhile, so the close waits in the kernel unseen ("busy", as under load).
PACES = ("wait", "at once", "crossing", "busy")


async def pause(pace: str) -> None:
    if pace == "wait":
        await asyncio.sleep(0.03)
    elif pace == "crossing":
        await asyncio.sleep(CLOSE_DELAY)
    elif pace == "busy":
        time.sleep(0.03)


@pytest.mark.parametrize("after", ["close", "timeout"])
async def test_a_micro_that_closes_after_each_answer_never_costs_a_502(pool, after) -> None:
    micro = ThreadedMicro(after)
    try:
        failed = []
        for i in range(200):
            method = ("GET", "POST")[i % 2]
            await pause(PACES[i // 2 % len(PACES)])
            target = f"/{i}"
            try:
                answer = await send(
                    pool, micro, method, target, b"order %d" % i if method == "POST" else None
                )
            except UpstreamFailed as err:
                failed.append(f"{method} {target} ({PACES[i // 2 % len(PACES)]}): {err}")
                continue
            assert answer == (200, target.encode())
        assert not failed, f"{len(failed)} of 200 failed: {failed[:5]}"
        # Each request was read once: none was lost, none done twice.
        assert micro.targets("GET") == [f"/{i}" for i in range(0, 200, 2)]
        assert micro.targets("POST") == [f"/{i}" for i in range(1, 200, 2)]
        assert [body for _, m, _, body in micro.handled if m == "POST"] == [
            b"order %d" % i for i in range(1, 200, 2)
        ]
    finally:
        micro.stop()


async def test_a_keep_alive_micro_keeps_one_connection(pool) -> None:
    """The positive control: checking a pooled connection does not cost its reuse."""
    micro = ThreadedMicro("keep")
    try:
        for i in range(40):
            await pause(PACES[i % len(PACES)])
            assert await send(pool, micro, ("GET", "POST")[i % 2], f"/{i}", b"x") == (
                200,
                f"/{i}".encode(),
            )
        assert micro.accepted == 1
    finally:
        micro.stop()


@pytest.mark.parametrize("header", [b"Connection: close\r\n", b"Connection: keep-alive, Close\r\n"])
async def test_an_answer_saying_connection_close_is_not_pooled(pool, header) -> None:
    # The micro keeps the connection open all the same: the header alone must be obeyed.
    micro = ThreadedMicro("keep", extra_headers=header)
    try:
        for i in range(5):
            assert await send(pool, micro, "GET", f"/{i}") == (200, f"/{i}".encode())
        assert micro.accepted == 5
    finally:
        micro.stop()


async def test_a_connection_the_micro_closed_while_idle_leaves_the_pool(pool) -> None:
    micro = ThreadedMicro("close")
    try:
        assert await send(pool, micro, "GET", "/") == (200, b"/")
        assert len(pool._idle[micro.address]) == 1
        await asyncio.sleep(CLOSE_DELAY + 0.05)
        assert not pool._idle.get(micro.address)  # at once, not at the next sweep or reuse
    finally:
        micro.stop()


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])
async def test_an_idempotent_request_the_micro_read_and_dropped_goes_once_more(
    pool, method
) -> None:
    # The micro read it on a reused connection and closed without a word: it may have done it,
    # but doing it again changes nothing (RFC 9110 9.2.2). Once more, on a new connection.
    micro = ThreadedMicro("read-close")
    try:
        assert await send(pool, micro, "GET", "/first") == (200, b"/first")
        body = b"same" if method == "PUT" else None
        response = await pool.request(micro.address, method, "/again", headers(), body)
        assert response.status == 200
        await response.release()
        assert micro.targets(method)[-2:] == ["/again", "/again"]
        assert micro.accepted == 2
    finally:
        micro.stop()


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_request_that_reached_the_micro_is_a_failure_sent_once(pool, method) -> None:
    micro = ThreadedMicro("read-close")
    try:
        assert await send(pool, micro, "GET", "/first") == (200, b"/first")
        with pytest.raises(UpstreamFailed, match="without an answer"):
            await send(pool, micro, method, "/pay", b"once")
        assert micro.targets(method) == ["/pay"]
        assert micro.accepted == 1
    finally:
        micro.stop()


async def test_an_idempotent_request_goes_once_more_only(pool) -> None:
    # A micro that drops every second request on a connection: the one resend fails too, and
    # that failure is the answer (no third try).
    micro = ThreadedMicro("read-close")
    try:
        assert await send(pool, micro, "GET", "/first") == (200, b"/first")
        # The resend's new connection answers its first request: make it drop that one too.
        micro.after = "read-first"
        with pytest.raises(UpstreamFailed):
            await send(pool, micro, "GET", "/again")
        assert micro.targets("GET") == ["/first", "/again", "/again"]
    finally:
        micro.stop()


async def test_a_reset_proves_nothing_for_a_request_a_server_may_read_in_part(pool) -> None:
    # The micro closes with the request unread (a reset), but a request this large could have
    # been read in part by a server reading 4 KiB at a time: a POST is not sent again, a PUT is.
    big = b"b" * 6000
    for method, sent in (("POST", []), ("PUT", ["/big"])):
        micro = ThreadedMicro("close")
        try:
            assert await send(pool, micro, "GET", "/first") == (200, b"/first")
            if sent:
                assert await send(pool, micro, method, "/big", big) == (200, b"/big")
            else:
                with pytest.raises(UpstreamFailed, match="reset"):
                    await send(pool, micro, method, "/big", big)
            assert micro.targets(method) == sent
        finally:
            micro.stop()
