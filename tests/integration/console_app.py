"""The app the developer's console tests run: pages in every shape an answer can take, a micro
that prints what it is asked to and crashes on demand, and one that never starts."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.integration.micros import write_app

SPACEFILE = """
v: 0
app_name: notes
micros:
  - name: www
    src: www
    engine: python3.9
    run: python main.py
    primary: true
    public_routes:
      - /public/*
  - name: api
    src: api
    engine: python3.9
    run: python main.py
    path: api
    presets:
      api_keys: true
  - name: broken
    src: broken
    engine: python3.9
    run: python main.py
    path: broken
"""

SPACE_DEV_TOML = """
[[apps]]
path = "notes"

[[apps.routes]]
micro = "api"
path = "/admin/*"
allow = 'clientType == "admin"'
"""

WWW = textwrap.dedent(
    """
    import gzip, os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    PAGE = b"<!doctype html><html><head><title>Home</title></head><body><h1>Home</h1></body></html>"

    class Pages(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            path = self.path
            body, headers = PAGE, [("Content-Type", "text/html; charset=utf-8")]
            if path == "/csp":
                headers.append(("Content-Security-Policy", "default-src 'self'"))
            elif path == "/gz":
                body = gzip.compress(PAGE)
                headers.append(("Content-Encoding", "gzip"))
            elif path == "/json":
                body, headers = b'{"page": "</body>"}', [("Content-Type", "application/json")]
            elif path == "/chunked":
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in (PAGE[:20], PAGE[20:]):
                    self.wfile.write(b"%x\\r\\n%s\\r\\n" % (len(piece), piece))
                self.wfile.write(b"0\\r\\n\\r\\n")
                return
            self.send_response(200)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Pages).serve_forever()
    """
)

API = textwrap.dedent(
    """
    import os, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    class Api(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/say":
                for text in parse_qs(url.query).get("text", []):
                    print(text, flush=True)
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    print("api listening", flush=True)
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Api).serve_forever()
    """
)

BROKEN = 'raise RuntimeError("the broken micro cannot start")\n'


def write_console_app(root: Path) -> Path:
    """The app folder (root/notes) and its space-dev.toml (root); returns the app folder."""
    app = write_app(
        root / "notes",
        SPACEFILE,
        {"www/main.py": WWW, "api/main.py": API, "broken/main.py": BROKEN},
    )
    (root / "space-dev.toml").write_text(textwrap.dedent(SPACE_DEV_TOML).lstrip())
    return app
