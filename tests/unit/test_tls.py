"""The local CA: made once, reused, renewed when due, and trusted by clients given the bundle."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import ssl
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from runtime.cloud import tls
from runtime.cloud.tls import TlsFiles, ensure_tls, server_ssl_context, system_ca_bundle
from runtime.errors import SpaceDevError


def snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.suffix == ".pem"}


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_made_once_then_reused_without_new_keys(tmp_path: Path, monkeypatch) -> None:
    first = ensure_tls(tmp_path / "tls")
    before = snapshot(tmp_path / "tls")
    assert set(before) == {"ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "bundle.pem"}

    def no_keys(*args: object, **kwargs: object) -> None:
        raise AssertionError("a key was made although valid ones were on disk")

    monkeypatch.setattr(tls.ec, "generate_private_key", no_keys)
    second = ensure_tls(tmp_path / "tls")
    assert second == first
    assert snapshot(tmp_path / "tls") == before


def test_key_files_are_private_and_certificates_readable(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "tls")
    for key in (files.server_key, tmp_path / "tls" / tls.CA_KEY_FILE):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    for pem in (files.ca_cert, files.server_cert, files.bundle):
        assert stat.S_IMODE(pem.stat().st_mode) == 0o644
    # No temp files are left behind by the atomic writes.
    assert not [p for p in (tmp_path / "tls").iterdir() if p.name.endswith(".tmp")]


def test_the_certificates_say_what_they_are(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "tls")
    ca, server = cert(files.ca_cert), cert(files.server_cert)
    assert ca.subject.rfc4514_string().startswith("O=space-dev,CN=space-dev local CA")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    life = tls._not_after(ca) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=3640) < life <= dt.timedelta(days=3650)
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]


def test_the_bundle_is_the_system_cas_then_ours(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "tls")
    bundle = files.bundle.read_bytes()
    system = system_ca_bundle()
    if system is not None:
        assert bundle.startswith(system.read_bytes())
        assert bundle.count(b"BEGIN CERTIFICATE") > 10
    assert bundle.rstrip().endswith(files.ca_cert.read_bytes().rstrip())


def test_a_bundle_given_as_ssl_cert_file_does_not_include_itself(
    tmp_path: Path, monkeypatch
) -> None:
    files = ensure_tls(tmp_path / "tls")
    before = files.bundle.read_bytes()
    # A runtime started from inside a micro inherits SSL_CERT_FILE pointing at our bundle.
    monkeypatch.setenv("SSL_CERT_FILE", str(files.bundle))
    ensure_tls(tmp_path / "tls")
    assert files.bundle.read_bytes() == before
    assert before.count(files.ca_cert.read_bytes().strip()) == 1


def replace_server_cert(files: TlsFiles, **kwargs: object) -> bytes:
    d = files.ca_cert.parent
    ca_key = serialization.load_pem_private_key((d / tls.CA_KEY_FILE).read_bytes(), None)
    now = dt.datetime.now(dt.UTC)
    made, key = tls._make_server(cert(files.ca_cert), ca_key, now, **kwargs)  # type: ignore[arg-type]
    files.server_cert.write_bytes(made.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(tls._key_pem(key))
    return files.server_cert.read_bytes()


@pytest.mark.parametrize(
    "change",
    [
        {"days": 10},  # expires within 30 days
        {"dns": ("example.test",)},
        {"ips": ("127.0.0.1",)},
    ],
)
def test_server_certificate_is_renewed_when_due_or_for_other_names(
    tmp_path: Path, change: dict[str, object]
) -> None:
    files = ensure_tls(tmp_path / "tls")
    ca_before = files.ca_cert.read_bytes()
    stale = replace_server_cert(files, **change)
    ensure_tls(tmp_path / "tls")
    assert files.server_cert.read_bytes() != stale
    assert files.ca_cert.read_bytes() == ca_before
    # ... and a certificate that is fine is kept.
    good = replace_server_cert(files)
    ensure_tls(tmp_path / "tls")
    assert files.server_cert.read_bytes() == good


def test_a_new_ca_gets_a_new_server_certificate(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "tls")
    old_server = files.server_cert.read_bytes()
    files.ca_cert.unlink()
    ensure_tls(tmp_path / "tls")
    cert(files.server_cert).verify_directly_issued_by(cert(files.ca_cert))
    assert files.server_cert.read_bytes() != old_server


def test_a_key_that_does_not_match_its_certificate_is_replaced(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "tls")
    other = ensure_tls(tmp_path / "other")
    shutil.copy(other.server_key, files.server_key)  # as a crash between the two writes leaves
    ensure_tls(tmp_path / "tls")
    context = server_ssl_context(files)  # would raise on a mismatched pair
    assert context is not None


def test_a_directory_that_cannot_be_made_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data dir should be")
    with pytest.raises(SpaceDevError) as caught:
        ensure_tls(blocker / "tls")
    assert "cannot write the local TLS certificates" in caught.value.message
    assert caught.value.hint


@pytest.fixture
async def https_port(tmp_path: Path) -> AsyncIterator[tuple[int, TlsFiles]]:
    files = ensure_tls(tmp_path / "tls")

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello over tls")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl_context(files))
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield port, files
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_client_trusting_the_bundle_reaches_the_server(
    https_port: tuple[int, TlsFiles], host: str
) -> None:
    port, files = https_port
    for cafile in (files.bundle, files.ca_cert):
        context = ssl.create_default_context(cafile=str(cafile))
        async with aiohttp.ClientSession() as session:
            async with session.get(f"https://{host}:{port}/", ssl=context) as resp:
                assert await resp.text() == "hello over tls"


async def test_a_client_that_does_not_trust_the_ca_fails(
    https_port: tuple[int, TlsFiles], tmp_path: Path
) -> None:
    port, _ = https_port
    strangers = ensure_tls(tmp_path / "another-data-dir")  # a CA, but not this server's
    for context in (ssl.create_default_context(cafile=str(strangers.bundle)), None):
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(f"https://127.0.0.1:{port}/", ssl=context or True)


async def run(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # In a thread: the server under test answers on this test's event loop.
    return await asyncio.to_thread(
        subprocess.run, argv, env=env, capture_output=True, text=True, timeout=60
    )


async def test_a_python_micro_verifies_with_ssl_cert_file(
    https_port: tuple[int, TlsFiles],
) -> None:
    port, files = https_port
    code = (
        "import sys, urllib.request; "
        "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
    )
    env = {**os.environ, "SSL_CERT_FILE": str(files.bundle)}
    done = await run(sys.executable, "-c", code, f"https://localhost:{port}/", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello over tls"


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
async def test_a_node_micro_verifies_with_node_extra_ca_certs(
    https_port: tuple[int, TlsFiles],
) -> None:
    port, files = https_port
    code = (
        "require('https').get(process.argv[1], (r) => { let s = ''; "
        "r.on('data', (c) => (s += c)); r.on('end', () => console.log(s)); })"
        ".on('error', (e) => { console.error(e.message); process.exit(1); });"
    )
    url = f"https://127.0.0.1:{port}/"
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(files.ca_cert)}
    done = await run("node", "-e", code, url, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello over tls"
    env.pop("NODE_EXTRA_CA_CERTS")
    refused = await run("node", "-e", code, url, env=env)
    assert refused.returncode == 1 and "certificate" in refused.stderr
