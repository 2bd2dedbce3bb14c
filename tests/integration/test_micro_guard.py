"""A micro's own port is no way around the gate: every kind of server refuses what did not come
through it, and what apps legitimately do (calling their own port) still works.

One real `space-dev up` serves two apps whose micros run each server space-dev guards: Node's
http, python's engine default, uvicorn, gunicorn, hypercorn, waitress, Flask's and Django's dev
servers, and the standard library's http.server; plus one python started with `-I`, which the
guard cannot reach and the owner is told about. Every micro records each request it runs, so a
refusal is checked by the micro's own record, not only by the status.
"""

from __future__ import annotations

import os
import re
import socket
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import OWNER_PASSWORD, Up, fetch, free_port, get_json, login
from tests.integration.micros import write_app

# Every app below appends "<micro> <method> <path>" to $RAN_LOG for each request its code runs.
PY_RECORD = textwrap.dedent(
    """
    import os, urllib.request

    def record(method, path):
        with open(os.environ["RAN_LOG"], "a") as f:
            f.write(f"{os.environ['DETA_SPACE_APP_MICRO_NAME']} {method} {path}\\n")

    def call_own_port(path):
        # What server-side rendering does: the app fetches its own API on its own port.
        url = f"http://localhost:{os.environ['PORT']}{path}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    """
)

WSGI_APP = PY_RECORD + textwrap.dedent(
    """
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        record(environ["REQUEST_METHOD"], path)
        body = b"hello"
        if path == "/self":
            status, text = call_own_port("/inner")
            body = f"self {status} {text}".encode()
        if path == "/headers":
            body = " ".join(k for k in environ if k.startswith("HTTP_X_SPACE")).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    """
)

ASGI_APP = PY_RECORD + textwrap.dedent(
    """
    import asyncio

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        record(scope["method"], scope["path"])
        body = b"hello"
        if scope["path"] == "/self":
            status, text = await asyncio.to_thread(call_own_port, "/inner")
            body = f"self {status} {text}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
    """
)

FLASK_APP = PY_RECORD + textwrap.dedent(
    """
    from flask import Flask, request
    app = Flask(__name__)

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def any_path(path):
        record(request.method, "/" + path)
        return "hello"
    """
)

DJANGO_APP = PY_RECORD + textwrap.dedent(
    """
    import sys
    from django.conf import settings
    from django.http import HttpResponse
    from django.urls import re_path

    settings.configure(DEBUG=True, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"],
                       SECRET_KEY="test only", MIDDLEWARE=[])

    def any_path(request):
        record(request.method, request.path)
        return HttpResponse("hello")

    urlpatterns = [re_path(r"", any_path)]

    if __name__ == "__main__":
        from django.core.management import execute_from_command_line
        execute_from_command_line(sys.argv)
    """
)

HTTP_SERVER_APP = PY_RECORD + textwrap.dedent(
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            record(self.command, self.path)
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)

NODE_APP = textwrap.dedent(
    """
    const fs = require("fs");
    const http = require("http");
    const port = process.env.PORT;
    function record(method, path) {
      const micro = process.env.DETA_SPACE_APP_MICRO_NAME;
      fs.appendFileSync(process.env.RAN_LOG, `${micro} ${method} ${path}\\n`);
    }
    function getOwn(path) {
      return new Promise((resolve, reject) => {
        http.get(`http://127.0.0.1:${port}${path}`, (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () => resolve(`${res.statusCode} ${text}`));
        }).on("error", reject);
      });
    }
    http.createServer(async (req, res) => {
      record(req.method, req.url);
      if (req.url.startsWith("/cross?port=")) {
        const other = req.url.split("=")[1];
        const answer = await fetch(`http://127.0.0.1:${other}/from-app-one`);
        res.end(`cross ${answer.status}`);
        return;
      }
      if (req.url === "/headers") {
        const raw = req.rawHeaders.filter((_, i) => i % 2 === 0);
        const names = [...Object.keys(req.headers), ...raw];
        res.end(names.filter((n) => n.toLowerCase().startsWith("x-space")).join(" "));
        return;
      }
      if (req.url === "/self") {
        // Server-side rendering: the app calls its own port, with fetch and with http.get.
        const viaFetch = await fetch(`http://localhost:${port}/inner-fetch`);
        const viaGet = await getOwn("/inner-get");
        res.end(`self ${viaFetch.status} ${await viaFetch.text()} ${viaGet}`);
        return;
      }
      res.end("hello");
    }).listen(port);
    """
)

