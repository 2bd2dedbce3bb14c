"""The Deta Base HTTP API (`/v1/{project_id}/{base}/...`) over a BaseDB, as the Deta SDKs use it.

The caller authenticates, picks the app's BaseDB and passes the Base name and the raw rest of the
path. Every answer is JSON, errors included (`{"errors": [...]}`): the npm SDK reads
`errors[0]` and shows "Something went wrong" when a body does not parse as JSON. A refused query
answers Deta's `{"errors": ["Bad query"]}` exactly, with the reason in `X-Space-Detail`.

A single-item call runs at once on the event loop when nothing holds the app's database
(`BaseDB.now`: tens of microseconds, less than a hop to a thread and back); every other BaseDB
call, and one that would wait, runs on the database's own thread (`BaseDB.worker`), never in the
loop's shared pool. A query page may scan for up to `BASE_PAGE_SECONDS`, and a write may wait up
to 5 s for another process holding the file (a CLI command): the event loop never waits on
SQLite or on an app's lock, and one app's backlog never takes the threads other apps and the
login's password hashing use.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote

from aiohttp import web

from runtime.cloud.base.errors import BaseError
from runtime.cloud.base.query import check_query_size
from runtime.cloud.base.store import (
    MAX_ITEM_BYTES,
    NOT_NOW,
    BaseDB,
    Prepared,
    item_size,
    prepare_item,
)
from runtime.cloud.detail import detail_headers

T = TypeVar("T")

log = logging.getLogger(__name__)

MAX_ITEMS_PER_PUT = 25
MAX_REQUEST_BYTES = 16 * 1024 * 1024
DEFAULT_LIMIT = 1000
UPDATE_OPS = ("set", "increment", "append", "prepend")

_ALLOWED = {"/items": "PUT, POST", "/items/": "GET, PATCH, DELETE", "/query": "POST"}


async def in_worker(db: BaseDB, call: Callable[..., T], *args: Any) -> T:
    """`call(*args)` on the database's own thread."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(db.worker, functools.partial(call, *args))


async def single(db: BaseDB, name: str, *args: Any) -> Any:
    """A single-item call: at once when nothing holds the database (`BaseDB.now`), else on its
    own thread, where it may wait."""
    result = db.now(name, *args)
    if result is NOT_NOW:
        result = await in_worker(db, getattr(db, name), *args)
    return result


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


