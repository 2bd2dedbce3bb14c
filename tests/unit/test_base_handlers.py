"""The Base HTTP API through a real aiohttp server: every route, every error, keys with `%2F`."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from runtime.cloud.base import handlers
from runtime.cloud.base.handlers import handle_base
from runtime.cloud.base.store import BaseDB

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
ROOT = "/v1/a0abcyxz/people"


def _app(db: BaseDB) -> web.Application:
    """Mounts the API as the runtime does: `/v1/{project_id}/{base}` + the raw rest of the path."""

    async def handler(request: web.Request) -> web.StreamResponse:
        parts = request.rel_url.raw_path.split("/")  # "", "v1", project, base, rest...
        rest = "/" + "/".join(parts[4:]) if len(parts) > 4 else ""
        return await handle_base(request, db, unquote(parts[3]), rest)

    app = web.Application()
    app.router.add_route("*", "/v1/{project}/{tail:.*}", handler)
    return app


@pytest.fixture
def db(tmp_path: Path) -> Iterator[BaseDB]:
    with BaseDB(tmp_path / "app.sqlite3") as opened:
        yield opened


@pytest.fixture
async def client(aiohttp_client: MakeClient, db: BaseDB) -> Client:
    return await aiohttp_client(_app(db))


def item_url(key: str) -> str:
    return f"{ROOT}/items/{quote(key, safe='')}"  # as deta-python and deta-javascript encode


async def answer(response: Any, status: int) -> Any:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def errors(response: Any, status: int) -> list[str]:
    body = await answer(response, status)
    assert set(body) == {"errors"} and body["errors"] and all(body["errors"])
    messages: list[str] = body["errors"]
    return messages


async def test_put_stores_items_and_answers_207(client: Client, db: BaseDB) -> None:
    items = [{"key": "a", "n": 1}, {"n": 2}, {"key": "c", "__expires": 4_000_000_000}]
    body = await answer(await client.put(f"{ROOT}/items", json={"items": items}), 207)
    assert body["failed"] == {"items": []}
    stored = body["processed"]["items"]
    assert stored[0] == {"key": "a", "n": 1} and stored[2] == items[2]
    assert len(stored[1]["key"]) == 12 and stored[1]["n"] == 2
    assert db.get("people", stored[1]["key"]) == stored[1]
    assert db.get("other", "a") is None  # the Base name from the path is used


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"items": [{"key": "ok"}] + [{"n": i} for i in range(25)]}, "at most 25"),
        ({"items": [{"key": "ok"}, {"key": 7}]}, "Key must be a string"),
        ({"items": [{"key": "ok"}, {"key": "ok"}]}, "same key"),
        ({"items": [{"key": "ok"}, [1, 2]]}, "items[1] must be a JSON object"),
        ({"items": [{"key": "ok"}, {"big": "x" * 410_000}]}, "items[1] exceeds 400 KB"),
        ({"items": {"key": "ok"}}, "must be a list"),
        ({"item": [{"key": "ok"}]}, "must be a list"),
    ],
)
async def test_bad_put_is_400_and_stores_nothing(
    client: Client, db: BaseDB, body: Any, message: str
) -> None:
    messages = await errors(await client.put(f"{ROOT}/items", json=body), 400)
    assert message in messages[0]
    assert db.count("people") == 0


async def test_put_of_25_items_and_of_an_empty_list(client: Client, db: BaseDB) -> None:
    body = {"items": [{"n": i} for i in range(25)]}
    assert (
        len((await answer(await client.put(f"{ROOT}/items", json=body), 207))["processed"]["items"])
        == 25
    )
    empty = await answer(await client.put(f"{ROOT}/items", json={"items": []}), 207)
    assert empty["processed"] == {"items": []}
    assert db.count("people") == 25


async def test_a_body_over_aiohttps_default_limit_is_read(client: Client, db: BaseDB) -> None:
    items = [{"key": f"k{i}", "text": "x" * 390_000} for i in range(3)]  # about 1.2 MB
    await answer(await client.put(f"{ROOT}/items", json={"items": items}), 207)
    assert db.count("people") == 3


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_over_16_mb_is_refused(
    client: Client, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    monkeypatch.setattr(handlers, "MAX_REQUEST_BYTES", 1000)
    data = json.dumps({"items": [{"text": "x" * 2000}]}).encode()

    async def stream() -> Any:
        yield data[:500]
        yield data[500:]

    response = await client.put(f"{ROOT}/items", data=stream() if chunked else data)
    assert "16 MB" in (await errors(response, 400))[0]


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"",
        b'{"items": [NaN]}',
        b'{"items": [Infinity]}',
        b"[1]",
        b'"x"',
        b"\xff\xfe{",
        b"[" * 100_000,
    ],
)
async def test_invalid_json_is_400(client: Client, raw: bytes) -> None:
    headers = {"Content-Type": "application/json"}
    response = await client.put(f"{ROOT}/items", data=raw, headers=headers)
    await errors(response, 400)


async def test_get(client: Client, db: BaseDB) -> None:
    db.put_many("people", [{"key": "k", "nested": {"a": [1, None, True]}, "u": "é😀"}])
    body = await answer(await client.get(item_url("k")), 200)
    assert body == {"key": "k", "nested": {"a": [1, None, True]}, "u": "é😀"}
    assert await errors(await client.get(item_url("nope")), 404) == ["Key not found"]


@pytest.mark.parametrize("key", ["a/b", "%@#//#!#)#$_", "a%2Fb", "sp ace+plus", "ü/ö?x#y", "/"])
async def test_keys_with_reserved_characters_round_trip(
    client: Client, db: BaseDB, key: str
) -> None:
    await answer(await client.put(f"{ROOT}/items", json={"items": [{"key": key, "v": 1}]}), 207)
    assert await answer(await client.get(item_url(key)), 200) == {"key": key, "v": 1}
    patch = await client.patch(item_url(key), json={"increment": {"v": 1}})
    await answer(patch, 200)
    assert db.get("people", key) == {"key": key, "v": 2}
    assert await answer(await client.delete(item_url(key)), 200) == {"key": key}
    assert db.get("people", key) is None


async def test_percent_encoding_is_decoded_once(client: Client, db: BaseDB) -> None:
    db.put_many("people", [{"key": "a%2Fb"}, {"key": "a/b", "slash": True}])
    assert await answer(await client.get(f"{ROOT}/items/a%252Fb"), 200) == {"key": "a%2Fb"}
    assert (await answer(await client.get(f"{ROOT}/items/a%2Fb"), 200))["slash"] is True
    assert (await answer(await client.get(f"{ROOT}/items/a/b"), 200))["slash"] is True


async def test_bad_keys_in_the_path(client: Client) -> None:
    assert "UTF-8" in (await errors(await client.get(f"{ROOT}/items/%ff"), 400))[0]
    assert await errors(await client.get(f"{ROOT}/items/"), 400) == ["Key is empty"]


async def test_delete_always_answers_200(client: Client, db: BaseDB) -> None:
    db.put_many("people", [{"key": "k"}])
    assert await answer(await client.delete(item_url("k")), 200) == {"key": "k"}
    assert await answer(await client.delete(item_url("k")), 200) == {"key": "k"}
    assert db.get("people", "k") is None


async def test_insert(client: Client, db: BaseDB) -> None:
    item = {"key": "k", "v": 1}
    assert await answer(await client.post(f"{ROOT}/items", json={"item": item}), 201) == item
    again = await client.post(f"{ROOT}/items", json={"item": {"key": "k", "v": 2}})
    assert await errors(again, 409) == ["Key already exists"]
    assert db.get("people", "k") == item
    fresh = await answer(await client.post(f"{ROOT}/items", json={"item": {"v": 3}}), 201)
    assert len(fresh["key"]) == 12 and db.get("people", fresh["key"]) == fresh


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"items": [{"key": "k"}]}, '"item" must be a JSON object'),
        ({"item": "text"}, '"item" must be a JSON object'),
        ({"item": {"key": 5}}, "Key must be a string"),
        ({"item": {"big": "x" * 410_000}}, "exceeds 400 KB"),
    ],
)
async def test_bad_insert_is_400(client: Client, db: BaseDB, body: Any, message: str) -> None:
    assert message in (await errors(await client.post(f"{ROOT}/items", json=body), 400))[0]
    assert db.count("people") == 0


async def test_update_answers_with_the_update(client: Client, db: BaseDB) -> None:
    db.put_many("people", [{"key": "u", "age": 32, "likes": ["anime"], "town": "x"}])
    # What deta-python and deta-javascript send: every section, empty ones included.
    update = {
        "set": {"age": 33},
        "increment": {},
        "append": {"likes": ["ramen"]},
        "prepend": {},
        "delete": ["town"],
    }
    body = await answer(await client.patch(item_url("u"), json=update), 200)
    assert body == {"key": "u", **update}
    assert db.get("people", "u") == {"key": "u", "age": 33, "likes": ["anime", "ramen"]}
    # deta-go's shape, with fields in its own order; missing sections answer as empty.
    body = await answer(await client.patch(item_url("u"), json={"increment": {"age": 1}}), 200)
    assert body == {
        "key": "u",
        "set": {},
        "increment": {"age": 1},
        "append": {},
        "prepend": {},
        "delete": [],
    }


@pytest.mark.parametrize(
    ("update", "status", "message"),
    [
        ({"set": {"a": 1}}, 404, "Key not found"),
        ({}, 400, "at least one"),
        ({"set": {"key": "other"}}, 400, "key of an item"),
        ({"set": {"age": 1}, "delete": ["age"]}, 400, "Conflicting"),
        ({"set": {"profile.age": 1}}, 400, '"profile" does not exist'),
        ({"increment": {"town": 1}}, 400, "not a number"),
    ],
)
async def test_bad_update(
    client: Client, db: BaseDB, update: Any, status: int, message: str
) -> None:
    db.put_many("people", [{"key": "u", "town": "x"}])
    key = "missing" if status == 404 else "u"
    assert message in (await errors(await client.patch(item_url(key), json=update), status))[0]
    assert db.get("people", "u") == {"key": "u", "town": "x"}


async def test_query_pages_with_last_omitted_at_the_end(client: Client, db: BaseDB) -> None:
    db.put_many("people", [{"key": f"k{i}", "n": i} for i in range(5)])
    first = await answer(await client.post(f"{ROOT}/query", json={"limit": 2}), 200)
    assert first == {
        "paging": {"size": 2, "last": "k1"},
        "items": [{"key": "k0", "n": 0}, {"key": "k1", "n": 1}],
    }
    second = await answer(await client.post(f"{ROOT}/query", json={"limit": 2, "last": "k1"}), 200)
    assert second["paging"] == {"size": 2, "last": "k3"}
    final = await answer(await client.post(f"{ROOT}/query", json={"limit": 2, "last": "k3"}), 200)
    assert final == {"paging": {"size": 1}, "items": [{"key": "k4", "n": 4}]}


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 1000, "last": None, "sort": "", "query": [{"n?gte": 3}]},  # deta-python
        {"query": [{"n?gte": 3}], "limit": 1000, "last": "", "sort": ""},  # deta-javascript
        {"query": [{"n?gte": 3}]},  # deta-go, with limit, last and sort omitted
        {"query": {"n?gte": 3}, "sort": "asc"},
    ],
)
async def test_query_accepts_what_each_sdk_sends(client: Client, db: BaseDB, body: Any) -> None:
    db.put_many("people", [{"key": f"k{i}", "n": i} for i in range(5)])
    result = await answer(await client.post(f"{ROOT}/query", json=body), 200)
    expected = [{"key": "k3", "n": 3}, {"key": "k4", "n": 4}]
    assert result == {"paging": {"size": 2}, "items": expected}


async def test_query_sorts_desc_and_takes_no_query(client: Client, db: BaseDB) -> None:
    db.put_many("people", [{"key": k} for k in ["b", "a", "c"]])
    body = {"query": None, "sort": "desc", "limit": 2}
    result = await answer(await client.post(f"{ROOT}/query", json=body), 200)
    assert result == {"paging": {"size": 2, "last": "b"}, "items": [{"key": "c"}, {"key": "b"}]}
    body = {"sort": "desc", "last": "b"}
    result = await answer(await client.post(f"{ROOT}/query", json=body), 200)
    assert result == {"paging": {"size": 1}, "items": [{"key": "a"}]}


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 0},
        {"limit": -3},
        {"limit": "10"},
        {"sort": "sideways"},
        {"last": 5},
        {"query": [{"n?between": 1}]},
        {"query": "n=1"},
        {"query": [{"key?contains": "a"}]},
    ],
)
async def test_bad_query_is_400(client: Client, body: Any) -> None:
    await errors(await client.post(f"{ROOT}/query", json=body), 400)


# The body is Deta's, to the byte (the SDKs show `errors[0]` and their tests compare it); what
# was wrong is in a header they ignore, as one line of printable ASCII.
BAD_QUERIES: list[tuple[Any, str]] = [
    ({"name?": "Bev"}, 'Invalid query operator \\"?\\" in \\"name?\\"'),
    ({"key?>": 12}, "keys are strings"),
    ({"age?r": [21]}, "needs a list of two numbers or two strings"),
    ([{"age": 27}, {"key?<=": "k2"}], "every OR'ed object must hold the same condition on key"),
    ("n=1", "A query must be a list of objects"),
    ({"caf\u00e9\n?x": 1}, "caf\\u00e9\\n?x"),  # escaped, never a second header line
]


@pytest.mark.parametrize(("query", "detail"), BAD_QUERIES, ids=[repr(c[0]) for c in BAD_QUERIES])
async def test_a_refused_query_answers_detas_body_exactly_and_the_detail_in_a_header(
    client: Client, query: Any, detail: str
) -> None:
    response = await client.post(f"{ROOT}/query", json={"query": query})
    assert response.status == 400 and response.content_type == "application/json"
    assert await response.read() == b'{"errors":["Bad query"]}'
    shown = response.headers["X-Space-Detail"]
    assert detail in shown and shown.isascii() and shown.isprintable()


@pytest.mark.parametrize("body", [{"limit": 0}, {"sort": "sideways"}, {"last": 5}])
async def test_other_query_fields_keep_their_own_words(client: Client, body: Any) -> None:
    response = await client.post(f"{ROOT}/query", json=body)
    assert (await errors(response, 400))[0] != "Bad query"
    assert "X-Space-Detail" not in response.headers


async def test_a_query_deta_took_is_still_answered(client: Client, db: BaseDB) -> None:
    db.put_many(
        "people", [{"key": "k1", "age": 27}, {"key": "k2", "age": 51}, {"key": "k3", "age": 43}]
    )
    query = [{"key?>=": "k1", "age?>": 40, "age?<": 50}, {"key?>=": "k1", "age?<": 40}]
    result = await answer(await client.post(f"{ROOT}/query", json={"query": query}), 200)
    assert [item["key"] for item in result["items"]] == ["k1", "k3"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/items", "PUT, POST"),
        ("DELETE", "/items", "PUT, POST"),
        ("PUT", "/items/k", "GET, PATCH, DELETE"),
        ("POST", "/items/k", "GET, PATCH, DELETE"),
        ("GET", "/query", "POST"),
        ("PUT", "/query", "POST"),
    ],
)
async def test_wrong_method_is_405_json(client: Client, method: str, path: str, allow: str) -> None:
    response = await client.request(method, ROOT + path, json={})
    await errors(response, 405)
    assert response.headers["Allow"] == allow


@pytest.mark.parametrize("path", ["", "/", "/item", "/items2", "/query/x", "/fetch"])
async def test_unknown_route_is_404_json(client: Client, path: str) -> None:
    await errors(await client.get(ROOT + path), 404)


async def test_expired_items_are_not_found(client: Client) -> None:
    items = [{"key": "old", "__expires": 1_000}, {"key": "new"}]
    await answer(await client.put(f"{ROOT}/items", json={"items": items}), 207)
    assert await errors(await client.get(item_url("old")), 404) == ["Key not found"]
    result = await answer(await client.post(f"{ROOT}/query", json={}), 200)
    assert result["items"] == [{"key": "new"}]


async def test_a_failure_inside_is_still_a_json_error(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    closed = BaseDB(tmp_path / "closed.sqlite3")
    closed.close()
    client = await aiohttp_client(_app(closed))
    assert "Internal error" in (await errors(await client.get(item_url("k")), 500))[0]


# --- bounded cost: the size of a query, and whose threads a call takes ---------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ([{"n": i} for i in range(26)], "at most 25 objects; this one has 26"),
        ([{"n": i} for i in range(5000)], "at most 25 objects; this one has 5000"),
        ({f"f{i}": 1 for i in range(26)}, "at most 25 conditions; object 0 has 26"),
        ([{"n": 1}, {f"f{i}": 1 for i in range(26)}], "object 1 has 26"),
    ],
)
async def test_a_query_over_the_size_limits_is_detas_bad_query(
    client: Client, db: BaseDB, query: Any, message: str
) -> None:
    db.put_many("people", [{"key": "k", "n": 1}])
    response = await client.post(f"{ROOT}/query", json={"query": query})
    assert await response.json() == {"errors": ["Bad query"]}
    assert message in response.headers["X-Space-Detail"]


async def test_a_query_at_the_size_limits_is_answered(client: Client, db: BaseDB) -> None:
    db.put_many("people", [{"key": f"k{i:02}", "n": i, "m": i % 3} for i in range(25)])
    wide = [{"n": i} for i in range(2, 27)]  # 25 objects
    result = await answer(await client.post(f"{ROOT}/query", json={"query": wide}), 200)
    assert [item["n"] for item in result["items"]] == list(range(2, 25))
    deep = {**{"m?ne": 2, "n?gte": 20}, **{f"f{i}?ne": 0 for i in range(23)}}  # 25 conditions
    result = await answer(await client.post(f"{ROOT}/query", json={"query": deep}), 200)
    assert [item["n"] for item in result["items"]] == [21, 22, 24]


async def test_base_calls_wait_on_their_own_thread_not_in_the_shared_pool(
    client: Client, db: BaseDB, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    """While one app's Base is held (as by a long scan), more calls to it than the event loop's
    default pool has threads leave that pool free (the login hashes passwords there), another
    app's Base answers, and the loop itself keeps serving."""
    loop = asyncio.get_running_loop()
    pool = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default pool
    other_db = BaseDB(tmp_path / "other.sqlite3")
    other = await aiohttp_client(_app(other_db))
    released = threading.Event()
    held = threading.Event()

    def hold() -> None:
        with db._lock:
            held.set()
            released.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        held.wait(5)
        waiting = [asyncio.ensure_future(client.get(item_url(f"k{i}"))) for i in range(pool + 2)]
        await asyncio.sleep(0.3)  # every call has reached the server and waits for the lock
        assert not any(task.done() for task in waiting)
        start = loop.time()
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 5) == "free"
        put = await other.put(f"{ROOT}/items", json={"items": [{"key": "o"}]})
        await answer(put, 207)
        assert loop.time() - start < 2
    finally:
        released.set()
        holder.join()
    for task in waiting:
        await errors(await task, 404)  # each answered once the lock was let go
    other_db.close()
