"""The servers `pyapp.py` can serve an app with, and the choice among those the micro has.

Like `pyapp.py` it runs in the micro's own python and uses only the standard library at import
time: aiohttp and the servers are imported when needed.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any

HOST = "127.0.0.1"


class LaunchError(Exception):
    """Something the user must fix; printed as one paragraph, with no traceback."""


def exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """SIGTERM: leave with status 0, through every `finally`."""
    raise SystemExit(0)


def describe(obj: Any) -> str:
    """`an int (42)`, `a mypkg.Thing`, `the class Thing`: enough to recognise what was found."""
    if inspect.isclass(obj):
        return f"the class {obj.__name__}"
    kind = type(obj)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    article = "an" if name[0].lower() in "aeiou" else "a"
    if kind.__module__ == "builtins" and not callable(obj):
        shown = repr(obj)
        return f"{article} {name} ({shown[:40]}{'...' if len(shown) > 40 else ''})"
    return f"{article} {name}"


Serve = Callable[[Any, int, str], None]


def _announce(target: str, kind: str, server: str, port: int) -> None:
    detail = kind if kind == server else f"{kind}, {server}"
    # Not a URL to click: the micro is reached through the runtime's origin, behind its gate.
    print(f"serving {target} ({detail}) on {HOST}:{port}", flush=True)


def _optional(name: str) -> ModuleType | None:
    """The module if it imports; None if absent (a broken install is mentioned, not fatal)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if exc.name != name:
            print(f"space-dev: {name} is installed but does not import ({exc}).", file=sys.stderr)
        return None


def choose_server(kind: str, target: str) -> Serve:
    """The function that serves this kind of app: the best server the micro has installed."""
    if kind == "aiohttp":
        return _serve_aiohttp
    if kind == "asgi":
        if _optional("uvicorn") is not None:
            return _serve_uvicorn
        if _optional("hypercorn") is not None:
            return _serve_hypercorn
        raise LaunchError(
            f"{target} is an ASGI app; it needs an ASGI server: add `uvicorn` to the micro's "
            f"requirements.txt (space-dev installs it into the micro's own environment; "
            f"{sys.executable} has none)."
        )
    if _optional("waitress") is not None:
        return _serve_waitress
    return _serve_wsgiref


def _serve_aiohttp(app: Any, port: int, target: str) -> None:
    from aiohttp import web

    async def checked() -> Any:
        made = await app
        if not isinstance(made, web.Application):
            raise LaunchError(
                f"cannot serve {target}: its coroutine gave {describe(made)}, not an aiohttp "
                "Application."
            )
        return made

    def on_listening(_message: str) -> None:
        _announce(target, "aiohttp", "aiohttp", port)

    # run_app turns SIGTERM and SIGINT into a graceful shutdown and then returns.
    web.run_app(
        checked() if inspect.iscoroutine(app) else app,
        host=HOST,
        port=port,
        print=on_listening,
        handle_signals=True,
    )


def _serve_uvicorn(app: Any, port: int, target: str) -> None:
    import uvicorn

    class Server(uvicorn.Server):  # type: ignore[misc]
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # after lifespan startup and bind: the port answers now
                _announce(target, "asgi", "uvicorn", port)

    config = uvicorn.Config(app, host=HOST, port=port, interface="asgi3", log_level="info")
    server = Server(config)
    # uvicorn re-raises the stop signal once it has shut down; our handler makes that exit 0.
    signal.signal(signal.SIGTERM, exit_cleanly)
    server.run()
    if not server.started:
        raise LaunchError(f"uvicorn could not start {target} on port {port} (see above).")


def _serve_hypercorn(app: Any, port: int, target: str) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{HOST}:{port}"]
    config.accesslog = "-"

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        announcer = asyncio.create_task(_announce_when_listening(target, "hypercorn", port))
        try:
            await serve(app, config, shutdown_trigger=stop.wait)
        finally:
            announcer.cancel()

    asyncio.run(run())


async def _announce_when_listening(target: str, server: str, port: int) -> None:
    """For servers with no startup hook: announce once the port accepts a connection."""
    while True:
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        _announce(target, "asgi", server, port)
        return


def _serve_waitress(app: Any, port: int, target: str) -> None:
    from waitress import create_server

    server = create_server(app, host=HOST, port=port)  # bound and listening on return
    _announce(target, "wsgi", "waitress", port)
    # Our SIGTERM handler raises SystemExit, which waitress's loop takes as "shut down now".
    server.run()


def _serve_wsgiref(app: Any, port: int, target: str) -> None:
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIServer, make_server

    class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
        daemon_threads = True  # a slow request must not hold up the stop

    server = make_server(HOST, port, app, server_class=ThreadingWSGIServer)
    print(
        "space-dev: note: using Python's simple built-in WSGI server (wsgiref); "
        "for a sturdier one, add `waitress` to the micro's requirements.txt",
        file=sys.stderr,
        flush=True,
    )
    _announce(target, "wsgi", "wsgiref", port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
