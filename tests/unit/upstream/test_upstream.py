"""The proxy's upstream client against a micro on raw sockets: every answer shape, lying
lengths, deaths mid-body, keep-alive reuse only after a clean exchange, and the pooled
connection the micro had already closed. Every test runs on asyncio's loop and on uvloop."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time

import pytest

from runtime.serve import upstream_exchange
from runtime.serve.forwarded import ForwardedHeaders
from runtime.serve.upstream import (
    StreamedBody,
    Upstream,
    UpstreamFailed,
    UpstreamUnavailable,
    encode_head,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

# path -> (bytes to send, then "keep" the connection, "close" it, or "idle-close": keep it
# through this answer, then close it as idle a moment later)
ANSWERS = {
    "/ok": (OK, "keep"),
    "/304": (b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\n\r\n', "keep"),
    "/204": (b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", "keep"),
    "/100": (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter",
        "keep",
    ),
    "/103": (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhints",
        "keep",
    ),
    "/head": (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "keep"),
    "/until-close": (b"HTTP/1.1 200 OK\r\n\r\nbody ends at close", "close"),
    "/http10": (b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold", "keep"),
    "/short": (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..", "close"),
    "/long": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"
        b"Content-Length: 8\r\n\r\nsmuggled",
        "keep",
    ),
    "/chunked-dies": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        "close",
    ),
    "/chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        "keep",
    ),
    "/close-header": (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        "keep",
    ),
    "/garbage": (b"NOT HTTP AT ALL\r\n\r\n", "close"),
    "/no-answer": (b"", "close"),
    # Written in two parts (at PAUSE): the rest of the body, then bytes past its length.
    "/long-later": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc<pause>defghijXYZ", "keep"),
    "/413": (b"HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\n\r\nbig", "keep-unread"),
}


class RawMicro:
    """A micro on raw sockets: records each connection and request, answers with exact bytes."""

    def __init__(self) -> None:
        self.accepted = 0
        self.requests: list[tuple[int, bytes, bytes]] = []  # connection number, head, body
        self.writers: list[asyncio.StreamWriter] = []
        self.read_delay = 0.0
        self.port = 0

    async def start(self) -> RawMicro:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    async def stop(self) -> None:
        self._server.close()
        for writer in self.writers:
            writer.close()

    def paths(self) -> list[str]:
        return [head.split(b" ")[1].decode() for _, head, _ in self.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        number = self.accepted
        self.writers.append(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                path = head.split(b" ")[1].decode().split("?")[0]
                answer, after = ANSWERS.get(path, ANSWERS["/ok"])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = b""
                if after != "keep-unread":
                    while len(body) < length:
                        if self.read_delay:
                            await asyncio.sleep(self.read_delay)
                        body += await reader.read(min(65536, length - len(body)))
                self.requests.append((number, head, body))
                for i, part in enumerate(answer.split(b"<pause>")):
                    if i:
                        await asyncio.sleep(0.05)
                    writer.write(part)
                    await writer.drain()
                if after == "close":
                    break
        finally:
            writer.close()


@pytest.fixture
async def micro():
    raw = await RawMicro().start()
    yield raw
    await raw.stop()


@pytest.fixture
async def pool():
    upstream = Upstream()
    upstream.start()
    yield upstream
    await upstream.close()


def headers(**extra: str) -> ForwardedHeaders:
    return ForwardedHeaders.of({"Host": "app.test", **extra}.items())


async def get(pool: Upstream, micro: RawMicro, path: str, method: str = "GET", body=None):
    response = await pool.request(micro.address, method, path, headers(), body)
    try:
        if method == "HEAD" or response.status in (204, 304):
            return response.status, b""
        return response.status, await response.read()
    finally:
        await response.release()


async def test_a_connection_is_reused_after_a_clean_exchange(pool, micro) -> None:
    for _ in range(3):
        assert await get(pool, micro, "/ok") == (200, b"ok")
    assert micro.accepted == 1


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/100", (200, b"after")),
        ("/103", (201, b"hints")),
        ("/chunked", (200, b"hello world")),
        ("/304", (304, b"")),
        ("/204", (204, b"")),
    ],
)
async def test_answers_that_end_cleanly_keep_the_connection(pool, micro, path, expected) -> None:
    # A 304 or 204 with a length (or chunked) that no body follows, as RFC 9112 6.3 says.
    for _ in range(3):
        assert await get(pool, micro, path) == expected
        assert await get(pool, micro, "/ok") == (200, b"ok")
    assert micro.accepted == 1


@pytest.mark.parametrize(
    "path, method, expected",
    [
        ("/head", "HEAD", (200, b"")),
        ("/until-close", "GET", (200, b"body ends at close")),
        ("/long", "GET", (200, b"ok")),
        ("/long-later", "GET", (200, b"abcdefghij")),
        ("/close-header", "GET", (200, b"ok")),
    ],
)
async def test_answers_after_which_the_connection_is_not_reused(
    pool, micro, path, method, expected
) -> None:
    # HEAD (llhttp would wait for the body its length announces), a body that ends at the
    # close, bytes past the announced length (never read as the next answer), Connection: close.
    for _attempt in range(3):
        assert await get(pool, micro, path, method) == expected
        assert await get(pool, micro, "/ok") == (200, b"ok")
    numbers = [number for number, _, _ in micro.requests]
    after = [numbers[i + 1] for i, p in enumerate(micro.paths()) if p == path]
    assert all(n != numbers[i] for i, n in zip(range(0, 6, 2), after, strict=True))


async def test_http10_without_keep_alive_is_not_reused(pool, micro) -> None:
    assert await get(pool, micro, "/http10") == (200, b"old")
    assert await get(pool, micro, "/ok") == (200, b"ok")
    assert micro.accepted == 2


async def test_the_head_keeps_the_length_the_micro_gave(pool, micro) -> None:
    response = await pool.request(micro.address, "HEAD", "/head", headers())
    assert (response.status, response.content_length) == (200, 1000)
    await response.release()


@pytest.mark.parametrize("path", ["/short", "/chunked-dies"])
async def test_a_body_cut_short_is_an_error_not_an_end(pool, micro, path) -> None:
    response = await pool.request(micro.address, "GET", path, headers())
    with pytest.raises(UpstreamFailed, match="mid-body"):
        await response.read()
    await response.release()
    assert await get(pool, micro, "/ok") == (200, b"ok")


@pytest.mark.parametrize(
    "path, method, sent",
    [("/garbage", "GET", 1), ("/no-answer", "POST", 1), ("/no-answer", "GET", 2)],
)
async def test_no_answer_is_a_failure(pool, micro, path, method, sent) -> None:
    # An answer that is not HTTP is an answer: never sent again. A GET read and dropped on a
    # reused connection goes once more, on a new one; that failure is the answer.
    assert await get(pool, micro, "/ok") == (200, b"ok")  # so the next goes on a pooled one
    with pytest.raises(UpstreamFailed):
        await get(pool, micro, path, method)
    assert micro.paths().count(path) == sent
    assert await get(pool, micro, "/ok") == (200, b"ok")


async def test_nothing_listening_is_unavailable(pool) -> None:
    with pytest.raises(UpstreamUnavailable):
        await pool.request(("127.0.0.1", 1), "GET", "/", headers())


class Chunks:
    """A request body stream, as aiohttp's `request.content` reads."""

    def __init__(self, data: bytes, piece: int = 10000) -> None:
        self._pieces = iter([data[i : i + piece] for i in range(0, len(data), piece)])

    async def read(self, n: int = -1) -> bytes:
        return next(self._pieces, b"")


