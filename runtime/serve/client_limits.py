"""What every server of the runtime (each app's port, the data port) holds its clients to: a cap
on request bodies, timeouts for clients that stop sending, and a bound on open connections.

Each connection is aiohttp's own protocol inside a `GuardedConnection`, which sees every byte
the client sends before aiohttp parses it, and each request passes `GuardedRunner`'s first step:

- a body above the cap is a 413 naming the setting: at once when its `Content-Length` says so
  (before a byte of it is read), else as soon as the bytes received pass the cap (the reader of
  the body gets `BodyTooLarge`, so what it spooled is removed as for any failed read). What the
  client still sends is dropped unread for a few seconds, so it can read the answer, and the
  connection is closed: the rest of the body cannot be skipped safely;
- a request head must be complete `timeout` seconds after the connection opened or after its
  previous answer (aiohttp's keep-alive timer, which closes a connection still waiting for a
  head), which also closes idle kept-alive connections;
- a body that sends nothing for `timeout` seconds while the runtime waits for it closes the
  connection (time the runtime itself is behind, its reading paused, does not count);
- `OpenConnections` keeps all servers together under a number of connections the limit on open
  files allows, closing the one idle longest when a new one would pass it, so that `accept()`
  never runs out of file descriptors and the pages stay reachable under a flood of idle ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import StreamReader, web

from runtime.config.defaults import (
    FD_RESERVE,
    MAX_CONNECTIONS,
    OPEN_FILES_WANTED,
    REFUSED_BODY_LINGER_S,
)
from runtime.config.sizes import format_size

ServerHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
# The 413 answer as each server writes its errors: the request, and the sentence to show.
Refusal = Callable[[web.BaseRequest, str], web.StreamResponse]

_NOTICE_EVERY_S = 60.0  # the "too many connections" line, at most this often


class BodyTooLarge(Exception):
    """What reading a request body raises once it has passed the cap."""

    def __init__(self, cap: int) -> None:
        super().__init__(too_large_message(cap))
        self.cap = cap


def too_large_message(cap: int) -> str:
    return (
        f"The request body is larger than {format_size(cap)}, the most this runtime "
        "accepts (max_body_size under [runtime] in space-dev.toml)."
    )


# --- open files and connections -----------------------------------------------------------------


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one (at most OPEN_FILES_WANTED: micros
    inherit it) and return the soft limit now in force. Many systems start programs at 1,024."""
    try:
        import resource
    except ImportError:  # not a Unix
        return OPEN_FILES_WANTED
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES_WANTED)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass  # macOS refuses more than kern.maxfilesperproc: the soft limit stays
    return OPEN_FILES_WANTED if soft == resource.RLIM_INFINITY else soft


def open_files_limit() -> int:
    """The soft limit on open files of this process."""
    try:
        import resource
    except ImportError:
        return OPEN_FILES_WANTED
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return OPEN_FILES_WANTED if soft == resource.RLIM_INFINITY else soft


