"""The gate against an outsider's third round of attacks, one section per class of request that
got through (or crashed) before.

Same runtime as the attack corpus (`attack_env`); each attack is checked by its answer and, where
a micro could see it, by the echo micros' own record, with a positive control beside it.
"""

from __future__ import annotations

import socket
import ssl

import pytest

from tests.integration.attack_env import (
    MARKER,
    GateEnv,
    exchange,
    gate_env,
    micro_environment,
    parse_reply,
    received_with_marker,
)

__all__ = ["gate_env"]  # the fixture, imported to be found by pytest

KEY = ("X-Space-App-Key", "{key}")
SESSION = ("Cookie", "space_session={session}")
ALICE = ("Cookie", "space_session={alice_session}")


# --- a `/x/*` rule at `/x` ------------------------------------------------------------------------

# `[[apps.routes]]` in attack_env: `/admin/*` needs a key, `/alice/*` is for alice alone. A
# router mounted at the folder (`app.use("/admin", router)`) answers `/admin` itself.
FOLDER_DODGES = [
    ("DELETE", "/api/admin", SESSION),
    ("GET", "/api/admin", SESSION),
    ("POST", "/api/ADMIN", SESSION),
    ("GET", "/api/Admin", SESSION),
    ("PUT", "/api/alice", SESSION),  # the rule names `user`: the owner is not alice
    ("GET", "/api/ALICE", SESSION),
]


@pytest.mark.parametrize(
    ("method", "target", "cookie"), FOLDER_DODGES, ids=[f"{m}-{t}" for m, t, _ in FOLDER_DODGES]
)
def test_a_rule_on_a_folder_holds_at_the_folder_itself(
    gate_env: GateEnv, method: str, target: str, cookie: tuple[str, str]
) -> None:
    marker = f"folder-{method}-{target}"
    reply = gate_env.request("gate", method, target, [cookie, (MARKER, marker)])
    assert reply.status == 403, (reply.status, reply.body[:200])
    assert not received_with_marker(gate_env.log, MARKER, marker), "a micro received it"


def test_the_folder_still_opens_for_what_the_rule_asks_and_admits_no_wider(
    gate_env: GateEnv,
) -> None:
    reply = gate_env.request("gate", "DELETE", "/api/admin", [KEY, (MARKER, "folder-key")])
    assert reply.status == 200 and reply.echo is not None and reply.echo["path"] == "/admin"
    assert gate_env.request("gate", "GET", "/api/alice/", [ALICE]).status == 200
    # What a rule grants stays where it says: alice is admitted under /alice/, not at /alice.
    assert gate_env.request("gate", "GET", "/api/alice", [ALICE]).status == 403
    # Another name that merely starts the same is no folder of the rule.
    assert gate_env.request("gate", "GET", "/api/administrator", [SESSION]).status == 200


# --- stored files on the app's origin -------------------------------------------------------------

