"""The running runtime the gate attack tests share: two apps, logging echo micros, raw HTTP.

One real `space-dev up` serves two apps: `gate` (a private static primary, an `api` echo micro with
API keys, public routes and route rules, a private `admin` echo micro) and `other` (one echo micro
with API keys, whose key must not open `gate`). The echo micros log every request they receive to a
file, so a refusal is checked twice: by the answer, and by the micros' own record (each request
carries a unique marker header). Requests go out over a raw socket, as http clients would rewrite
the paths that matter here.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import URLSafeSerializer

from runtime.auth.keys import generate_key, hash_key, key_prefix, utc_now_text
from runtime.auth.passwords import hash_password
from runtime.auth.routes import PublicRoutes
from runtime.cli import control_client
from runtime.datadir.store import Store
from runtime.models import ApiKey
from tests.integration.conftest import OWNER_PASSWORD, Up, free_port
from tests.integration.micros import write_app

PASSWORD = OWNER_PASSWORD
EVE_PASSWORD = "eve's own long password"
API_PUBLIC_ROUTES = ("/public/*", "/open", "/*.png", "/docs/*/raw")
API_ROUTES = PublicRoutes(API_PUBLIC_ROUTES)
KEY_COOKIE = "mia_client_key"
MARKER = "X-Attack-Id"

# An echo micro (stdlib only) that answers with what it received and appends the same record to
# $ECHO_LOG, one JSON line per request, written before the answer is sent.
LOGGING_ECHO = textwrap.dedent(
    """
    import json, os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    LOG = os.environ.get("ECHO_LOG")
    MICRO = os.environ.get("DETA_SPACE_APP_MICRO_NAME")

    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            record = {"echo": True, "micro": MICRO, "method": self.command, "path": self.path,
                      "headers": [[k, v] for k, v in self.headers.items()],
                      "body_length": len(body)}
            data = json.dumps(record).encode()
            if LOG:
                fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, data + b"\\n")
                finally:
                    os.close(fd)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer
        do_TRACE = do_PROPFIND = _answer

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Echo).serve_forever()
    """
)

GATE_SPACEFILE = f"""
v: 0
micros:
  - name: www
    src: ./www
    engine: static
    serve: public
    primary: true
    public_routes: ["/pub/*"]
  - name: api
    src: ./api
    engine: python3.9
    run: python echo.py
    path: /api
    public_routes: {json.dumps(list(API_PUBLIC_ROUTES))}
    presets:
      api_keys: true
  - name: admin
    src: ./admin
    engine: python3.9
    run: python echo.py
    path: /admin
"""

OTHER_SPACEFILE = """
v: 0
micros:
  - name: svc
    src: ./svc
    engine: python3.9
    run: python echo.py
    presets:
      api_keys: true
"""


# --- raw HTTP ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One HTTP answer as it came off the socket."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, any case."""
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)

    def header_all(self, name: str) -> list[str]:
        """Every value of a header, any case."""
        lower = name.lower()
        return [v for k, v in self.headers if k.lower() == lower]

    @property
    def echo(self) -> dict[str, Any] | None:
        """What the echo micro received, when this answer came from it."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) and data.get("echo") is True else None


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


def send(
    port: int,
    method: str,
    target: str | bytes,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    timeout: float = 10.0,
    source: str | None = None,
) -> Reply:
    """One request over a fresh socket, the request target sent byte for byte as given;
    `source` is the client address to send from (any of 127.0.0.0/8 on Linux)."""
    raw_target = target if isinstance(target, bytes) else target.encode("utf-8")
    lines = [method.encode("ascii") + b" " + raw_target + b" HTTP/1.1"]
    names = {name.lower() for name, _ in headers}
    if "host" not in names:
        lines.append(f"Host: 127.0.0.1:{port}".encode())
    lines.append(b"Connection: close")
    for name, value in headers:
        lines.append(name.encode("latin-1") + b": " + value.encode("utf-8"))
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}".encode())
    return exchange(port, b"\r\n".join(lines) + b"\r\n\r\n" + body, timeout, source)


def exchange(port: int, data: bytes, timeout: float = 10.0, source: str | None = None) -> Reply:
    """Send raw request bytes (which ask to close), read until the runtime closes, parse."""
    bind = (source, 0) if source else None
    with socket.create_connection(("127.0.0.1", port), timeout, bind) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return parse_reply(b"".join(chunks))


def parse_reply(raw: bytes) -> Reply:
    """One HTTP answer from its bytes (a chunked body is de-chunked)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    head_lines = head.decode("latin-1").split("\r\n")
    status = int(head_lines[0].split(" ", 2)[1])
    parsed = tuple(
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in head_lines[1:])
    )
    reply = Reply(status, parsed, rest)
    if "chunked" in (reply.header("Transfer-Encoding") or "").lower():
        reply = Reply(status, parsed, _dechunk(rest))
    return reply


