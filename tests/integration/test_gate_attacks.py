"""The gate under attack: a corpus of raw requests that must be refused before any micro sees them.

One real `space-dev up` serves two apps: `gate` (a private static primary, an `api` echo micro with
API keys and public routes, a private `admin` echo micro) and `other` (one echo micro with API keys,
whose key must not open `gate`). The echo micros log every request they receive to a file, so a
refusal is checked twice: by the answer, and by the micros' own record (each request carries a
unique marker header). Requests go out over a raw socket, as http clients would rewrite the paths
that matter here. The positive controls show the same requests, with a credential or on a real
public route, do reach the micro, with exactly the normalised path and no client-sent identity.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import URLSafeSerializer

from runtime.auth.keys import generate_key, hash_key, key_prefix, utc_now_text
from runtime.auth.passwords import hash_password
from runtime.auth.routes import PublicRoutes, normalise_path
from runtime.cli import notify
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
    '''
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
    '''
)

GATE_SPACEFILE = f"""
v: 0
micros:
  - name: www
    src: ./www
    engine: static
    serve: public
    primary: true
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
) -> Reply:
    """One request over a fresh socket, the request target sent byte for byte as given."""
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
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
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
    reply = send(port, "POST", "/__space/login",
                 [("Content-Type", "application/x-www-form-urlencoded")], form.encode())
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


