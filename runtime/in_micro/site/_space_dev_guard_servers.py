"""The micro's guard (`_space_dev_guard.Guard`) put in front of each common python server, as
its module is imported, so it decides before the app's code runs:

- every server built on `http.server`'s request handler (http.server itself, also run as
  `python -m http.server`; wsgiref; Werkzeug, which is Flask's dev server; Django's runserver);
- uvicorn (its loaded app, whatever the command: `uvicorn`, `--reload`, gunicorn's uvicorn
  worker), hypercorn (its wrapped app), gunicorn's WSGI workers, waitress (`create_server`);
- aiohttp (`run_app`, and gunicorn's aiohttp worker): a middleware first in the chain.

Where a request carries the gate's proof, the header is taken out before the app sees it, where
the server lets us (not in aiohttp, whose headers cannot be changed): a debug page that prints
the request's headers must not show it.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import inspect
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from _space_dev_guard import GUARD_HEADER, PASS, PROBE, PROOF_HEADER, Address, Guard

_WRAPPED = "__wrapped_by_space_dev__"  # set on what the guard wraps, so it is wrapped once
_PROOF_BYTES = PROOF_HEADER.encode()
_PROOF_ENVIRON = "HTTP_" + PROOF_HEADER.upper().replace("-", "_")


def _answer(guard: Guard, verdict: str) -> tuple[int, bytes, list[tuple[str, str]]]:
    """The guard's own answer: the probe's (204, saying the guard is there) or a refusal."""
    if verdict == PROBE:
        return 204, b"", [(GUARD_HEADER, "on")]
    return 403, guard.refusal_text(verdict).encode(), []


def _address(value: Any) -> Address | None:
    if isinstance(value, (tuple, list)) and len(value) >= 2 and isinstance(value[1], int):
        return (str(value[0]) if value[0] is not None else None), value[1]
    return None


async def _verdict_async(
    guard: Guard, path: str, header: Any, peer: Address | None, local: Address | None
) -> str:
    """`Guard.verdict` for an event loop: a /proc lookup runs in a thread, not on the loop."""
    first = guard.first_look(path, header)
    if first is not None:
        return first
    return await asyncio.to_thread(guard.by_caller, header, peer, local)


# --- ASGI (uvicorn, hypercorn) --------------------------------------------------------------


def asgi_guard(guard: Guard, app: Any) -> Any:
    """An ASGI app that checks each HTTP and WebSocket request before `app` sees it."""

    async def guarded(scope: Any, receive: Any, send: Any, *extra: Any) -> Any:
        if scope.get("type") not in ("http", "websocket"):
            return await app(scope, receive, send, *extra)
        headers: dict[str, str] = {}
        raw = scope.get("headers") or ()
        for name, value in raw:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        local = _address(scope.get("server"))
        path = scope.get("path", "")
        verdict = await _verdict_async(
            guard, path, headers.get, _address(scope.get("client")), local
        )
        if verdict == PASS:
            if PROOF_HEADER in headers:
                scope = {**scope, "headers": [(n, v) for n, v in raw if n.lower() != _PROOF_BYTES]}
            return await app(scope, receive, send, *extra)
        if verdict != PROBE:
            guard.note(scope.get("method", "WEBSOCKET"), path, local, verdict)
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return None
        status, body, extra_headers = _answer(guard, verdict)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    *((k.lower().encode(), v.encode()) for k, v in extra_headers),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return None

    setattr(guarded, _WRAPPED, app)
    return guarded


def _patch_uvicorn(guard: Guard, module: ModuleType) -> None:
    config = module.Config
    load = config.load

    def checked_load(self: Any) -> None:
        load(self)
        if not getattr(self.loaded_app, _WRAPPED, None):
            self.loaded_app = asgi_guard(guard, self.loaded_app)

    config.load = checked_load


def _patch_hypercorn(guard: Guard, module: ModuleType) -> None:
    wrap_app = module.wrap_app

    def checked_wrap_app(app: Any, *args: Any, **kwargs: Any) -> Any:
        # hypercorn's wrappers take two more arguments, which the guard passes on.
        return asgi_guard(guard, wrap_app(app, *args, **kwargs))

    setattr(module, "wrap_app", checked_wrap_app)  # noqa: B010 (a module's, not typed)


# --- WSGI (gunicorn, waitress) ---------------------------------------------------------------


def wsgi_guard(guard: Guard, app: Any) -> Any:
    """A WSGI app that checks each request before `app` sees it."""

    def guarded(environ: dict[str, Any], start_response: Any) -> Any:
        def header(name: str) -> str | None:
            value = environ.get("HTTP_" + name.upper().replace("-", "_"))
            return value if isinstance(value, str) else None

        client = environ.get("gunicorn.socket")  # where the server gives the connection
        try:
            local = _address(client.getsockname()) if client is not None else None
        except OSError:
            local = None
        if local is None:
            local = (None, _int(environ.get("SERVER_PORT")))
        peer = (environ.get("REMOTE_ADDR"), _int(environ.get("REMOTE_PORT")))
        path = environ.get("PATH_INFO", "")
        verdict = guard.verdict(path, header, _address(peer), _address(local))
        if verdict == PASS:
            environ.pop(_PROOF_ENVIRON, None)
            return app(environ, start_response)
        if verdict != PROBE:
            guard.note(environ.get("REQUEST_METHOD", ""), path, _address(local), verdict)
        status, body, extra = _answer(guard, verdict)
        reason = "No Content" if status == 204 else "Forbidden"
        start_response(
            f"{status} {reason}",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                *extra,
            ],
        )
        return [body]

    setattr(guarded, _WRAPPED, app)
    return guarded


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _patch_gunicorn(guard: Guard, module: ModuleType) -> None:
    base = module.BaseApplication
    wsgi = base.wsgi

    def checked_wsgi(self: Any) -> Any:
        app = wsgi(self)
        if getattr(app, _WRAPPED, None):
            return app
        aiohttp_web = sys.modules.get("aiohttp.web")
        if aiohttp_web is not None and isinstance(app, aiohttp_web.Application):
            _add_aiohttp_middleware(guard, aiohttp_web, app)  # gunicorn's aiohttp worker
            return app
        if _is_async(app):
            return app  # an ASGI app runs under uvicorn's worker, whose Config is guarded
        self.callable = wsgi_guard(guard, app)
        return self.callable

    base.wsgi = checked_wsgi


def _is_async(app: Any) -> bool:
    plain = inspect.isfunction(app) or inspect.ismethod(app)
    call = app if plain else getattr(app, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(call)


def _patch_waitress(guard: Guard, module: ModuleType) -> None:
    # `waitress.serve` calls the `create_server` its package imported: both names are wrapped.
    for owner in (module, sys.modules.get("waitress.server")):
        create_server = getattr(owner, "create_server", None)
        if create_server is None or getattr(create_server, _WRAPPED, None):
            continue

        def checked_create_server(
            application: Any, *args: Any, _create: Any = create_server, **kwargs: Any
        ) -> Any:
            return _create(wsgi_guard(guard, application), *args, **kwargs)

        setattr(checked_create_server, _WRAPPED, create_server)
        owner.create_server = checked_create_server  # type: ignore[union-attr]


# --- http.server and what is built on it ----------------------------------------------------


def _patch_socketserver(guard: Guard, module: ModuleType) -> None:
    """Every request handler class is checked as it first serves: one built on http.server's
    gets a guarded `parse_request`. Done here rather than in http.server because
    `python -m http.server` runs that module's code as `__main__`, never importing it."""
    init = module.BaseRequestHandler.__init__

    def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        _guard_http_handler(guard, type(self))
        init(self, *args, **kwargs)

    module.BaseRequestHandler.__init__ = checked_init


