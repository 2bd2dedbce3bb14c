"""One keep-alive HTTP/1.1 connection to a micro: what lives as long as its socket (the
check before reuse, write flow control, the pool's bookkeeping), one `Exchange` at a time on
it, and a record of how each exchange ended (clean, cut, or a request the micro never read)."""

from __future__ import annotations

import asyncio
import errno
import select
import socket
from collections.abc import Callable

from runtime.serve.upstream_exchange import Exchange, UpstreamFailed

__all__ = [
    "Connection",
    "Exchange",
    "StaleConnection",
    "UpstreamFailed",
    "UpstreamUnavailable",
]

# A request this small, sent in one write, is read whole by any server's first read (Go's
# is the smallest, 4 KiB), or not at all: a reset alone then proves the micro never read it.
UNREAD_PROOF = 4096


class UpstreamUnavailable(Exception):
    """The micro could not be reached (nothing was sent, so trying again is safe)."""


class StaleConnection(Exception):
    """A pooled connection the micro closed without reading the request: sending it again,
    whatever its method, cannot do anything twice."""


class Connection(asyncio.Protocol):
    """The protocol of one upstream socket; one exchange at a time, made by `exchange_for`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._poller: select.poll | None = None
        self.exchange: Exchange | None = None  # the one under way; None while idle
        self.exchanges = 0  # finished cleanly; > 0 means it came from the pool
        # Called once when the micro closes the connection while it waits in the pool.
        self.on_idle_close: Callable[[Connection], None] | None = None
        self.idle_since = 0.0
        self.closed = False  # the micro closed it, or it broke, or it was closed here
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Made once: asking the kernel before each reuse is then a single poll(2).
            self._poller = select.poll()
            self._poller.register(sock.fileno(), select.POLLIN)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None or exchange.complete:
            # Bytes nobody asked for (after the answer, or on an idle connection): whatever
            # they are, they must never be read as the answer to the next request.
            if exchange is not None:
                exchange.unwanted_bytes()
            else:
                self._close_transport()
            return
        exchange.feed(data)

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

    # --- exchanges -----------------------------------------------------------------------

    def exchange_for(self, head_only: bool) -> Exchange:
        """A fresh exchange for the next request (`head_only` for HEAD: no body follows)."""
        assert self.transport is not None
        self.on_idle_close = None
        self.exchange = Exchange(self.transport, head_only)
        return self.exchange

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
        """Part of the request; `whole` when `data` is all of it, sent in this one write."""
        assert self.transport is not None
        if whole and self.exchange is not None:
            self.exchange.sent_whole = len(data)
            self.exchange.request_done = True
        self.transport.write(data)

    async def drain(self) -> None:
        if self.closed:
            raise UpstreamFailed("the connection to the micro closed")
        if self._write_paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter

    def finished_cleanly(self) -> bool:
        """The exchange ended where both framings say, and the micro keeps the connection."""
        exchange = self.exchange
        return exchange is not None and not self.closed and exchange.ended_cleanly()

    def done(self, now: float) -> None:
        """The exchange ended cleanly: the connection goes idle, ready for another."""
        self.exchanges += 1
        self.idle_since = now
        self._release()

    def close(self) -> None:
        exchange = self.exchange
        if exchange is not None and not exchange.complete:
            # Closed by us mid-exchange (the client's upload broke off): whoever waits for the
            # answer must hear of it, since `_ended` ignores a connection already closed.
            exchange.fail(UpstreamFailed("the connection to the micro closed"))
        self.closed = True
        self._release()
        self._close_transport()

    # --- inside ----------------------------------------------------------------------------

    def _ended(self, exc: BaseException | None) -> None:
        """The micro closed the connection (or it broke): the exchange ends as framed or cut."""
        if self.closed:
            return
        self.closed = True
        exchange = self.exchange
        if exchange is None:
            # Idle in the pool: it leaves it now, not when a request would pick it.
            forget, self.on_idle_close = self.on_idle_close, None
            if forget is not None:
                forget(self)
            return
        if exchange.closed_by_micro(cleanly=exc is None):
            return
        if exchange.final:
            exchange.fail(UpstreamFailed("the micro closed the connection mid-body"))
        elif self._never_read(exchange, exc):
            exchange.fail(StaleConnection())
        else:
            reason = f" ({exc})" if exc else ""
            exchange.fail(
                UpstreamFailed(f"the micro closed the connection without an answer{reason}")
            )

    def _never_read(self, exchange: Exchange, exc: BaseException | None) -> bool:
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
        if self.exchanges == 0 or exchange.answered or not exchange.sent_whole:
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
        return code == errno.ECONNRESET and exchange.sent_whole <= UNREAD_PROOF

    def _release(self) -> None:
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.release()

    def _close_transport(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()