async def test_a_pooled_connection_closed_as_idle_is_not_used(pool, micro) -> None:
    # A streamed body cannot go twice: the kernel is asked before the connection is used.
    assert await get(pool, micro, "/ok") == (200, b"ok")
    micro.writers[0].close()  # the micro's idle timeout
    await asyncio.sleep(0)
    time.sleep(0.05)  # its close reaches the kernel; the loop has not run since
    data = b"s" * 100_000
    assert await get(pool, micro, "/ok", "POST", StreamedBody(Chunks(data), len(data))) == (
        200,
        b"ok",
    )
    assert micro.accepted == 2 and micro.requests[-1][2] == data


async def test_a_request_crossing_the_idle_close_goes_again(pool, micro, monkeypatch) -> None:
    # The close arrives after the check before reuse: the request is written on a connection
    # the micro has closed. Its kernel resets it after the close; nothing was read.
    assert await get(pool, micro, "/ok") == (200, b"ok")
    for conn in pool._idle[micro.address]:
        monkeypatch.setattr(conn, "_poller", None)  # the close comes just after the check
    micro.writers[0].close()
    await asyncio.sleep(0)
    time.sleep(0.05)
    assert await get(pool, micro, "/again") == (200, b"ok")
    assert micro.paths() == ["/ok", "/again"] and micro.accepted == 2