def _guard_http_handler(guard: Guard, handler: type) -> None:
    for klass in handler.__mro__:
        parse_request = vars(klass).get("parse_request")
        if klass.__name__ != "BaseHTTPRequestHandler" or parse_request is None:
            continue
        if getattr(parse_request, _WRAPPED, None):
            return

        def checked_parse_request(self: Any, _parse: Any = parse_request) -> bool:
            if not _parse(self):
                return False
            try:
                peer = _address(self.client_address)
                local = _address(self.connection.getsockname())
            except (AttributeError, OSError):
                peer = local = None
            path = self.path.partition("?")[0]
            verdict = guard.verdict(path, self.headers.get, peer, local)
            if verdict == PASS:
                del self.headers[PROOF_HEADER]
                return True
            if verdict != PROBE:
                guard.note(self.command, path, local, verdict)
            status, body, extra = _answer(guard, verdict)
            self.close_connection = True
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return False

        setattr(checked_parse_request, _WRAPPED, parse_request)
        klass.parse_request = checked_parse_request  # type: ignore[attr-defined]
        return


# --- aiohttp ---------------------------------------------------------------------------------


def _add_aiohttp_middleware(guard: Guard, web: ModuleType, app: Any) -> None:
    if any(getattr(m, _WRAPPED, None) for m in app.middlewares):
        return

    @web.middleware
    async def checked(request: Any, handler: Any) -> Any:
        transport = request.transport
        peer = _address(transport.get_extra_info("peername")) if transport else None
        local = _address(transport.get_extra_info("sockname")) if transport else None
        verdict = await _verdict_async(guard, request.path, request.headers.get, peer, local)
        if verdict == PASS:
            return await handler(request)
        if verdict != PROBE:
            guard.note(request.method, request.path, local, verdict)
        status, body, extra = _answer(guard, verdict)
        return web.Response(
            status=status,
            body=body or None,
            headers=dict(extra),
            content_type="text/plain" if body else None,
        )

    setattr(checked, _WRAPPED, True)
    app.middlewares.insert(0, checked)


def _patch_aiohttp(guard: Guard, module: ModuleType) -> None:
    run_app = module.run_app

    def add_to(app: Any) -> Any:
        if isinstance(app, module.Application):
            _add_aiohttp_middleware(guard, module, app)
        return app

    async def made(coro: Any) -> Any:
        return add_to(await coro)

    def checked_run_app(app: Any, *args: Any, **kwargs: Any) -> Any:
        return run_app(made(app) if inspect.isawaitable(app) else add_to(app), *args, **kwargs)

    setattr(module, "run_app", checked_run_app)  # noqa: B010 (a module's, not typed)


# --- when their modules are imported ---------------------------------------------------------

_PATCHES: dict[str, Callable[[Guard, ModuleType], None]] = {
    "socketserver": _patch_socketserver,
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
            except Exception as exc:  # a version we do not know: the runtime says unguarded
                print(
                    f"space-dev: cannot guard {name} ({type(exc).__name__}: {exc}); the "
                    "micro's port can be reached without the gate",
                    file=sys.stderr,
                )

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def install(guard: Guard) -> None:
    """Guard the servers of this process: those imported already, and the rest as they are."""
    if any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        return
    for name, patch in _PATCHES.items():
        if name in sys.modules:
            patch(guard, sys.modules[name])
    sys.meta_path.insert(0, _PatchOnImport(guard))
