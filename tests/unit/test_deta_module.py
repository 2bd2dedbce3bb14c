"""The `deta` module micros import: Base and AsyncBase against the real Base handler, over TLS."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cryptography", reason="the tests' CA is made with cryptography")

from tests.unit.deta_servers import (  # noqa: E402
    IN_MICRO,
    Servers,
    Service,
    fresh,
    point_at,
    running_servers,
)

# The helper put the micro's folder first on sys.path: `deta` is the micro's module.
# isort: split
import deta  # noqa: E402
from deta import base as deta_base  # noqa: E402
from deta import service as service_module  # noqa: E402
from deta._async import client as async_client  # noqa: E402


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with running_servers(tmp_path_factory.mktemp("deta")) as running:
        yield running


@pytest.fixture
def env(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> Servers:
    return point_at(servers, monkeypatch)


@pytest.fixture
def api(env: Servers) -> Service:
    return env.services["base"]


@pytest.fixture
def db(api: Service) -> Any:
    return deta.Deta().Base(fresh())


# --- the module itself ------------------------------------------------------------------------


def test_imported_from_the_micro_folder() -> None:
    assert Path(deta.__file__).parent == IN_MICRO / "deta"
    assert deta.__version__.startswith("1.")
    assert deta.AsyncBase is async_client.AsyncBase


def test_runs_on_the_standard_library_alone(env: Servers, tmp_path: Path) -> None:
    script = f"""
import asyncio, json, sys
sys.path.insert(0, {str(IN_MICRO)!r})
import deta
db = deta.Base("stdlib")
db.put({{"n": 1}}, "a/b")
out = {{"get": db.get("a/b")}}
async def main():
    adb = deta.Deta().AsyncBase("stdlib")
    await adb.put(2, "c")
    out["async"] = (await adb.get("c"))["value"]
    await adb.close()
