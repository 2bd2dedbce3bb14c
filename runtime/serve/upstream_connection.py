"""One keep-alive HTTP/1.1 connection to a micro: its answer parsed with llhttp, both ways
flow-controlled, and a record of how each exchange ended (clean, cut, or a request the micro
never read)."""

from __future__ import annotations

import asyncio
import errno
import select
import socket
from collections import deque
from collections.abc import Callable

import httptools

# Body bytes held per connection before reading from the micro pauses (the consumer, the
# client's connection, is slower): memory stays flat whatever the answer's size.
HIGH_WATER = 512 * 1024
LOW_WATER = 128 * 1024
_NO_ANSWER_BODY = frozenset({204, 304})
# A request this small, sent in one write, is read whole by any server's first read (Go's
# is the smallest, 4 KiB), or not at all: a reset alone then proves the micro never read it.
UNREAD_PROOF = 4096


class UpstreamUnavailable(Exception):
    """The micro could not be reached (nothing was sent, so trying again is safe)."""


class UpstreamFailed(Exception):
    """The request reached the micro, but no answer came back (or the answer broke off)."""


class StaleConnection(Exception):
    """A pooled connection the micro closed without reading the request: sending it again,
    whatever its method, cannot do anything twice."""


class Connection(asyncio.Protocol):
    """The protocol of one upstream socket; one exchange at a time, begun with `begin`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._fd = -1
        self._poller: select.poll | None = None
        self.exchanges = 0  # finished cleanly; > 0 means it came from the pool
        # Called once when the micro closes the connection while it waits in the pool.
        self.on_idle_close: Callable[[Connection], None] | None = None
        self.idle_since = 0.0
        self.closed = False  # the micro closed it, or it broke, or it was closed here
        self._parser: httptools.HttpResponseParser | None = None
        self._head_only = False  # a HEAD request: the answer ends with its head
        self._sent_whole = 0  # the whole request went out in one write of this many bytes
        self.request_done = False
        self.answered = False  # a byte of the answer came
        self._head: asyncio.Future[None] | None = None
        self._status = 0
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._final = False  # the head of the final (non-1xx) answer is in
        self._keep_alive = False  # the micro keeps the connection after this answer
        # A body of known length: what llhttp left of it after the feed that held the head,
        # then what is left to take without the parser.
        self._left_after_feed: int | None = None
        self._left: int | None = None
        self._until_close = False  # the body ends when the micro closes the connection
        self.complete = False  # the final answer ended where its framing says
        self._dirty = False  # something happened that makes the connection unfit for reuse
        self._error: BaseException | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._body_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._fd = sock.fileno()
            # Made once: asking the kernel before each reuse is then a single poll(2).
            self._poller = select.poll()
            self._poller.register(self._fd, select.POLLIN)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self.complete:
            # Bytes nobody asked for (after the answer, or on an idle connection): whatever
            # they are, they must never be read as the answer to the next request.
            self._dirty = True
            self._close_transport()
            return
        self.answered = True
        if self._left is not None:
            self._take_body(data)
            return
        try:
            parser.feed_data(data)
            if self._left_after_feed is not None:
                # The head is in and the body has a length: llhttp has nothing more to frame.
                left, self._left_after_feed = self._left_after_feed, None
                if not self.complete:
                    self._left = left
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamFailed("the micro switched protocols unasked"))
        except httptools.HttpParserError as exc:
            if self.complete:
                self._dirty = True  # bytes past the end of the answer: it stands, the rest not
                self._close_transport()
            elif isinstance(exc.__context__, UpstreamFailed):
                # Raised by one of our callbacks; httptools wraps it as a "callback error".
                self._fail(exc.__context__)
            else:
                # What it sent instead, for the owner's error page (the gate shows it to no one
                # else): the start only, printable.
                sent = data[:80].decode("latin-1").encode("unicode_escape").decode("ascii")
                self._fail(UpstreamFailed(
                    f"the micro's answer is not valid HTTP ({exc}); it began with: {sent}"))

    def eof_received(self) -> bool:
        self._ended(None)
        return False  # close the transport: a half-closed connection is of no further use

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(UpstreamFailed("the connection to the micro closed"))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._final:
            raise UpstreamFailed("a second answer to one request")  # stops the parser
        self._headers = []
        self._reason = b""

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if status < 200:
            if status == 101:
                raise UpstreamFailed("the micro switched protocols unasked")
            return  # an interim answer (100, 103): the final one follows on the same bytes
        self._status = status
        self._final = True
        self._keep_alive = self._parser.should_keep_alive()  # llhttp forgets it at the end
        if self._head_only or status in _NO_ANSWER_BODY:
            # No body follows, whatever the headers say (RFC 9112 6.3). llhttp knows it for
            # 204 and 304; for HEAD it would wait for the body, so that connection is not reused.
            self.complete = True
            if self._head_only:
                self._dirty = True
        else:
            self._until_close = _until_close(self._headers)
            if self._until_close:
                self._dirty = True  # its end is the connection's end
            else:
                self._left_after_feed = _fixed_length(self._headers)
        self._wake_head()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return  # a body sent to HEAD: dropped, and the connection (dirty) with it
        if self._left_after_feed is not None:
            self._left_after_feed -= len(body)
        self._body(body)

    def _take_body(self, data: bytes) -> None:
        """The rest of a body of known length, passed on as it came: the bytes the loop read,
        not a copy the parser cut from them (a copy per MiB is what 1 MiB answers cost)."""
        left = self._left or 0
        if len(data) >= left:
            if len(data) > left:
                self._dirty = True  # bytes past the announced length: never the next answer
                data = data[:left]
            self._left = None
            if data:
                self._body(data)
            self.complete = True
            self._wake_body()
            return
        self._left = left - len(data)
        self._body(data)

    def _body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake_body()

    def on_message_complete(self) -> None:
        if self._final and not self.complete:  # not an interim answer's end
            self.complete = True
            self._wake_body()

    # --- one exchange --------------------------------------------------------------------

    def begin(self, head_only: bool) -> None:
        """Ready the connection for the next request's answer."""
        self._parser = httptools.HttpResponseParser(self)
        self.on_idle_close = None
        self._head_only = head_only
        self._sent_whole = 0
        self.request_done = False
        self.answered = False
        self._final = False
        self._keep_alive = False
        self._until_close = False
        self._left_after_feed = None
        self._left = None
        self.complete = False
        self._status = 0
        self._head = asyncio.get_running_loop().create_future()

    def reusable(self, now: float, idle_timeout: float) -> bool:
        """Whether an idle connection may carry the next request: open, not idle too long,
        and nothing waiting to be read on it (the micro's close, or bytes it should not send).

        The kernel is asked every time (one poll(2), a few microseconds): a close that
        arrived since the event loop last looked is in the kernel only, and the request is
        written right after this check, with no await between."""
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            return False
        if now - self.idle_since >= idle_timeout:
            return False
        return not (self._poller is not None and self._poller.poll(0))

    def write(self, data: bytes, whole: bool = False) -> None:
        assert self.transport is not None
        if whole:
            self._sent_whole = len(data)
            self.request_done = True
        self.transport.write(data)

    async def drain(self) -> None:
        if self.closed:
            raise UpstreamFailed("the connection to the micro closed")
        if self._write_paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter

    async def answer_head(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Wait for the final answer's head: status, reason and raw headers."""
        assert self._head is not None
        await self._head
        return self._status, self._reason, self._headers

    async def next_chunk(self) -> bytes:
        """The next piece of the body as it came (b"" at its end); raises if it broke off."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._reading_paused and self._buffered < LOW_WATER and self.transport:
                    self._reading_paused = False
                    self.transport.resume_reading()
                return chunk
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            self._body_waiter = asyncio.get_running_loop().create_future()
            await self._body_waiter

    def finished_cleanly(self) -> bool:
        """The exchange ended where both framings say, and the micro keeps the connection."""
        return (
            self.complete
            and self.request_done
            and not self._dirty
            and not self.closed
            and self._error is None
            and not self._chunks
            and self._keep_alive
        )

    def done(self, now: float) -> None:
        """The exchange ended cleanly: the connection goes idle, ready for another."""
        self.exchanges += 1
        self.idle_since = now
        self._parser = None
        self._head = None

    def close(self) -> None:
        if self._parser is not None and not self.complete:
            # Closed by us mid-exchange (the client's upload broke off): whoever waits for the
            # answer must hear of it, since `_ended` ignores a connection already closed.
            self._fail(UpstreamFailed("the connection to the micro closed"))
        self.closed = True
        self._close_transport()

    # --- inside ----------------------------------------------------------------------------

    def _ended(self, exc: BaseException | None) -> None:
        """The micro closed the connection (or it broke): the exchange ends as framed or cut."""
        if self.closed:
            return
        self.closed = True
        if self._parser is None:
            # Idle in the pool: it leaves it now, not when a request would pick it.
            forget, self.on_idle_close = self.on_idle_close, None
            if forget is not None:
                forget(self)
            return
        if self.complete:
            return
        if self._final and self._until_close and exc is None:
            self.complete = True  # a close-delimited body: the close is its end
            self._wake_body()
            return
        if self._final:
            self._fail(UpstreamFailed("the micro closed the connection mid-body"))
        elif self._never_read(exc):
            self._fail(StaleConnection())
        else:
            reason = f" ({exc})" if exc else ""
            self._fail(UpstreamFailed(f"the micro closed the connection without an answer{reason}"))

    def _never_read(self, exc: BaseException | None) -> bool:
        """The micro closed this pooled connection without reading the request, as its kernel
        tells: a close that crossed the request on the wire.

        Only then: the connection served an exchange before, not one byte of the answer came,
        the whole request went out in one write, and the micro's side ended with
        - its close *and then* a reset, which Linux reports as EPIPE: the close (FIN) came
          first, and the reset is the micro's kernel refusing bytes that arrived after its
          socket was gone (a request of up to `ONE_WRITE` bytes); or
        - a reset alone (ECONNRESET), for a request of at most `UNREAD_PROOF` bytes: a kernel
          resets instead of closing when the program closes its socket with bytes unread in
          it, and a program that had read any of a request this small would have read all.
        A micro that read the request closes with a FIN alone: the request reached it.
        """
        if self.exchanges == 0 or self.answered or not self._sent_whole:
            return False
        if exc is None:
            transport = self.transport
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is None:
                return False
            try:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            except OSError:
                return False
        else:
            code = getattr(exc, "errno", None)
        if code == errno.EPIPE:
            return True
        return code == errno.ECONNRESET and self._sent_whole <= UNREAD_PROOF

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._dirty = True
        head = self._head
        if head is not None and not head.done():
            head.set_exception(error)
            head.exception()  # retrieved: nobody may be waiting on it any more
        self._wake_body()
        self._close_transport()

    def _wake_head(self) -> None:
        head = self._head
        if head is not None and not head.done():
            head.set_result(None)

    def _wake_body(self) -> None:
        waiter, self._body_waiter = self._body_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _close_transport(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()


def _until_close(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a body is framed by the connection's close, as llhttp frames it (RFC 9112 6.3):
    a Transfer-Encoding not ending in chunked, or neither it nor a Content-Length."""
    length = False
    coding: bytes | None = None
    for name, value in headers:
        lower = name.lower()
        if lower == b"transfer-encoding":
            coding = value
        elif lower == b"content-length":
            length = True
    if coding is not None:
        return coding.rsplit(b",", 1)[-1].strip().lower() != b"chunked"
    return not length


def _fixed_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length of a body framed by it (llhttp has checked it: digits, one value)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value)
    return None
