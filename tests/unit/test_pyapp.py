"""The python engine's default launcher: each kind of app served for real, and clear failures."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runtime.in_micro import pyapp

REPO_ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 20.0
STOP_DEADLINE = 10.0


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


needs = {
    name: pytest.mark.skipif(not _installed(name), reason=f"{name} is not installed")
    for name in ("uvicorn", "hypercorn", "waitress", "flask", "starlette")
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Micro:
    proc: subprocess.Popen[bytes]
    port: int
    out: Path
    err: Path

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def get(self, path: str = "/") -> tuple[int, str]:
        """Status and body, polling while the port refuses (until the process dies or the deadline).

        Only a refused connection is retried: a request that fails or hangs once the server
        listens is a failure, not something to paper over with another try.
        """
        deadline = time.monotonic() + START_DEADLINE
        url = f"http://127.0.0.1:{self.port}{path}"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=START_DEADLINE) as resp:
                    return resp.status, resp.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()
            except urllib.error.URLError as exc:
                if not isinstance(exc.reason, ConnectionRefusedError):
                    raise
                if self.proc.poll() is not None:
                    pytest.fail(f"exited {self.proc.returncode} before answering:\n{self.output()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no answer on port {self.port}:\n{self.output()}")
                time.sleep(0.05)

    def wait_for_line(self, text: str) -> None:
        """Our stdout is a file, not a terminal: the line must arrive without an exit's flush."""
        deadline = time.monotonic() + START_DEADLINE
        while text not in self.out.read_text():
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} never printed:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=STOP_DEADLINE)


@pytest.fixture
def blocked(tmp_path: Path) -> Path:
    """A folder of stand-ins that make named servers fail to import, as if not installed."""
    folder = tmp_path / "blocked"
    folder.mkdir()
    return folder


def _block(folder: Path, *names: str) -> None:
    for name in names:
        (folder / f"{name}.py").write_text(f"raise ImportError('{name} blocked by the test')\n")


@pytest.fixture
def launch(tmp_path: Path, blocked: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start(
        code: str,
        *,
        target: str = "main:app",
        port: int | None = None,
        env: dict[str, str] | None = None,
        files: dict[str, str] | None = None,
    ) -> Micro:
        src = tmp_path / "src"
        src.mkdir(exist_ok=True)
        if code:
            (src / "main.py").write_text(textwrap.dedent(code))
        for name, text in (files or {}).items():
            (src / name).write_text(textwrap.dedent(text))
        port = _free_port() if port is None else port
        full_env = dict(os.environ)
        # The stand-ins come first so they shadow the real servers; the repo root makes
        # `runtime` importable even without the editable install.
        full_env["PYTHONPATH"] = os.pathsep.join([str(blocked), str(REPO_ROOT)])
        full_env["PORT"] = str(port)
        full_env.pop("PYTHONUNBUFFERED", None)
        full_env.update(env or {})
        out, err = tmp_path / "out.log", tmp_path / "err.log"
        with out.open("wb") as out_f, err.open("wb") as err_f:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runtime.in_micro.pyapp", target],
                cwd=src,
                env=full_env,
                stdout=out_f,
                stderr=err_f,
            )
        started.append(proc)
        return Micro(proc, port, out, err)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _run_to_exit(micro: Micro) -> int:
    return micro.proc.wait(timeout=START_DEADLINE)


AIOHTTP_APP = """
    from aiohttp import web
    import helper

    async def hello(request):
        return web.Response(text="aiohttp says " + helper.WORD)

    app = web.Application()
    app.router.add_get("/", hello)
"""

PLAIN_ASGI = """
    import os

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return  # no lifespan support, as many hand-written apps
        body = ("asgi on " + os.environ["PORT"] + " " + scope["path"]).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
"""

PLAIN_WSGI = """
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("wsgi " + environ["PATH_INFO"]).encode()]
"""


def test_aiohttp_app(launch: Any) -> None:
    micro = launch(AIOHTTP_APP, files={"helper.py": "WORD = 'hello'\n"})
    assert micro.get() == (200, "aiohttp says hello")
    micro.wait_for_line(f"serving main:app (aiohttp) on 127.0.0.1:{micro.port}")
    assert micro.stop() == 0


def test_aiohttp_async_factory(launch: Any) -> None:
    micro = launch(
        """
        from aiohttp import web

        async def make():
            async def hello(request):
                return web.Response(text="made")
            app = web.Application()
            app.router.add_get("/", hello)
            return app

        app = make
        """
    )
    assert micro.get() == (200, "made")
    assert micro.stop() == 0


@needs["uvicorn"]
def test_plain_asgi_with_uvicorn(launch: Any) -> None:
    micro = launch(PLAIN_ASGI)
    assert micro.get("/x") == (200, f"asgi on {micro.port} /x")
    micro.wait_for_line(f"serving main:app (asgi, uvicorn) on 127.0.0.1:{micro.port}")
    assert micro.stop() == 0


@needs["hypercorn"]
def test_plain_asgi_falls_back_to_hypercorn(launch: Any, blocked: Path) -> None:
    _block(blocked, "uvicorn")
    micro = launch(PLAIN_ASGI)
    assert micro.get("/y") == (200, f"asgi on {micro.port} /y")
    micro.wait_for_line("(asgi, hypercorn)")
    assert micro.stop() == 0