asyncio.run(main())
drive = deta.Drive("stdlib")
drive.put("x.txt", "hi")
out["drive"] = drive.get("x.txt").read().decode()
out["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("runtime", "aiohttp"))
print(json.dumps(out))
"""
    environ = {**os.environ, "DETA_DRIVE_HOST": env.services["mini"].host}
    # -S: no site-packages, so neither aiohttp nor anything else installed can be found.
    done = subprocess.run(
        [sys.executable, "-S", "-c", script],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "get": {"key": "a/b", "n": 1},
        "async": 2,
        "drive": "hi",
        "modules": [],
    }


def test_project_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETA_PROJECT_KEY", "abc_secret")
    assert (deta.Deta().project_key, deta.Deta().project_id) == ("abc_secret", "abc")
    assert deta.Deta("k", project_id="p").project_id == "p"
    assert deta.Base("people").base_path == "/v1/abc/people"
    monkeypatch.delenv("DETA_PROJECT_KEY")
    for make in (deta.Deta, lambda: deta.Base("x"), lambda: deta.Drive("x")):
        with pytest.raises(AssertionError, match="DETA_PROJECT_KEY is not set"):
            make()


@pytest.mark.parametrize("key", ["nounderscoreQZ", "_hiddenQZ", "abcQZ_"])
def test_malformed_key_names_the_variable_not_the_secret(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("DETA_PROJECT_KEY", key)
    with pytest.raises(AssertionError, match="Bad project key in DETA_PROJECT_KEY") as error:
        deta.Deta()
    assert key.strip("_") not in str(error.value)
    with pytest.raises(AssertionError, match="passed to Deta()"):
        deta.Deta(key)


def test_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETA_PROJECT_KEY", "abc_secret")
    monkeypatch.delenv("DETA_BASE_HOST", raising=False)
    monkeypatch.delenv("DETA_DRIVE_HOST", raising=False)
    assert (deta.Base("b").host, deta.Drive("d").host) == ("database.deta.sh", "drive.deta.sh")
    monkeypatch.setenv("DETA_BASE_HOST", "127.0.0.1:1")
    monkeypatch.setenv("DETA_DRIVE_HOST", "127.0.0.1:2")
    assert (deta.Base("b").host, deta.Drive("d").host) == ("127.0.0.1:1", "127.0.0.1:2")
    assert deta.Deta().Base("b", host="h:3").host == "h:3"
    assert deta.Deta().Drive("d", host="h:4").host == "h:4"
    with pytest.raises(AssertionError):
        deta.Base("")


def test_send_email_says_space_has_no_mailer() -> None:
    with pytest.raises(RuntimeError, match="Deta Space does not have"):
        deta.send_email("a@example.com", "s", "m")


# --- Base ----------------------------------------------------------------------------------


def test_put_returns_the_stored_item_and_leaves_the_callers_dict(db: Any) -> None:
    data = {"name": "Ada", "n": 1}
    assert db.put(data, "ada") == {"key": "ada", "name": "Ada", "n": 1}
    assert data == {"name": "Ada", "n": 1}
    assert db.get("ada") == {"key": "ada", "name": "Ada", "n": 1}
    assert db.put({"key": "in-data", "x": 1}, "argument")["key"] == "argument"
    generated = db.put(5)
    assert generated["value"] == 5 and isinstance(generated["key"], str) and generated["key"]
    assert db.put([1, "two"], "list") == {"key": "list", "value": [1, "two"]}
    assert db.put({"where": Path("rel")}, "p")["where"] == Path("rel").resolve().as_posix()


def test_put_many(db: Any, api: Service) -> None:
    answer = db.put_many([{"key": "a", "n": 1}, "text", 3])
    processed = answer["processed"]["items"]
    assert processed[0] == {"key": "a", "n": 1}
    assert [i["value"] for i in processed[1:]] == ["text", 3]
    assert answer["failed"] == {"items": []}
    api.seen.clear()
    with pytest.raises(AssertionError, match="25"):
        db.put_many(list(range(26)))
    assert api.seen == []


def test_insert_refuses_a_key_in_use(db: Any) -> None:
    assert db.insert({"n": 1}, "k") == {"key": "k", "n": 1}
    assert db.insert("free")["value"] == "free"
    with pytest.raises(urllib.error.HTTPError) as caught:
        db.insert({"n": 2}, "k")
    error = caught.value
    assert isinstance(error, deta.DetaError) and error.code == 409
    assert "Item with key 'k' already exists" in str(error)
    assert json.loads(error.read())["errors"]
    assert db.get("k") == {"key": "k", "n": 1}


def test_get_and_delete(db: Any) -> None:
    assert db.get("missing") is None
    db.put(1, "k")
    assert db.delete("k") is None and db.get("k") is None
    assert db.delete("k") is None
    for call in (db.get, db.delete, lambda key: db.update({"a": 1}, key)):
        with pytest.raises(ValueError, match="Key is empty"):
            call("")


def test_update_operations(db: Any) -> None:
    db.put({"n": 1, "f": 1.5, "tags": ["m"], "gone": True, "profile": {"age": 1}}, "k")
    util = db.util
    assert util is deta_base._Base.util
    assert (
        db.update(
            {
                "n": util.increment(),
                "f": util.increment(-0.5),
                "tags": util.append(["x", "y"]),
                "profile.age": 2,
                "gone": util.trim(),
                "new": "v",
            },
            "k",
        )
        is None
    )
    db.update({"tags": util.prepend("a"), "n": util.increment(0)}, "k")
    assert db.get("k") == {
        "key": "k",
        "n": 2,
        "f": 1.0,
        "tags": ["a", "m", "x", "y"],
        "profile": {"age": 2},
        "new": "v",
    }
    with pytest.raises(deta.DetaError, match="Key 'nope' not found") as caught:
        db.update({"a": 1}, "nope")
    assert caught.value.code == 404


KEYS = ["a/b", "a/../b", "50%", "sp ace", "q?x=1#f", "+plus", "ünï/€", "%2F"]


def test_keys_travel_percent_encoded(db: Any, api: Service) -> None:
    for key in KEYS:
        assert db.put({"v": key}, key)["key"] == key
        db.update({"seen": True}, key)
        assert db.get(key) == {"key": key, "v": key, "seen": True}
    assert sorted(i["key"] for i in db.fetch().items) == sorted(KEYS)
    assert any(s.path.endswith("/items/a%2Fb") for s in api.seen)
    for key in KEYS:
        db.delete(key)
        assert db.get(key) is None


def test_expiry(db: Any) -> None:
    now = time.time()
    stamp = db.put("x", "in", expire_in=300)["__expires"]
    assert isinstance(stamp, int) and now + 298 <= stamp <= now + 302
    when = datetime.datetime(2100, 1, 2, 3, 4, 5, 600_000, tzinfo=datetime.UTC)
    assert db.put("x", "at", expire_at=when)["__expires"] == 4102542245
    assert db.insert("x", "int", expire_at=4102542245.9)["__expires"] == 4102542245
    many = db.put_many(["a", {"b": 1}], expire_in=60)["processed"]["items"]
    assert all(now + 58 <= i["__expires"] <= now + 62 for i in many)
    db.update({"v": 1}, "in", expire_at=4102542245)
    assert db.get("in")["__expires"] == 4102542245
    assert "__expires" not in db.put("x", "zero", expire_in=0)  # falsy is "not given"
    db.put("gone", "past", expire_at=int(now) - 5)
    assert db.get("past") is None
    with pytest.raises(ValueError, match="both"):
        db.put("x", expire_in=1, expire_at=when)
    with pytest.raises(TypeError):
        db.put("x", expire_at="tomorrow")


def test_fetch_pages_through_everything(db: Any) -> None:
    for start in (0, 25):
        db.put_many([{"key": f"{i:03d}", "i": i} for i in range(start, min(start + 25, 45))])
    keys, last, sizes = [], None, []
    while True:
        page = db.fetch(limit=20, last=last)
        keys += [i["key"] for i in page.items]
        sizes.append(page.count)
        last = page.last
        if last is None:
            break
    assert sizes == [20, 20, 5] and keys == [f"{i:03d}" for i in range(45)]
    everything = db.fetch()
    assert (everything.count, everything.last, len(everything.items)) == (45, None, 45)
    assert [i["i"] for i in db.fetch(limit=3, desc=True).items] == [44, 43, 42]
    assert [i["i"] for i in db.fetch({"i?gte": 43}).items] == [43, 44]
    either = db.fetch([{"i": 1}, {"i?lt": 1}])
    assert [i["i"] for i in either.items] == [0, 1]
    assert db.fetch({"i": 1}) == db.fetch({"i": 1})


def test_a_server_error_then_the_next_call_works(db: Any, api: Service) -> None:
    db.put(1, "k")
    api.faults.append("500")
    with pytest.raises(deta.DetaError, match="injected failure") as caught:
        db.put(2, "k")
    assert caught.value.code == 500 and caught.value.errors == ["injected failure"]
    assert db.get("k")["value"] == 1
    db.put(3, "k")
    assert db.get("k")["value"] == 3


def test_a_dropped_connection_then_the_next_call_works(db: Any, api: Service) -> None:
    db.put(1, "k")
    api.faults += ["drop"]
    assert db.get("k")["value"] == 1  # a kept-alive connection that died is retried once
    api.faults += ["drop", "drop"]
    with pytest.raises(ConnectionError):
        db.get("k")
    assert db.get("k")["value"] == 1


def test_a_timeout_then_the_next_call_works(api: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deta_base, "BASE_SERVICE_TIMEOUT", 0.5)
    db = deta.Base(fresh())
    db.put(1, "k")
    api.faults.append("stall")
    with pytest.raises(TimeoutError):
        db.get("k")
    assert db.get("k")["value"] == 1  # not CannotSendRequest: the timed-out connection is gone


def test_one_connection_is_kept_alive(db: Any, api: Service) -> None:
    for i in range(5):
        db.put(i, str(i))
        deta.Base(db.name).get(str(i))  # another Base on the same host shares it
    assert len(api.seen) == 10 and len({s.peer for s in api.seen}) == 1


def test_threads_never_share_a_connection(db: Any, api: Service) -> None:
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                db.put({"n": n}, f"{n}-{i}")
                assert db.get(f"{n}-{i}")["n"] == n
        except BaseException as error:  # reported by the test thread below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [] and db.fetch().count == 60


def test_client_close_as_deta_pythons_tests_and_apps_call_it(db: Any, api: Service) -> None:
    db.put(1, "k")
    peers = {s.peer for s in api.seen}
    db.client.close()  # deta-python's tests end every Base test with this line
    db.client.close()  # closing twice is no error, as with http.client
    assert db.get("k")["value"] == 1  # and the Base still works, on a new connection
    assert {s.peer for s in api.seen} - peers
    assert db.client.host == db.host and db.client.timeout == db.timeout


def test_client_close_ends_the_idle_connection(db: Any, api: Service) -> None:
    db.put(1, "k")
    (conn,) = service_module._pool_for(db.host, db.timeout)._idle
    assert conn.sock is not None
    db.client.close()
    assert conn.sock is None and not service_module._pool_for(db.host, db.timeout)._idle


def test_a_refused_query_says_deta_s_words_and_space_dev_s_detail(db: Any) -> None:
    db.put({"age": 27}, "k1")
    with pytest.raises(deta.DetaError) as caught:
        db.fetch([{"age": 27}, {"key?<=": "k2"}])
    error = caught.value
    assert error.code == 400 and error.errors == ["Bad query"]
    assert json.loads(error.read()) == {"errors": ["Bad query"]}  # the body, as Deta's
    assert "Bad query" in str(error) and "same condition on key" in str(error)
    with pytest.raises(deta.DetaError) as caught:
        db.fetch({"caf\u00e9?": 1})
    assert 'Invalid query operator "?" in "caf\u00e9?"' in str(caught.value)  # unescaped


def test_a_wrong_key_is_an_error_the_app_can_catch(api: Service) -> None:
    for key in ("a0test_wrong", "other_s3cret"):
        db = deta.Deta(key).Base(fresh())
        with pytest.raises(urllib.error.HTTPError) as caught:
            db.get("k")
        assert caught.value.code == 401 and "Unauthorized" in str(caught.value)
    assert deta.Base(fresh()).get("k") is None  # and the right key still works after


# --- AsyncBase ------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["aiohttp", "threads"])
async def test_async_base(api: Service, monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    if transport == "threads":
        monkeypatch.setattr(async_client, "_aiohttp", lambda: None)
        conflict: type[Exception] = deta.DetaError
    else:
        import aiohttp

        conflict = aiohttp.ClientResponseError
    db = deta.Deta().AsyncBase(fresh())
    try:
        assert await db.put({"n": 1}, "a/b") == {"key": "a/b", "n": 1}
        assert await db.get("a/b") == {"key": "a/b", "n": 1}
        assert await db.get("missing") is None
        assert await db.insert("v", "i", expire_in=60)
        with pytest.raises(conflict, match="Item with key 'i' already exists") as caught:
            await db.insert("again", "i")
        # aiohttp's error says `status` (its `code` is deprecated); the other clients say `code`.
        error = caught.value
        assert (error.status if hasattr(error, "status") else error.code) == 409
        await db.update({"n": db.util.increment(2), "tags": db.util.append("x")}, "a/b")
        assert await db.get("a/b") == {"key": "a/b", "n": 3, "tags": ["x"]}
        with pytest.raises(conflict, match="Key 'nope' not found"):
            await db.update({"n": 1}, "nope")
        assert len((await db.put_many([1, 2, 3]))["processed"]["items"]) == 3
        page = await db.fetch(limit=4)
        assert page.count == 4 and page.last is not None
        rest = await db.fetch(limit=4, last=page.last)
        assert rest.count == 1 and rest.last is None  # 5 items: a/b, i and 3 more
        assert await db.delete("a/b") is None and await db.get("a/b") is None
        with pytest.raises(conflict, match="Bad query: .*same condition on key"):
            await db.fetch([{"n": 1}, {"key": "i"}])
    finally:
        await db.close()
