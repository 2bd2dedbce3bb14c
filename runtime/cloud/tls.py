"""The local certificate authority: a CA made once per data dir and a localhost certificate."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import SpaceDevError

CA_NAME = "space-dev local CA"
CA_DAYS = 3650
# Apple's clients refuse server certificates valid for more than 825 days, some others for more
# than 398, even from a private CA; a short one renewed here costs nothing.
SERVER_DAYS = 397
RENEW_BEFORE = dt.timedelta(days=30)
SERVER_DNS = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
BUNDLE_FILE = "bundle.pem"
_LOCK_FILE = ".lock"

# Where distributions keep the system's trusted CAs, after what ssl and certifi report.
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/ssl/cert.pem",  # macOS, Alpine, the BSDs
    "/usr/local/etc/openssl/cert.pem",
    "/opt/homebrew/etc/openssl@3/cert.pem",
)


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files a TLS server and its clients need."""

    ca_cert: Path  # our CA alone: for NODE_EXTRA_CA_CERTS, which adds to Node's own list
    server_cert: Path
    server_key: Path
    bundle: Path  # the system's CAs then ours: for SSL_CERT_FILE / REQUESTS_CA_BUNDLE


def ensure_tls(directory: Path) -> TlsFiles:
    """Make the CA and server certificate in `directory` unless valid ones are there.

    The CA is made once and kept for ten years; the server certificate is made again when it
    expires within 30 days, names other hosts, or was not signed by the CA. The bundle is
    rewritten only when the system's CAs changed."""
    files = TlsFiles(
        ca_cert=directory / CA_CERT_FILE,
        server_cert=directory / SERVER_CERT_FILE,
        server_key=directory / SERVER_KEY_FILE,
        bundle=directory / BUNDLE_FILE,
    )
    ca_key_path = directory / CA_KEY_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(directory / _LOCK_FILE):
            now = dt.datetime.now(dt.UTC)
            ca = _load_pair(files.ca_cert, ca_key_path)
            if ca is None or not _fresh(ca[0], now) or not _is_ca(ca[0]):
                ca = _make_ca(now)
                _write(ca_key_path, _key_pem(ca[1]), 0o600)
                _write(files.ca_cert, ca[0].public_bytes(serialization.Encoding.PEM), 0o644)
            server = _load_pair(files.server_cert, files.server_key)
            if server is None or not _server_ok(server[0], ca[0], now):
                cert, key = _make_server(ca[0], ca[1], now)
                _write(files.server_key, _key_pem(key), 0o600)
                _write(files.server_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
            bundle = _bundle_text(files, ca[0].public_bytes(serialization.Encoding.PEM))
            if _read(files.bundle) != bundle:
                _write(files.bundle, bundle, 0o644)
    except OSError as exc:
        raise SpaceDevError(
            f"cannot write the local TLS certificates in {directory}: {exc.strerror or exc}",
            "Check that the data dir is writable, or point space-dev at another one.",
        ) from exc
    return files


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """A server-side TLS context presenting our localhost certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(files.server_cert, files.server_key)
    except (OSError, ssl.SSLError) as exc:
        raise SpaceDevError(
            f"cannot load the local TLS certificate {files.server_cert}: {exc}",
            f"Delete {files.server_cert.parent} and start again to make new ones.",
        ) from exc
    return context


def system_ca_bundle(exclude: Path | None = None) -> Path | None:
    """The system's bundle of trusted CAs, or None when none is found."""
    paths = ssl.get_default_verify_paths()
    candidates: list[str] = [p for p in (paths.cafile, paths.openssl_cafile) if p]
    with contextlib.suppress(ImportError):
        import certifi  # optional: present in many environments, never required

        candidates.append(certifi.where())
    candidates += SYSTEM_BUNDLES
    for candidate in candidates:
        path = Path(candidate)
        # SSL_CERT_FILE may point at our own bundle when we run under ourselves.
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        if path.is_file() and os.access(path, os.R_OK):
            return path
    return None


# --- making certificates ------------------------------------------------------------------------


def _make_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "space-dev"),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))  # tolerate a clock a little behind
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_server(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
    days: int = SERVER_DAYS,
    dns: tuple[str, ...] = SERVER_DNS,
    ips: tuple[str, ...] = SERVER_IPS,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            # Python 3.13's strict verification wants it, and it names which CA key signed.
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# --- checking what is on disk -------------------------------------------------------------------


def _load_pair(
    cert_path: Path, key_path: Path
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The certificate and its key, or None when either is missing, unreadable or they do
    not belong together (a crash between writing the two)."""
    cert_pem, key_pem = _read(cert_path), _read(key_path)
    if cert_pem is None or key_pem is None:
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except ValueError:
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    return cert, key


def _fresh(cert: x509.Certificate, now: dt.datetime) -> bool:
    return _not_after(cert) - now > RENEW_BEFORE


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def _server_ok(cert: x509.Certificate, ca: x509.Certificate, now: dt.datetime) -> bool:
    if not _fresh(cert, now):
        return False
    try:
        cert.verify_directly_issued_by(ca)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    dns = set(sans.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return dns == set(SERVER_DNS) and ips == {str(ipaddress.ip_address(i)) for i in SERVER_IPS}


def _not_after(cert: x509.Certificate) -> dt.datetime:
    after = getattr(cert, "not_valid_after_utc", None)  # cryptography 42+
    if after is None:
        after = cert.not_valid_after.replace(tzinfo=dt.UTC)
    return after


def _bundle_text(files: TlsFiles, ca_pem: bytes) -> bytes:
    system = system_ca_bundle(exclude=files.bundle)
    text = (_read(system) or b"") if system else b""
    if ca_pem.strip() in text:  # already trusted there: the system bundle includes it
        return text
    if text and not text.endswith(b"\n"):
        text += b"\n"
    return text + b"# " + CA_NAME.encode() + b"\n" + ca_pem


# --- files --------------------------------------------------------------------------------------


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write a file whole: a temp file made with `mode` from the start, fsync, rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two runtimes starting at once on one data dir must not pair one's key with the other's
    # certificate.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
