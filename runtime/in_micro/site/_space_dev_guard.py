"""The micro's side of the gate: a request that did not come through the gate is refused before
the app's code runs, whichever common python server serves it.

A micro listens on 127.0.0.1:$PORT, and a page on any other local origin can send it requests
there (a no-cors fetch, a form), and with DNS rebinding read the answers. So the gate proves
itself on every request it forwards: `X-Space-Gate` carries the per-run secret the micro finds
in `SPACE_DEV_GATE_PROOF`, which no page can know (and a page cannot add a custom header to a
request for another origin without a CORS preflight, which never carries it and is refused).

A request without the proof passes only when it names a loopback Host and comes from a process
of the same app (its server-side code calling its own port, or another micro of the app). On
Linux the calling process is looked up in /proc: the socket's owner must have the app's proof in
its environment. Where /proc cannot tell, a request that a browser marked as sent by a page
(`Sec-Fetch-Site`, `Sec-Fetch-Dest`, `Origin`) is refused and others pass.

`sitecustomize` (imported at start by every python process of a micro) calls `install()`, which
wraps the servers when their modules are imported: the standard library's `http.server` (and so
wsgiref, Flask's and Django's dev servers), uvicorn, hypercorn, gunicorn, waitress, and aiohttp's
`run_app`. The standard library only; nothing here may raise into the app.
"""

from __future__ import annotations

import hmac
import importlib.abc
import importlib.machinery
import os
import sys
import time
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

PROOF_VARIABLE = "SPACE_DEV_GATE_PROOF"
PROOF_HEADER = "x-space-gate"
# The readiness probe, when proved, is answered here with this header: the runtime then knows the
# micro is guarded (a server we do not wrap answers without it, and the owner is told).
PROBE_PATH = "/__space/ready"
GUARD_HEADER = "X-Space-Guard"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Headers a browser adds to what a page sends, and server-side clients do not (Node's fetch sends
# Sec-Fetch-Mode, so that one is no sign); what decides where /proc cannot tell.
BROWSER_MARKS = ("sec-fetch-site", "sec-fetch-dest", "origin")
_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
_NOTE_EVERY_S = 60.0

PASS, PROBE = "pass", "probe"


class Guard:
    """The check for one micro process, made from its environment."""

    def __init__(self, proof: str, app_address: str) -> None:
        self._proof = proof.encode()
        self._marker = f"{PROOF_VARIABLE}={proof}\0".encode()
        self._app_address = app_address
        self._noted_at = -_NOTE_EVERY_S

    def verdict(
        self,
        method: str,
        path: str,
        header: Callable[[str], str | None],
        peer_port: int | None,
        local_port: int | None,
    ) -> str:
        """PASS, PROBE (answer the runtime's readiness probe), or why the request is refused.

        `header(name)` gives a request header by its lower-case name, or None.
        """
        given = header(PROOF_HEADER)
        if given is not None and hmac.compare_digest(given.encode(), self._proof):
            return PROBE if path == PROBE_PATH else PASS
        host = header("host")
        if host is not None and _host_name(host) not in LOOPBACK_NAMES:
            return f"its Host ({host[:80]}) is not a loopback name (DNS rebinding?)"
        if peer_port is None or local_port is None:
            return "it did not come through the gate"
        caller = self.from_this_app(peer_port, local_port)
        if caller is False:
            return "it did not come through the gate, nor from a process of the app"
        if caller is None and any(header(mark) is not None for mark in BROWSER_MARKS):
            return "a browser page sent it straight to the micro's port"
        return PASS

    def from_this_app(self, peer_port: int, local_port: int) -> bool | None:
        """Whether the process at the other end of a loopback connection belongs to this app;
        None where the kernel's tables cannot be read (not Linux)."""
        inode, readable = _socket_inode(peer_port, local_port)
        if not readable:
            return None
        if inode is None:
            return False
        link = f"socket:[{inode}]"
        for pid in _pids():
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    environ = b"\0" + f.read()
            except OSError:
                continue
            if b"\0" + self._marker not in environ:
                continue
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == link:
                        return True
                except OSError:
                    continue
        return False

    def refusal_text(self, why: str) -> str:
        return (
            f"space-dev: this micro answers only requests that come through its app at "
            f"http://{self._app_address}/ ; this one was refused: {why}.\n"
        )

    def note(self, method: str, path: str, local_port: int | None, why: str) -> None:
        """One line in the micro's log, at most once a minute (a port scan sends hundreds)."""
        now = time.monotonic()
        if now - self._noted_at < _NOTE_EVERY_S:
            return
        self._noted_at = now
        print(
            f"space-dev: refused {method} {path[:100]} on port {local_port}: {why} "
            "(requests to a micro must come through its app's address)",
            file=sys.stderr,
            flush=True,
        )


def _host_name(header: str) -> str:
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    name, colon, port = text.rpartition(":")
    return (name if colon and port.isdigit() else text).rstrip(".")


def _socket_inode(peer_port: int, local_port: int) -> tuple[str | None, bool]:
    """The inode of the client's socket of a loopback connection (its local port `peer_port`,
    its remote port `local_port`), and whether the tables could be read at all."""
    readable = False
    for table in _TABLES:
        try:
            with open(table, encoding="latin-1") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            if _port(fields[1]) == peer_port and _port(fields[2]) == local_port:
                return fields[9], True
    return None, readable


def _port(address: str) -> int:
    return int(address.rpartition(":")[2] or "0", 16)


def _pids() -> Iterable[str]:
    try:
        return [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []


# --- the servers -----------------------------------------------------------------------------


def _asgi_guard(guard: Guard, app: Any) -> Any:
    """An ASGI app that checks each HTTP and WebSocket request before `app` sees it."""

    async def guarded(scope: Any, receive: Any, send: Any, *extra: Any) -> Any:
        if scope.get("type") not in ("http", "websocket"):
            return await app(scope, receive, send, *extra)
        headers = {}
        for name, value in scope.get("headers") or ():
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        client, server = scope.get("client"), scope.get("server")
        local = server[1] if server else None
        path = scope.get("path", "")
        verdict = guard.verdict(scope.get("method", "GET"), path, headers.get,
                                client[1] if client else None, local)
        if verdict == PASS:
            return await app(scope, receive, send, *extra)
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            if verdict != PROBE:
                guard.note("WEBSOCKET", path, local, verdict)
            return None
        status, body, extra_headers = _answer(guard, verdict)
        if verdict != PROBE:
            guard.note(scope.get("method", ""), path, local, verdict)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), *extra_headers]})
        await send({"type": "http.response.body", "body": body})
        return None

    guarded.__wrapped_by_space_dev__ = app  # type: ignore[attr-defined]
    return guarded


