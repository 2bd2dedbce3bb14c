"""Local account passwords: a slow salted scrypt hash in a self-describing text form."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

# N=2^14, r=8, p=1 (16 MiB, about 50-100 ms): the scrypt paper's interactive-login setting. It is
# only paid at login and `users passwd`; every later request is checked by its session cookie.
# For every password: `users add`, `users passwd` and SPACE_DEV_PASSWORD alike.
MIN_PASSWORD_LENGTH = 8
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32

# Bounds on what a stored value may ask for, so a broken or hostile file cannot make one
# verification take gigabytes of memory or minutes of CPU.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16
_MAX_MEMORY = 2**28
_SCHEME = "scrypt"

# No 0/O, 1/l/I: the generated password is read off a terminal and typed.
_PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"
_PASSWORD_GROUPS = 4
_PASSWORD_GROUP_LENGTH = 5


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    memory = 128 * r * (n + p + 2)
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=memory + 2**20,
        dklen=length,
    )


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash` (salt and hash in unpadded base64url), with a fresh salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return f"{_SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    if not isinstance(stored, str):
        return None
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        return None
    numbers = parts[1:4]
    if not all(x.isascii() and x.isdigit() and len(x) <= 8 for x in numbers):
        return None
    n, r, p = (int(x) for x in numbers)
    try:
        salt = _unb64(parts[4])
        digest = _unb64(parts[5])
    except (ValueError, binascii.Error):
        return None
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return None
    if 128 * r * (n + p + 2) > _MAX_MEMORY or not salt or not 16 <= len(digest) <= 64:
        return None
    return n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    """Whether the password matches the stored hash; a garbled stored value is simply False."""
    parsed = _parse(stored)
    if parsed is None or not isinstance(password, str):
        return False
    n, r, p, salt, digest = parsed
    try:
        candidate = _scrypt(password, salt, n, r, p, len(digest))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate, digest)


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash uses other parameters than today's (worth redoing at next login)."""
    parsed = _parse(stored)
    return parsed is None or parsed[:3] != (SCRYPT_N, SCRYPT_R, SCRYPT_P)


def new_password() -> str:
    """A random password easy to type from a terminal: `xxxxx-xxxxx-xxxxx-xxxxx` (~100 bits)."""
    return "-".join(
        "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(_PASSWORD_GROUP_LENGTH))
        for _ in range(_PASSWORD_GROUPS)
    )