def _json_text(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json")


# ASCII-only: a lone surrogate a client stored must not break encoding the answer. Made once:
# `json.dumps` and `json.loads` with options make a new encoder or decoder on every call.
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _errors(status: int, *messages: str, headers: dict[str, str] | None = None) -> web.Response:
    response = _json({"errors": list(messages)}, status)
    if headers:
        response.headers.update(headers)
    return response


async def handle_base(request: web.Request, db: BaseDB, base: str, rest: str) -> web.Response:
    """Answer one Base API request; `rest` is the raw path after `/v1/{project_id}/{base}`."""
    try:
        return await _route(request, db, base, rest.split("?", 1)[0])
    except BaseError as error:
        # Deta's words in the body; space-dev's detail (which rule a query broke) in a header.
        return _errors(error.status, *error.messages, headers=detail_headers(error.detail))
    except Exception:  # a bug or a broken file: still JSON, so the SDKs report the message
        log.exception("Base API request failed: %s %s", request.method, request.path)
        return _errors(500, "Internal error in the local Base emulator; see the runtime's log")


async def _route(request: web.Request, db: BaseDB, base: str, rest: str) -> web.Response:
    method = request.method
    if rest == "/items":
        if method == "PUT":
            return await _put(request, db, base)
        if method == "POST":
            return await _insert(request, db, base)
        return _not_allowed("/items")
    if rest.startswith("/items/"):
        key = _decode_key(rest[len("/items/") :])
        if method == "GET":
            return await _get(db, base, key)
        if method == "DELETE":
            await single(db, "delete", base, key)
            return _json({"key": key})
        if method == "PATCH":
            return await _update(request, db, base, key)
        return _not_allowed("/items/")
    if rest == "/query":
        if method == "POST":
            return await _query(request, db, base)
        return _not_allowed("/query")
    return _errors(404, f"No such Base API route: {rest or '/'}")


def _not_allowed(route: str) -> web.Response:
    allowed = _ALLOWED[route]
    return _errors(405, f"Method not allowed here; use {allowed}", headers={"Allow": allowed})


def _decode_key(raw: str) -> str:
    # The SDKs percent-encode keys (`/` as %2F); a raw `/` left in is kept as part of the key.
    try:
        key = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise BaseError(400, "The key in the path is not valid percent-encoded UTF-8") from None
    if not key:
        raise BaseError(400, "Key is empty")
    return key


async def _body(request: web.Request) -> dict[str, Any]:
    """The JSON object in the body, read up to Deta's 16 MB request limit."""
    length = request.content_length
    if length is not None and length > MAX_REQUEST_BYTES:
        raise BaseError(400, "The request body exceeds 16 MB")
    if length is not None and request.can_read_body:
        # Within the limit by its length, which aiohttp holds the body to: in one read, and
        # without a wait when it came with the head, as a small one does.
        content = request.content
        raw = content.read_nowait() if content.is_eof() else await content.read()
    elif request.can_read_body:
        # Read the stream ourselves: request.read() would apply the app's client_max_size.
        chunks, size = [], 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > MAX_REQUEST_BYTES:
                raise BaseError(400, "The request body exceeds 16 MB")
            chunks.append(chunk)
        raw = b"".join(chunks)
    else:
        raw = await request.read()  # empty, or already read (and kept) by an earlier layer
    try:
        # As `json.loads` reads bytes (UTF-8, -16 or -32, told apart by their first bytes).
        body = _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, RecursionError):
        raise BaseError(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BaseError(400, "The request body must be a JSON object")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _check_item(item: Any, where: str) -> Prepared:
    if not isinstance(item, dict):
        raise BaseError(400, f"{where} must be a JSON object")
    prepared = prepare_item(item)
    # The stored text (ASCII) is never shorter than the UTF-8 measure: exact only when it must.
    if len(prepared.text) > MAX_ITEM_BYTES and item_size(item) > MAX_ITEM_BYTES:
        raise BaseError(400, f"{where} exceeds 400 KB")
    return prepared


async def _put(request: web.Request, db: BaseDB, base: str) -> web.Response:
    items = (await _body(request)).get("items")
    if not isinstance(items, list):
        raise BaseError(400, '"items" must be a list of items')
    if len(items) > MAX_ITEMS_PER_PUT:
        raise BaseError(400, f"A request may put at most {MAX_ITEMS_PER_PUT} items")
    checked = [_check_item(item, f"items[{i}]") for i, item in enumerate(items)]
    if len({entry.key for entry in checked}) != len(checked):
        raise BaseError(400, "Two items in one request have the same key")
    await single(db, "put_prepared", base, checked)
    # All or none: SQLite has no partial failures to report, so "failed" is always empty. The
    # items are answered in the text they were stored as.
    stored = ",".join(entry.text for entry in checked)
    return _json_text(f'{{"processed":{{"items":[{stored}]}},"failed":{{"items":[]}}}}', 207)


async def _insert(request: web.Request, db: BaseDB, base: str) -> web.Response:
    prepared = _check_item((await _body(request)).get("item"), '"item"')
    await single(db, "insert_prepared", base, prepared)
    return _json_text(prepared.text, 201)


async def _get(db: BaseDB, base: str, key: str) -> web.Response:
    text = await single(db, "get_text", base, key)
    if text is None:
        return _errors(404, "Key not found")
    return _json_text(text)  # as stored: JSON already


async def _update(request: web.Request, db: BaseDB, base: str, key: str) -> web.Response:
    updates = await _body(request)
    await single(db, "update", base, key, updates)
    # Deta answered with the key and the update as sent; the SDKs only look at the status.
    answer: dict[str, Any] = {"key": key}
    for op in UPDATE_OPS:
        answer[op] = updates.get(op) or {}
    answer["delete"] = updates.get("delete") or []
    return _json(answer)


async def _query(request: web.Request, db: BaseDB, base: str) -> web.Response:
    body = await _body(request)
    limit = body.get("limit")
    sort = body.get("sort")
    check_query_size(body.get("query"))  # at once, even while the app's thread is busy
    # The SDKs send `"sort": ""` and `"last": ""` or null for the defaults.
    items, last = await in_worker(
        db,
        db.query,
        base,
        body.get("query"),
        DEFAULT_LIMIT if limit is None else limit,
        body.get("last") or None,
        sort or "asc",
    )
    paging: dict[str, Any] = {"size": len(items)}
    if last is not None:
        paging["last"] = last  # omitted, not null, on the last page: the SDKs test for absence
    return _json({"paging": paging, "items": items})
