"""Rough edges of signing in and of API keys, against a real `space-dev up`: key guessing slowed
per client (never the right key), the login lock per name *and* client, a one-use link that a
HEAD does not use up, and a Drive upload whose Content-Type is not UTF-8.

Requests come from several loopback addresses (any of 127.0.0.0/8 reaches the runtime on Linux),
each standing for another client; one runtime serves the whole module.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.auth.keys import generate_key, hash_key, key_prefix, utc_now_text
from runtime.cli import control_client
from runtime.config.defaults import KEY_FAILURES_ALLOWED, LOGIN_FAILURES_ALLOWED
from runtime.datadir.store import Store
from runtime.models import ApiKey
from tests.integration.attack_env import Reply, exchange, login, parse_reply, send, wait_until
from tests.integration.conftest import OWNER_PASSWORD, Up, run_up
from tests.integration.micros import PY_ECHO, write_app

FORM = ("Content-Type", "application/x-www-form-urlencoded")


@dataclass
class Env:
    up: Up
    root: Path
    key: str
    session: str

    @property
    def port(self) -> int:
        return self.up.port

    def get(self, target: str, *headers: tuple[str, str], source: str | None = None) -> Reply:
        return send(self.port, "GET", target, headers, source=source)

    def sign_in(self, user: str, password: str, source: str | None = None) -> Reply:
        form = urllib.parse.urlencode({"username": user, "password": password, "next": "/"})
        return send(self.port, "POST", "/__space/login", [FORM], form.encode(), source=source)

    def raw(self, head: bytes, body: bytes = b"") -> Reply:
        port = str(self.port).encode()
        data = (
            head.replace(b"{port}", port).replace(b"{session}", self.session.encode())
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        return exchange(self.port, data)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("edges")
    app = write_app(
        root / "app",
        """
        v: 0
        app_name: edges
        micros:
          - name: site
            src: .
            engine: python3.9
            run: python echo.py
            public_routes: ["/public/*"]
            presets:
              api_keys: true
        """,
        {"echo.py": PY_ECHO},
    )
    up = run_up(app, "--no-reload", "--no-schedule")
    try:
        up.wait_ready(60)
        store = Store(root / "data")
        key = generate_key()
        store.keys.create(
            ApiKey(
                app="edges",
                name="right",
                key_hash=hash_key(key),
                prefix=key_prefix(key),
                created=utc_now_text(),
            )
        )
        control_client.refresh(store)
        env = Env(up, root, key, login(up.port, "dev", OWNER_PASSWORD))
        wait_until(
            lambda: env.get("/x", ("X-Space-App-Key", key)).status == 200,
            what="the new key to reach the runtime",
        )
        yield env
    finally:
        try:
            up.stop()
        except subprocess.TimeoutExpired:
            up.kill()


# --- guessing API keys ---------------------------------------------------------------------------


def test_wrong_keys_from_one_client_are_slowed_and_the_right_key_still_passes(env: Env) -> None:
    guesser = "127.0.0.3"
    for n in range(KEY_FAILURES_ALLOWED):
        reply = env.get("/x", ("X-Space-App-Key", f"guess-{n}"), source=guesser)
        assert reply.status == 401, (n, reply)
    slowed = env.get("/x", ("X-Space-App-Key", "guess-next"), source=guesser)
    assert slowed.status == 429, slowed
    assert 1 <= int(slowed.header("Retry-After") or "0") <= 60, slowed.headers
    assert b"wrong API key" in slowed.body
    # The right key from the same client: let through, at once.
    started = time.monotonic()
    right = env.get("/x", ("X-Space-App-Key", env.key), source=guesser)
    assert right.status == 200 and json.loads(right.body)["headers"]["X-Space-Auth"] == "api-key"
    assert time.monotonic() - started < 1.0
    # It does not lift the slowdown of the wrong ones, nor slow anyone else.
    assert env.get("/x", ("X-API-Key", "guess-again"), source=guesser).status == 429
    assert env.get("/x", ("X-Space-App-Key", "a-typo"), source="127.0.0.4").status == 401
    # A visitor of a public route and the owner's session are untouched.
    assert env.get("/public/a", source=guesser).status == 200
    assert env.get("/x", ("Cookie", f"space_session={env.session}"), source=guesser).status == 200


def test_no_key_at_all_is_no_guess(env: Env) -> None:
    """A request without a key (a browser before sign-in) is never counted as a wrong key."""
    for _ in range(KEY_FAILURES_ALLOWED + 5):
        assert env.get("/x", ("Accept", "application/json"), source="127.0.0.6").status == 401
    assert env.get("/x", ("X-Space-App-Key", "one-typo"), source="127.0.0.6").status == 401


def test_a_wrong_key_on_a_public_route_is_no_guess(env: Env) -> None:
    """Public routes win over keys: the gate does not refuse them, so it counts nothing there."""
    for n in range(KEY_FAILURES_ALLOWED + 5):
        reply = env.get("/public/a", ("X-Space-App-Key", f"stale-{n}"), source="127.0.0.8")
        assert reply.status == 200, (n, reply)
    assert env.get("/x", ("X-Space-App-Key", "one-typo"), source="127.0.0.8").status == 401


# --- the login lock ------------------------------------------------------------------------------


def test_a_name_locked_from_one_client_still_signs_in_from_another(env: Env) -> None:
    stranger, owner = "127.0.0.7", "127.0.0.1"
    for _ in range(LOGIN_FAILURES_ALLOWED):
        assert env.sign_in("dev", "a wrong password", stranger).status == 401
    locked = env.sign_in("dev", OWNER_PASSWORD, stranger)
    assert locked.status == 429 and 1 <= int(locked.header("Retry-After") or "0") <= 61
    # The owner, at their own browser: the right password signs in.
    reply = env.sign_in("dev", OWNER_PASSWORD, owner)
    assert reply.status == 303, reply
    assert any(v.startswith("space_session=") for v in reply.header_all("Set-Cookie"))
    # ...and the stranger stays locked.
    assert env.sign_in("dev", OWNER_PASSWORD, stranger).status == 429


# --- the one-use sign-in link --------------------------------------------------------------------


def test_a_head_request_does_not_use_up_the_sign_in_link(env: Env) -> None:
    """Link checkers and mail scanners send HEAD before anyone clicks."""
    target = env.up.wait_for(r"sign in as dev: \S+(/__space/login\?token=\S+)").group(1)
    head = send(env.port, "HEAD", target)
    assert head.status == 200 and not head.header_all("Set-Cookie"), head
    used = env.get(target)
    assert used.status == 303, used
    assert any(v.startswith("space_session=") for v in used.header_all("Set-Cookie"))
    assert env.get(target).status == 400  # still one use


# --- a Content-Type that is not UTF-8 ------------------------------------------------------------

NOT_UTF8_TYPE = b"Content-Type: text/pl\xe4in"
UPLOADS = [
    ("browser-path", b"POST /__space/v0/drive/v1/x/files/files?name=a.txt HTTP/1.1"),
    ("browser-path-upload", b"POST /__space/v0/drive/v1/x/files/uploads?name=a.txt HTTP/1.1"),
    ("data-api", b"POST /__space/api/data/drives/files/file?name=a.txt HTTP/1.1"),
]


@pytest.mark.parametrize(("where", "line"), UPLOADS, ids=[u[0] for u in UPLOADS])
def test_a_drive_upload_whose_content_type_is_not_utf8_is_a_400(
    env: Env, where: str, line: bytes
) -> None:
    head = (
        line + b"\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        b"Cookie: space_session={session}\r\n" + NOT_UTF8_TYPE
    )
    reply = env.raw(head, b"hello")
    assert reply.status == 400, reply
    assert b"Content-Type" in reply.body and b"UTF-8" in reply.body, reply.body
    assert "Traceback" not in env.up.output
    # The control: the same upload with a plain type is stored.
    fine = env.raw(head.replace(NOT_UTF8_TYPE, b"Content-Type: text/plain"), b"hello")
    assert fine.status in (200, 201, 202), fine


def test_a_data_page_upload_whose_part_type_is_not_utf8_is_an_error_on_the_page(
    env: Env,
) -> None:
    boundary = b"xyzzy"
    body = (
        b'--xyzzy\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        + NOT_UTF8_TYPE
        + b"\r\n\r\nhello\r\n--xyzzy--\r\n"
    )
    head = (
        b"POST /__space/settings/data/drive/files/files HTTP/1.1\r\n"
        b"Host: 127.0.0.1:{port}\r\nConnection: close\r\nCookie: space_session={session}\r\n"
        b"Content-Type: multipart/form-data; boundary=" + boundary
    )
    reply = env.raw(head, body)
    assert reply.status == 303, reply  # back to the page, with the error shown there
    page = env.get(reply.header("Location") or "", ("Cookie", f"space_session={env.session}"))
    assert b"Content-Type" in page.body and b"UTF-8" in page.body
    assert "Traceback" not in env.up.output


def _micro_environment(env: Env) -> dict[str, str]:
    """The echo micro's environment, read from /proc (Linux)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "environ").read_bytes()
            cwd = (proc / "cwd").resolve()
        except OSError:
            continue
        pairs = dict(p.partition(b"=")[::2] for p in raw.split(b"\0") if b"=" in p)
        if cwd == (env.root / "app").resolve() and b"DETA_PROJECT_KEY" in pairs:
            return {k.decode(): v.decode() for k, v in pairs.items()}
    raise AssertionError("no process of the micro")


