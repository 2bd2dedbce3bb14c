"""Real apps' habits that must not bring the runtime down: servers that bind every interface or
open their port before they can answer, files a micro writes itself, commands that reload by
themselves, and a micro killed under a request."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.integration.conftest import fetch, login, run_up
from tests.integration.micros import PY_ECHO, write_app

FLASK_APP = """
from flask import Flask
app = Flask(__name__)
VERSION = 1

@app.get("/")
def index():
    return f"flask v{VERSION}"
"""

# Listens on every interface, whatever it is told.
PY_WIDE = """
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "4"); self.end_headers()
        self.wfile.write(b"wide")
    do_HEAD = do_GET
    def log_message(self, *a):
        pass

HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""

# Writes files in its own folder as it runs, the way loggers, SQLite and Vite do.
PY_WRITES_ITS_FOLDER = PY_ECHO.replace(
    'print("echo micro starting", flush=True)',
    """print("echo micro starting", flush=True)
import threading
def scribble():
    n = 0
    while True:
        n += 1
        with open("app.log", "a") as f:
            f.write(f"line {n}\\n")
        with open("data.sqlite3", "a") as f:
            f.write("x")
        with open(f"vite.config.js.timestamp-{n}.mjs", "w") as f:
            f.write("export default {}")
        time.sleep(0.05)
import time
threading.Thread(target=scribble, daemon=True).start()""",
)

# Writes a state file (no ignored name) every time it starts: each start causes the next.
PY_WRITES_AT_START = PY_ECHO.replace(
    'print("echo micro starting", flush=True)',
    'print("echo micro starting", flush=True)\nopen("state.json", "w").write("{}")',
)

NODE_WATCH = """
const http = require("http");
const VERSION = 1;
http.createServer((req, res) => res.end("node v" + VERSION))
  .listen(Number(process.env.PORT), process.env.HOST);
"""


def listen_addresses(port: int) -> set[str]:
    """Local addresses with a listening socket on `port`, from the kernel's tables."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def micro_port(up, name: str) -> int:
    return next(m["port"] for m in micros_json(up) if m["name"] == name)


def micros_json(up) -> list[dict]:
    cookie = login(up.url)
    status, _, body = fetch(
        "GET", up.url + "/__space/api/micros", headers={"Cookie": f"space_session={cookie}"}
    )
    assert status == 200
    return json.loads(body)


def count(up, text: str) -> int:
    return sum(text in line for line in up.lines)


def test_gunicorn_listens_on_loopback_and_a_broken_save_keeps_the_old_version(
    tmp_path: Path,
) -> None:
    pytest.importorskip("flask")
    pytest.importorskip("gunicorn")
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: web
            src: .
            engine: python3.9
            run: gunicorn app:app
            public: true
        """,
        {"app.py": FLASK_APP},
    )
    up = run_up(app)
    try:
        up.wait_ready(60)
        assert fetch("GET", up.url + "/")[::2] == (200, b"flask v1")
        port = micro_port(up, "web")
        # 0100007F is 127.0.0.1: gunicorn was told by GUNICORN_CMD_ARGS, not left on 0.0.0.0.
        assert listen_addresses(port) == {"0100007F"}
        assert "listens on all interfaces" not in up.output
        mark = len(up.lines)
        (app / "app.py").write_text(FLASK_APP + "\nthis is not python\n")
        # gunicorn opens its port, then its worker fails to boot: that is no readiness.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            "reload failed" in line for line in up.lines[mark:]
        ):
            assert fetch("GET", up.url + "/")[::2] == (200, b"flask v1")
            time.sleep(0.05)
        up.wait_for(r"web: reload failed", 1, start=mark)
        assert fetch("GET", up.url + "/")[::2] == (200, b"flask v1")
        assert not any("web: reloaded in" in line for line in up.lines[mark:])
    finally:
        up.stop()


