"""Deta Base: the item calls of deta-python 1.x, sent to the Base HTTP API.

The request bodies and the reading of answers are plain functions, shared with the async client.
"""

from __future__ import annotations

import datetime
import os
from typing import Any
from urllib.parse import quote

from .service import JSON_MIME, _Service

# Module attributes, read when a Base is made, so they can be changed before.
BASE_SERVICE_TIMEOUT = 300
BASE_TTL_ATTTRIBUTE = "__expires"  # deta-python's spelling, kept for code that imports it
DEFAULT_HOST = "database.deta.sh"
MAX_PUT_ITEMS = 25


class FetchResponse:
    """One page of a query: `items`, `count` (items on this page), `last` (None on the last)."""

    def __init__(self, count: int = 0, last: str | None = None, items: list | None = None) -> None:
        self._count = count
        self._last = last
        self._items = items if items is not None else []

    @property
    def count(self) -> int:
        return self._count

    @property
    def last(self) -> str | None:
        return self._last

    @property
    def items(self) -> list:
        return self._items

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FetchResponse):
            return NotImplemented
        return (self.count, self.last, self.items) == (other.count, other.last, other.items)

    def __repr__(self) -> str:
        return f"FetchResponse(count={self.count}, last={self.last!r}, items=[...])"


class Util:
    """The update operations: `base.update({"n": base.util.increment()}, key)`."""

    class Trim:
        pass

    class Increment:
        def __init__(self, value: int | float | None = None) -> None:
            # deta-python turned any falsy value into 1; an explicit 0 adds 0 here.
            self.val = 1 if value is None else value

    class Append:
        def __init__(self, value: Any) -> None:
            self.val = value if isinstance(value, list) else [value]

    class Prepend:
        def __init__(self, value: Any) -> None:
            self.val = value if isinstance(value, list) else [value]

    def trim(self) -> Util.Trim:
        return self.Trim()

    def increment(self, value: int | float | None = None) -> Util.Increment:
        return self.Increment(value)

    def append(self, value: Any) -> Util.Append:
        return self.Append(value)

    def prepend(self, value: Any) -> Util.Prepend:
        return self.Prepend(value)


def insert_ttl(
    item: dict,
    ttl_attribute: str = BASE_TTL_ATTTRIBUTE,
    expire_in: int | float | None = None,
    expire_at: int | float | datetime.datetime | None = None,
) -> None:
    """Set `__expires` (Unix seconds) on `item` from `expire_in` or `expire_at`, as deta-python."""
    # Falsy means "not given", as in deta-python: `expire_in=0` stores an item that never expires.
    if expire_in and expire_at:
        raise ValueError("both expire_in and expire_at provided")
    if not expire_in and not expire_at:
        return
    if expire_in:
        expire_at = datetime.datetime.now() + datetime.timedelta(seconds=expire_in)
    if isinstance(expire_at, datetime.datetime):
        expire_at = expire_at.replace(microsecond=0).timestamp()
    if not isinstance(expire_at, (int, float)) or isinstance(expire_at, bool):
        raise TypeError("expire_at should one one of int, float or datetime")
    item[ttl_attribute] = int(expire_at)


def _item(data: Any, key: str | None, expire_in: Any, expire_at: Any) -> dict:
    item = dict(data) if isinstance(data, dict) else {"value": data}  # the caller's stays as is
    if key:
        item["key"] = key
    insert_ttl(item, expire_in=expire_in, expire_at=expire_at)
    return item


def _items_body(items: list, expire_in: Any, expire_at: Any) -> dict:
    if len(items) > MAX_PUT_ITEMS:
        raise AssertionError(f"We can't put more than {MAX_PUT_ITEMS} items at a time.")
    return {"items": [_item(i, None, expire_in, expire_at) for i in items]}


def _key_path(key: str) -> str:
    if key == "":
        raise ValueError("Key is empty")
    return "/items/" + quote(key, safe="")  # `/` in a key travels as %2F


def _query_body(query: Any, limit: int, last: str | None, desc: bool) -> dict:
    body: dict[str, Any] = {
        "limit": limit,
        "last": last if not isinstance(last, bool) else None,
        "sort": "desc" if desc else "",
    }
    if query:
        body["query"] = query if isinstance(query, list) else [query]
    return body


