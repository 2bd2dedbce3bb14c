"""Serve `main.py`'s `app` the way Space's python engine did: `python pyapp.py main:app`.

The runtime starts a python micro that has no `run` command with this module, in the micro's
`src` folder, with `PORT` set. It imports the module, finds the app and serves it on
127.0.0.1:$PORT with the server that fits:

- an `aiohttp.web.Application` (or a coroutine, or a function, giving one): aiohttp itself;
- an ASGI app (FastAPI, Starlette, Quart, Django's ASGIHandler, any `async (scope, receive, send)`):
  uvicorn, else hypercorn, else a clear error naming the interpreter to install one into;
- a WSGI app (Flask, Django's WSGIHandler, any `(environ, start_response)`): waitress, else the
  standard library's threaded wsgiref server.

A function taking no arguments is taken as a factory: it is called and its result served.
SIGTERM and Ctrl-C stop the server cleanly with exit status 0.

It uses only the standard library at import time (aiohttp and the servers are imported when
needed) and nothing else from `runtime`, so it also works run as a plain file.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import signal
import sys
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any


def _sibling(name: str) -> ModuleType:
    """A module of this folder, also when this file runs by its path (the runtime starts it so).

    Loaded under a name no app uses, so a micro's own module of the same name still imports.
    """
    if __package__:
        return importlib.import_module(f"{__package__}.{name}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_space_dev_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


servers = _sibling("servers")
LaunchError = servers.LaunchError
choose_server = servers.choose_server
HOST = servers.HOST
_exit_cleanly = servers.exit_cleanly
_describe = servers.describe

DEFAULT_TARGET = "main:app"
USAGE = (
    "usage: python -m runtime.in_micro.pyapp [MODULE:ATTRIBUTE]   "
    "(default main:app; PORT must be set)"
)
KINDS_HINT = (
    "an aiohttp Application, an ASGI app (FastAPI, Starlette, Quart...) "
    "or a WSGI app (Flask, Django...)"
)


class UserCodeFailed(Exception):
    """The user's own code raised; its traceback has been printed already."""


def main(argv: list[str] | None = None) -> int:
    """Load the app named on the command line and serve it until stopped."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print(USAGE, file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    target = args[0] if args else DEFAULT_TARGET
    # The runtime reads our output line by line; a pipe would otherwise hold the user's prints.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    # A stop that arrives during a slow import ends us quietly too.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        module_name, attribute = _split_target(target)
        port = _port_from_env()
        _put_cwd_first()
        app = _load(module_name, attribute, target)
        try:
            kind, app = classify(app)
        except LaunchError as exc:
            raise LaunchError(f"cannot serve {target}: {exc}") from None
        serve = choose_server(kind, target)
        serve(app, port, target)
    except LaunchError as exc:
        print(f"space-dev: {exc}", file=sys.stderr)
        return 1
    except UserCodeFailed:
        return 1
    except OSError as exc:  # in practice: the port is taken, or the address cannot be bound
        print(f"space-dev: cannot serve {target}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _split_target(target: str) -> tuple[str, str]:
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise LaunchError(f'"{target}" is not MODULE:ATTRIBUTE (for example main:app). {USAGE}')
    return module_name, attribute


def _port_from_env() -> int:
    raw = os.environ.get("PORT", "")
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        shown = f'"{raw}"' if raw else "not set"
        raise LaunchError(
            f"PORT is {shown}; it must be the port number to listen on. space-dev sets it for "
            "each micro; to run this by hand: PORT=8080 python -m runtime.in_micro.pyapp main:app"
        )
    return port


def _put_cwd_first() -> None:
    """Make the micro's own modules win over anything else of the same name."""
    cwd = os.getcwd()
    here = os.path.dirname(os.path.abspath(__file__))
    # Run as a plain file, Python puts this module's folder first: the user must not import
    # the runtime's own modules by accident.
    rest = [p for p in sys.path if p not in ("", cwd) and os.path.abspath(p) != here]
    sys.path[:] = [cwd, *rest]


def _source_name(module_name: str) -> str:
    return module_name.replace(".", "/") + ".py"