def received_records(log: Path) -> list[dict[str, Any]]:
    """Every request the echo micros logged."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def received_with_marker(log: Path, name: str, value: str) -> list[dict[str, Any]]:
    """The logged requests that carried the header `name: value`."""
    lower = name.lower()
    return [
        r for r in received_records(log)
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

    def request(self, port: str, method: str, target: str | bytes,
                headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> Reply:
        """A request to one of the apps (`gate` or `other`), templates filled in."""
        if isinstance(target, str):
            target = target.format_map(self.creds)
        filled = [(n, v.format_map(self.creds)) for n, v in headers]
        return send(self.ports[port], method, target, filled, body)


def _start(tmp: Path) -> tuple[Up, dict[str, int], Path, Path]:
    write_app(tmp / "gate", GATE_SPACEFILE, {
        "www/public/index.html": "<h1>private home</h1>",
        "www/public/logo.png": "not really a png",
        "api/echo.py": LOGGING_ECHO,
        "admin/echo.py": LOGGING_ECHO,
    })
    write_app(tmp / "other", OTHER_SPACEFILE, {"svc/echo.py": LOGGING_ECHO})
    ports = {"gate": free_port(), "other": free_port()}
    data_dir = tmp / "data"
    log = tmp / "echo.log"
    config = tmp / "space-dev.toml"
    config.write_text(textwrap.dedent(f"""
        [runtime]
        data_dir = "data"
        [[apps]]
        path = "gate"
        name = "gate"
        port = {ports["gate"]}
        [apps.auth]
        key_cookies = ["{KEY_COOKIE}"]
        [[apps]]
        path = "other"
        name = "other"
        port = {ports["other"]}
    """))
    env = {**os.environ, "SPACE_DEV_PASSWORD": PASSWORD, "ECHO_LOG": str(log)}
    env.pop("NO_COLOR", None)
    up = Up(["up", "--config", str(config), "--no-reload", "--no-schedule"], tmp, env,
            ports["gate"])
    return up, ports, data_dir, log


def _make_credentials(env: GateEnv) -> None:
    store = Store(env.data_dir)
    keys: dict[str, str] = {}
    for app, name, client_type in (
        ("gate", "good", "ci"), ("gate", "revoked", ""), ("gate", "disabled", ""),
        ("other", "theirs", "ci"),
    ):
        value = generate_key()
        store.keys.create(ApiKey(app=app, name=name, key_hash=hash_key(value),
                                 prefix=key_prefix(value), client_type=client_type,
                                 created=utc_now_text()))
        keys[name] = value
    store.keys.revoke("gate", "revoked")
    store.keys.set_active("gate", "disabled", False)
    store.users.add("eve", hash_password(EVE_PASSWORD))
    store.users.add("gone", hash_password(EVE_PASSWORD))
    notify.refresh(store)

    gate = env.ports["gate"]
    session = login(gate, "dev", PASSWORD)
    logged_out = login(gate, "dev", PASSWORD)
    assert env.request("gate", "POST", "/__space/logout",
                       [("Cookie", f"space_session={logged_out}")]).status == 303
    eve = login(gate, "eve", EVE_PASSWORD)
    gone = login(gate, "gone", EVE_PASSWORD)
    store.users.remove("gone")

    secret = store.secret()
    signer = URLSafeSerializer(secret, salt="session")
    sid = signer.loads(session)
    past = Store(env.data_dir, clock=lambda: datetime.now(UTC) - timedelta(days=8))
    expired_sid = past.sessions.create("dev")
    notify.refresh(store)

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
        logged_out=logged_out,
        removed_user=gone,
        tampered=payload[:3] + ("A" if payload[3] != "A" else "B") + payload[4:] + "." + signature,
        forged_real_secret=signer.dumps("no-such-session"),
        wrong_salt=URLSafeSerializer(secret, salt="login-token").dumps(sid),
        expired=signer.dumps(expired_sid),
        gate_origin=f"http://127.0.0.1:{gate}",
    )

    def keys_visible() -> bool:
        ok = env.request("gate", "GET", "/api/x", [("X-Space-App-Key", "{key}")]).status == 200
        theirs = env.request("other", "GET", "/x", [("X-Space-App-Key", "{other_key}")])
        gone_out = env.request("gate", "GET", "/api/x",
                               [("Cookie", "space_session={removed_user}")]).status == 401
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


# --- the attack corpus ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """One request that must be refused: expected statuses, and never seen by a micro."""

    id: str
    target: str | bytes
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    statuses: frozenset[int] = frozenset({401})
    port: str = "gate"
    body: bytes = b""


def A(id: str, target: str | bytes, *headers: tuple[str, str], method: str = "GET",
      status: int | tuple[int, ...] = 401, port: str = "gate", body: bytes = b"") -> Attack:
    """Shorthand for one row of the corpus."""
    statuses = frozenset(status if isinstance(status, tuple) else (status,))
    return Attack(id, target, tuple(headers), method, statuses, port, body)


SESSION = ("Cookie", "space_session={session}")
EVE = ("Cookie", "space_session={eve_session}")
KEY = ("X-Space-App-Key", "{key}")
HTML = ("Accept", "text/html,application/xhtml+xml")
WS = (("Upgrade", "websocket"), ("Connection", "Upgrade"),
      ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"))

ATTACKS: list[Attack] = [
    # Dot segments: raw, encoded once (decoded and resolved), encoded twice (kept literal).
    A("dots-raw", "/api/public/../x"),
    A("dots-encoded", "/api/public/%2e%2e/x"),
    A("dots-encoded-upper", "/api/public/%2E%2E/x"),
    A("dots-half-encoded", "/api/public/.%2e/x"),
    A("dot-encoded-then-dots", "/api/public/%2e/../x"),
    A("dots-double-encoded-private", "/api/x/%252e%252e/public/a"),
    A("dots-encoded-into-admin", "/api/public/%2e%2e/%2e%2e/admin/x"),
    A("dots-into-admin", "/api/public/../../admin/x"),
    A("dots-above-root", "/api/public/../../../x", status=400),
    A("dots-encoded-above-root", "/api/public/%2e%2e/%2e%2e/%2e%2e/x", status=400),
    A("dots-to-micro-root", "/api/public/.."),
    A("dots-two-levels", "/api/public/a/../../x"),
    A("dots-glued-to-public", "/api/public../x"),
    A("dots-iis-unicode", "/api/public/%u002e%u002e/x", status=400),
    # Encoded slashes and backslashes.
    A("slash-encoded-upper", "/api/public%2F..%2Fx", status=400),
    A("slash-encoded-lower", "/api/public%2f..%2fx", status=400),
    A("slash-encoded-after-dots", "/api/public/..%2Fx", status=400),
    A("slash-double-encoded", "/api/public%252F..%252Fx"),
    A("backslash-raw", "/api/public\\..\\x", status=400),
    A("backslash-raw-after-dots", "/api/public/..\\x", status=400),
    A("backslash-encoded-upper", "/api/public%5C..%5Cx", status=400),
    A("backslash-encoded-lower", "/api/public%5c..%5cx", status=400),
    # `;` parameters.
    A("semicolon-dots", "/api/public/..;/x", status=400),
    A("semicolon-dot", "/api/public/.;/../x", status=400),
    A("semicolon-after-open", "/api/open;x"),
    A("semicolon-trailing-open", "/api/open;"),
    A("semicolon-encoded-open", "/api/open%3Bx"),
    A("semicolon-after-public", "/api/public;/x"),
    A("semicolon-private-prefix", "/api/x;/public/a"),
    # Repeated slashes.
    A("double-slash-start", "//api/x"),
    A("double-slash-then-dots", "/api//public/../x"),
    A("double-slash-before-dots", "/api/public//../x"),
    A("many-slashes", "///api///x"),
    # Case: mounts and public routes are case-sensitive.
    A("case-mount", "/API/public/x"),
    A("case-mount-mixed", "/Api/open"),
    A("case-public", "/api/PUBLIC/x"),
    A("case-public-title", "/api/Public/x"),
    A("case-open", "/api/OPEN"),
    A("case-png", "/api/x.PNG"),
    # NUL, overlong UTF-8, raw non-ASCII.
    A("nul-encoded", "/api/public/%00/../x", status=400),
    A("nul-encoded-open", "/api/open%00", status=400),
    A("nul-raw", b"/api/open\x00", status=400),
    A("overlong-dots", "/api/%c0%ae%c0%ae/x"),
    A("overlong-slash", "/api/public%c0%af..%c0%afx"),
    A("raw-non-ascii", b"/api/\xc0\xae\xc0\xae/x", status=400),
    # The query string plays no part.
    A("query-public-path", "/api/x?/public/a"),
    A("query-public-param", "/api/x?next=/public/a"),
    A("query-png", "/api/x?.png"),
    A("query-open", "/api/x?/open"),
    A("query-encoded-question", "/api/x%3F/public/a"),
    A("fragment-public-path", "/api/x#/public/a", status=400),
    A("fragment-after-png", "/api/x.png#", status=400),
    # Absolute-form and asterisk-form targets.
    A("absolute-form-evil", "http://evil.example/api/x", status=(400, 401)),
    A("absolute-form-public-dots", "http://evil.example/api/public/../x", status=(400, 401)),
    A("absolute-form-own-host", "{gate_origin}/api/x", status=(400, 401)),
    A("absolute-form-https", "https://evil.example/admin/x", status=(400, 401)),
    A("asterisk-form", "*", method="OPTIONS", status=(400, 404)),
    # API keys where they do not count.
    A("key-on-admin", "/admin/x", KEY),
    A("key-on-static-primary", "/", KEY),
    A("key-x-api-key-on-admin", "/admin/x", ("X-API-Key", "{key}")),
    A("key-cookie-on-admin", "/admin/x", ("Cookie", f"{KEY_COOKIE}={{key}}")),
    A("key-of-other-app", "/api/x", ("X-Space-App-Key", "{other_key}")),
    A("key-of-other-app-x-api-key", "/api/x", ("X-API-Key", "{other_key}")),
    A("key-of-gate-on-other-app", "/x", KEY, port="other"),
    A("key-revoked", "/api/x", ("X-Space-App-Key", "{revoked_key}")),
    A("key-disabled", "/api/x", ("X-Space-App-Key", "{disabled_key}")),
    A("key-disabled-cookie", "/api/x", ("Cookie", f"{KEY_COOKIE}={{disabled_key}}")),
    A("key-empty", "/api/x", ("X-Space-App-Key", "")),
    A("key-prefix-only", "/api/x", ("X-Space-App-Key", "{key_prefix}")),
    A("key-with-suffix", "/api/x", ("X-Space-App-Key", "{key}x")),
    A("key-case-swapped", "/api/x", ("X-Space-App-Key", "{key_swapcase}")),
    A("key-in-query", "/api/x?api_key={key}"),
    A("key-as-bearer", "/api/x", ("Authorization", "Bearer {key}")),
    A("key-underscore-header", "/api/x", ("X_Space_App_Key", "{key}")),
    A("key-wrong-with-session", "/api/x", ("X-Space-App-Key", "not-a-key"), SESSION),
    A("key-other-app-with-session", "/api/x", ("X-Space-App-Key", "{other_key}"), SESSION),
    A("key-disabled-with-session", "/admin/x", ("X-API-Key", "{disabled_key}"), SESSION),
    A("key-empty-with-session", "/admin/x", ("X-Space-App-Key", ""), SESSION),
    A("key-cookie-wrong-with-session", "/api/x",
      ("Cookie", f"{KEY_COOKIE}=nope; space_session={{session}}")),
    A("key-first-header-wrong", "/api/x", ("X-Space-App-Key", "nope"), ("X-API-Key", "{key}")),
    A("key-duplicate-first-wrong", "/api/x", ("X-Space-App-Key", "nope"), KEY),
    # Spoofed identity, no credential.
    A("spoof-space-user", "/api/x", ("X-Space-User", "dev")),
    A("spoof-space-auth", "/api/x", ("X-Space-Auth", "session"), ("X-Space-User", "dev")),
    A("spoof-space-auth-public", "/admin/x", ("X-Space-Auth", "public")),
    A("spoof-underscore", "/api/x", ("X_Space_User", "dev"), ("X_Space_Auth", "session")),
    A("spoof-odd-case", "/admin/x", ("x-sPACE-uSER", "dev"), ("X-SPACE-AUTH", "session")),
    A("spoof-key-name", "/api/x", ("X-Space-Key-Name", "good"), ("X-Space-Client-Type", "ci")),
    A("spoof-forwarded-user", "/api/x", ("X-Forwarded-User", "dev")),
    A("spoof-forwarded-for", "/admin/x", ("X-Forwarded-For", "127.0.0.1")),
    A("spoof-forwarded", "/admin/x", ("Forwarded", "for=127.0.0.1;host=localhost")),
    A("spoof-original-url", "/api/x", ("X-Original-URL", "/public/a")),
    # Sessions that are not (or no longer) sessions.
    A("session-forged", "/api/x", ("Cookie", "space_session=forged")),
    A("session-tampered", "/admin/x", ("Cookie", "space_session={tampered}")),
    A("session-after-logout", "/api/x", ("Cookie", "space_session={logged_out}")),
    A("session-unknown-id-real-secret", "/api/x", ("Cookie", "space_session={forged_real_secret}")),
    A("session-signed-for-other-purpose", "/api/x", ("Cookie", "space_session={wrong_salt}")),
    A("session-expired", "/admin/x", ("Cookie", "space_session={expired}")),
    A("session-of-removed-user", "/admin/x", ("Cookie", "space_session={removed_user}")),
    A("session-forged-browser", "/admin/x", ("Cookie", "space_session=forged"), HTML, status=303),
    # A signed-in user who is not the owner.
    A("non-owner-api", "/api/x", EVE, status=403),
    A("non-owner-admin", "/admin/x", EVE, status=403),
    A("non-owner-static", "/", EVE, status=403),
    A("non-owner-spoofing-owner", "/admin/x", EVE, ("X-Space-User", "dev"), status=403),
    # A micro's own /__space/ paths, even for the owner.
    A("actions-no-credential", "/api/__space/v0/actions", method="POST", status=404, body=b"{}"),
    A("actions-with-session", "/api/__space/v0/actions", SESSION, method="POST", status=404),
    A("actions-with-key", "/api/__space/v0/actions", KEY, method="POST", status=404),
    A("actions-encoded", "/api/%5F%5Fspace/v0/actions", SESSION, method="POST", status=404),
    A("actions-double-slash", "/api//__space/v0/actions", SESSION, method="POST", status=404),
    A("actions-via-dots", "/api/public/../__space/v0/actions", SESSION, method="POST",
      status=404),
    A("actions-on-admin", "/admin/__space/v0/actions", SESSION, method="POST", status=404),
    A("actions-on-public-micro-path", "/api/__space", status=404),
    A("internal-refresh-no-token", "/__space/internal/refresh", method="POST", status=401),
    # WebSocket upgrades and other methods pass the same gate.
    A("websocket-no-credential", "/api/ws", *WS),
    A("websocket-key-on-admin", "/admin/ws", KEY, *WS),
    A("websocket-spoofed-user", "/admin/ws", ("X-Space-User", "dev"), *WS),
    A("head-no-credential", "/api/x", method="HEAD"),
    A("head-browser", "/admin/x", HTML, method="HEAD", status=303),
    A("options-no-credential", "/api/x", method="OPTIONS"),
    A("options-preflight", "/admin/x", ("Origin", "http://evil.example"),
      ("Access-Control-Request-Method", "DELETE"), method="OPTIONS"),
    A("post-no-credential", "/api/x", method="POST", body=b'{"a": 1}'),
    A("delete-no-credential", "/admin/x", method="DELETE"),
    A("trace-no-credential", "/api/x", method="TRACE"),
    A("propfind-no-credential", "/admin/x", method="PROPFIND"),
    A("browser-navigation", "/api/x", HTML, status=303),
]


def test_corpus_is_large_and_ids_are_unique() -> None:
    ids = [a.id for a in ATTACKS]
    assert len(ids) == len(set(ids))
    assert len(ATTACKS) >= 60


@pytest.mark.parametrize("attack", [pytest.param(a, id=a.id) for a in ATTACKS])
def test_attack_is_refused(gate_env: GateEnv, attack: Attack) -> None:
    marker = f"attack-{attack.id}"
    reply = gate_env.request(attack.port, attack.method, attack.target,
                             [*attack.headers, (MARKER, marker)], attack.body)
    assert reply.status in attack.statuses, (reply.status, reply.body[:300])
    assert reply.echo is None, f"a micro answered: {reply.body[:300]!r}"
    assert not received_with_marker(gate_env.log, MARKER, marker), "a micro received it"
    if reply.status == 303:
        assert (reply.header("Location") or "").startswith("/__space/login?next=")
    if reply.status == 401 and attack.method != "HEAD":
        assert json.loads(reply.body) == {"errors": ["Unauthorized"]}


# --- raw `#` in the request target ----------------------------------------------------------

FRAGMENT_SMUGGLING = [
    pytest.param("/api/secret#.png", id="fragment-star-png"),
    pytest.param("/api/#.png", id="fragment-star-png-micro-root"),
    pytest.param("/api/docs/a#/raw", id="fragment-inside-star-segment"),
]


@pytest.mark.parametrize("target", FRAGMENT_SMUGGLING)
def test_raw_fragment_cannot_smuggle_a_private_path(gate_env: GateEnv, target: str) -> None:
    marker = f"fragment-{target}"
    reply = gate_env.request("gate", "GET", target, [(MARKER, marker)])
    records = received_with_marker(gate_env.log, MARKER, marker)
    if not records:
        assert reply.status in (400, 401), reply
        return
    # If it is let through, the micro must see the very path that was found public.
    path = records[0]["path"]
    assert "#" in path or "%23" in path, f"the micro received {path!r}"
    assert API_ROUTES.matches(path.partition("?")[0])


# --- positive controls ---------------------------------------------------------------------

SPOOFED = (
    ("X-Space-User", "mallory"),
    ("X_Space_Auth", "spoofed-auth"),
    ("x-space-key-name", "spoofed-key"),
    ("X-SPACE-CLIENT-TYPE", "spoofed-type"),
    ("X-Forwarded-For", "6.6.6.6"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "gopher"),
    ("X_Forwarded_User", "mallory"),
)
SPOOFED_VALUES = frozenset(v for _, v in SPOOFED)


@dataclass(frozen=True)
class Allowed:
    """A request that must reach the micro, and what the micro must receive."""

    id: str
    target: str
    path: str  # what the micro receives, query included
    auth: str  # X-Space-Auth
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[str, ...] = ()
    micro: str = "api"
    user: str | None = None
    key_name: str | None = None
    port: str = "gate"


ALLOWED = [
    Allowed("public-tilde-decoded", "/api/public/%7Ea", "/public/~a", "public"),
    Allowed("public-dots-resolved", "/api/public/x/../a", "/public/a", "public"),
    Allowed("public-slashes-merged", "/api//public//a", "/public/a", "public"),
    Allowed("public-encoded-letter", "/api/%70ublic/a", "/public/a", "public"),
    Allowed("public-double-encoded-kept", "/api/public/%252e%252e/x",
            "/public/%252e%252e/x", "public"),
    Allowed("public-overlong-kept", "/api/public/%c0%ae%c0%ae/x", "/public/%C0%AE%C0%AE/x",
            "public"),
    Allowed("public-open", "/api/open", "/open", "public"),
    Allowed("public-open-slash", "/api/open/", "/open/", "public"),
    Allowed("public-png", "/api/logo.png", "/logo.png", "public"),
    Allowed("public-docs-raw", "/api/docs/v1/raw", "/docs/v1/raw", "public"),
    Allowed("public-query-intact", "/api/public/a?q=a%20b&x=1", "/public/a?q=a%20b&x=1",
            "public"),
    Allowed("public-wins-over-bad-key", "/api/open", "/open", "public",
            headers=(("X-Space-App-Key", "not-a-key"),)),
    Allowed("public-for-non-owner", "/api/public/a", "/public/a", "public",
            cookies=("space_session={eve_session}",)),
    Allowed("key-header", "/api/x", "/x", "api-key", headers=(KEY,), key_name="good"),
    Allowed("key-x-api-key", "/api/x/../y", "/y", "api-key", headers=(("X-API-Key", "{key}"),),
            key_name="good"),
    Allowed("key-cookie", "/api/x", "/x", "api-key", cookies=(f"{KEY_COOKIE}={{key}}",),
            key_name="good"),
    Allowed("key-mount-root", "/api", "/", "api-key", headers=(KEY,), key_name="good"),
    Allowed("key-of-other-app-at-home", "/x", "/x", "api-key",
            headers=(("X-Space-App-Key", "{other_key}"),), micro="svc", key_name="theirs",
            port="other"),
    Allowed("session-api", "/api/x?y=1", "/x?y=1", "session", cookies=("space_session={session}",),
            user="dev"),
    Allowed("session-admin", "/admin/a/b", "/a/b", "session",
            cookies=("space_session={session}",), micro="admin", user="dev"),
    Allowed("session-dots-across-mounts", "/api/../admin/x", "/x", "session",
            cookies=("space_session={session}",), micro="admin", user="dev"),
    Allowed("session-hop-by-hop-cannot-drop-identity", "/api/x", "/x", "session",
            headers=(("Connection", "X-Space-Auth, X-Space-User, X-Forwarded-For"),),
            cookies=("space_session={session}",), user="dev"),
    Allowed("session-other-app", "/y", "/y", "session", cookies=("space_session={session}",),
            micro="svc", user="dev", port="other"),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ALLOWED])
def test_allowed_request_reaches_the_micro_exactly(gate_env: GateEnv, case: Allowed) -> None:
    marker = f"allowed-{case.id}"
    cookies = "; ".join(["theme=dark", *case.cookies, "lang=en"])
    headers = [*case.headers, *SPOOFED, ("Cookie", cookies), (MARKER, marker)]
    reply = gate_env.request(case.port, "GET", case.target, headers)
    assert reply.status == 200, (reply.status, reply.body[:300])
    echo = reply.echo
    assert echo is not None
    assert received_with_marker(gate_env.log, MARKER, marker), "not in the micro's log"
    assert echo["micro"] == case.micro
    assert echo["path"] == case.path
    if case.auth == "public":
        assert API_ROUTES.matches(echo["path"].partition("?")[0])
    got = _lower_headers(echo["headers"])
    assert got["x-space-auth"] == [case.auth]
    assert got.get("x-space-user") == ([case.user] if case.user else None)
    assert got.get("x-space-key-name") == ([case.key_name] if case.key_name else None)
    if case.key_name:
        assert got["x-space-client-type"] == ["ci"]
    _assert_no_client_identity(got, gate_env)
    assert got["x-forwarded-for"] == ["127.0.0.1"]
    assert got["x-forwarded-host"] == [f"127.0.0.1:{gate_env.ports[case.port]}"]
    assert got["x-forwarded-proto"] == ["http"]
    # Other cookies are kept, in order; credentials are not.
    assert got["cookie"] == ["theme=dark; lang=en"]


def _lower_headers(pairs: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name.lower(), []).append(value)
    return out


def _assert_no_client_identity(got: Mapping[str, list[str]], env: GateEnv) -> None:
    """No credential and no client-sent identity header reaches a micro."""
    allowed = {"x-space-auth", "x-space-user", "x-space-key-name", "x-space-client-type",
               "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"}
    for name, values in got.items():
        reserved = name.replace("_", "-")
        if reserved.startswith(("x-space-", "x-forwarded-")):
            assert name in allowed, f"the micro received {name}"
            assert len(values) == 1, f"{name} twice: {values}"
        assert not SPOOFED_VALUES.intersection(values), f"a client value in {name}: {values}"
        assert name not in ("x-api-key", "authorization", "forwarded")
        secrets = [env.creds[k] for k in ("key", "other_key", "session", "eve_session")]
        for value in values:
            assert not any(s in value for s in secrets), f"a credential in {name}"
            assert "space_session" not in value and KEY_COOKIE not in value


def test_websocket_upgrade_with_credential_is_forwarded(gate_env: GateEnv) -> None:
    """Control for the WebSocket attacks: with a key the upgrade reaches the (non-WS) micro."""
    marker = "allowed-websocket"
    gate_env.request("gate", "GET", "/api/ws", [KEY, *WS, (MARKER, marker)])
    records = received_with_marker(gate_env.log, MARKER, marker)
    assert records and records[0]["path"] == "/ws"
    got = _lower_headers(records[0]["headers"])
    assert got["x-space-auth"] == ["api-key"]
    _assert_no_client_identity(got, gate_env)


def test_no_request_reached_a_micro_unseen(gate_env: GateEnv) -> None:
    """Every request a micro logged in this module was sent as an allowed one, or is public."""
    for record in received_records(gate_env.log):
        headers = _lower_headers(record["headers"])
        marker = (headers.get(MARKER.lower()) or [""])[0]
        if headers.get("x-space-auth") == ["public"]:
            assert record["micro"] == "api" and API_ROUTES.matches(record["path"].split("?")[0])
            continue
        assert not marker.startswith("attack-"), record


# --- findings where the micro gets something other than what was authorised -------------------


def test_micro_receives_exactly_the_authorised_path_and_query(gate_env: GateEnv) -> None:
    target = "/api/public/a%2Cb%3Ac?next=%2Fx%2F..&y=%3B"
    marker = "exact-path"
    reply = gate_env.request("gate", "GET", target, [(MARKER, marker)])
    echo = reply.echo
    assert echo is not None
    raw_path, _, query = target.partition("?")
    assert echo["path"] == normalise_path(raw_path)[len("/api"):] + "?" + query


def test_session_cookie_is_not_forwarded_whatever_the_separator(gate_env: GateEnv) -> None:
    marker = "cookie-comma"
    reply = gate_env.request("gate", "GET", "/api/x", [
        ("Cookie", "theme=dark, space_session={session}"), (MARKER, marker),
    ])
    records = received_with_marker(gate_env.log, MARKER, marker)
    if not records:
        assert reply.status == 401
        return
    cookies = _lower_headers(records[0]["headers"]).get("cookie", [])
    assert not any("space_session" in c for c in cookies), cookies


def test_a_key_cookie_of_one_app_does_not_reach_another_apps_micro(gate_env: GateEnv) -> None:
    marker = "cookie-cross-app"
    reply = gate_env.request("other", "GET", "/x", [
        ("X-Space-App-Key", "{other_key}"),
        ("Cookie", f"theme=dark; {KEY_COOKIE}={{key}}"),
        (MARKER, marker),
    ])
    assert reply.status == 200
    records = received_with_marker(gate_env.log, MARKER, marker)
    assert records
    cookies = _lower_headers(records[0]["headers"]).get("cookie", [])
    assert cookies == ["theme=dark"], cookies
