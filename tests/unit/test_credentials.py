"""Credentials: keys and sessions checked in memory, and kept current with the data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.auth.credentials import Credentials
from runtime.auth.keys import generate_key, hash_key, key_prefix
from runtime.auth.passwords import hash_password
from runtime.auth.policy import INVALID_KEY
from runtime.datadir.store import Store
from runtime.models import ApiKey


@pytest.fixture
def setup(tmp_path: Path):
    store = Store(tmp_path / "data")
    store.users.add("dev", hash_password("owner password"))
    store.users.add("eve", hash_password("eve password"), groups=["ops"])
    key = generate_key()
    store.keys.create(ApiKey("notes", "ci", hash_key(key), key_prefix(key), client_type="admin"))
    return store, Credentials(store), key


def test_a_key_of_this_app(setup) -> None:
    _, credentials, key = setup
    who = credentials.key("notes", key)
    assert who != INVALID_KEY
    assert who.kind == "api-key" and who.key_name == "ci" and who.client_type == "admin"


@pytest.mark.parametrize("app", ["other", "Notes", ""])
def test_a_key_of_another_app_is_invalid(setup, app: str) -> None:
    _, credentials, key = setup
    assert credentials.key(app, key) is INVALID_KEY


def test_unknown_and_near_keys_are_invalid(setup) -> None:
    _, credentials, key = setup
    for wrong in ("", key[:-1], key + "x", key.upper(), generate_key()):
        assert credentials.key("notes", wrong) is INVALID_KEY


def test_a_switched_off_key_fails_after_reload(setup) -> None:
    store, credentials, key = setup
    store.keys.set_active("notes", "ci", False)
    assert credentials.key("notes", key) != INVALID_KEY  # nothing re-read yet
    assert credentials.reload() is True
    assert credentials.key("notes", key) is INVALID_KEY
    assert credentials.reload() is False  # nothing changed since


def test_sessions(setup) -> None:
    store, credentials, _ = setup
    owner = credentials.sign_session(store.sessions.create("dev"))
    eve = credentials.sign_session(store.sessions.create("eve"))
    credentials.reload()
    assert credentials.session(owner).owner is True
    who = credentials.session(eve)
    assert who.user == "eve" and not who.owner and who.groups == frozenset({"ops"})
    assert credentials.session(owner[:-2] + "xx") is None  # tampered
    assert credentials.session("not even signed") is None
    assert credentials.session(Credentials(store, b"another secret" * 3).sign_session("x")) is None


@pytest.mark.parametrize("cookie", ["\udcff\udcfe", "a.\udc80", "\ud800"])
def test_a_cookie_that_was_not_utf8_is_no_session(setup, cookie: str) -> None:
    _, credentials, _ = setup
    assert credentials.session(cookie) is None
    assert credentials.session_id(cookie) is None


def test_logout_ends_the_session_at_reload(setup) -> None:
    store, credentials, _ = setup
    sid = store.sessions.create("dev")
    cookie = credentials.sign_session(sid)
    credentials.reload()
    assert credentials.session(cookie) is not None
    store.sessions.delete(sid)
    credentials.reload()
    assert credentials.session(cookie) is None


def test_last_used_is_written_when_flushed(setup) -> None:
    store, credentials, key = setup
    credentials.key("notes", key)
    assert store.keys.get("notes", "ci").last_used is None  # never per request
    credentials.flush_last_used()
    last = store.keys.get("notes", "ci").last_used
    assert last is not None and last.endswith("Z") and len(last) == 20