APP_ONE = """
v: 0
app_name: one
micros:
  - name: node
    src: ./node
    engine: nodejs16
    primary: true
    public: true
  - name: pydefault
    src: ./pydefault
    engine: python3.9
    public: true
  - name: uvicorn
    src: ./uvicorn
    engine: python3.9
    run: uvicorn main:app --port $PORT
    public: true
  - name: gunicorn
    src: ./gunicorn
    engine: python3.9
    run: gunicorn main:app
    public: true
  - name: hypercorn
    src: ./hypercorn
    engine: python3.9
    run: hypercorn main:app --bind 127.0.0.1:$PORT
    public: true
"""

APP_TWO = """
v: 0
app_name: two
micros:
  - name: waitress
    src: ./waitress
    engine: python3.9
    primary: true
    run: waitress-serve --listen=127.0.0.1:$PORT main:app
    public: true
  - name: flask
    src: ./flask
    engine: python3.9
    run: flask --app main run --port $PORT
    public: true
  - name: django
    src: ./django
    engine: python3.9
    run: python main.py runserver 127.0.0.1:$PORT --noreload
    public: true
  - name: httpserver
    src: ./httpserver
    engine: python3.9
    run: python main.py
    public: true
  - name: isolated
    src: ./isolated
    engine: python3.9
    run: python -I -m http.server --bind 127.0.0.1 $PORT
    public: true
"""

AIOHTTP_APP = PY_RECORD + textwrap.dedent(
    """
    from aiohttp import web

    async def any_path(request):
        record(request.method, request.path)
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_path)
    """
)

APP_THREE = """
v: 0
app_name: three
micros:
  - name: modhttp
    src: ./modhttp
    engine: python3.9
    primary: true
    run: python -m http.server --bind 127.0.0.1 $PORT
    public: true
  - name: gunaiohttp
    src: ./gunaiohttp
    engine: python3.9
    run: gunicorn -k aiohttp.GunicornWebWorker main:app
    public: true
"""

GUARDED = (
    "node",
    "pydefault",
    "uvicorn",
    "gunicorn",
    "hypercorn",
    "waitress",
    "flask",
    "django",
    "httpserver",
    "gunaiohttp",
)
APPS = {
    "one": ("node", "pydefault", "uvicorn", "gunicorn", "hypercorn"),
    "two": ("waitress", "flask", "django", "httpserver", "isolated"),
    "three": ("modhttp", "gunaiohttp"),
}
PRIMARIES = ("node", "waitress", "modhttp")


class Apps:
    def __init__(self, up: Up, log: Path, origins: dict[str, str], ports: dict[str, int]):
        self.up, self.log, self.origins, self.ports = up, log, origins, ports

    def ran(self, micro: str) -> list[str]:
        """What the micro's code ran, as "METHOD /path" lines."""
        if not self.log.exists():
            return []
        return [
            line.split(" ", 1)[1]
            for line in self.log.read_text().splitlines()
            if line.split(" ", 1)[0] == micro
        ]


def _micro_ports(origin: str, session: str) -> dict[str, int]:
    status, micros = get_json(
        origin + "/__space/api/micros", headers={"Cookie": f"space_session={session}"}
    )
    assert status == 200, micros
    return {m["name"]: m["port"] for m in micros if m.get("port")}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    pytest.importorskip("django")
    root = tmp_path_factory.mktemp("guard")
    log = root / "ran.log"
    one = write_app(
        root / "one",
        APP_ONE,
        {
            "node/index.js": NODE_APP,
            "pydefault/main.py": WSGI_APP,
            "uvicorn/main.py": ASGI_APP,
            "gunicorn/main.py": WSGI_APP,
            "hypercorn/main.py": ASGI_APP,
        },
    )
    two = write_app(
        root / "two",
        APP_TWO,
        {
            "waitress/main.py": WSGI_APP,
            "flask/main.py": FLASK_APP,
            "django/main.py": DJANGO_APP,
            "httpserver/main.py": HTTP_SERVER_APP,
            "isolated/index.html": "isolated",
        },
    )
    port = free_port()
    env = {**os.environ, "SPACE_DEV_PASSWORD": OWNER_PASSWORD, "RAN_LOG": str(log)}
    three = write_app(
        root / "three",
        APP_THREE,
        {
            "modhttp/index.html": "hello",
            "gunaiohttp/main.py": AIOHTTP_APP,
        },
    )
    up = Up(
        [
            "up",
            str(one),
            str(two),
            str(three),
            "--port",
            str(port),
            "--data-dir",
            str(root / "data"),
        ],
        root,
        env,
        port,
    )
    try:
        up.wait_for(r"ready: one ", timeout=90)
        up.wait_for(r"ready: two ", timeout=90)
        up.wait_for(r"ready: three ", timeout=90)
        origins = {
            m.group(1): m.group(2)
            for m in re.finditer(r"ready: (\w+) (http://\S+?)/?(?:\s|$)", up.output)
        }
        session = login(origins["one"])
        ports = {
            name: port for app in APPS for name, port in _micro_ports(origins[app], session).items()
        }
        yield Apps(up, log, origins, ports)
    finally:
        up.stop()


