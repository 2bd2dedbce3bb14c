"""One request and its answer on an upstream connection: the answer parsed with llhttp as it
comes, its body queued with back-pressure, and how the exchange ended. Made fresh for each
request, so nothing of one answer can leak into the next."""

from __future__ import annotations

import asyncio
from collections import deque

import httptools

# Body bytes held per exchange before reading from the micro pauses (the consumer, the
# client's connection, is slower): memory stays flat whatever the answer's size.
HIGH_WATER = 512 * 1024
LOW_WATER = 128 * 1024
_NO_ANSWER_BODY = frozenset({204, 304})


class UpstreamFailed(Exception):
    """The request reached the micro, but no answer came back (or the answer broke off)."""


class Exchange:
    """The state of one request and its answer; the target of llhttp's callbacks."""

    # One is made per request: slots make that, and every callback's attribute access, cheaper.
    __slots__ = (
        "_transport",
        "_parser",
        "_head_only",
        "sent_whole",
        "request_done",
        "answered",
        "_head",
        "_status",
        "_reason",
        "_headers",
        "final",
        "keep_alive",
        "_left_after_feed",
        "_left",
        "_until_close",
        "complete",
        "dirty",
        "error",
        "_chunks",
        "_buffered",
        "_reading_paused",
        "_body_waiter",
    )

    def __init__(self, transport: asyncio.Transport, head_only: bool) -> None:
        self._transport = transport
        # It refers back to this exchange: `release` breaks the cycle, so an exchange is freed
        # when it ends, not at the collector's next pass.
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self._head_only = head_only  # a HEAD request: the answer ends with its head
        self.sent_whole = 0  # the whole request went out in one write of this many bytes
        self.request_done = False
        self.answered = False  # a byte of the answer came
        self._head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._status = 0
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self.final = False  # the head of the final (non-1xx) answer is in
        self.keep_alive = False  # the micro keeps the connection after this answer
        # A body of known length: what llhttp left of it after the feed that held the head,
        # then what is left to take without the parser.
        self._left_after_feed: int | None = None
        self._left: int | None = None
        self._until_close = False  # the body ends when the micro closes the connection
        self.complete = False  # the final answer ended where its framing says
        self.dirty = False  # something happened that makes the connection unfit for reuse
        self.error: BaseException | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._body_waiter: asyncio.Future[None] | None = None

    # --- bytes from the micro --------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes of the answer, as the connection received them."""
        self.answered = True
        if self._left is not None:
            self._take_body(data)
            return
        parser = self._parser
        if parser is None:
            return  # released: the connection has moved on
        try:
            parser.feed_data(data)
            if self._left_after_feed is not None:
                # The head is in and the body has a length: llhttp has nothing more to frame.
                left, self._left_after_feed = self._left_after_feed, None
                if not self.complete:
                    self._left = left
        except httptools.HttpParserUpgrade:
            self.fail(UpstreamFailed("the micro switched protocols unasked"))
        except httptools.HttpParserError as exc:
            if self.complete:
                self.unwanted_bytes()  # past the end of the answer: it stands, the rest not
            elif isinstance(exc.__context__, UpstreamFailed):
                # Raised by one of our callbacks; httptools wraps it as a "callback error".
                self.fail(exc.__context__)
            else:
                # What it sent instead, for the owner's error page (the gate shows it to no one
                # else): the start only, printable.
                sent = data[:80].decode("latin-1").encode("unicode_escape").decode("ascii")
                self.fail(
                    UpstreamFailed(
                        f"the micro's answer is not valid HTTP ({exc}); it began with: {sent}"
                    )
                )

    def closed_by_micro(self, cleanly: bool) -> bool:
        """The micro closed the connection (`cleanly`: without an error): True if that ends
        the answer as framed (already complete, or a body delimited by the close); else the
        connection fails the exchange, as it knows why."""
        if self.complete:
            return True
        if self.final and self._until_close and cleanly:
            self.complete = True  # a close-delimited body: the close is its end
            self._wake_body()
            return True
        return False

    # --- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.final:
            raise UpstreamFailed("a second answer to one request")  # stops the parser
        self._headers = []
        self._reason = b""

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None  # called by it
        status = parser.get_status_code()
        if status < 200:
            if status == 101:
                raise UpstreamFailed("the micro switched protocols unasked")
            return  # an interim answer (100, 103): the final one follows on the same bytes
        self._status = status
        self.final = True
        self.keep_alive = parser.should_keep_alive()  # llhttp forgets it at the end
        if self._head_only or status in _NO_ANSWER_BODY:
            # No body follows, whatever the headers say (RFC 9112 6.3). llhttp knows it for
            # 204 and 304; for HEAD it would wait for the body, so that connection is not reused.
            self.complete = True
            if self._head_only:
                self.dirty = True
        else:
            self._until_close = _until_close(self._headers)
            if self._until_close:
                self.dirty = True  # its end is the connection's end
            else:
                self._left_after_feed = _fixed_length(self._headers)
        if not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return  # a body sent to HEAD: dropped, and the connection (dirty) with it
        if self._left_after_feed is not None:
            self._left_after_feed -= len(body)
        self._body(body)

    def on_message_complete(self) -> None:
        if self.final and not self.complete:  # not an interim answer's end
            self.complete = True
            self._wake_body()

    # --- the answer, to the proxy ----------------------------------------------------------

    async def answer_head(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Wait for the final answer's head: status, reason and raw headers."""
        await self._head
        return self._status, self._reason, self._headers

    async def next_chunk(self) -> bytes:
        """The next piece of the body as it came (b"" at its end); raises if it broke off."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._reading_paused and self._buffered < LOW_WATER:
                    self._reading_paused = False
                    self._transport.resume_reading()
                return chunk
            if self.error is not None:
                raise self.error
            if self.complete:
                return b""
            self._body_waiter = asyncio.get_running_loop().create_future()
            await self._body_waiter

    def ended_cleanly(self) -> bool:
        """The exchange ended where both framings say, and the micro keeps the connection."""
        return (
            self.complete
            and self.request_done
            and not self.dirty
            and self.error is None
            and not self._chunks
            and self.keep_alive
        )

    # --- endings ---------------------------------------------------------------------------

    def release(self) -> None:
        """The connection is done with this exchange: no more bytes are parsed for it (what
        was queued can still be read)."""
        self._parser = None

    def unwanted_bytes(self) -> None:
        """Bytes after the answer: whatever they are, they must never be read as the answer to
        the next request."""
        self.dirty = True
        self._close_transport()

    def fail(self, error: BaseException) -> None:
        """The exchange broke: whoever waits for the head or the body hears `error`."""
        if self.error is None:
            self.error = error
        self.dirty = True
        head = self._head
        if not head.done():
            head.set_exception(error)
            head.exception()  # retrieved: nobody may be waiting on it any more
        self._wake_body()
        self._close_transport()

    # --- inside ----------------------------------------------------------------------------

    def _take_body(self, data: bytes) -> None:
        """The rest of a body of known length, passed on as it came: the bytes the loop read,
        not a copy the parser cut from them (a copy per MiB is what 1 MiB answers cost)."""
        left = self._left or 0
        if len(data) >= left:
            if len(data) > left:
                self.dirty = True  # bytes past the announced length: never the next answer
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
        if self._buffered > HIGH_WATER and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()
        self._wake_body()

    def _wake_body(self) -> None:
        waiter, self._body_waiter = self._body_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _close_transport(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()


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
