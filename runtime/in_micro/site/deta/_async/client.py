"""Deta Base for asyncio (`AsyncBase`), over aiohttp when the micro has it, else in threads.

deta-python's AsyncBase needed aiohttp (`deta[async]`) and raised its ClientResponseError; with
aiohttp here it does the same. Without it the sync client runs in the default executor and
raises DetaError, so an app that never installed aiohttp still runs.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
from typing import Any

from ..base import (
    BASE_SERVICE_TIMEOUT,
    FetchResponse,
    Util,
    _Base,
    _fetch_response,
    _first_put,
    _item,
    _items_body,
    _key_path,
    _query_body,
    _update_body,
)
from ..service import JSON_MIME, OK_STATUSES, _encode, _error_messages, _space_detail
from ..utils import _get_project_key_id


def AsyncBase(name: str) -> _AsyncBase:
    """An AsyncBase of the project whose key is in DETA_PROJECT_KEY."""
    project_key, project_id = _get_project_key_id()
    return _AsyncBase(name, project_key, project_id)


def _aiohttp() -> Any:
    """The aiohttp module, or None: imported on first use, so importing deta never needs it."""
    try:
        import aiohttp
    except ImportError:
        return None
    return aiohttp


class _AsyncBase:
    """The calls of a Base, as coroutines; `await close()` when done."""

    util = Util()

    def __init__(
        self, name: str, project_key: str, project_id: str, host: str | None = None
    ) -> None:
        self._base = _Base(name, project_key, project_id, host)  # URLs, and the thread fallback
        self._session: Any = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    async def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _session_here(self, aiohttp: Any) -> Any:
        # Made on first use, in the loop that uses it: a Base made at import time (outside any
        # loop, or before uvicorn starts its own) must not hold a session bound to another loop.
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            connector = aiohttp.TCPConnector(ssl=ssl.create_default_context())
            timeout = aiohttp.ClientTimeout(total=BASE_SERVICE_TIMEOUT)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
            self._session_loop = loop
        return self._session

    async def _call(
        self,
        path: str,
        method: str,
        body: Any = None,
        *,
        details: dict[int, str] | None = None,
        none_on_404: bool = True,
    ) -> tuple[int, Any]:
        content_type = JSON_MIME if body is not None else None
        aiohttp = _aiohttp()
        if aiohttp is None:
            call = functools.partial(
                self._base._request,
                path,
                method,
                body,
                content_type=content_type,
                details=details,
                none_on_404=none_on_404,
            )
            return await asyncio.get_running_loop().run_in_executor(None, call)  # type: ignore[no-any-return]
        base = self._base
        async with self._session_here(aiohttp).request(
            method,
            f"https://{base.host}{base.base_path}{path}",
            data=_encode(body, content_type),
            headers=base._headers(content_type),
        ) as response:
            payload = await response.read()
            status = response.status
            if status in OK_STATUSES:
                if JSON_MIME in response.headers.get("Content-Type", ""):
                    return status, json.loads(payload) if payload else None
                return status, payload
            if status == 404 and none_on_404:
                return status, None
            message = (details or {}).get(status) or "; ".join(_error_messages(payload))
            why = _space_detail(response.headers)
            if why and why not in message:
                message = f"{message}: {why}" if message else why
            raise aiohttp.ClientResponseError(
                response.request_info,
                response.history,
                status=status,
                message=message or response.reason or "",
                headers=response.headers,
            )

    async def get(self, key: str) -> dict | None:
        """The item with this key, or None."""
        _, answer = await self._call(_key_path(key), "GET")
        return answer or None

    async def delete(self, key: str) -> None:
        """Delete the item with this key; None whether or not it existed."""
        await self._call(_key_path(key), "DELETE")

    async def insert(
        self, data: Any, key: str | None = None, *, expire_in: Any = None, expire_at: Any = None
    ) -> dict:
        """Store a new item and return it; a key already in use raises (409)."""
        item = _item(data, key, expire_in, expire_at)
        details = {409: f"Item with key '{item.get('key')}' already exists"}
        _, answer = await self._call("/items", "POST", {"item": item}, details=details)
        return answer  # type: ignore[no-any-return]

    async def put(
        self, data: Any, key: str | None = None, *, expire_in: Any = None, expire_at: Any = None
    ) -> dict | None:
        """Store an item, replacing one with the same key; return it as stored."""
        item = _item(data, key, expire_in, expire_at)
        return _first_put(*await self._call("/items", "PUT", {"items": [item]}))

    async def put_many(self, items: list, *, expire_in: Any = None, expire_at: Any = None) -> dict:
        """Store up to 25 items; return the answer with "processed" and "failed"."""
        body = _items_body(items, expire_in, expire_at)
        _, answer = await self._call("/items", "PUT", body)
        return answer  # type: ignore[no-any-return]

    async def fetch(
        self,
        query: dict | list | None = None,
        *,
        limit: int = 1000,
        last: str | None = None,
        desc: bool = False,
    ) -> FetchResponse:
        """One page of the items matching `query`."""
        _, answer = await self._call("/query", "POST", _query_body(query, limit, last, desc))
        return _fetch_response(answer)

    async def update(
        self, updates: dict, key: str, *, expire_in: Any = None, expire_at: Any = None
    ) -> None:
        """Change the item with this key; a missing key raises (404)."""
        body = _update_body(updates, expire_in, expire_at)
        details = {404: f"Key '{key}' not found"}
        await self._call(_key_path(key), "PATCH", body, details=details, none_on_404=False)