def _answer(guard: Guard, verdict: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    if verdict == PROBE:
        return 204, b"", [(GUARD_HEADER.lower().encode(), b"on")]
    return 403, guard.refusal_text(verdict).encode(), [(b"connection", b"close")]


def _wsgi_guard(guard: Guard, app: Any) -> Any:
    """A WSGI app that checks each request before `app` sees it."""

    def guarded(environ: dict[str, Any], start_response: Any) -> Any:
        def header(name: str) -> str | None:
            key = "HTTP_" + name.upper().replace("-", "_")
            value = environ.get(key)
            return value if isinstance(value, str) else None

        local = _int(environ.get("SERVER_PORT"))
        path = environ.get("PATH_INFO", "")
        verdict = guard.verdict(environ.get("REQUEST_METHOD", ""), path, header,
                                _int(environ.get("REMOTE_PORT")), local)
        if verdict == PASS:
            return app(environ, start_response)
        status, body, extra = _answer(guard, verdict)
        if verdict != PROBE:
            guard.note(environ.get("REQUEST_METHOD", ""), path, local, verdict)
        reason = "No Content" if status == 204 else "Forbidden"
        start_response(f"{status} {reason}",
                       [("Content-Type", "text/plain; charset=utf-8"),
                        ("Content-Length", str(len(body))),
                        *((k.decode(), v.decode()) for k, v in extra if k != b"connection")])
        return [body]

    return guarded


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _is_async(app: Any) -> bool:
    import inspect

    plain = inspect.isfunction(app) or inspect.ismethod(app)
    call = app if plain else getattr(app, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(call)


def _patch_http_server(guard: Guard, module: ModuleType) -> None:
    """Every server built on `BaseHTTPRequestHandler`: http.server, wsgiref, Werkzeug (Flask's
    dev server), Django's runserver."""
    handler = module.BaseHTTPRequestHandler
    parse_request = handler.parse_request

    def checked_parse_request(self: Any) -> bool:
        if not parse_request(self):
            return False
        try:
            peer = self.client_address[1] if isinstance(self.client_address, tuple) else None
            local = self.server.server_address[1]
        except (AttributeError, IndexError, TypeError):
            peer = local = None
        path = self.path.partition("?")[0]
        verdict = guard.verdict(self.command, path, self.headers.get, peer, local)
        if verdict == PASS:
            return True
        status, body, extra = _answer(guard, verdict)
        if verdict != PROBE:
            guard.note(self.command, path, local, verdict)
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name.decode(), value.decode())
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return False

    handler.parse_request = checked_parse_request


def _patch_uvicorn(guard: Guard, module: ModuleType) -> None:
    config = module.Config
    load = config.load

    def checked_load(self: Any) -> None:
        load(self)
        if not getattr(self.loaded_app, "__wrapped_by_space_dev__", None):
            self.loaded_app = _asgi_guard(guard, self.loaded_app)

    config.load = checked_load


def _patch_hypercorn(guard: Guard, module: ModuleType) -> None:
    wrap_app = module.wrap_app

    def checked_wrap_app(app: Any, *args: Any, **kwargs: Any) -> Any:
        # hypercorn's wrappers take two more arguments, which the guard passes on.
        return _asgi_guard(guard, wrap_app(app, *args, **kwargs))

    module.wrap_app = checked_wrap_app


def _patch_gunicorn(guard: Guard, module: ModuleType) -> None:
    base = module.BaseApplication
    wsgi = base.wsgi

    def checked_wsgi(self: Any) -> Any:
        app = wsgi(self)
        # An ASGI app here runs under uvicorn's worker, whose Config is guarded already.
        if _is_async(app) or getattr(app, "__wrapped_by_space_dev__", None):
            return app
        guarded = _wsgi_guard(guard, app)
        guarded.__wrapped_by_space_dev__ = app  # type: ignore[attr-defined]
        self.callable = guarded
        return guarded

    base.wsgi = checked_wsgi


def _patch_waitress(guard: Guard, module: ModuleType) -> None:
    for owner in (module, sys.modules.get("waitress.server")):
        create_server = getattr(owner, "create_server", None)
        if create_server is None or getattr(create_server, "__wrapped_by_space_dev__", None):
            continue

        def checked_create_server(application: Any, *args: Any,
                                  _create: Any = create_server, **kwargs: Any) -> Any:
            return _create(_wsgi_guard(guard, application), *args, **kwargs)

        checked_create_server.__wrapped_by_space_dev__ = create_server  # type: ignore[attr-defined]
        owner.create_server = checked_create_server


def _patch_aiohttp(guard: Guard, module: ModuleType) -> None:
    run_app = module.run_app

    @module.middleware
    async def checked(request: Any, handler: Any) -> Any:
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport else None
        sock = transport.get_extra_info("sockname") if transport else None
        local = sock[1] if isinstance(sock, tuple) else None
        verdict = guard.verdict(request.method, request.path, request.headers.get,
                                peer[1] if isinstance(peer, tuple) else None, local)
        if verdict == PASS:
            return await handler(request)
        status, body, extra = _answer(guard, verdict)
        if verdict != PROBE:
            guard.note(request.method, request.path, local, verdict)
        headers = {k.decode(): v.decode() for k, v in extra}
        return module.Response(status=status, body=body or None, headers=headers,
                               content_type="text/plain" if body else None)

    def add_to(app: Any) -> Any:
        if isinstance(app, module.Application) and checked not in app.middlewares:
            app.middlewares.insert(0, checked)
        return app

    async def made(coro: Any) -> Any:
        return add_to(await coro)

    def checked_run_app(app: Any, *args: Any, **kwargs: Any) -> Any:
        import inspect

        return run_app(made(app) if inspect.isawaitable(app) else add_to(app), *args, **kwargs)

    module.run_app = checked_run_app


_PATCHES: dict[str, Callable[[Guard, ModuleType], None]] = {
    "http.server": _patch_http_server,
    "uvicorn.config": _patch_uvicorn,
    "hypercorn.utils": _patch_hypercorn,
    "gunicorn.app.base": _patch_gunicorn,
    "waitress": _patch_waitress,
    "aiohttp.web": _patch_aiohttp,
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Wraps a server's module right after it is first imported."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader, guard = spec.loader, self._guard
        exec_module = loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            try:
                patch(guard, module)
            except Exception as exc:  # a server version we do not know: it stays unguarded
                print(f"space-dev: cannot guard {name} ({type(exc).__name__}: {exc}); the "
                      "micro's port can be reached without the gate", file=sys.stderr)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Guard this process's servers, if it is a micro's process (its environment says)."""
    proof = os.environ.get(PROOF_VARIABLE)
    if not proof or any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        return
    guard = Guard(proof, os.environ.get("DETA_SPACE_APP_HOSTNAME", "localhost"))
    for name, patch in _PATCHES.items():
        if name in sys.modules:
            patch(guard, sys.modules[name])
    sys.meta_path.insert(0, _PatchOnImport(guard))
