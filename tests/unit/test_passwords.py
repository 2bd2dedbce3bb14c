"""Passwords: scrypt hashes that verify, refuse the wrong password and shrug off garbage."""

from __future__ import annotations

import re

import pytest

from runtime.auth import passwords
from runtime.auth.passwords import hash_password, needs_rehash, new_password, verify_password


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("correct horse battery staple")


def test_hash_form(stored: str) -> None:
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", salt)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", digest)


def test_salted(stored: str) -> None:
    other = hash_password("correct horse battery staple")
    assert other != stored
    assert verify_password("correct horse battery staple", other)


@pytest.mark.parametrize(
    ("attempt", "ok"),
    [
        ("correct horse battery staple", True),
        ("correct horse battery stapl", False),
        ("Correct horse battery staple", False),
        ("correct horse battery staple ", False),
        ("", False),
    ],
)
def test_verify(stored: str, attempt: str, ok: bool) -> None:
    assert verify_password(attempt, stored) is ok


@pytest.mark.parametrize("password", ["", "pässwörd-ünïcode", "x" * 1000, "\ud800"])
def test_round_trip_of_unusual_passwords(password: str) -> None:
    assert verify_password(password, hash_password(password))
    assert not verify_password(password + "!", hash_password(password))


GARBAGE = [
    "",
    "plain text password",
    "scrypt",
    "scrypt$$$$$",
    "scrypt$16384$8$1$c2FsdA",
    "scrypt$16384$8$1$c2FsdA$ZGlnZXN0$extra",
    "bcrypt$16384$8$1$c2FsdHNhbHRzYWx0$ZGlnZXN0ZGlnZXN0ZGlnZXN0",
    "scrypt$abc$8$1$c2FsdHNhbHRzYWx0$ZGlnZXN0ZGlnZXN0ZGlnZXN0",
    "scrypt$-16384$8$1$c2FsdHNhbHRzYWx0$ZGlnZXN0ZGlnZXN0ZGlnZXN0",
    "scrypt$16383$8$1$c2FsdHNhbHRzYWx0$ZGlnZXN0ZGlnZXN0ZGlnZXN0",  # not a power of two
    "scrypt$1$8$1$c2FsdHNhbHRzYWx0$ZGlnZXN0ZGlnZXN0ZGlnZXN0",
    "scrypt$2097152$8$1$c2FsdHNhbHRzYWx0$ZGlnZXN0ZGlnZXN0ZGlnZXN0",  # too much memory
    "scrypt$1048576$32$16$c2FsdHNhbHRzYWx0$ZGlnZXN0ZGlnZXN0ZGlnZXN0",
    "scrypt$16384$0$1$c2FsdHNhbHRzYWx0$ZGlnZXN0ZGlnZXN0ZGlnZXN0",
    "scrypt$16384$8$99$c2FsdHNhbHRzYWx0$ZGlnZXN0ZGlnZXN0ZGlnZXN0",
    "scrypt$16384$8$1$$ZGlnZXN0ZGlnZXN0ZGlnZXN0",  # no salt
    "scrypt$16384$8$1$c2FsdHNhbHRzYWx0$ZGln",  # digest too short
    "scrypt$16384$8$1$c2FsdHNhbHRzYWx0$!!!notbase64!!!",
    "scrypt$１６３８４$8$1$c2FsdHNhbHRzYWx0$ZGlnZXN0ZGlnZXN0ZGlnZXN0",  # non-ASCII digits
    "scrypt$16384$8$1$c2FsdHNhbHRzYWx0$ZGlnZXN0ZGlnZXN0ZGlnZXN0",  # well formed, wrong hash
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_never_verifies(garbage: str) -> None:
    assert verify_password("anything", garbage) is False
    assert verify_password("", garbage) is False


@pytest.mark.parametrize("garbage", [None, 12, b"scrypt$16384$8$1$x$y"])
def test_non_text_stored_values(garbage: object) -> None:
    assert verify_password("x", garbage) is False  # type: ignore[arg-type]


def test_other_parameters_still_verify() -> None:
    # A hash made with cheaper parameters (an older setting) verifies and asks to be redone.
    salt = b"0123456789abcdef"
    digest = passwords._scrypt("pw", salt, 2**10, 8, 1, 32)
    old = f"scrypt$1024$8$1${passwords._b64(salt)}${passwords._b64(digest)}"
    assert verify_password("pw", old)
    assert not verify_password("pv", old)
    assert needs_rehash(old)


def test_needs_rehash(stored: str) -> None:
    assert not needs_rehash(stored)
    assert needs_rehash("garbage")


def test_new_password() -> None:
    made = [new_password() for _ in range(100)]
    assert len(set(made)) == len(made)
    for password in made:
        assert re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5}", password)
        assert not set(password) & set("01lIO")