DRIVE = "/__space/v0/drive/v1/anything/uploads"
STORED = [
    ("page.html", "text/html", b"<script>fetch('/__space/api/keys',{method:'POST'})</script>"),
    ("pic.svg", "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
    ("typed-by-name.html", "", b"<script>alert(document.cookie)</script>"),
    ("photo.png", "image/png", b"\x89PNG not really"),
]


@pytest.mark.parametrize(("name", "ctype", "body"), STORED, ids=[s[0] for s in STORED])
def test_a_stored_file_cannot_run_as_a_page_on_the_apps_origin(
    gate_env: GateEnv, name: str, ctype: str, body: bytes
) -> None:
    """The Drive API is also served on the app's origin, where the owner's session opens
    `/__space/api/keys`. A file a visitor got stored (a public upload route) and the owner is
    led to open must not run there; the bytes and their type still arrive, for `fetch`, the
    SDKs and `<img>`."""
    headers = [SESSION, *([("Content-Type", ctype)] if ctype else [])]
    put = gate_env.request("gate", "POST", f"{DRIVE}/files?name={name}", headers, body)
    assert put.status == 201, put
    for method, extra, status in [
        ("GET", [], 200),
        ("GET", [("Range", "bytes=0-3")], 206),
        ("HEAD", [], 200),
    ]:
        got = gate_env.request(
            "gate",
            method,
            f"{DRIVE}/files/download?name={name}",
            [SESSION, ("Accept", "text/html"), *extra],
        )
        assert got.status == status, got
        assert got.header("Content-Security-Policy") == "sandbox", got.headers
        assert got.header("X-Content-Type-Options") == "nosniff", got.headers
        assert (got.header("Content-Type") or "").startswith(ctype or "text/html")
        if method == "GET":
            assert got.body == (body[:4] if status == 206 else body)


# --- bytes that are not UTF-8 ---------------------------------------------------------------------


def _raw(env: GateEnv, head: bytes, body: bytes = b"") -> int:
    port = env.ports["gate"]
    data = head.replace(b"{port}", str(port).encode())
    return exchange(port, data + b"\r\n\r\n" + body).status


BAD_COOKIE = b"Cookie: space_session=\xff\xfe"
NOT_UTF8 = [
    ("gate-private", b"GET /admin/x HTTP/1.1", 401),
    ("gate-key-cookie", b"GET /api/x HTTP/1.1", 401),
    ("gate-post", b"POST /admin/x HTTP/1.1\r\nContent-Length: 0", 401),
    ("settings-page", b"GET /__space/settings HTTP/1.1", 303),
    ("settings-api", b"GET /__space/api/keys HTTP/1.1", 401),
    ("data-api", b"GET /__space/api/data HTTP/1.1", 401),
    ("browser-base", b"GET /__space/v0/base/v1/x/notes/items/a HTTP/1.1", 401),
    ("logout", b"POST /__space/logout HTTP/1.1\r\nContent-Length: 0", 303),
]


@pytest.mark.parametrize(("where", "line", "status"), NOT_UTF8, ids=[n[0] for n in NOT_UTF8])
def test_a_session_cookie_that_is_not_utf8_is_no_session(
    gate_env: GateEnv, where: str, line: bytes, status: int
) -> None:
    cookie = BAD_COOKIE if where != "gate-key-cookie" else b"Cookie: mia_client_key=\xff\xfe"
    marker = f"not-utf8-{where}".encode()
    head = line + b"\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n" + cookie
    assert _raw(gate_env, head + b"\r\n" + MARKER.encode() + b": " + marker) == status
    assert not received_with_marker(gate_env.log, MARKER, marker.decode())
    assert "Traceback" not in gate_env.up.output


def test_a_project_key_that_is_not_utf8_is_a_wrong_key_on_the_data_port(
    gate_env: GateEnv,
) -> None:
    environ = micro_environment(gate_env.log, "api")
    host, _, port = environ["DETA_BASE_HOST"].partition(":")
    project_id, _, _ = environ["DETA_PROJECT_KEY"].partition("_")
    context = ssl.create_default_context(cafile=environ["NODE_EXTRA_CA_CERTS"])

    def status_with(key: bytes) -> int:
        with (
            socket.create_connection((host, int(port)), 10) as plain,
            context.wrap_socket(plain, server_hostname=host) as tls,
        ):
            tls.sendall(
                f"GET /v1/{project_id}/notes/items/a HTTP/1.1\r\nHost: {host}\r\n"
                "Connection: close\r\nX-API-Key: ".encode()
                + key
                + b"\r\n\r\n"
            )
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
        return parse_reply(data).status

    assert status_with(project_id.encode() + b"_\xff\xfe") == 401
    assert status_with(environ["DETA_PROJECT_KEY"].encode()) == 404  # the control: no item a
    assert "Traceback" not in gate_env.up.output


LOGIN_BODIES = [
    ("multipart-without-boundary", "multipart/form-data", b"username=dev"),
    ("unknown-charset", "application/x-www-form-urlencoded; charset=bogus", b"username=dev"),
    ("not-utf8", "application/x-www-form-urlencoded", b"username=\xff&password=\xfe"),
    ("odd-utf16", "application/x-www-form-urlencoded; charset=utf-16", b"username=dev&"),
]


@pytest.mark.parametrize(("what", "ctype", "body"), LOGIN_BODIES, ids=[b[0] for b in LOGIN_BODIES])
def test_a_sign_in_form_that_cannot_be_read_is_a_400_not_a_crash(
    gate_env: GateEnv, what: str, ctype: str, body: bytes
) -> None:
    head = (
        b"POST /__space/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        b"Content-Type: " + ctype.encode() + b"\r\nContent-Length: " + str(len(body)).encode()
    )
    assert _raw(gate_env, head, body) == 400
    assert "Traceback" not in gate_env.up.output


# --- the static site's own 404 page ---------------------------------------------------------------


def test_a_miss_on_a_public_route_does_not_show_the_private_404_page(gate_env: GateEnv) -> None:
    """`/404.html` of the private static primary is not under its public route `/pub/*`."""
    visitor = gate_env.request("gate", "GET", "/pub/nothing-here")
    assert visitor.status == 404
    assert b"own lost page" not in visitor.body and b"404 Not Found" in visitor.body
    owner = gate_env.request("gate", "GET", "/pub/nothing-here", [SESSION])
    assert owner.status == 404 and b"own lost page" in owner.body


@pytest.mark.parametrize(
    "head",
    [
        b"GET /api/ HTTP/1.1\r\nConnection: close",  # no Host
        b"GET /api/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nBad Header: 1\r\nConnection: close",
    ],
)
def test_a_malformed_request_is_a_400_and_no_traceback_in_the_log(
    gate_env: GateEnv, head: bytes
) -> None:
    assert _raw(gate_env, head) == 400
    assert "Traceback" not in gate_env.up.output