def _load(module_name: str, attribute: str, target: str) -> Any:
    """Import the module and fetch the attribute, telling a missing file from broken code."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise LaunchError(
                f"cannot serve {target}: there is no {_source_name(module_name)} in "
                f"{os.getcwd()}. A python micro without a run command is served from the "
                f'"{attribute}" object of {_source_name(module_name)}; add that file, or give '
                'the micro a "run" command in the Spacefile.'
            ) from None
        _print_user_traceback(exc, f"{_source_name(module_name)} raised")
        raise UserCodeFailed from None
    except Exception as exc:
        _print_user_traceback(exc, f"{_source_name(module_name)} raised")
        raise UserCodeFailed from None
    return _get_attribute(module, module_name, attribute, target)


def _get_attribute(module: ModuleType, module_name: str, attribute: str, target: str) -> Any:
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            source = _source_name(module_name)
            raise LaunchError(
                f'cannot serve {target}: {source} has no "{attribute}". Define the web app '
                f'there as "{attribute}" ({KINDS_HINT}), or give the micro a "run" command in '
                "the Spacefile."
            ) from None
    return obj


def _print_user_traceback(exc: BaseException, what: str) -> None:
    """The user's traceback, starting at their own code rather than at this launcher."""
    machinery = os.path.dirname(importlib.__file__ or "") + os.sep

    def ours(filename: str) -> bool:
        return filename == __file__ or filename.startswith(("<frozen importlib", machinery))

    # Every frame of this launcher and of the import machinery goes, wherever it is (an import
    # in the user's code puts importlib's frames between theirs). A SyntaxError then has no
    # frame left: its own lines (file, line, caret) are the whole message, as Python shows it.
    shown = traceback.TracebackException.from_exception(exc)
    for part in _chain(shown):
        part.stack = traceback.StackSummary.from_list(
            [frame for frame in part.stack if not ours(frame.filename)]
        )
    for text in shown.format():
        sys.stderr.write(text)
    print(
        f"space-dev: {what} {type(exc).__name__} while loading the app (traceback above).",
        file=sys.stderr,
    )


def _chain(shown: traceback.TracebackException) -> list[traceback.TracebackException]:
    """The exception and those it was raised from or during, as the traceback shows them."""
    parts, seen = [], set()
    part: traceback.TracebackException | None = shown
    while part is not None and id(part) not in seen:
        seen.add(id(part))
        parts.append(part)
        part = part.__cause__ or part.__context__
    return parts


# --- what kind of app is it ---------------------------------------------------------------


def _accepts(fn: Callable[..., Any], count: int) -> bool | None:
    """Whether `fn` can be called with `count` positional arguments; None when unknowable."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def _is_aiohttp_app(obj: Any) -> bool:
    # Whoever built an aiohttp Application imported aiohttp.web already: no import needed here.
    web = sys.modules.get("aiohttp.web")
    return web is not None and isinstance(obj, web.Application)


def _async_call(obj: Any) -> Callable[..., Any] | None:
    """The coroutine function that calling `obj` runs, if it is one (function or instance)."""
    if inspect.isclass(obj) or not callable(obj):
        return None
    if inspect.iscoroutinefunction(obj):  # functions, methods and partials of them
        return obj  # type: ignore[no-any-return]
    call = getattr(obj, "__call__", None)  # noqa: B004
    return call if call is not None and inspect.iscoroutinefunction(call) else None


def _is_asgi(obj: Any) -> bool:
    call = _async_call(obj)
    return call is not None and _accepts(call, 3) is not False


def classify(obj: Any) -> tuple[str, Any]:
    """("aiohttp" | "asgi" | "wsgi", the app to serve); a factory is called and its result used.

    Raises LaunchError when `obj` is none of these.
    """
    return _classify(obj, allow_factory=True)


def _classify(obj: Any, *, allow_factory: bool) -> tuple[str, Any]:
    if _is_aiohttp_app(obj) or inspect.iscoroutine(obj):
        # A coroutine is aiohttp's "async def make_app()" style; run_app awaits it in its loop.
        return "aiohttp", obj
    if _is_asgi(obj):
        return "asgi", obj
    if callable(obj) and _async_call(obj) is None:
        takes_two = _accepts(obj, 2)
        if takes_two or (takes_two is None and not inspect.isclass(obj)):
            return "wsgi", obj
    if allow_factory and callable(obj) and _accepts(obj, 0):
        if inspect.iscoroutinefunction(obj):
            return "aiohttp", obj()
        try:
            made = obj()
        except Exception as exc:
            _print_user_traceback(exc, "the app factory raised")
            raise UserCodeFailed from None
        return _classify(made, allow_factory=False)
    raise LaunchError(f"it is {_describe(obj)}, not a web app; expected {KINDS_HINT}.")


if __name__ == "__main__":
    raise SystemExit(main())