def test_a_micro_on_every_interface_is_reported(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: wide
            src: .
            engine: custom
            run: python3 wide.py
        """,
        {"wide.py": PY_WIDE},
    )
    up = run_up(app, "--no-reload")
    try:
        up.wait_ready(30)
        up.wait_for(r"wide: listens on all interfaces \(0\.0\.0\.0:\d+\)", 5)
        (micro,) = micros_json(up)
        assert any("all interfaces" in n for n in micro["notices"])
    finally:
        up.stop()


def test_micros_get_loopback_addresses(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: echo
            src: .
            engine: python3.9
            run: python main.py
            public: true
        """,
        {
            "main.py": PY_ECHO.replace(
                '"DETA_", "PORT"', '"DETA_", "PORT", "HOST", "FLASK_", "GUNICORN"'
            )
        },
    )
    up = run_up(app, "--no-reload")
    try:
        up.wait_ready(30)
        env = json.loads(fetch("GET", up.url + "/")[2])["env"]
        port = env["PORT"]
        assert env["HOST"] == "127.0.0.1"
        assert env["UVICORN_HOST"] == "127.0.0.1"
        assert env["FLASK_RUN_HOST"] == "127.0.0.1"
        assert env["GUNICORN_CMD_ARGS"] == f"--bind 127.0.0.1:{port}"
    finally:
        up.stop()


def test_files_a_micro_writes_do_not_restart_it(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: busy
            src: .
            engine: python3.9
            run: python main.py
            public: true
        """,
        {"main.py": PY_WRITES_ITS_FOLDER},
    )
    up = run_up(app)
    try:
        up.wait_ready(30)
        up.wait_for("watching for changes", 10)
        deadline = time.monotonic() + 1.5  # some 30 rounds of writes
        while time.monotonic() < deadline:
            assert fetch("GET", up.url + "/")[0] == 200
            time.sleep(0.05)
        assert count(up, "busy: reloaded") == 0 and count(up, "busy: restarting") == 0
        assert (app / "app.log").stat().st_size > 0
        mark = len(up.lines)
        (app / "main.py").write_text(PY_WRITES_ITS_FOLDER.replace("VERSION = 1", "VERSION = 2"))
        up.wait_for(r"busy: reloaded in .* \(main\.py changed\)", 20, start=mark)
    finally:
        up.stop()


def test_a_micro_that_restarts_itself_by_its_writes_is_left_running(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: loop
            src: .
            engine: python3.9
            run: python main.py
            public: true
        """,
        {"main.py": PY_WRITES_AT_START},
    )
    up = run_up(app)
    try:
        up.wait_ready(30)
        up.wait_for(r"loop: restarted 5 times within 60 s", 30)
        time.sleep(1.0)  # time for more restarts, if the guard let any through
        assert count(up, "loop: reloaded in") == 5
        assert fetch("GET", up.url + "/")[0] == 200  # still serving
        (micro,) = micros_json(up)
        assert any("no longer restart it" in n for n in micro["notices"])
        # A Spacefile save resumes reloading.
        spacefile = app / "Spacefile"
        spacefile.write_text(spacefile.read_text() + "\n")
        up.wait_for(r"loop: reloading on file changes again", 10)
    finally:
        up.stop()


