"""Greedy and slow clients against a real `space-dev up`: the cap on request bodies, the
timeouts for clients that stop sending, and the bound on open connections.

Two runtimes, each with two apps (`gate`: a public echo micro; `other`: a private one):
`roomy` keeps the defaults (a 100 MiB cap, the default timeouts) under a limit of 1,024 open
files; `tight` lowers the cap to 1 MiB in its space-dev.toml and the client timeout to 1 s
(`SPACE_DEV_CLIENT_TIMEOUT`), so each case takes a second. The echo micros log every request
they receive, so a refusal is checked by the answer and by the micro's own record.
"""

from __future__ import annotations

import os
import resource
import select
import socket
import ssl
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.datadir.store import Store
from tests.integration.attack_env import (
    LOGGING_ECHO,
    MARKER,
    Reply,
    login,
    micro_environment,
    parse_reply,
    received_with_marker,
    wait_until,
)
from tests.integration.conftest import OWNER_PASSWORD, Up, fetch, free_port
from tests.integration.micros import write_app

MiB = 1024 * 1024
OPEN_FILES = 1024  # the roomy runtime's limit (soft and hard): near enough to reach in a test

GATE_SPACEFILE = """
v: 0
micros:
  - name: api
    src: ./api
    engine: python3.9
    run: python echo.py
    primary: true
    public_routes: ["/public/*"]
"""
OTHER_SPACEFILE = """
v: 0
micros:
  - name: svc
    src: ./svc
    engine: python3.9
    run: python echo.py
"""


@dataclass
class Running:
    up: Up
    ports: dict[str, int]
    data_dir: Path
    log: Path

    @property
    def gate(self) -> int:
        return self.ports["gate"]

    @property
    def spool(self) -> Path:
        return self.data_dir / "tmp"


def _start(
    tmp: Path, runtime_table: str, extra_env: dict[str, str], preexec: object = None
) -> Running:
    write_app(tmp / "gate", GATE_SPACEFILE, {"api/echo.py": LOGGING_ECHO})
    write_app(tmp / "other", OTHER_SPACEFILE, {"svc/echo.py": LOGGING_ECHO})
    ports = {"gate": free_port(), "other": free_port()}
    log = tmp / "echo.log"
    config = tmp / "space-dev.toml"
    config.write_text(
        textwrap.dedent(f"""
        [runtime]
        data_dir = "data"
        {runtime_table}
        [[apps]]
        path = "gate"
        name = "gate"
        port = {ports["gate"]}
        [[apps]]
        path = "other"
        name = "other"
        port = {ports["other"]}
    """)
    )
    env = {**os.environ, "SPACE_DEV_PASSWORD": OWNER_PASSWORD, "ECHO_LOG": str(log), **extra_env}
    env.pop("NO_COLOR", None)
    up = Up(
        ["up", "--config", str(config), "--no-reload", "--no-schedule"],
        tmp,
        env,
        ports["gate"],
        preexec_fn=preexec,
    )  # type: ignore[arg-type]
    try:
        up.wait_for(r"ready: gate ", 60)
        up.wait_for(r"ready: other ", 60)
    except BaseException:
        up.kill()
        raise
    return Running(up, ports, tmp / "data", log)


def _few_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


def _stop(running: Running) -> None:
    try:
        running.up.stop()
    except subprocess.TimeoutExpired:
        running.up.kill()


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = _start(tmp_path_factory.mktemp("roomy"), "", {}, _few_open_files)
    yield running
    _stop(running)


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = _start(
        tmp_path_factory.mktemp("tight"),
        'max_body_size = "1 MiB"',
        {"SPACE_DEV_CLIENT_TIMEOUT": "1"},
    )
    yield running
    _stop(running)


# --- raw HTTP ----------------------------------------------------------------------------------


