"""Attacks found in review: case tricks, method overrides, ambient cookies across local ports,
secrets on error pages and in micros' environments, parallel password guessing."""

from __future__ import annotations

import asyncio
import http.client
import json
from pathlib import Path

import aiohttp
import pytest

from tests.integration.conftest import OWNER_PASSWORD, fetch, get_json, run_up
from tests.integration.micros import PY_AIOHTTP, PY_ECHO, write_app

SPACEFILE = """
v: 0
app_name: hard
micros:
  - name: api
    src: ./api
    engine: python3.9
    run: python echo.py
    primary: true
  - name: open
    src: ./open
    engine: python3.9
    run: python echo.py
    public: true
  - name: io
    src: ./io
    engine: python3.9
"""
PASSWORD = OWNER_PASSWORD


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("hard")
    app = write_app(
        root / "app",
        SPACEFILE,
        {
            "api/echo.py": PY_ECHO,
            "open/echo.py": PY_ECHO,
            "io/main.py": PY_AIOHTTP,
        },
    )
    up = run_up(app, "--no-reload", cwd=root, data_dir=root / "data")
    try:
        up.wait_ready(60)
        status, headers, _ = fetch(
            "POST",
            up.url + "/__space/login",
            body=f"username=dev&password={PASSWORD}&next=/".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 303
        yield up, headers["Set-Cookie"].split(";", 1)[0]
    finally:
        up.stop()


@pytest.mark.parametrize(
    "path",
    [
        "/__SPACE/v0/actions",
        "/open/__Space/v0/actions",
        "/open/__SPACE",
        "/open/%5F_space/v0/actions",
    ],
)
def test_runtime_paths_in_any_case_are_never_forwarded(hard, path: str) -> None:
    up, _ = hard
    status, _, body = fetch("POST", up.url + path, body=b'{"event": {"id": "x"}}')
    assert status == 404, body


def test_method_override_headers_never_reach_a_micro(hard) -> None:
    up, _ = hard
    headers = {
        "X-HTTP-Method-Override": "DELETE",
        "X-HTTP-Method": "DELETE",
        "X-Method-Override": "DELETE",
    }
    _, data = get_json(up.url + "/open/", headers=headers)
    sent = {k.lower() for k in data["headers"]}
    assert not sent & {"x-http-method-override", "x-http-method", "x-method-override"}


@pytest.mark.parametrize("origin", ["http://127.0.0.1:1", "http://evil.example", "null"])
def test_session_cannot_post_from_another_origin(hard, origin: str) -> None:
    up, cookie = hard
    status, _, body = fetch(
        "POST", up.url + "/notes", body=b"{}", headers={"Cookie": cookie, "Origin": origin}
    )
    assert status == 403, body
    assert b'"micro"' not in body


def test_session_posts_from_its_own_origin_and_keys_from_anywhere(hard) -> None:
    up, cookie = hard
    status, _, body = fetch(
        "POST", up.url + "/notes", body=b"{}", headers={"Cookie": cookie, "Origin": up.url}
    )
    assert status == 200 and json.loads(body)["method"] == "POST"
    # No Origin at all: a program (curl), not a page.
    assert fetch("POST", up.url + "/notes", body=b"{}", headers={"Cookie": cookie})[0] == 200


async def test_websocket_with_a_session_from_another_origin_is_refused(hard) -> None:
    up, cookie = hard
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(
                up.url + "/io/ws", headers={"Cookie": cookie, "Origin": "http://127.0.0.1:9999"}
            )
        assert err.value.status == 403
        async with session.ws_connect(
            up.url + "/io/ws", headers={"Cookie": cookie, "Origin": up.url}
        ) as ws:
            await ws.send_str("hi")
            assert (await ws.receive(timeout=5)).data == "echo:hi"


def test_owner_password_is_not_in_any_micro_environment(hard) -> None:
    up, cookie = hard
    _, data = get_json(up.url + "/open/")
    pid_port = data["env"]["PORT"]
    assert pid_port
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            environ = (pid_dir / "environ").read_bytes()
        except OSError:
            continue
        if f"PORT={pid_port}".encode() in environ.split(b"\0"):
            assert b"SPACE_DEV_PASSWORD" not in environ
            assert PASSWORD.encode() not in environ
            return
    pytest.fail("the micro's process was not found")


def test_error_pages_show_logs_to_the_owner_only(hard) -> None:
    up, cookie = hard
    status, _, body = fetch("GET", up.url + "/open/crash", headers={"Accept": "text/html"})
    assert status == 502
    assert b"echo micro starting" not in body  # a visitor of a public micro sees no log
    get_json(up.url + "/open/")  # wait for it to come back
    status, _, body = fetch(
        "GET", up.url + "/crash", headers={"Accept": "text/html", "Cookie": cookie}
    )
    assert status == 502 and b"echo micro starting" in body


def test_a_bad_token_byte_is_a_401_not_a_crash(hard) -> None:
    up, _ = hard
    conn = http.client.HTTPConnection("127.0.0.1", up.port, timeout=10)
    conn.putrequest("POST", "/__space/internal/refresh")
    conn.putheader("X-Space-Dev-Token", b"\xff\xfe")
    conn.putheader("Content-Length", "0")
    conn.endheaders()
    assert conn.getresponse().status == 401
    assert "Traceback" not in up.output


async def test_parallel_wrong_passwords_are_limited(hard) -> None:
    up, _ = hard
    async with aiohttp.ClientSession() as session:

        async def attempt() -> int:
            async with session.post(
                up.url + "/__space/login",
                allow_redirects=False,
                data={"username": "ghost", "password": "guess"},
            ) as resp:
                return resp.status

        statuses = await asyncio.gather(*(attempt() for _ in range(20)))
    assert statuses.count(401) <= 5 and statuses.count(429) >= 15, statuses