def test_a_data_port_upload_whose_content_type_is_not_utf8_is_a_400(env: Env) -> None:
    environ = _micro_environment(env)
    host, _, port = environ["DETA_DRIVE_HOST"].partition(":")
    key = environ["DETA_PROJECT_KEY"]
    context = ssl.create_default_context(cafile=environ["NODE_EXTRA_CA_CERTS"])

    def upload(ctype: bytes) -> Reply:
        with (
            socket.create_connection((host, int(port)), 10) as plain,
            context.wrap_socket(plain, server_hostname=host) as tls,
        ):
            tls.sendall(
                f"POST /v1/{key.partition('_')[0]}/files/files?name=b.txt HTTP/1.1\r\n"
                f"Host: {host}\r\nConnection: close\r\nX-API-Key: {key}\r\n"
                "Content-Length: 5\r\n".encode()
                + ctype
                + b"\r\n\r\nhello"
            )
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
        return parse_reply(data)

    refused = upload(NOT_UTF8_TYPE)
    assert refused.status == 400 and b"UTF-8" in refused.body, refused
    assert upload(b"Content-Type: text/plain").status == 201
    assert "Traceback" not in env.up.output


# --- an owner-chosen key value ------------------------------------------------------------------

WEAK_VALUES = ["aaaaaaaaaaaaaaaaaaaa", "abcdefghijklmnopqrst", "1234567812345678"]