def test_asgi_without_a_server_explains(launch: Any, blocked: Path) -> None:
    _block(blocked, "uvicorn", "hypercorn")
    micro = launch(PLAIN_ASGI)
    assert _run_to_exit(micro) == 1
    err = micro.err.read_text()
    # Not `pip install` into an environment space-dev makes again: the file it is made from.
    assert (
        "main:app is an ASGI app; it needs an ASGI server: add `uvicorn` to the micro's "
        "requirements.txt" in err
    )
    assert "pip install" not in err
    assert "Traceback" not in err


@needs["waitress"]
def test_plain_wsgi_with_waitress(launch: Any) -> None:
    micro = launch(PLAIN_WSGI)
    assert micro.get("/w") == (200, "wsgi /w")
    micro.wait_for_line("(wsgi, waitress)")
    assert micro.stop() == 0


def test_plain_wsgi_falls_back_to_wsgiref(launch: Any, blocked: Path) -> None:
    _block(blocked, "waitress")
    micro = launch(PLAIN_WSGI)
    assert micro.get("/r") == (200, "wsgi /r")
    micro.wait_for_line(f"serving main:app (wsgi, wsgiref) on 127.0.0.1:{micro.port}")
    err = micro.err.read_text()
    assert "simple built-in WSGI server" in err
    assert "add `waitress` to the micro's requirements.txt" in err and "pip install" not in err
    assert micro.stop() == 0


def test_wsgiref_serves_requests_concurrently(launch: Any, blocked: Path) -> None:
    _block(blocked, "waitress")
    micro = launch(
        """
        import threading
        slow_started, release = threading.Event(), threading.Event()

        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            path = environ["PATH_INFO"]
            if path == "/slow":
                slow_started.set()
                return [b"released" if release.wait(10) else b"timed out"]
            if path == "/fast":
                # Only a server handling two requests at once gets here with /slow in flight.
                ok = slow_started.wait(10)
                release.set()
                return [b"fast" if ok else b"slow never started"]
            return [b"pong"]
        """
    )
    assert micro.get("/ping") == (200, "pong")
    results: dict[str, tuple[int, str]] = {}
    slow = threading.Thread(target=lambda: results.setdefault("slow", micro.get("/slow")))
    slow.start()
    assert micro.get("/fast") == (200, "fast")
    slow.join(STOP_DEADLINE)
    assert results["slow"] == (200, "released")
    assert micro.stop() == 0


@needs["flask"]
def test_flask(launch: Any) -> None:
    micro = launch(
        """
        from flask import Flask
        app = Flask(__name__)

        @app.get("/")
        def index():
            return "flask here"
        """
    )
    assert micro.get() == (200, "flask here")
    micro.wait_for_line("(wsgi, ")
    assert micro.stop() == 0


@needs["starlette"]
@needs["uvicorn"]
def test_starlette(launch: Any) -> None:
    micro = launch(
        """
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        async def index(request):
            return PlainTextResponse("starlette here " + request.client.host)

        app = Starlette(routes=[Route("/", index)])
        """
    )
    assert micro.get() == (200, "starlette here 127.0.0.1")
    micro.wait_for_line("(asgi, uvicorn)")
    assert micro.stop() == 0


def test_wsgi_factory_is_called(launch: Any, blocked: Path) -> None:
    _block(blocked, "waitress")
    micro = launch(
        """
        def app():
            def wsgi(environ, start_response):
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"from factory"]
            return wsgi
        """
    )
    assert micro.get() == (200, "from factory")
    assert micro.stop() == 0


def test_user_prints_reach_the_log_at_once(launch: Any, blocked: Path) -> None:
    _block(blocked, "waitress")
    micro = launch(
        """
        def app(environ, start_response):
            print("handled", environ["PATH_INFO"])
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        """
    )
    assert micro.get("/p") == (200, "ok")
    micro.wait_for_line("handled /p")  # stdout is a file: only line buffering shows it now
    assert micro.stop() == 0


def test_other_module_and_attribute(launch: Any, blocked: Path) -> None:
    _block(blocked, "waitress")
    micro = launch("", target="server:api", files={"server.py": PLAIN_WSGI.replace("app", "api")})
    assert micro.get("/o") == (200, "wsgi /o")
    micro.wait_for_line("serving server:api (wsgi, wsgiref)")
    assert micro.stop() == 0


def test_missing_attribute(launch: Any) -> None:
    micro = launch("application = None\n")
    assert _run_to_exit(micro) == 1
    err = micro.err.read_text()
    assert 'main.py has no "app"' in err
    assert '"run" command' in err
    assert "Traceback" not in err


def test_missing_module(launch: Any) -> None:
    micro = launch("")
    assert _run_to_exit(micro) == 1
    err = micro.err.read_text()
    assert "there is no main.py in" in err
    assert "Traceback" not in err


