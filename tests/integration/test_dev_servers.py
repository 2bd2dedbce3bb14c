"""Dev servers as people write them: one that ignores $PORT, `flask run`, one that never listens,
a `dev` line whose tool is missing, and a client that drops a download; all in one `up`."""

from __future__ import annotations

import json
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Up, fetch, free_port, login
from tests.integration.micros import write_app

pytestmark = pytest.mark.skipif(
    subprocess.run(["npm", "--version"], capture_output=True).returncode != 0,
    reason="npm is not installed",
)

# Binds a port of its own, whatever $PORT says; prints every request it gets, as a dev server's
# log does. `python -I` keeps the micro guard out, so the readiness check reaches the app itself.
FIXED = textwrap.dedent(
    """
    import json, os
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            print(f"got {self.command} {self.path}", flush=True)
            env = {k: v for k, v in os.environ.items()
                   if k.startswith(("DETA_SPACE_APP_HOSTNAME", "FLASK_RUN_PORT"))
                   or "TELEMETRY" in k or k == "DO_NOT_TRACK"}
            data = json.dumps({"env": env, "port": self.server.server_port,
                               "version": VERSION}).encode()
            if self.path == "/big":
                data = b"x" * (9 << 20)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = _answer

        def log_message(self, *args):
            pass

        def handle(self):
            try:
                super().handle()
            except ConnectionError:
                pass  # a client that went away

    VERSION = 1
    HTTPServer(("127.0.0.1", FIXED_PORT), Handler).serve_forever()
    """
)

FLASK_APP = textwrap.dedent(
    """
    from flask import Flask
    app = Flask(__name__)

    @app.get("/")
    def home():
        return "flask here"
    """
)

SPACEFILE = """
v: 0
app_name: devs
micros:
  - name: fixed
    src: ./fixed
    engine: custom
    run: exec python3 -I fixed.py
    primary: true
  - name: flask
    src: ./flask
    engine: python3.9
    dev: flask --app app run
  - name: mute
    src: ./mute
    engine: custom
    run: exec python3 -u -c "import time; print('thinking, not listening'); time.sleep(600)"
  - name: tool
    src: ./tool
    engine: nodejs16
    dev: npm run dev
  - name: site
    src: ./site
    engine: static
    serve: public
"""


SIZE = 9 << 20  # under the 10 MB of a single put; more than the buffers on the way hold


@pytest.fixture(scope="module")
def devs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Up, int, Path]]:
    from tests.integration.conftest import run_up

    root = tmp_path_factory.mktemp("devs")
    fixed_port = free_port()
    package = {
        "name": "tool",
        "private": True,
        "scripts": {"dev": "not-installed-dev-tool --port $PORT"},
    }
    app = write_app(
        root / "app",
        SPACEFILE,
        {
            "fixed/fixed.py": FIXED.replace("FIXED_PORT", str(fixed_port)),
            "flask/app.py": FLASK_APP,
            "mute/.keep": "",
            "tool/package.json": json.dumps(package),
            "site/public/big.bin": "x" * SIZE,
        },
    )
    up = run_up(
        app,
        env={
            "SPACE_DEV_READY_TIMEOUT": "3",
            "npm_config_cache": str(root / "npm"),
            "npm_config_update_notifier": "false",
        },
    )
    try:
        up.wait_for(r"ready: devs", 60)
        yield up, fixed_port, app
    finally:
        up.stop()


def _session(up: Up) -> dict[str, str]:
    return {"Cookie": f"space_session={login(up.url)}"}


def test_a_dev_server_on_its_own_port_is_reached_and_said_once(devs) -> None:
    up, fixed_port, _ = devs
    status, _, body = fetch("GET", up.url + "/hello", headers=_session(up), timeout=10)
    assert status == 200, body
    assert json.loads(body)["port"] == fixed_port
    said = [line for line in up.lines if f"listens on port {fixed_port}" in line]
    assert len(said) == 1, up.output


def test_a_save_restarts_a_server_on_its_own_port(devs) -> None:
    """Two processes cannot share its port: the old one stops before the new one starts."""
    up, fixed_port, app = devs
    source = app / "fixed" / "fixed.py"
    source.write_text(source.read_text().replace("VERSION = 1", "VERSION = 2"))
    up.wait_for(r"fixed: restarting \(fixed\.py", 15)
    deadline = time.monotonic() + 20
    version = None
    while time.monotonic() < deadline and version != 2:
        status, _, body = fetch("GET", up.url + "/v", headers=_session(up), timeout=20)
        version = json.loads(body)["version"] if status == 200 else None
        time.sleep(0.2)
    assert version == 2, up.output
    assert json.loads(body)["port"] == fixed_port
    assert len([line for line in up.lines if f"listens on port {fixed_port}" in line]) == 1