def _head(port: int, method: str, target: str, *headers: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunk(piece: bytes) -> bytes:
    return f"{len(piece):x}\r\n".encode() + piece + b"\r\n"


def _read_answer(sock: socket.socket, got: bytes = b"", timeout: float = 5.0) -> bytes:
    """Bytes until one whole answer (head and its Content-Length body) is in, or EOF."""
    sock.settimeout(timeout)
    while True:
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            if len(body) >= length:
                return got
        piece = sock.recv(65536)
        if not piece:
            return got
        got += piece


def _closed_soon(sock: socket.socket, within: float) -> bool:
    """Whether the runtime closes the connection within `within` seconds (nothing else sent)."""
    sock.settimeout(within)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _refused_from_head(port: int, head: bytes) -> tuple[Reply, bool]:
    """Send a request head alone (its body never follows): the answer, and whether the
    connection was closed after it."""
    with socket.create_connection(("127.0.0.1", port), 5) as sock:
        sock.sendall(head)
        raw = _read_answer(sock)
        assert raw, "no answer to the head within 5 s"
        return parse_reply(raw), _closed_soon(sock, 5)


def _upload_chunked(
    port: int, head: bytes, total: int, piece: int = MiB, tls: ssl.SSLContext | None = None
) -> tuple[Reply, int]:
    """Send `total` bytes in chunks made as they go (never held whole), stopping as soon as an
    answer comes; the answer and how many body bytes had been sent by then."""
    block = bytes(range(256)) * (piece // 256)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), 10) as plain:
        sock = tls.wrap_socket(plain, server_hostname="127.0.0.1") if tls else plain
        sock.sendall(head)
        answer: bytes | None = None
        try:
            while sent < total:
                answer = _waiting(sock)
                if answer is not None:
                    break
                size = min(piece, total - sent)
                sock.sendall(_chunk(block[:size]))
                sent += size
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the runtime stopped reading: its answer is waiting to be read
        raw = _read_answer(sock, answer or b"", timeout=30)
    return parse_reply(raw), sent


def _waiting(sock: socket.socket) -> bytes | None:
    """What the runtime has sent so far, without waiting; None if nothing (a TLS socket may be
    readable for a record that holds no data, such as a session ticket)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
        return None
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except (ssl.SSLWantReadError, BlockingIOError):
        return None
    finally:
        sock.settimeout(10)


def _spool_files_open(running: Running) -> list[str]:
    """What the runtime holds open under its spool folder (an unnamed file shows as deleted)."""
    spool = str(running.spool)
    held = []
    for fd in Path(f"/proc/{running.up.proc.pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(spool):
            held.append(target)
    return held


def _no_traceback(running: Running) -> None:
    assert "Traceback" not in running.up.output, running.up.output


# --- the cap on request bodies -----------------------------------------------------------------


def test_a_150_mib_chunked_upload_to_a_public_route_stops_at_the_default_cap(
    roomy: Running,
) -> None:
    marker = "chunked-150"
    head = _head(
        roomy.gate, "POST", "/public/upload", "Transfer-Encoding: chunked", f"{MARKER}: {marker}"
    )
    reply, sent = _upload_chunked(roomy.gate, head, 150 * MiB)
    assert reply.status == 413, reply
    assert b"max_body_size" in reply.body
    assert reply.header("Connection") == "close"
    # Refused as the cap was passed, not after the whole body: what the client sends before it
    # sees the answer is what socket buffers hold plus a busy machine's delay (seen: 120 MiB).
    assert 100 * MiB <= sent < 140 * MiB, sent
    wait_until(lambda: not _spool_files_open(roomy), 5, "the spooled part to be removed")
    time.sleep(0.3)
    assert not received_with_marker(roomy.log, MARKER, marker)
    _no_traceback(roomy)


def test_a_content_length_above_the_default_cap_is_refused_from_its_head(
    roomy: Running,
) -> None:
    marker = "length-200"
    reply, closed = _refused_from_head(
        roomy.gate,
        _head(
            roomy.gate,
            "PUT",
            "/public/upload",
            f"Content-Length: {200 * MiB}",
            f"{MARKER}: {marker}",
        ),
    )
    assert reply.status == 413 and b"max_body_size" in reply.body, reply
    assert closed
    assert not received_with_marker(roomy.log, MARKER, marker)


def test_a_body_under_the_default_cap_reaches_the_micro_whole(roomy: Running) -> None:
    marker = "length-3"
    body = b"x" * (3 * MiB)
    with socket.create_connection(("127.0.0.1", roomy.gate), 10) as sock:
        sock.sendall(
            _head(
                roomy.gate,
                "POST",
                "/public/upload",
                f"Content-Length: {len(body)}",
                f"{MARKER}: {marker}",
                "Connection: close",
            )
            + body
        )
        reply = parse_reply(_read_answer(sock, timeout=30))
    assert reply.status == 200 and reply.echo is not None
    assert reply.echo["body_length"] == len(body)


def test_the_cap_set_in_space_dev_toml_applies_to_a_chunked_body(tight: Running) -> None:
    marker = "chunked-2"
    head = _head(
        tight.gate, "POST", "/public/upload", "Transfer-Encoding: chunked", f"{MARKER}: {marker}"
    )
    reply, sent = _upload_chunked(tight.gate, head, 2 * MiB, piece=64 * 1024)
    assert reply.status == 413 and b"max_body_size" in reply.body, reply
    wait_until(lambda: not _spool_files_open(tight), 5, "the spooled part to be removed")
    time.sleep(0.3)
    assert not received_with_marker(tight.log, MARKER, marker)
    # The control: a chunked body one byte under the cap arrives whole, with its length.
    marker = "chunked-under"
    head = _head(
        tight.gate,
        "POST",
        "/public/upload",
        "Transfer-Encoding: chunked",
        f"{MARKER}: {marker}",
        "Connection: close",
    )
    reply, sent = _upload_chunked(tight.gate, head, MiB, piece=64 * 1024)
    assert reply.status == 200 and reply.echo is not None, reply
    assert reply.echo["body_length"] == MiB == sent


def test_the_cap_set_in_space_dev_toml_applies_to_a_content_length(tight: Running) -> None:
    marker = "length-over"
    reply, closed = _refused_from_head(
        tight.gate,
        _head(
            tight.gate,
            "POST",
            "/public/upload",
            f"Content-Length: {MiB + 1}",
            f"{MARKER}: {marker}",
        ),
    )
    assert reply.status == 413 and b"max_body_size" in reply.body, reply
    assert closed
    assert not received_with_marker(tight.log, MARKER, marker)
    body = b"y" * MiB  # the control: exactly the cap
    with socket.create_connection(("127.0.0.1", tight.gate), 10) as sock:
        sock.sendall(
            _head(
                tight.gate, "POST", "/public/upload", f"Content-Length: {MiB}", "Connection: close"
            )
            + body
        )
        reply = parse_reply(_read_answer(sock))
    assert reply.status == 200 and reply.echo is not None
    assert reply.echo["body_length"] == MiB


def test_a_client_that_sends_its_whole_body_before_reading_still_reads_the_413(
    tight: Running,
) -> None:
    """Python's `http.client` sends the whole body, then reads: what it sends after the cap is
    dropped unread for a while, so it finds the answer instead of a reset."""

    def body() -> Iterator[bytes]:
        for _ in range(4):
            yield b"z" * MiB

    status, _, answer = fetch(
        "POST", f"http://127.0.0.1:{tight.gate}/public/upload", body=body(), timeout=10
    )  # type: ignore[arg-type]
    assert status == 413 and b"max_body_size" in answer


def test_the_cap_applies_to_the_runtimes_own_pages(tight: Running) -> None:
    reply, closed = _refused_from_head(
        tight.gate,
        _head(
            tight.gate,
            "POST",
            "/__space/login",
            "Content-Type: application/x-www-form-urlencoded",
            f"Content-Length: {2 * MiB}",
        ),
    )
    assert reply.status == 413 and b"max_body_size" in reply.body, reply
    assert closed
    assert login(tight.gate, "dev", OWNER_PASSWORD)  # the control: a form under the cap


def _drive_status(port: int, session: str, name: str) -> int:
    status, _, _ = fetch(
        "GET",
        f"http://127.0.0.1:{port}/__space/v0/drive/v1/x/files/files/download?name={name}",
        headers={"Cookie": f"space_session={session}"},
    )
    return status


def test_the_cap_applies_to_drive_uploads_on_the_apps_origin(tight: Running) -> None:
    session = login(tight.gate, "dev", OWNER_PASSWORD)
    target = "/__space/v0/drive/v1/x/files/files?name={}"
    cookie = f"Cookie: space_session={session}"
    head = _head(tight.gate, "POST", target.format("big.bin"), cookie, "Transfer-Encoding: chunked")
    reply, _ = _upload_chunked(tight.gate, head, 2 * MiB, piece=64 * 1024)
    assert reply.status == 413 and b"max_body_size" in reply.body, reply
    assert _drive_status(tight.gate, session, "big.bin") == 404
    head = _head(
        tight.gate,
        "POST",
        target.format("small.bin"),
        cookie,
        "Transfer-Encoding: chunked",
        "Connection: close",
    )
    reply, _ = _upload_chunked(tight.gate, head, 100 * 1024, piece=64 * 1024)
    assert reply.status == 201, reply
    assert _drive_status(tight.gate, session, "small.bin") == 200


def test_the_cap_applies_to_the_data_port(tight: Running) -> None:
    environ = micro_environment(tight.log, "api")
    port = int(environ["DETA_DRIVE_HOST"].rpartition(":")[2])
    key = Store(tight.data_dir).project_key("gate")
    project = key.partition("_")[0]
    tls = ssl.create_default_context(cafile=environ["NODE_EXTRA_CA_CERTS"])
    target = f"/v1/{project}/files/files?name={{}}"

    head = _head(
        port, "POST", target.format("over.bin"), f"X-API-Key: {key}", f"Content-Length: {2 * MiB}"
    )
    with (
        socket.create_connection(("127.0.0.1", port), 5) as plain,
        tls.wrap_socket(plain, server_hostname="127.0.0.1") as sock,
    ):
        sock.sendall(head)
        reply = parse_reply(_read_answer(sock))
    assert reply.status == 413 and b"max_body_size" in reply.body, reply

    head = _head(
        port,
        "POST",
        target.format("chunked.bin"),
        f"X-API-Key: {key}",
        "Transfer-Encoding: chunked",
    )
    reply, _ = _upload_chunked(port, head, 2 * MiB, piece=64 * 1024, tls=tls)
    assert reply.status == 413 and b"max_body_size" in reply.body, reply

    head = _head(
        port,
        "POST",
        target.format("small.bin"),
        f"X-API-Key: {key}",
        "Transfer-Encoding: chunked",
        "Connection: close",
    )
    reply, _ = _upload_chunked(port, head, 100 * 1024, piece=64 * 1024, tls=tls)
    assert reply.status == 201, reply
    session = login(tight.gate, "dev", OWNER_PASSWORD)
    assert _drive_status(tight.gate, session, "chunked.bin") == 404
    assert _drive_status(tight.gate, session, "small.bin") == 200
    _no_traceback(tight)


# --- slow clients ------------------------------------------------------------------------------


def test_a_half_sent_request_head_is_closed_after_the_timeout(tight: Running) -> None:
    with socket.create_connection(("127.0.0.1", tight.gate), 5) as sock:
        sock.sendall(f"GET /public/x HTTP/1.1\r\nHost: 127.0.0.1:{tight.gate}\r\n".encode())
        began = time.monotonic()
        assert _closed_soon(sock, 5)
        assert time.monotonic() - began < 4
    # The control: a whole head on a fresh connection is answered.
    with socket.create_connection(("127.0.0.1", tight.gate), 5) as sock:
        sock.sendall(_head(tight.gate, "GET", "/public/x", "Connection: close"))
        assert parse_reply(_read_answer(sock)).status == 200


def test_an_idle_kept_alive_connection_is_closed_after_the_timeout(tight: Running) -> None:
    with socket.create_connection(("127.0.0.1", tight.gate), 5) as sock:
        sock.sendall(_head(tight.gate, "GET", "/public/a"))
        assert parse_reply(_read_answer(sock)).status == 200
        time.sleep(0.3)  # the control: a second request soon after is answered on it
        sock.sendall(_head(tight.gate, "GET", "/public/b"))
        assert parse_reply(_read_answer(sock)).status == 200
        began = time.monotonic()
        assert _closed_soon(sock, 5)
        assert time.monotonic() - began < 4


def test_a_body_that_stops_flowing_is_closed_after_the_timeout(tight: Running) -> None:
    marker = "stalled-body"
    with socket.create_connection(("127.0.0.1", tight.gate), 5) as sock:
        sock.sendall(
            _head(tight.gate, "POST", "/public/slow", "Content-Length: 100", f"{MARKER}: {marker}")
            + b"0123456789"
        )
        began = time.monotonic()
        assert _closed_soon(sock, 6)
        assert time.monotonic() - began < 5
    time.sleep(0.3)
    assert not received_with_marker(tight.log, MARKER, marker)
    # The control: a slow body that keeps flowing (a byte every 0.25 s, 5 s in all) arrives.
    marker = "slow-body"
    with socket.create_connection(("127.0.0.1", tight.gate), 5) as sock:
        sock.sendall(
            _head(
                tight.gate,
                "POST",
                "/public/slow",
                "Content-Length: 20",
                f"{MARKER}: {marker}",
                "Connection: close",
            )
        )
        for n in range(20):
            time.sleep(0.25)
            sock.sendall(str(n % 10).encode())
        reply = parse_reply(_read_answer(sock))
    assert reply.status == 200 and reply.echo is not None
    assert reply.echo["body_length"] == 20
    _no_traceback(tight)


def test_1100_half_open_connections_do_not_stop_the_pages_or_another_app(
    roomy: Running,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:  # this test's own sockets
        if hard < 2048:
            pytest.skip("this test process may not open 1,100 sockets")
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    held: list[socket.socket] = []
    try:
        for _ in range(1100):
            sock = socket.socket()
            sock.settimeout(2)
            try:
                sock.connect(("127.0.0.1", roomy.gate))
                sock.sendall(f"GET /public/x HTTP/1.1\r\nHost: 127.0.0.1:{roomy.gate}\r\n".encode())
            except OSError:
                sock.close()
                continue
            held.append(sock)
        assert len(held) == 1100
        status, _, _ = fetch("GET", f"http://127.0.0.1:{roomy.gate}/__space/health", timeout=5)
        assert status == 200
        status, _, _ = fetch(
            "GET", f"http://127.0.0.1:{roomy.ports['other']}/__space/health", timeout=5
        )
        assert status == 200
        status, _, body = fetch("GET", f"http://127.0.0.1:{roomy.ports['other']}/x", timeout=5)
        assert status == 401, body  # the gate itself answers: the micro is private
        status, _, body = fetch("GET", f"http://127.0.0.1:{roomy.gate}/public/x", timeout=5)
        assert status == 200, body  # and a micro is still reached through it
    finally:
        for sock in held:
            sock.close()
    status, _, _ = fetch("GET", f"http://127.0.0.1:{roomy.gate}/__space/health", timeout=5)
    assert status == 200
    _no_traceback(roomy)