@pytest.mark.parametrize("value", WEAK_VALUES)
def test_a_trivially_guessed_key_value_is_refused_everywhere(env: Env, value: str) -> None:
    own_page = [
        ("Cookie", f"space_session={env.session}"),
        ("Origin", f"http://127.0.0.1:{env.port}"),
        ("Content-Type", "application/json"),
    ]
    api = send(
        env.port,
        "POST",
        "/__space/api/keys",
        own_page,
        json.dumps({"name": "weak", "value": value}).encode(),
    )
    assert api.status == 400 and b"too easy to guess" in api.body, api
    form = urllib.parse.urlencode({"name": "weak", "value": value}).encode()
    page = send(
        env.port,
        "POST",
        "/__space/settings/keys",
        [*own_page[:2], FORM, ("Accept", "text/html")],
        form,
    )
    assert page.status == 400 and b"too easy to guess" in page.body, page
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime",
            "keys",
            "create",
            "--name",
            "weak",
            "--value",
            value,
            "--data-dir",
            str(env.root / "data"),
        ],
        cwd=env.root,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli.returncode == 1 and "too easy to guess" in cli.stderr, cli.stderr
    assert "16 characters" in cli.stderr  # the hint says what would do
    # The control: a value with some variety is taken.
    fine = send(
        env.port,
        "POST",
        "/__space/api/keys",
        own_page,
        json.dumps(
            {"name": f"fine-{len(value)}-{value[1]}", "value": f"{value[:4]}-Mixed-{value[-4:]}-42"}
        ).encode(),
    )
    assert fine.status == 201, fine
