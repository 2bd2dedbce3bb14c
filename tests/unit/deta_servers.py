"""HTTPS servers for the `deta` module's tests: a throwaway CA, Base and Drive in a thread.

The SDK under test blocks, so the servers run on an event loop of their own in a background
thread. Every request is checked for the project key, recorded, and may be sent a fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import re
import ssl
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import runtime
from runtime.cloud.base.handlers import handle_base
from runtime.cloud.base.store import BaseDB

try:
    from runtime.cloud.drive.handlers import handle_drive
    from runtime.cloud.drive.store import DriveStore
except ImportError:
    handle_drive = None  # type: ignore[assignment]
NO_REAL_DRIVE = "runtime.cloud.drive.handlers is not importable here"

# Imported as a micro imports it: its folder first on the path, the package as top-level `deta`.
IN_MICRO = Path(runtime.__file__).parent / "in_micro" / "site"
sys.path.insert(0, str(IN_MICRO))

PROJECT_ID = "a0test"
PROJECT_KEY = f"{PROJECT_ID}_s3cret"
MiB = 1024 * 1024

Handler = Callable[[web.Request, Any, str, str], Awaitable[web.StreamResponse]]


def make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a 127.0.0.1/localhost certificate it signed: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deta tests CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class Seen:
    """One request as the server got it."""

    method: str
    path: str  # raw, with the query
    peer: int  # the client's port: one per connection
    size: int  # Content-Length
    content_type: str


@dataclass
class Service:
    """One API on its own port; `faults` are used up one per request: "500", "drop", "stall".

    `open_store` is called in the server's thread: SQLite objects stay in the thread that made
    them."""

    handler: Handler
    open_store: Callable[[], Any]
    store: Any = None
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        async def route(request: web.Request) -> web.StreamResponse:
            peer = request.transport.get_extra_info("peername")[1] if request.transport else 0
            self.seen.append(
                Seen(
                    request.method,
                    request.rel_url.raw_path_qs,
                    peer,
                    request.content_length or 0,  # the body is the handler's to stream
                    request.headers.get("Content-Type", ""),
                )
            )
            if self.faults:
                fault = self.faults.pop(0)
                if fault == "500":
                    return web.json_response({"errors": ["injected failure"]}, status=500)
                if fault == "drop" and request.transport is not None:
                    request.transport.abort()  # no answer at all, as a crashed server
                    return web.Response()
                if fault == "stall":
                    await asyncio.sleep(1.5)
            match = re.fullmatch(r"/v1/([^/]+)/([^/?]+)([^?]*)", request.rel_url.raw_path)
            if match is None:
                return web.json_response({"errors": ["no such route"]}, status=404)
            if request.headers.get("X-API-Key") != PROJECT_KEY or unquote(match[1]) != PROJECT_ID:
                return web.json_response({"errors": ["Unauthorized"]}, status=401)
            return await self.handler(request, self.store, unquote(match[2]), match[3])

        app = web.Application(client_max_size=64 * MiB)
        app.router.add_route("*", "/{tail:.*}", route)
        return app


class Servers:
    """Services on 127.0.0.1 over TLS, served from a thread with its own event loop."""

    def __init__(self, cert: Path, key: Path, **services: Service) -> None:
        self.services = services
        self.ca = Path()  # the CA certificate clients trust, once started by running_servers
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        self._loop = asyncio.new_event_loop()
        self._runners: list[web.AppRunner] = []
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Servers:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        for service in self.services.values():
            service.store = service.open_store()
            runner = web.AppRunner(service.app(), shutdown_timeout=0.1)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self._context)
            await site.start()
            service.port = runner.addresses[0][1]
            self._runners.append(runner)

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            for runner in self._runners:
                await runner.cleanup()
            for service in self.services.values():
                getattr(service.store, "close", lambda: None)()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


# --- a minimal Drive API, for when the real one is not there ----------------------------------


class MiniDriveStore:
    """Files in memory: {(drive, name): (content, content type)}, and open uploads."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.uploads: dict[str, tuple[str, str, dict[int, bytes]]] = {}