def login(port: int, user: str, password: str) -> str:
    """Sign in through the form; the `space_session` cookie value."""
    form = urllib.parse.urlencode({"username": user, "password": password, "next": "/"})
    reply = send(
        port,
        "POST",
        "/__space/login",
        [("Content-Type", "application/x-www-form-urlencoded")],
        form.encode(),
    )
    assert reply.status == 303, reply
    for value in reply.header_all("Set-Cookie"):
        name, _, rest = value.partition("=")
        if name == "space_session":
            return rest.split(";", 1)[0]
    raise AssertionError(f"no session cookie in {reply.headers}")


def wait_until(check: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `check()` until it is true, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def micro_environment(log: Path, micro: str) -> dict[str, str]:
    """The environment of the echo micro `micro` whose requests go to `log`, read from /proc."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "environ").read_bytes()
        except OSError:
            continue
        pairs = dict(p.partition(b"=")[::2] for p in raw.split(b"\0") if b"=" in p)
        if (
            pairs.get(b"ECHO_LOG") == str(log).encode()
            and pairs.get(b"DETA_SPACE_APP_MICRO_NAME") == micro.encode()
        ):
            return {k.decode(): v.decode() for k, v in pairs.items()}
    raise AssertionError(f"no process of the micro {micro}")


def received_records(log: Path) -> list[dict[str, Any]]:
    """Every request the echo micros logged."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def received_with_marker(log: Path, name: str, value: str) -> list[dict[str, Any]]:
    """The logged requests that carried the header `name: value`."""
    lower = name.lower()
    return [
        r
        for r in received_records(log)
        if any(k.lower() == lower and v == value for k, v in r["headers"])
    ]


# --- the running runtime -------------------------------------------------------------------


@dataclass
class GateEnv:
    """The running runtime, its two origins and the credentials made for the attacks."""

    up: Up
    ports: dict[str, int]
    data_dir: Path
    log: Path
    creds: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        port: str,
        method: str,
        target: str | bytes,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Reply:
        """A request to one of the apps (`gate` or `other`), templates filled in."""
        if isinstance(target, str):
            target = target.format_map(self.creds)
        filled = [(n, v.format_map(self.creds)) for n, v in headers]
        return send(self.ports[port], method, target, filled, body)


def _start(tmp: Path) -> tuple[Up, dict[str, int], Path, Path]:
    write_app(
        tmp / "gate",
        GATE_SPACEFILE,
        {
            "www/public/index.html": "<h1>private home</h1>",
            "www/public/logo.png": "not really a png",
            "www/public/404.html": "<h1>the site's own lost page</h1>",
            "api/echo.py": LOGGING_ECHO,
            "admin/echo.py": LOGGING_ECHO,
        },
    )
    # Symlinks on the static primary's public route: to a private file, a private folder, and
    # (the control) to another public file.
    www = tmp / "gate" / "www" / "public"
    (www / "secret.txt").write_text("the private file")
    (www / "hidden").mkdir()
    (www / "hidden" / "index.html").write_text("the private folder")
    (www / "pub").mkdir()
    (www / "pub" / "ok.txt").write_text("a public file")
    (www / "pub" / "link.txt").symlink_to("../secret.txt")
    (www / "pub" / "folder").symlink_to("../hidden")
    (www / "pub" / "also-ok.txt").symlink_to("ok.txt")
    write_app(tmp / "other", OTHER_SPACEFILE, {"svc/echo.py": LOGGING_ECHO})
    ports = {"gate": free_port(), "other": free_port()}
    data_dir = tmp / "data"
    log = tmp / "echo.log"
    config = tmp / "space-dev.toml"
    config.write_text(
        textwrap.dedent(f"""
        [runtime]
        data_dir = "data"
        [[apps]]
        path = "gate"
        name = "gate"
        port = {ports["gate"]}
        [apps.auth]
        key_cookies = ["{KEY_COOKIE}"]
        [[apps.routes]]
        micro = "api"
        path = "/admin/*"
        api_key_required = true
        [[apps.routes]]
        micro = "api"
        path = "/alice/*"
        allow = 'user == "alice"'
        [[apps]]
        path = "other"
        name = "other"
        port = {ports["other"]}
    """)
    )
    env = {**os.environ, "SPACE_DEV_PASSWORD": PASSWORD, "ECHO_LOG": str(log)}
    env.pop("NO_COLOR", None)
    up = Up(
        ["up", "--config", str(config), "--no-reload", "--no-schedule"], tmp, env, ports["gate"]
    )
    return up, ports, data_dir, log


def _make_credentials(env: GateEnv) -> None:
    store = Store(env.data_dir)
    keys: dict[str, str] = {}
    for app, name, client_type in (
        ("gate", "good", "ci"),
        ("gate", "revoked", ""),
        ("gate", "disabled", ""),
        ("other", "theirs", "ci"),
    ):
        value = generate_key()
        store.keys.create(
            ApiKey(
                app=app,
                name=name,
                key_hash=hash_key(value),
                prefix=key_prefix(value),
                client_type=client_type,
                created=utc_now_text(),
            )
        )
        keys[name] = value
    store.keys.revoke("gate", "revoked")
    store.keys.set_active("gate", "disabled", False)
    store.users.add("eve", hash_password(EVE_PASSWORD))
    store.users.add("gone", hash_password(EVE_PASSWORD))
    store.users.add("alice", hash_password(EVE_PASSWORD))
    control_client.refresh(store)

    gate = env.ports["gate"]
    session = login(gate, "dev", PASSWORD)
    logged_out = login(gate, "dev", PASSWORD)
    assert (
        env.request(
            "gate", "POST", "/__space/logout", [("Cookie", f"space_session={logged_out}")]
        ).status
        == 303
    )
    eve = login(gate, "eve", EVE_PASSWORD)
    gone = login(gate, "gone", EVE_PASSWORD)
    alice = login(gate, "alice", EVE_PASSWORD)
    store.users.remove("gone")

    secret = store.secret()
    signer = URLSafeSerializer(secret, salt="session")
    sid = signer.loads(session)
    past = Store(env.data_dir, clock=lambda: datetime.now(UTC) - timedelta(days=8))
    expired_sid = past.sessions.create("dev")
    control_client.refresh(store)

    payload, _, signature = session.partition(".")
    env.creds.update(
        key=keys["good"],
        key_prefix=keys["good"].split(".")[0],
        key_swapcase=keys["good"].swapcase(),
        other_key=keys["theirs"],
        revoked_key=keys["revoked"],
        disabled_key=keys["disabled"],
        session=session,
        eve_session=eve,
        alice_session=alice,
        logged_out=logged_out,
        removed_user=gone,
        tampered=payload[:3] + ("A" if payload[3] != "A" else "B") + payload[4:] + "." + signature,
        forged_real_secret=signer.dumps("no-such-session"),
        wrong_salt=URLSafeSerializer(secret, salt="login-token").dumps(sid),
        expired=signer.dumps(expired_sid),
        gate_origin=f"http://127.0.0.1:{gate}",
        gate_port=str(gate),
    )

    def keys_visible() -> bool:
        ok = env.request("gate", "GET", "/api/x", [("X-Space-App-Key", "{key}")]).status == 200
        theirs = env.request("other", "GET", "/x", [("X-Space-App-Key", "{other_key}")])
        gone_out = (
            env.request(
                "gate", "GET", "/api/x", [("Cookie", "space_session={removed_user}")]
            ).status
            == 401
        )
        return ok and theirs.status == 200 and gone_out

    wait_until(keys_visible, what="the new keys and users to reach the runtime")


@pytest.fixture(scope="module")
def gate_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GateEnv]:
    tmp = tmp_path_factory.mktemp("attacks")
    up, ports, data_dir, log = _start(tmp)
    try:
        up.wait_for(r"ready: gate ", 60)
        up.wait_for(r"ready: other ", 60)
        env = GateEnv(up, ports, data_dir, log)
        _make_credentials(env)
        yield env
    finally:
        try:
            up.stop()
        except subprocess.TimeoutExpired:
            up.kill()
