"""API keys: their shape, their hash, owner-chosen values and the prefix lists show."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from runtime.auth.keys import (
    check_custom_value,
    generate_key,
    hash_key,
    hashes_equal,
    is_generated_form,
    key_prefix,
    new_key,
    utc_now_text,
)
from runtime.errors import SpaceDevError

KEY_SHAPE = re.compile(r"[A-Za-z0-9]{8}\.[A-Za-z0-9_-]{32}")


def test_generated_keys_have_the_documented_shape() -> None:
    keys = [generate_key() for _ in range(200)]
    assert all(KEY_SHAPE.fullmatch(k) for k in keys)
    assert len(set(keys)) == len(keys)
    assert len({k[:8] for k in keys}) == len(keys)
    assert all(is_generated_form(k) for k in keys)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ],
)
def test_hash_key_is_hex_sha256(key: str, expected: str) -> None:
    assert hash_key(key) == expected


def test_hash_key_of_any_text() -> None:
    assert len(hash_key("clé-ünïcödé-value")) == 64
    assert hash_key("\udcff") != hash_key("\udcfe")  # bytes a server could not decode
    assert hash_key("\ud800") != hash_key("")  # never raises, even for a lone surrogate
    key = generate_key()
    assert hash_key(key) == hash_key(key) != hash_key(key + "x")


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("Ab3dE6gH.abcdefghijklmnopqrstuvwxyz012345", "Ab3dE6gH"),
        ("Ab3dE6gH.abcdefghijklmnopqrstuvwxyz01-_45", "Ab3dE6gH"),
        # owner-chosen values: four characters and no more
        ("my-very-own-secret-1", "my-v..."),
        ("Ab3dE6gH.short", "Ab3d..."),
        ("Ab3dE6gH.abcdefghijklmnopqrstuvwxyz0123456", "Ab3d..."),  # 33 after the dot
        ("Ab3dE6g!.abcdefghijklmnopqrstuvwxyz012345", "Ab3d..."),
    ],
)
def test_key_prefix(key: str, prefix: str) -> None:
    assert key_prefix(key) == prefix


def test_prefix_of_generated_key() -> None:
    key = generate_key()
    assert key_prefix(key) == key.split(".")[0]


@pytest.mark.parametrize(
    "value",
    [
        "mia_client_key_of_the_owner",
        "with.dots-and_underscores~1",
        "clé-très-secrète-😀-ok",
        "".join(chr(33 + (n * 37) % 90) for n in range(1024)),
        "quotes\"and'semicolons;ok",
        "3f9a0c7d1e5b2846",  # 16 hex digits, as `openssl rand -hex 8` makes
        "550e8400-e29b-41d4-a716-446655440000",
        "CorrectHorseBatteryStaple",
        "my-own-key-value-1234",
    ],
)
def test_custom_values_accepted(value: str) -> None:
    check_custom_value(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "too short"),
        ("short", "too short"),
        ("0123456789abcde", "too short"),
        ("x" * 1025, "too long"),
        ("has a space in the middle", "blank"),
        ("tab\tinside-the-value", "blank"),
        ("newline-at-the-end\n", "blank"),
        ("nbsp\u00a0inside-the-value", "blank"),
        ("nul\x00inside-the-value", "control"),
        ("del\x7finside-the-value", "control"),
        ("zero\u200bwidth-space-inside", "control"),
        (" leading-space-value-here", "position 1"),
        ("x" * 1024, "only 1 different character ("),
        ("aaaaaaaabbbbbbbbcccc", "only 3 different characters"),
        ("abababababababab", "only 2 different characters"),
        ("passwordpassword", "only 7 different characters"),
        ("abcdefghijklmnopqrst", "lowercase letters only"),
        ("ABCDEFGHIJKLMNOPQRST", "capitals only"),
        ("31415926535897932384", "digits only"),
        ("0123456789abcdef", "mostly runs"),
        ("abcdefgh12345678", "mostly runs"),
        ("Password12345678", "mostly runs"),
        ("zyxwvutsrqpo9876", "mostly runs"),
    ],
)
def test_custom_values_refused(value: str, message: str) -> None:
    with pytest.raises(SpaceDevError) as caught:
        check_custom_value(value)
    assert message in caught.value.message
    assert "16 characters" in caught.value.hint


def test_custom_value_must_be_text() -> None:
    with pytest.raises(SpaceDevError):
        check_custom_value(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (hash_key("a"), hash_key("a"), True),
        (hash_key("a"), hash_key("b"), False),
        ("", "", True),
        ("abc", "abcd", False),
        ("é", "é", True),
    ],
)
def test_hashes_equal(a: str, b: str, equal: bool) -> None:
    assert hashes_equal(a, b) is equal


def test_utc_now_text() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_now_text())
    moment = datetime(2021, 4, 22, 11, 50, 8, 999_000, tzinfo=UTC)
    assert utc_now_text(moment) == "2021-04-22T11:50:08Z"
    paris = timezone(timedelta(hours=2))
    assert utc_now_text(datetime(2021, 4, 22, 13, 50, 8, tzinfo=paris)) == "2021-04-22T11:50:08Z"


@pytest.mark.parametrize(
    ("name", "description", "client_type", "message"),
    [
        ("", "", "", "needs a name"),
        ("  ", "", "", "needs a name"),
        (" ci", "", "", "a space: only letters"),
        ("a/b", "", "", "'/': only letters"),
        ("with space", "", "", "a space"),
        ("<script>", "", "", "'<', '>'"),
        ("caf\u00e9", "", "", "only letters, digits"),
        ("tab\there", "", "", "only letters"),
        ("x" * 65, "", "", "too long"),
        ("ci", "two\nlines", "", "line break"),
        ("ci", "", "x" * 501, "too long"),
    ],
)
def test_new_key_fields_are_checked(
    name: str, description: str, client_type: str, message: str
) -> None:
    with pytest.raises(SpaceDevError, match=message):
        new_key("notes", name, description, client_type)


def test_new_key_keeps_only_the_hash() -> None:
    record, key = new_key("notes", "ci", "deploys", "admin")
    assert record.key_hash == hash_key(key) and key not in repr(record)
    assert record.prefix == key.split(".")[0] and record.created.endswith("Z")
    own, value = new_key("notes", "mine", value="my-own-value-0123456789")
    assert value == "my-own-value-0123456789" and own.prefix == "my-o..."
