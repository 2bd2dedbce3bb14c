"""The gate against what gets past a path check: body framing, hop-by-hop headers, client-address
headers, `Expect`, refused upgrades, static symlinks, the owner's password, and `Host` names.

Same runtime as the attack corpus (`attack_env`). Each attack is checked by its answer and by
what the echo micro logged; each has a positive control next to it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.integration.attack_env import (
    MARKER,
    PASSWORD,
    GateEnv,
    exchange,
    gate_env,
    parse_reply,
    received_with_marker,
    send,
)
from tests.integration.conftest import OWNER_PASSWORD, Up, free_port
from tests.integration.micros import write_app

__all__ = ["gate_env"]  # the fixture, imported to be found by pytest

KEY = ("X-Space-App-Key", "{key}")


def _headers_of(record: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in record["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


def _chunked(body: bytes, piece: int) -> bytes:
    parts = [body[i : i + piece] for i in range(0, len(body), piece)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


def _chunked_post(env: GateEnv, path: str, body: bytes, marker: str, piece: int = 1000) -> bytes:
    port = env.ports["gate"]
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"X-Space-App-Key: {env.creds['key']}\r\nTransfer-Encoding: chunked\r\n"
        f"{MARKER}: {marker}\r\n\r\n"
    )
    return head.encode() + _chunked(body, piece)


# --- 2. chunked request bodies -----------------------------------------------------------------


@pytest.mark.parametrize("size", [3000, 3 * 1024 * 1024 + 17], ids=["small", "past-memory"])
def test_a_chunked_body_reaches_the_micro_with_its_length(gate_env: GateEnv, size: int) -> None:
    """The echo micro (`http.server`) reads only `Content-Length` bodies: chunk bytes would be
    taken for its next request on the kept-alive upstream connection."""
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    marker = f"chunked-{size}"
    reply = exchange(
        gate_env.ports["gate"], _chunked_post(gate_env, "/api/up", body, marker, piece=64 * 1024)
    )
    assert reply.status == 200, reply
    (record,) = received_with_marker(gate_env.log, MARKER, marker)
    got = _headers_of(record)
    assert record["body_length"] == size
    assert got["content-length"] == [str(size)]
    assert "transfer-encoding" not in got
    # The spooled copy of a long body is gone once it was sent.
    spool = gate_env.data_dir / "tmp"
    assert not spool.exists() or not any(spool.iterdir())


def test_the_next_requests_on_the_upstream_connection_get_their_own_answers(
    gate_env: GateEnv,
) -> None:
    for round_ in range(3):
        marker = f"chunked-then-{round_}"
        exchange(gate_env.ports["gate"], _chunked_post(gate_env, "/api/up", b"a" * 500, marker))
        for n in range(4):
            reply = gate_env.request("gate", "GET", f"/api/after-{round_}-{n}", [KEY])
            assert reply.status == 200, reply
            assert reply.echo is not None and reply.echo["path"] == f"/after-{round_}-{n}"


def test_a_length_delimited_body_still_streams_with_its_length(gate_env: GateEnv) -> None:
    marker = "length-body"
    reply = gate_env.request("gate", "POST", "/api/up", [KEY, (MARKER, marker)], b"z" * 4321)
    assert reply.status == 200
    (record,) = received_with_marker(gate_env.log, MARKER, marker)
    assert record["body_length"] == 4321
    assert _headers_of(record)["content-length"] == ["4321"]


# --- 3. Connection tokens ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "tokens",
    [
        "keep-alive, Host",
        "Host",
        "close, host, Content-Length",
        "X-Space-Auth, X-Space-Key-Name, X-Forwarded-Host",
    ],
)
def test_connection_tokens_cannot_remove_host_or_the_runtimes_headers(
    gate_env: GateEnv, tokens: str
) -> None:
    marker = f"connection-{tokens}"
    port = gate_env.ports["gate"]
    reply = gate_env.request(
        "gate", "POST", "/api/x", [KEY, ("Connection", tokens), (MARKER, marker)], b"12345"
    )
    assert reply.status == 200, reply
    (record,) = received_with_marker(gate_env.log, MARKER, marker)
    got = _headers_of(record)
    assert got["host"] == [f"127.0.0.1:{port}"]
    assert got["x-space-auth"] == ["api-key"]
    assert got["x-space-key-name"] == ["good"]
    assert got["x-forwarded-host"] == [f"127.0.0.1:{port}"]
    assert record["body_length"] == 5 and got["content-length"] == ["5"]


def test_connection_tokens_still_remove_the_clients_own_hop_by_hop_headers(
    gate_env: GateEnv,
) -> None:
    marker = "connection-own"
    gate_env.request(
        "gate",
        "GET",
        "/api/x",
        [KEY, ("Connection", "X-Hop"), ("X-Hop", "1"), ("X-Kept", "2"), (MARKER, marker)],
    )
    (record,) = received_with_marker(gate_env.log, MARKER, marker)
    got = _headers_of(record)
    assert "x-hop" not in got and got["x-kept"] == ["2"]


# --- 4. client-address headers -----------------------------------------------------------------

CLIENT_ADDRESS_HEADERS = [
    "Client-IP",
    "True-Client-IP",
    "X-Client-IP",
    "CF-Connecting-IP",
    "Fastly-Client-IP",
    "X-Cluster-Client-IP",
    "Forwarded-For",
    "X-Forwarded",
    "X-Real-IP",
    "Forwarded",
    "X_Client_IP",
    "x-originating-ip",
    "X-Remote-IP",
    "X-Remote-Addr",
    "CF-Connecting-IPv6",
]


def test_no_client_address_header_reaches_a_micro(gate_env: GateEnv) -> None:
    marker = "client-address"
    spoofed = [(name, "6.6.6.6") for name in CLIENT_ADDRESS_HEADERS]
    reply = gate_env.request("gate", "GET", "/api/x", [KEY, *spoofed, (MARKER, marker)])
    assert reply.status == 200
    (record,) = received_with_marker(gate_env.log, MARKER, marker)
    got = _headers_of(record)
    leaked = {n: v for n, v in got.items() if "6.6.6.6" in " ".join(v)}
    assert not leaked, f"the micro received {leaked}"
    assert got["x-forwarded-for"] == ["127.0.0.1"]


# --- 8. Expect: 100-continue, refused upgrades -------------------------------------------------


def _first_answer(port: int, head: str) -> bytes:
    """Send a request head that expects `100 Continue` and read the first answer, body unsent."""
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        sock.sendall(head.encode())
        sock.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
        return data


def test_expect_continue_on_a_private_path_gets_the_refusal_first(gate_env: GateEnv) -> None:
    port = gate_env.ports["gate"]
    head = (
        f"PUT /admin/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 5\r\n"
        f"Expect: 100-continue\r\n{MARKER}: expect-private\r\n\r\n"
    )
    first = _first_answer(port, head)
    assert first.startswith(b"HTTP/1.1 401"), first[:80]
    assert not received_with_marker(gate_env.log, MARKER, "expect-private")


def test_expect_continue_with_a_credential_is_continued_and_forwarded(gate_env: GateEnv) -> None:
    port = gate_env.ports["gate"]
    head = (
        f"PUT /api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 5\r\n"
        f"X-Space-App-Key: {gate_env.creds['key']}\r\nConnection: close\r\n"
        f"Expect: 100-continue\r\n{MARKER}: expect-allowed\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        sock.sendall(head.encode())
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first[:80]
        sock.sendall(b"hello")
        rest = first[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
        while piece := sock.recv(65536):
            rest += piece
    reply = parse_reply(rest)
    assert reply.status == 200 and reply.echo is not None
    assert reply.echo["body_length"] == 5
    assert "expect" not in _headers_of(reply.echo)


def test_a_websocket_the_micro_refuses_is_a_502_naming_its_status(gate_env: GateEnv) -> None:
    reply = gate_env.request(
        "gate",
        "GET",
        "/api/ws",
        [
            KEY,
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
    )
    assert reply.status == 502, reply
    assert b"200" in reply.body and b"WebSocket" in reply.body


# --- 5. static symlinks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target", ["/pub/link.txt", "/pub/folder/", "/pub/folder/index.html", "/pub/folder"]
)
def test_a_symlink_on_a_public_route_does_not_serve_a_private_file(
    gate_env: GateEnv, target: str
) -> None:
    reply = gate_env.request("gate", "GET", target)
    assert reply.status in (401, 404), reply
    assert b"private" not in reply.body


def test_a_symlink_to_a_public_file_and_the_private_file_with_a_session_are_served(
    gate_env: GateEnv,
) -> None:
    assert gate_env.request("gate", "GET", "/pub/also-ok.txt").body == b"a public file"
    assert gate_env.request("gate", "GET", "/pub/ok.txt").body == b"a public file"
    session = ("Cookie", "space_session={session}")
    assert gate_env.request("gate", "GET", "/pub/link.txt", [session]).body == b"the private file"


# --- 10. the owner's password ------------------------------------------------------------------


def test_the_owner_password_is_not_in_the_runtimes_process_environment(
    gate_env: GateEnv,
) -> None:
    environ = Path(f"/proc/{gate_env.up.proc.pid}/environ").read_bytes()
    assert PASSWORD.encode() not in environ
    assert b"ECHO_LOG=" in environ  # the rest of the environment is as it was


# --- 9. Host names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "localhost:{port}",
        "LOCALHOST:{port}",
        "127.0.0.1:{port}",
        "[::1]:{port}",
        "localhost.",
        "127.0.0.1",
    ],
)
def test_the_loopback_names_are_answered(gate_env: GateEnv, host: str) -> None:
    port = gate_env.ports["gate"]
    reply = gate_env.request("gate", "GET", "/api/x", [KEY, ("Host", host.format(port=port))])
    assert reply.status == 200, reply


def test_a_foreign_host_gets_a_421_page_that_says_how_to_allow_it(gate_env: GateEnv) -> None:
    reply = gate_env.request(
        "gate", "GET", "/", [("Host", "evil.example"), ("Accept", "text/html")]
    )
    assert reply.status == 421
    assert b"evil.example" in reply.body and b"allowed_hosts" in reply.body


def test_allowed_hosts_and_the_machines_own_names_on_every_interface(tmp_path: Path) -> None:
    write_app(
        tmp_path / "app",
        "v: 0\nmicros:\n  - name: www\n    src: .\n    engine: static\n"
        "    serve: site\n    public: true\n",
        {"site/index.html": "hello"},
    )
    port = free_port()
    (tmp_path / "space-dev.toml").write_text(
        textwrap.dedent(f"""
        [runtime]
        data_dir = "data"
        allowed_hosts = ["myapp.test", "*.preview.test"]
        [[apps]]
        path = "app"
        port = {port}
    """)
    )
    env = {**os.environ, "SPACE_DEV_PASSWORD": OWNER_PASSWORD}
    up = Up(["up", "--no-reload", "--no-schedule", "--host", "0.0.0.0"], tmp_path, env, port)
    try:
        up.wait_for(r"ready: ", 60)
        hostname = socket.gethostname()
        for host, status in [
            ("myapp.test", 200),
            (f"myapp.test:{port}", 200),
            ("pr-1.preview.test", 200),
            ("preview.test", 421),
            (hostname, 200),
            (f"{hostname}:{port}", 200),
            ("evil.example", 421),
            ("myapp.test.evil.example", 421),
            ("8.8.8.8", 421),
        ]:
            reply = send(port, "GET", "/", [("Host", host)])
            assert reply.status == status, (host, reply.status)
    finally:
        try:
            up.stop()
        except subprocess.TimeoutExpired:
            up.kill()