async def mini_handle_drive(
    request: web.Request, store: MiniDriveStore, drive: str, rest: str
) -> web.StreamResponse:
    """The Drive HTTP API's routes, as the SDKs call them, with Deta's 10 MB request limit."""
    path = rest
    name = request.query.get("name", "")  # form-decoded, as the SDKs' quote_plus expects
    ctype = request.headers.get("Content-Type") or "application/octet-stream"
    body = await request.read()
    method = request.method
    if len(body) > 10 * MiB:
        return web.Response(status=413, text="<h1> 413 - Request Entity Too Large </h1>")
    if path == "/files" and method == "POST":
        store.files[drive, name] = (body, ctype)
        return web.json_response({"name": name}, status=201)
    if path == "/files" and method == "GET":
        raw = dict(p.partition("=")[::2] for p in request.rel_url.raw_query_string.split("&"))
        prefix, last = unquote(raw.get("prefix", "")), unquote(raw.get("last", ""))
        names = sorted(n for d, n in store.files if d == drive and n.startswith(prefix))
        names = [n for n in names if n > last]
        limit = int(raw.get("limit", "1000"))
        answer: dict[str, Any] = {"names": names[:limit]}
        if len(names) > limit:
            answer["paging"] = {"size": limit, "last": names[limit - 1]}
        return web.json_response(answer)
    if path == "/files" and method == "DELETE":
        names = json.loads(body)["names"]
        for n in names:
            store.files.pop((drive, n), None)
        return web.json_response({"deleted": names, "failed": {}})
    if path == "/files/download" and method == "GET":
        found = store.files.get((drive, name))
        if found is None:
            return web.json_response({"errors": ["file not found"]}, status=404)
        return web.Response(body=found[0], headers={"Content-Type": found[1]})
    if path == "/uploads" and method == "POST":
        upload_id = uuid.uuid4().hex
        store.uploads[upload_id] = (name, ctype, {})
        return web.json_response({"name": name, "upload_id": upload_id}, status=202)
    match = re.fullmatch(r"/uploads/([^/]+)(/parts)?", path)
    upload = store.uploads.get(unquote(match[1])) if match else None
    if match is None or upload is None:
        return web.json_response({"errors": ["not found"]}, status=404)
    if match[2] and method == "POST":
        upload[2][int(request.query["part"])] = body
        return web.json_response({"name": name, "part": int(request.query["part"])})
    del store.uploads[unquote(match[1])]
    if method == "PATCH":
        parts = upload[2]
        store.files[drive, upload[0]] = (b"".join(parts[i] for i in sorted(parts)), upload[1])
    return web.json_response({"name": name, "upload_id": match[1]})


# --- what the test modules' fixtures call -----------------------------------------------------


@contextlib.contextmanager
def running_servers(folder: Path) -> Iterator[Servers]:
    """Base (the real handler), the minimal Drive and, when importable, the real Drive."""
    ca, cert, key = make_tls(folder)
    services = {
        "base": Service(handle_base, lambda: BaseDB(folder / "base.sqlite3")),
        "mini": Service(mini_handle_drive, MiniDriveStore),
    }
    if handle_drive is not None:
        services["real"] = Service(handle_drive, lambda: DriveStore(folder / "drive"))
    with Servers(cert, key, **services) as running:
        running.ca = ca
        yield running


def point_at(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> Servers:
    """The environment a micro gets, aimed at these servers; their records and faults cleared."""
    monkeypatch.setenv("SSL_CERT_FILE", str(servers.ca))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("DETA_PROJECT_KEY", PROJECT_KEY)
    monkeypatch.setenv("DETA_BASE_HOST", servers.services["base"].host)
    for service in servers.services.values():
        service.seen.clear()
        service.faults.clear()
    return servers


def fresh() -> str:
    """A new Base or Drive name: every test its own, on servers a module shares."""
    return "t" + uuid.uuid4().hex[:10]