async def test_a_micro_that_read_the_request_and_died_is_not_sent_it_again(pool, micro) -> None:
    assert await get(pool, micro, "/ok") == (200, b"ok")
    with pytest.raises(UpstreamFailed, match="without an answer"):
        await get(pool, micro, "/no-answer", "POST", b"do it once")
    assert micro.paths() == ["/ok", "/no-answer"]


async def test_bodies_go_with_their_length_never_chunked(pool, micro) -> None:
    big = bytes(range(256)) * 1024  # 256 KiB: the head, then the body in pieces

    bodies = [b"small", big, io.BytesIO(big), StreamedBody(Chunks(big), len(big))]
    for body in bodies:
        assert await get(pool, micro, "/ok", "POST", body) == (200, b"ok")
    assert micro.accepted == 1
    for (_, head, received), sent in zip(micro.requests, [b"small", big, big, big], strict=True):
        assert received == sent
        assert f"Content-Length: {len(sent)}\r\n".encode() in head
        assert b"transfer-encoding" not in head.lower()


async def test_a_post_without_a_body_says_so(pool, micro) -> None:
    assert await get(pool, micro, "/ok", "POST") == (200, b"ok")
    assert b"Content-Length: 0\r\n" in micro.requests[0][1]


async def test_an_early_answer_to_an_unread_upload_does_not_wedge(pool, micro) -> None:
    body = io.BytesIO(b"x" * (32 << 20))  # more than every socket buffer on the way holds
    status, answer = await asyncio.wait_for(get(pool, micro, "/413", "POST", body), 5)
    assert (status, answer) == (413, b"big")
    assert await get(pool, micro, "/ok") == (200, b"ok")
    assert micro.accepted == 2  # the connection with half a request on it was not reused


class BrokenSource:
    """A client's upload that breaks off after its first piece."""

    def __init__(self) -> None:
        self.sent = False

    async def read(self, n: int = -1) -> bytes:
        if self.sent:
            raise ConnectionResetError("the client went away")
        self.sent = True
        return b"x" * 65536


async def test_an_upload_that_breaks_off_fails_the_request_and_never_hangs(pool) -> None:
    async def reads_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
        writer.close()

    server = await asyncio.start_server(reads_all, "127.0.0.1", 0)
    address = server.sockets[0].getsockname()[:2]
    try:
        body = StreamedBody(BrokenSource(), 1 << 20)
        with pytest.raises(UpstreamFailed):
            await asyncio.wait_for(pool.request(address, "POST", "/", headers(), body), 5)
    finally:
        server.close()


async def test_a_slow_reader_holds_back_the_download(pool, micro) -> None:
    size = 64 << 20
    ANSWERS["/huge"] = (
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"h" * size,
        "keep",
    )
    try:
        response = await pool.request(micro.address, "GET", "/huge", headers())
        await asyncio.sleep(0.3)  # the micro writes as fast as it can; nobody reads
        held = response._exchange._buffered
        assert held <= upstream_exchange.HIGH_WATER + 512 * 1024
        received = 0
        while chunk := await response.next_chunk():
            received += len(chunk)
        assert received == size
        await response.release()
    finally:
        del ANSWERS["/huge"]
    assert await get(pool, micro, "/ok") == (200, b"ok")
    assert micro.accepted == 1


def test_the_head_is_the_gates_bytes_and_refuses_injection() -> None:
    path = "/a%2Cb/\udce9?q=%23x"  # aiohttp's reading of the raw byte 0xE9
    given = ForwardedHeaders.of([("Host", "h"), ("X-A", "1")])
    head = encode_head("GET", path, given, ("127.0.0.1", 9), None)
    assert head == b"GET /a%2Cb/\xe9?q=%23x HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n"
    for bad in ("1\r\nX-Evil: 1", "1\nX", "1\rX", "1\x00", "1\x7f"):
        with pytest.raises(ValueError):
            encode_head("GET", "/", ForwardedHeaders.of([("X-A", bad)]), ("127.0.0.1", 9), None)
    for target in ("/a\r\nX-Evil: 1", "/a b", "/a\tb", "/?q=\t"):
        with pytest.raises(ValueError):
            encode_head("GET", target, ForwardedHeaders.of([]), ("127.0.0.1", 9), None)
    no_host = encode_head("GET", "/", ForwardedHeaders.of([]), ("::1", 9), 3)
    assert no_host == b"GET / HTTP/1.1\r\nHost: [::1]:9\r\nContent-Length: 3\r\n\r\n"