def test_flask_run_listens_on_the_port_it_is_given(devs) -> None:
    up, _, _ = devs
    status, _, body = fetch("GET", up.url + "/flask/", headers=_session(up), timeout=10)
    assert status == 200 and body == b"flask here", body
    assert not [line for line in up.lines if "flask" in line and "listens on port" in line]


def test_a_micro_that_never_listens_has_its_state_and_an_immediate_answer(devs) -> None:
    up, _, _ = devs
    assert any(
        "mute: not listening on $PORT" in line and "ready: devs" in line for line in up.lines
    ), up.output
    headers = {**_session(up), "Accept": "text/html"}
    began = time.monotonic()
    status, _, body = fetch("GET", up.url + "/mute/", headers=headers, timeout=30)
    assert time.monotonic() - began < 2
    assert status == 503
    assert b"not listening on $PORT" in body
    # One line when the wait begins and one when it ends, not one a second.
    assert len([line for line in up.lines if "waiting for mute" in line]) == 1, up.output
    # The settings page shows the state and what to do.
    _, _, page = fetch("GET", up.url + "/__space/settings", headers=headers, timeout=10)
    assert b"not listening on $PORT" in page and b"state-not-listening" in page


def test_exit_127_names_the_missing_tool_and_the_way_out(devs) -> None:
    up, _, _ = devs
    hint = up.wait_for(r"tool: .*exit code 127", 30).string
    assert "`not-installed-dev-tool`" in hint
    assert "npm script" in hint and "space-dev up --as-space" in hint


def test_the_app_is_told_the_address_the_user_browses(devs) -> None:
    up, _, _ = devs
    _, _, body = fetch("GET", up.url + "/env", headers=_session(up), timeout=10)
    env = json.loads(body)["env"]
    assert env["DETA_SPACE_APP_HOSTNAME"] == f"localhost:{up.port}"
    assert env["NEXT_TELEMETRY_DISABLED"] == "1" and env["DO_NOT_TRACK"] == "1"


def test_the_readiness_check_asks_nothing_an_app_answers_with_an_error(devs) -> None:
    up, _, _ = devs
    asked = [line for line in up.lines if "fixed" in line and "got " in line]
    assert not [line for line in asked if "__space" in line], asked
    assert "Traceback" not in up.output


def _drop_downloads(up: Up, path: str, cookie: str) -> None:
    """Ask for `path`, read a little of the answer, and go away with a reset, three times."""
    for _ in range(3):
        with socket.socket() as sock:
            # A small window set before connecting: the answer cannot all fit in buffers.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(5)
            sock.connect(("127.0.0.1", up.port))
            sock.sendall(
                (
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{up.port}\r\nCookie: {cookie}\r\n\r\n"
                ).encode()
            )
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(0.2)  # the server is mid-body, waiting for the window to open
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    time.sleep(1.0)


def test_a_client_that_drops_a_drive_download_leaves_no_traceback(devs) -> None:
    up, _, _ = devs
    cookie = _session(up)
    target = "/__space/v0/drive/v1/x/files/files?name=big.bin"
    status, _, _ = fetch("POST", up.url + target, headers=cookie, body=b"x" * SIZE)
    assert status == 201
    download = target.replace("files?", "files/download?")
    _drop_downloads(up, download, cookie["Cookie"])
    # The control: a whole download still works.
    status, _, body = fetch("GET", up.url + download, headers=cookie, timeout=10)
    assert status == 200 and len(body) == SIZE
    assert "Traceback" not in up.output and "closing transport" not in up.output, up.output


def test_a_client_that_drops_a_static_file_leaves_no_traceback(devs) -> None:
    up, _, _ = devs
    cookie = _session(up)
    _drop_downloads(up, "/site/big.bin", cookie["Cookie"])
    status, _, body = fetch("GET", up.url + "/site/big.bin", headers=cookie, timeout=10)
    assert status == 200 and len(body) == SIZE
    assert "Traceback" not in up.output and "Connection lost" not in up.output, up.output


def test_a_client_that_drops_a_proxied_answer_leaves_no_traceback(devs) -> None:
    up, _, _ = devs
    cookie = _session(up)
    _drop_downloads(up, "/big", cookie["Cookie"])
    status, _, body = fetch("GET", up.url + "/big", headers=cookie, timeout=10)
    assert status == 200 and len(body) == SIZE
    assert "Traceback" not in up.output and "Connection lost" not in up.output, up.output