def test_requests_in_between_mean_the_restarts_are_wanted(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: echo
            src: .
            engine: python3.9
            run: python main.py
            public: true
        """,
        {"main.py": PY_ECHO},
    )
    up = run_up(app)
    try:
        up.wait_ready(30)
        up.wait_for("watching for changes", 10)
        for version in range(2, 9):
            mark = len(up.lines)
            (app / "main.py").write_text(PY_ECHO.replace("VERSION = 1", f"VERSION = {version}"))
            up.wait_for(r"echo: reloaded in", 20, start=mark)
            assert json.loads(fetch("GET", up.url + "/")[2])["version"] == version
        assert "no longer restart it" not in up.output
    finally:
        up.stop()


def test_a_command_that_reloads_itself_is_left_to_do_so(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: watcher
            src: .
            engine: nodejs16
            run: node --watch index.js
            public: true
        """,
        {"index.js": NODE_WATCH, "package.json": '{"name": "w", "version": "1.0.0"}'},
    )
    up = run_up(app)
    try:
        up.wait_ready(30)
        up.wait_for(r"watcher: reloads itself on saves \(node --watch\)", 10)
        assert fetch("GET", up.url + "/")[::2] == (200, b"node v1")
        (app / "index.js").write_text(NODE_WATCH.replace("VERSION = 1", "VERSION = 2"))
        deadline = time.monotonic() + 20
        while fetch("GET", up.url + "/")[2] != b"node v2":
            assert time.monotonic() < deadline, "node --watch did not pick up the save"
            time.sleep(0.05)
        assert count(up, "watcher: reloaded in") == 0, up.output
        # A dependency manifest is space-dev's to act on: node --watch would not install.
        mark = len(up.lines)
        (app / "package.json").write_text('{"name": "w", "version": "1.0.1"}')
        up.wait_for(r"watcher: reloaded in .* \(package\.json changed\)", 20, start=mark)
    finally:
        up.stop()


def test_a_get_sent_while_a_killed_micro_restarts_waits_for_it(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: echo
            src: .
            engine: python3.9
            run: python main.py
            public: true
        """,
        {"main.py": PY_ECHO},
    )
    up = run_up(app, "--no-reload")
    try:
        up.wait_ready(30)
        for _ in range(2):  # a third exit in a row would show it as crashed, on purpose
            status, _, body = fetch("GET", up.url + "/")  # the proxy now pools a connection
            assert status == 200
            pid = micro_pid(up, "echo")
            os.killpg(pid, signal.SIGKILL)
            status, _, body = fetch("GET", up.url + "/")
            assert status == 200, body[:300]
    finally:
        up.stop()


def micro_pid(up, name: str) -> int:
    """The pid of the micro's serving process, from its /proc entry (the one on its port)."""
    port = micro_port(up, name)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        micro = b"DETA_SPACE_APP_MICRO_NAME=" + name.encode()
        if f"PORT={port}\0".encode() in environ and micro in environ:
            return int(entry.name)
    raise AssertionError(f"no process of {name} on port {port}")


# As Space's Express apps listen: a port, no host. Node alone binds that to every interface.
NODE_ANY_HOST = """
const http = require("http");
const server = http.createServer((req, res) => res.end("node " + server.address().address));
server.listen(process.env.PORT, () => console.log("listening"));
"""


def test_a_node_listen_without_a_host_is_on_loopback(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: web
            src: .
            engine: nodejs16
            public: true
        """,
        {"index.js": NODE_ANY_HOST},
    )
    up = run_up(app, "--no-reload", env={"NODE_OPTIONS": "--max-old-space-size=256"})
    try:
        up.wait_ready(30)
        assert fetch("GET", up.url + "/")[::2] == (200, b"node 127.0.0.1")
        assert listen_addresses(micro_port(up, "web")) == {"0100007F"}
        time.sleep(0.3)  # the socket table is read once the micro is ready
        assert "listens on all interfaces" not in up.output, up.output
    finally:
        up.stop()


STARLETTE_APP = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def home(request):
    return PlainTextResponse("home")

app = Starlette(routes=[Route("/", home)])
"""


def test_the_readiness_probe_leaves_no_line_in_the_log(tmp_path: Path) -> None:
    """uvicorn logged `"HEAD / HTTP/1.1" 405 Method Not Allowed` at every start and reload of a
    FastAPI app: a request the user never made, answered with an error."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("starlette")
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: web
            src: .
            engine: python3.9
            run: uvicorn main:app
            public: true
        """,
        {"main.py": STARLETTE_APP},
    )
    up = run_up(app, "--no-reload")
    try:
        up.wait_ready(30)
        assert fetch("GET", up.url + "/")[::2] == (200, b"home")
        up.wait_for(r'web +\| .*"GET / HTTP/1.1" 200', 5)  # the user's own requests are logged
        assert not any('"HEAD ' in line for line in up.lines), up.output
    finally:
        up.stop()