def test_error_in_user_code_shows_its_traceback(launch: Any) -> None:
    micro = launch(
        """
        import json

        def broken():
            return 1 / 0

        broken()
        app = None
        """
    )
    assert _run_to_exit(micro) == 1
    err = micro.err.read_text()
    assert "Traceback" in err
    assert "ZeroDivisionError" in err
    assert 'main.py", line 5, in broken' in err
    assert "main.py raised ZeroDivisionError" in err
    # The trace starts at the user's code, not in the launcher or the import machinery.
    assert "runtime/in_micro/pyapp.py" not in err
    assert "importlib" not in err


def test_syntax_error_shows_the_users_error_alone(launch: Any) -> None:
    micro = launch("def broken(:\n    pass\napp = None\n")
    assert _run_to_exit(micro) == 1
    err = micro.err.read_text()
    assert 'main.py", line 1' in err and "SyntaxError" in err
    assert "main.py raised SyntaxError" in err
    # No launcher frame, no import machinery: the error, where it is, and the caret.
    assert "pyapp.py" not in err and "importlib" not in err and "<frozen" not in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 6, err


def test_syntax_error_in_an_imported_module_keeps_only_the_users_frames(launch: Any) -> None:
    micro = launch("import helper\napp = None\n", files={"helper.py": "x = = 1\n"})
    assert _run_to_exit(micro) == 1
    err = micro.err.read_text()
    assert 'main.py", line 1, in <module>' in err
    assert 'helper.py", line 1' in err and "SyntaxError" in err
    assert "pyapp.py" not in err and "importlib" not in err and "<frozen" not in err


def test_missing_import_in_user_code_shows_its_traceback(launch: Any) -> None:
    micro = launch("import no_such_package_here\napp = None\n")
    assert _run_to_exit(micro) == 1
    err = micro.err.read_text()
    assert "Traceback" in err
    assert "No module named 'no_such_package_here'" in err
    assert "there is no main.py" not in err


def test_not_a_web_app(launch: Any) -> None:
    micro = launch("app = 42\n")
    assert _run_to_exit(micro) == 1
    err = micro.err.read_text()
    assert "cannot serve main:app: it is an int (42), not a web app" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("port", ["", "abc", "70000"])
def test_bad_port(launch: Any, port: str) -> None:
    micro = launch(PLAIN_WSGI, env={"PORT": port})
    assert _run_to_exit(micro) == 1
    err = micro.err.read_text()
    assert "PORT is" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("code", [AIOHTTP_APP, PLAIN_WSGI], ids=["aiohttp", "wsgi"])
def test_port_in_use(launch: Any, code: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        micro = launch(code, port=port, files={"helper.py": "WORD = 'x'\n"})
        assert _run_to_exit(micro) == 1
    err = micro.err.read_text()
    assert "cannot serve main:app" in err
    assert "Traceback" not in err


def test_sigterm_during_slow_import_exits_cleanly(launch: Any, tmp_path: Path) -> None:
    marker = tmp_path / "importing"
    micro = launch(
        f"""
        import pathlib, time
        pathlib.Path({str(marker)!r}).write_text("yes")
        time.sleep(30)
        app = None
        """
    )
    deadline = time.monotonic() + START_DEADLINE
    while not marker.exists():
        assert time.monotonic() < deadline, micro.output()
        time.sleep(0.05)
    assert micro.stop() == 0


# --- classification, in process ------------------------------------------------------------


class _AsgiObject:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...


class _WsgiObject:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


async def _asgi_function(scope: Any, receive: Any, send: Any) -> None: ...


def _wsgi_function(environ: Any, start_response: Any) -> list[bytes]:
    return []


def test_classify_table() -> None:
    from aiohttp import web

    aio = web.Application()
    assert pyapp.classify(aio) == ("aiohttp", aio)
    assert pyapp.classify(_asgi_function)[0] == "asgi"
    assert pyapp.classify(_AsgiObject())[0] == "asgi"
    assert pyapp.classify(_wsgi_function)[0] == "wsgi"
    assert pyapp.classify(_WsgiObject())[0] == "wsgi"
    assert pyapp.classify(lambda: _wsgi_function) == ("wsgi", _wsgi_function)
    assert pyapp.classify(lambda: aio) == ("aiohttp", aio)
    # A class that needs no arguments is a factory too: its instance is the app.
    assert pyapp.classify(_AsgiObject)[0] == "asgi"
    for bad in (None, 42, "app", {"a": 1}, lambda a, b, c, d: None, lambda a: None):
        with pytest.raises(pyapp.LaunchError):
            pyapp.classify(bad)
    # A factory giving a factory is refused rather than called again.
    with pytest.raises(pyapp.LaunchError):
        pyapp.classify(lambda: lambda: _wsgi_function)


@needs["flask"]
def test_classify_flask() -> None:
    from flask import Flask

    assert pyapp.classify(Flask("x"))[0] == "wsgi"


@needs["starlette"]
def test_classify_starlette() -> None:
    from starlette.applications import Starlette

    assert pyapp.classify(Starlette())[0] == "asgi"


def test_classify_async_factory_is_aiohttp() -> None:
    async def make() -> Any:
        return None

    kind, coro = pyapp.classify(make)
    assert kind == "aiohttp"
    coro.close()
