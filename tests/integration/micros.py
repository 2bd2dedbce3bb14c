"""Small real micros the integration tests write into a temporary app folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

# A stdlib Python micro that answers every request with what it received, as JSON.
PY_ECHO = textwrap.dedent(
    """
    import json, os, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/crash"):
                os._exit(3)
            payload = {
                "micro": os.environ.get("DETA_SPACE_APP_MICRO_NAME"),
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body_length": len(body),
                "env": {k: v for k, v in os.environ.items()
                        if k.startswith(ECHOED_ENV)},
                "version": VERSION,
            }
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

        def log_message(self, *args):
            pass

    ECHOED_ENV = ("DETA_", "PORT", "UVICORN_", "GREETING", "ONLY_", "SHELL_")
    VERSION = 1
    print("echo micro starting", flush=True)
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Echo).serve_forever()
    """
)

# A Node.js micro with no dependency: echoes like PY_ECHO.
NODE_ECHO = textwrap.dedent(
    """
    const http = require("http");
    http.createServer((req, res) => {
      let length = 0;
      req.on("data", (c) => (length += c.length));
      req.on("end", () => {
        const env = {};
        for (const [k, v] of Object.entries(process.env)) {
          if (k.startsWith("DETA_") || k === "PORT") env[k] = v;
        }
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ micro: process.env.DETA_SPACE_APP_MICRO_NAME, method: req.method,
          path: req.url, headers: req.headers, body_length: length, env }));
      });
    }).listen(Number(process.env.PORT), "127.0.0.1", () => console.log("node echo up"));
    """
)

# An aiohttp micro: WebSocket echo, a streamed download and a counted upload.
PY_AIOHTTP = textwrap.dedent(
    """
    import os
    from aiohttp import web, WSMsgType

    async def ws(request):
        sock = web.WebSocketResponse(protocols=("chat",))
        await sock.prepare(request)
        async for msg in sock:
            if msg.type == WSMsgType.TEXT:
                await sock.send_str("echo:" + msg.data)
            elif msg.type == WSMsgType.BINARY:
                await sock.send_bytes(msg.data[::-1])
        return sock

    async def download(request):
        size = int(request.query.get("mib", "1")) << 20
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = size
        await resp.prepare(request)
        block = b"x" * (1 << 20)
        for _ in range(size >> 20):
            await resp.write(block)
        return resp

    async def upload(request):
        total = 0
        async for chunk in request.content.iter_any():
            total += len(chunk)
        return web.json_response({
            "received": total,
            "content_length": request.headers.get("Content-Length"),
            "chunked": "chunked" in request.headers.get("Transfer-Encoding", ""),
        })

    app = web.Application(client_max_size=0)
    app.add_routes(
        [web.get("/ws", ws), web.get("/download", download), web.post("/upload", upload)]
    )
    """
)

# Starts a child that would outlive a careless supervisor, then serves.
PY_WITH_CHILD = textwrap.dedent(
    """
    import os, subprocess, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.environ["CHILD_PID_FILE"], "w") as f:
        f.write(str(child.pid))

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
            self.wfile.write(b"ok")
        def log_message(self, *a):
            pass

    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    """
)

# Never listens: the runtime must say so, not hang silently.
PY_NEVER_READY = 'import time\nprint("thinking very hard", flush=True)\ntime.sleep(600)\n'


def write_app(root: Path, spacefile: str, files: dict[str, str]) -> Path:
    """An app folder: the Spacefile and each file (path relative to the app) with its text."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Spacefile").write_text(textwrap.dedent(spacefile).lstrip())
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