def connection_limit(open_files: int) -> int:
    """How many client connections to keep open at most under a limit of `open_files`: each
    may need a second descriptor (its micro's connection), and the rest need some too."""
    return max(16, min(MAX_CONNECTIONS, (open_files - FD_RESERVE) // 2))


class OpenConnections:
    """Every client connection of the runtime's servers; past `limit`, the one idle longest
    (waiting for a request head, or kept alive) is closed, and the new one itself when every
    other is busy with a request."""

    def __init__(self, limit: int, notify: Callable[[str], None] | None = None) -> None:
        self.limit = limit
        self._notify = notify
        self._open: set[GuardedConnection] = set()
        self._idle: dict[GuardedConnection, None] = {}  # in the order they became idle
        self._noticed_at = -_NOTICE_EVERY_S

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, connection: GuardedConnection) -> None:
        self._open.add(connection)
        self._idle[connection] = None
        while len(self._open) > self.limit:
            oldest = next(iter(self._idle))  # there is one: the new connection at least
            self.closed(oldest)
            oldest.close()
            self._tell()

    def busy(self, connection: GuardedConnection) -> None:
        self._idle.pop(connection, None)

    def idle(self, connection: GuardedConnection) -> None:
        if connection in self._open:
            self._idle.pop(connection, None)
            self._idle[connection] = None

    def closed(self, connection: GuardedConnection) -> None:
        self._open.discard(connection)
        self._idle.pop(connection, None)

    def _tell(self) -> None:
        now = time.monotonic()
        if self._notify is None or now - self._noticed_at < _NOTICE_EVERY_S:
            return
        self._noticed_at = now
        self._notify(
            f"{self.limit} client connections are open, the most the limit on open "
            "files allows: the longest idle ones are being closed. If that is not an "
            "attack, raise the limit (`ulimit -n`) before `space-dev up`."
        )


@dataclass(frozen=True)
class ClientLimits:
    """The limits of one runtime, shared by all its servers."""

    max_body_size: Callable[[], int]  # read per request: a saved space-dev.toml changes it
    timeout: float
    connections: OpenConnections
    linger: float = REFUSED_BODY_LINGER_S


# --- one connection ----------------------------------------------------------------------------


class GuardedConnection(asyncio.Protocol):
    """One client connection: aiohttp's protocol inside, fed every byte unless the body was
    refused, and the body's cap and stall timer around it."""

    def __init__(
        self, inner: asyncio.Protocol, limits: ClientLimits, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._inner = inner
        self._limits = limits
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._last_data = loop.time()
        self._body: StreamReader | None = None  # the body of the request being answered
        self._cap = 0
        self._dropping = False  # a body was refused: nothing more the client sends is read
        self._gone = asyncio.Event()  # the client closed its side, or the connection is lost
        self._stall_check: asyncio.TimerHandle | None = None

    @staticmethod
    def of(request: web.BaseRequest) -> GuardedConnection | None:
        transport = request.transport
        protocol = transport.get_protocol() if transport is not None else None
        return protocol if isinstance(protocol, GuardedConnection) else None

    @property
    def body_refused(self) -> bool:
        return self._dropping

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._inner.connection_made(transport)
        self._limits.connections.opened(self)

    def data_received(self, data: bytes) -> None:
        if self._dropping:
            return
        self._last_data = self._loop.time()
        self._inner.data_received(data)
        body = self._body
        if body is not None and body.total_bytes > self._cap:
            self._refuse_body(body)

    def eof_received(self) -> bool | None:
        self._gone.set()
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone.set()
        self._stop_stall_check()
        self._limits.connections.closed(self)
        self.transport = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    # --- one request --------------------------------------------------------------------------

    def request_began(self, body: StreamReader, cap: int) -> None:
        self._limits.connections.busy(self)
        self._body, self._cap = body, cap
        if body.total_bytes > cap:  # a whole (chunked) body may arrive before the handler runs
            self._refuse_body(body)
        elif not body.is_eof():
            self._last_data = self._loop.time()
            self._plan_stall_check()

    def request_ended(self) -> None:
        self._body = None
        self._stop_stall_check()
        self._limits.connections.idle(self)

    def _refuse_body(self, body: StreamReader) -> None:
        self._dropping = True
        self._stop_stall_check()
        body.set_exception(BodyTooLarge(self._cap))

    async def refuse(
        self, request: web.BaseRequest, answer: web.StreamResponse
    ) -> web.StreamResponse:
        """Send `answer` (a 413) and close: what the client still sends meanwhile is dropped for
        up to `linger` seconds, so that a client that sends its whole body before it reads
        gets to read the answer instead of a reset."""
        self._dropping = True
        self._stop_stall_check()
        if request.writer.output_size:  # another answer had begun: all that is left is to cut it
            self.close()
            return answer
        answer.force_close()
        try:
            await answer.prepare(request)  # type: ignore[arg-type]
            await answer.write_eof()
        except ConnectionError:
            return answer
        transport = self.transport
        if transport is not None and transport.can_write_eof():
            transport.write_eof()  # the end of the answer: the client sees it and may close
        try:
            await asyncio.wait_for(self._gone.wait(), self._limits.linger)
        except TimeoutError:
            pass
        if not request.content.is_eof():
            request.content.feed_eof()  # nobody reads the rest: aiohttp need not wait for it
        return answer

    # --- a body that stops flowing ------------------------------------------------------------

    def _plan_stall_check(self) -> None:
        # A quarter of the timeout: a client whose body flows again gets most of it back.
        self._stall_check = self._loop.call_later(self._limits.timeout / 4, self._check_stall)

    def _stop_stall_check(self) -> None:
        if self._stall_check is not None:
            self._stall_check.cancel()
            self._stall_check = None

    def _check_stall(self) -> None:
        self._stall_check = None
        body, transport = self._body, self.transport
        if body is None or body.is_eof() or transport is None or self._dropping:
            return
        now = self._loop.time()
        if not transport.is_reading():
            # The runtime is behind (its reader paused the connection): the client waits for
            # the runtime, not the other way round.
            self._last_data = now
        elif now - self._last_data >= self._limits.timeout:
            transport.close()  # the reader gets ConnectionResetError, as if the client left
            return
        self._plan_stall_check()


class _Connections:
    """The protocol factory a site listens with: aiohttp's protocol, guarded."""

    def __init__(self, server: web.Server, limits: ClientLimits) -> None:
        self._server = server
        self._limits = limits

    def __call__(self) -> GuardedConnection:
        return GuardedConnection(self._server(), self._limits, asyncio.get_running_loop())


# --- the runner --------------------------------------------------------------------------------


class GuardedRunner(web.AppRunner):
    """An `AppRunner` whose sites hold every connection to `limits`; `refusal` writes the 413
    as the server writes its other errors."""

    def __init__(
        self, app: web.Application, limits: ClientLimits, refusal: Refusal, **kwargs: Any
    ) -> None:
        # aiohttp closes a connection still waiting for a request head after this long, counted
        # from its start or from its previous answer.
        super().__init__(app, keepalive_timeout=limits.timeout, **kwargs)
        self._limits = limits
        self._refusal = refusal
        self._connections: _Connections | None = None

    @property
    def server(self) -> web.Server | None:
        inner = super().server
        if inner is None:
            return None
        if self._connections is None:
            self._connections = _Connections(inner, self._limits)
        # A site only calls it to make each connection's protocol.
        return self._connections  # type: ignore[return-value]

    def first_step(self, app_handler: ServerHandler) -> ServerHandler:
        """What each request goes to: the app's own handler, unless a subclass puts a step of
        its own first."""
        return app_handler

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        self._connections = None
        server.request_handler = self._guarded(self.first_step(server.request_handler))
        return server

    def _guarded(self, handler: ServerHandler) -> ServerHandler:
        limits, refusal = self._limits, self._refusal

        async def guarded(request: web.BaseRequest) -> web.StreamResponse:
            connection = GuardedConnection.of(request)
            if connection is None:  # not through a site of this runner (a test's own server)
                return await handler(request)
            cap = limits.max_body_size()
            connection.request_began(request.content, cap)
            try:
                length = request.content_length
                if length is not None and length > cap:
                    return await _refuse(connection, request, refusal, cap)
                try:
                    answer = await handler(request)
                except BodyTooLarge:
                    return await _refuse(connection, request, refusal, cap)
                except ConnectionResetError:
                    if connection.transport is not None:
                        raise
                    # The client left, or was closed for a stalled body: nobody to answer.
                    return web.Response(status=408)
                if connection.body_refused and not answer.prepared:
                    # The handler took the error for one of its own (a form it could not read).
                    return await _refuse(connection, request, refusal, cap)
                return answer
            finally:
                connection.request_ended()

        return guarded


async def _refuse(
    connection: GuardedConnection, request: web.BaseRequest, refusal: Refusal, cap: int
) -> web.StreamResponse:
    return await connection.refuse(request, refusal(request, too_large_message(cap)))
