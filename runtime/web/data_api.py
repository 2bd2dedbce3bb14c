"""`/__space/api/data`: the data page as JSON for the owner's session."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from runtime.cloud.drive.names import given_type
from runtime.cloud.drive.store import LIST_LIMIT
from runtime.errors import NotFound
from runtime.models import Principal
from runtime.web.api import SettingsContext
from runtime.web.data_ops import (
    CHUNK,
    MAX_JSON_BYTES,
    AppStores,
    FormProblem,
    base_counts,
    check_base_name,
    delete_item,
    drive_counts,
    import_stream,
    parse_item,
    parse_limit,
    parse_query,
    read_capped,
    replace_item,
    report_json,
    reset_all,
    send_export,
    send_file,
)
from runtime.web.owner import owner_only

DATA_API = "/__space/api/data"
DEFAULT_LIMIT = 1000  # Deta's own default page of a query


def _param(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if value is None or value == "":
        raise FormProblem(f"{name} is missing", f"Send it as ?{name}=... (URL-encoded).")
    return value


class DataApi:
    """The JSON twin of the data page; every answer, errors included, is JSON."""

    def __init__(self, ctx: SettingsContext, stores: AppStores) -> None:
        self._ctx = ctx
        self._stores = stores

    def add_routes(self, app: web.Application) -> None:
        guard, r = owner_only(self._ctx, "an app's data"), app.router
        r.add_get(DATA_API, guard(self.overview))
        r.add_delete(DATA_API, guard(self.reset_all))
        r.add_get(f"{DATA_API}/export", guard(self.export))
        r.add_post(f"{DATA_API}/import", guard(self.import_))
        r.add_get(f"{DATA_API}/bases/{{name}}", guard(self.query))
        r.add_delete(f"{DATA_API}/bases/{{name}}", guard(self.reset_base))
        r.add_put(f"{DATA_API}/bases/{{name}}/items", guard(self.put_item))
        r.add_delete(f"{DATA_API}/bases/{{name}}/items", guard(self.delete_item))
        r.add_get(f"{DATA_API}/drives/{{name}}", guard(self.list_files))
        r.add_delete(f"{DATA_API}/drives/{{name}}", guard(self.reset_drive))
        r.add_get(f"{DATA_API}/drives/{{name}}/file", guard(self.download))
        r.add_post(f"{DATA_API}/drives/{{name}}/file", guard(self.upload))
        r.add_delete(f"{DATA_API}/drives/{{name}}/file", guard(self.delete_file))

    # --- the whole app ----------------------------------------------------------------------

    async def overview(self, request: web.Request, _: Principal) -> web.Response:
        return web.json_response(
            {"bases": await base_counts(self._stores), "drives": await drive_counts(self._stores)}
        )

    async def reset_all(self, request: web.Request, _: Principal) -> web.Response:
        await reset_all(self._stores)
        return web.Response(status=204)

    async def export(self, request: web.Request, _: Principal) -> web.StreamResponse:
        return await send_export(request, self._stores, self._ctx.app.name)

    async def import_(self, request: web.Request, _: Principal) -> web.Response:
        report = await import_stream(
            self._stores, request.content.iter_chunked(CHUNK), "the zip sent"
        )
        return web.json_response(report_json(report))

    # --- Bases ------------------------------------------------------------------------------

    async def query(self, request: web.Request, _: Principal) -> web.Response:
        base = check_base_name(request.match_info["name"])
        query = parse_query(request.query.get("query", ""))
        limit = parse_limit(request.query.get("limit"), DEFAULT_LIMIT)
        last = request.query.get("last") or None
        items, after = await self._stores.base(lambda db: db.query(base, query, limit, last))
        paging: dict[str, Any] = {"size": len(items)}
        if after is not None:
            paging["last"] = after  # absent on the last page, as Deta's query answered
        return web.json_response({"items": items, "paging": paging})

    async def reset_base(self, request: web.Request, _: Principal) -> web.Response:
        base = check_base_name(request.match_info["name"])
        await self._stores.base(lambda db: db.drop(base))
        return web.Response(status=204)

    async def put_item(self, request: web.Request, _: Principal) -> web.Response:
        base = check_base_name(request.match_info["name"])
        key = _param(request, "key")
        body = await read_capped(request.content.iter_chunked(CHUNK), MAX_JSON_BYTES, "The item")
        stored = await replace_item(self._stores, base, key, parse_item(body))
        return web.json_response(stored)

    async def delete_item(self, request: web.Request, _: Principal) -> web.Response:
        base = check_base_name(request.match_info["name"])
        key = _param(request, "key")
        if not await delete_item(self._stores, base, key):
            raise NotFound(f"The Base {base} has no item with the key {key}")
        return web.Response(status=204)

    # --- Drives -----------------------------------------------------------------------------

    async def list_files(self, request: web.Request, _: Principal) -> web.Response:
        drive = request.match_info["name"]
        limit = parse_limit(request.query.get("limit"), LIST_LIMIT, LIST_LIMIT)
        names, last = self._stores.drive().list(
            drive,
            prefix=request.query.get("prefix") or None,
            limit=limit,
            last=request.query.get("last") or None,
        )
        payload: dict[str, Any] = {"names": names}
        if last is not None:
            payload["paging"] = {"size": len(names), "last": last}
        return web.json_response(payload)

    async def reset_drive(self, request: web.Request, _: Principal) -> web.Response:
        drive = self._stores.drive()
        drive.drop(request.match_info["name"])
        await asyncio.to_thread(drive.remove_dropped)
        return web.Response(status=204)

    async def download(self, request: web.Request, _: Principal) -> web.StreamResponse:
        drive, name = request.match_info["name"], _param(request, "name")
        sent = await send_file(request, self._stores.drive(), drive, name)
        if sent is None:
            raise NotFound(f"The Drive {drive} has no file {name}")
        return sent

    async def upload(self, request: web.Request, _: Principal) -> web.Response:
        drive, name = request.match_info["name"], _param(request, "name")
        size = await self._stores.drive().put(
            drive,
            name,
            request.content.iter_chunked(CHUNK),
            given_type(request.headers.get("Content-Type")),
        )
        return web.json_response({"name": name, "size": size}, status=201)

    async def delete_file(self, request: web.Request, _: Principal) -> web.Response:
        drive, name = request.match_info["name"], _param(request, "name")
        store = self._stores.drive()
        if store.open(drive, name) is None:
            raise NotFound(f"The Drive {drive} has no file {name}")
        store.delete_many(drive, [name])
        return web.Response(status=204)