def _fetch_response(answer: Any) -> FetchResponse:
    answer = answer or {}
    paging = answer.get("paging") or {}
    return FetchResponse(paging.get("size", 0), paging.get("last"), answer.get("items") or [])


def _update_body(updates: dict | None, expire_in: Any, expire_at: Any) -> dict:
    body: dict[str, Any] = {"set": {}, "increment": {}, "append": {}, "prepend": {}, "delete": []}
    for attr, value in (updates or {}).items():
        if isinstance(value, Util.Trim):
            body["delete"].append(attr)
        elif isinstance(value, Util.Increment):
            body["increment"][attr] = value.val
        elif isinstance(value, Util.Append):
            body["append"][attr] = value.val
        elif isinstance(value, Util.Prepend):
            body["prepend"][attr] = value.val
        else:
            body["set"][attr] = value
    insert_ttl(body["set"], expire_in=expire_in, expire_at=expire_at)
    return body


def _first_put(status: int, answer: Any) -> dict | None:
    if status == 207 and isinstance(answer, dict) and "processed" in answer:
        items = answer["processed"].get("items") or []
        return items[0] if items else None
    return None


def _base_host(host: str | None) -> str:
    return host or os.environ.get("DETA_BASE_HOST") or DEFAULT_HOST


class _Base(_Service):
    """A Deta Base; made by `Deta().Base(name)` or `deta.Base(name)`."""

    util = Util()

    def __init__(
        self, name: str, project_key: str, project_id: str, host: str | None = None
    ) -> None:
        if not name:
            raise AssertionError("No Base name provided")
        super().__init__(project_key, project_id, _base_host(host), name, BASE_SERVICE_TIMEOUT)

    def _json(self, path: str, method: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self._request(path, method, body, content_type=JSON_MIME, **kw)

    def get(self, key: str) -> dict | None:
        """The item with this key, or None."""
        _, answer = self._request(_key_path(key), "GET")
        return answer or None

    def delete(self, key: str) -> None:
        """Delete the item with this key; None whether or not it existed."""
        self._request(_key_path(key), "DELETE")

    def insert(
        self,
        data: Any,
        key: str | None = None,
        *,
        expire_in: int | float | None = None,
        expire_at: int | float | datetime.datetime | None = None,
    ) -> dict:
        """Store a new item and return it; a key already in use raises DetaError (409)."""
        item = _item(data, key, expire_in, expire_at)
        details = {409: f"Item with key '{item.get('key')}' already exists"}
        _, answer = self._json("/items", "POST", {"item": item}, details=details)
        return answer  # type: ignore[no-any-return]

    def put(
        self,
        data: Any,
        key: str | None = None,
        *,
        expire_in: int | float | None = None,
        expire_at: int | float | datetime.datetime | None = None,
    ) -> dict | None:
        """Store an item, replacing one with the same key; return it as stored."""
        item = _item(data, key, expire_in, expire_at)
        return _first_put(*self._json("/items", "PUT", {"items": [item]}))

    def put_many(
        self,
        items: list,
        *,
        expire_in: int | float | None = None,
        expire_at: int | float | datetime.datetime | None = None,
    ) -> dict:
        """Store up to 25 items; return `{"processed": {"items": [...]}, "failed": ...}`."""
        _, answer = self._json("/items", "PUT", _items_body(items, expire_in, expire_at))
        return answer  # type: ignore[no-any-return]

    def fetch(
        self,
        query: dict | list | None = None,
        *,
        limit: int = 1000,
        last: str | None = None,
        desc: bool = False,
    ) -> FetchResponse:
        """One page of the items matching `query` (a dict, or a list of dicts for OR)."""
        _, answer = self._json("/query", "POST", _query_body(query, limit, last, desc))
        return _fetch_response(answer)

    def update(
        self,
        updates: dict,
        key: str,
        *,
        expire_in: int | float | None = None,
        expire_at: int | float | datetime.datetime | None = None,
    ) -> None:
        """Change the item with this key; a missing key raises DetaError (404)."""
        body = _update_body(updates, expire_in, expire_at)
        details = {404: f"Key '{key}' not found"}
        self._json(_key_path(key), "PATCH", body, details=details, none_on_404=False)