def _raw(port: int, head: str) -> tuple[int, str]:
    """One request sent as written, straight to a port; the status and the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data and b"Connection: close" not in data and len(data) > 10:
                head_end = data.index(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", data[:head_end])
                if length and len(data) >= head_end + 4 + int(length.group(1)):
                    break
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.decode("latin-1")


def _origin_of(apps: Apps, micro: str) -> tuple[str, str]:
    app = next(a for a, micros in APPS.items() if micro in micros)
    return apps.origins[app], "" if micro in PRIMARIES else f"/{micro}"


@pytest.mark.parametrize("micro", GUARDED)
def test_through_the_gate_the_micro_answers(apps: Apps, micro: str) -> None:
    origin, path = _origin_of(apps, micro)
    status, _, body = fetch("GET", f"{origin}{path}/through-gate")
    assert status == 200, body
    assert "GET /through-gate" in apps.ran(micro)


ATTACKS = {
    # A page on another local origin: a no-cors fetch or a form, with the marks browsers add.
    "form post from another local page": (
        "POST /attack-form HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Origin: http://localhost:3000\r\nSec-Fetch-Site: same-site\r\n"
        "Sec-Fetch-Mode: navigate\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 3\r\nConnection: close\r\n\r\na=1"
    ),
    # DNS rebinding: the browser's name for the page, pointed at 127.0.0.1 on the micro's port;
    # it also sends the identity header micros trust.
    "dns rebinding": (
        "GET /attack-rebind HTTP/1.1\r\nHost: rebind.attacker.example:{port}\r\n"
        "X-Space-User: dev\r\nConnection: close\r\n\r\n"
    ),
    # Any client that is not a process of the app, with no proof at all.
    "no proof": "GET /attack-plain HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n",
    "a wrong proof": (
        "GET /attack-wrong HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "X-Space-Gate: not-the-secret\r\nConnection: close\r\n\r\n"
    ),
}


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("micro", GUARDED)
def test_a_request_around_the_gate_is_refused_before_app_code(
    apps: Apps, micro: str, attack: str
) -> None:
    port = apps.ports[micro]
    status, answer = _raw(port, ATTACKS[attack].format(port=port))
    assert status == 403, answer
    assert "come through its app" in answer
    path = re.search(r"(POST|GET) (/attack-\w+)", ATTACKS[attack]).group(2)  # type: ignore[union-attr]
    assert not [line for line in apps.ran(micro) if path in line]


@pytest.mark.parametrize("micro", ["node", "pydefault", "uvicorn"])
def test_a_micro_calling_its_own_port_is_answered(apps: Apps, micro: str) -> None:
    origin, path = _origin_of(apps, micro)
    status, _, body = fetch("GET", f"{origin}{path}/self")
    assert status == 200, body
    assert body.decode().startswith("self 200 hello"), body
    if micro == "node":
        assert body.decode() == "self 200 hello 200 hello"
        assert {"GET /inner-fetch", "GET /inner-get"} <= set(apps.ran(micro))
    else:
        assert "GET /inner" in apps.ran(micro)


@pytest.mark.parametrize("attack", ATTACKS)
def test_python_dash_m_http_server_is_guarded(apps: Apps, attack: str) -> None:
    """`python -m http.server` runs that module as __main__, never imported."""
    port = apps.ports["modhttp"]
    status, answer = _raw(port, ATTACKS[attack].format(port=port))
    assert status == 403, answer
    status, _, body = fetch("GET", apps.origins["three"] + "/index.html")
    assert (status, body) == (200, b"hello")


@pytest.mark.parametrize("micro", ["pydefault"])
def test_the_app_never_sees_the_proof(apps: Apps, micro: str) -> None:
    origin, path = _origin_of(apps, micro)
    status, _, body = fetch("GET", f"{origin}{path}/headers")
    assert status == 200
    names = body.decode().lower()
    assert "x-space-auth" in names.replace("_", "-")  # the identity headers do arrive
    assert "gate" not in names


def test_the_runtime_own_calls_carry_the_proof(apps: Apps) -> None:
    """Readiness found every guarded micro guarded: no warning names them."""
    for micro in (*GUARDED, "modhttp"):
        assert not re.search(rf"{micro}: its server does not check", apps.up.output), micro


def test_a_server_the_guard_cannot_reach_is_pointed_out(apps: Apps) -> None:
    apps.up.wait_for(r"isolated: its server does not check that requests come through the gate")
    port = apps.ports["isolated"]
    # The warning is true: this one answers anybody.
    status, _ = _raw(port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
    assert status == 200
    session = login(apps.origins["one"])
    status, micros = get_json(
        apps.origins["two"] + "/__space/api/micros", headers={"Cookie": f"space_session={session}"}
    )
    notices = {m["name"]: " ".join(m.get("notices", [])) for m in micros}
    assert "does not check that requests come through the gate" in notices["isolated"]
    assert "does not check" not in notices["httpserver"]


def test_a_refusal_is_noted_in_the_micros_log(apps: Apps) -> None:
    port = apps.ports["httpserver"]
    _raw(port, f"GET /noted HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "httpserver | space-dev: refused" not in apps.up.output:
        time.sleep(0.05)
    assert re.search(r"httpserver \| space-dev: refused [A-Z]+ /\S* on port \d+", apps.up.output)


def test_another_apps_process_is_refused(apps: Apps) -> None:
    """Each app has its own proof: app one's code calling app two's micro port is refused."""
    port = apps.ports["httpserver"]
    status, _, body = fetch("GET", f"{apps.origins['one']}/cross?port={port}")
    assert status == 200, body
    assert body.decode() == "cross 403"
    assert not [line for line in apps.ran("httpserver") if "/from-app-one" in line]


ATTACKER_PAGE = """<!doctype html><title>another local page</title>
<script>
async function scan(ports) {
  const found = [];
  for (const port of ports) {
    try {
      await fetch(`http://127.0.0.1:${port}/scan`, {mode: "no-cors"});
      found.push(port);
    } catch (e) {}
  }
  return found;
}
function post(port) {
  const frame = document.createElement("iframe");
  frame.name = `f${port}`;
  document.body.append(frame);
  const form = document.createElement("form");
  form.method = "POST";
  form.action = `http://127.0.0.1:${port}/private-post`;
  form.target = frame.name;
  const field = document.createElement("input");
  field.name = "note";
  field.value = "planted";
  form.append(field);
  document.body.append(form);
  form.submit();
}
</script>"""


@pytest.mark.browser
def test_a_page_on_another_local_origin_cannot_run_micro_code(apps: Apps) -> None:
    """Chromium on another local port scans the micros' ports and posts a form to them, and a
    DNS-rebinding name re-pointed at 127.0.0.1 opens one: no micro code runs for any of it."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from tests.integration.test_browser import CHROMIUM, CHROMIUM_ARGS, need_browser

    need_browser()
    from playwright.sync_api import sync_playwright

    class Attacker(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = ATTACKER_PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    Thread(target=server.serve_forever, daemon=True).start()
    targets = [apps.ports[m] for m in ("node", "httpserver", "uvicorn", "flask")]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM),
                args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP rebind.test 127.0.0.1"],
            )
            page = browser.new_page()
            page.goto(f"http://localhost:{server.server_address[1]}/")
            found = page.evaluate("ports => scan(ports)", targets)
            assert sorted(found) == sorted(targets)  # the ports are open; nothing runs there
            for port in targets:
                page.evaluate("port => post(port)", port)
            # Positive control: the same browser through the gate runs the micro's code.
            gate = browser.new_page()
            gate.goto(f"{apps.origins['one']}/pydefault/browser-through-gate")
            assert "hello" in gate.content()
            rebound = browser.new_page()
            rebound.goto(f"http://rebind.test:{apps.ports['node']}/rebound")
            assert "refused" in rebound.content()
            page.wait_for_timeout(500)  # the forms' answers, had they run anything
            browser.close()
    finally:
        server.shutdown()
    assert "GET /browser-through-gate" in apps.ran("pydefault")
    for micro in ("node", "httpserver", "uvicorn", "flask"):
        ran = apps.ran(micro)
        assert not [r for r in ran if "/scan" in r or "/private-post" in r or "/rebound" in r], ran
