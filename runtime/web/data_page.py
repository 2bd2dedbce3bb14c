"""The owner's data page of one app: each Base's items with a query box, each
Drive's files, export, import and reset. Plain forms; every POST answers 303 to a page that
shows what happened, so a reload never sends a form again."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web

from runtime.cloud.base.errors import BaseError
from runtime.cloud.base.store import BaseDB
from runtime.cloud.data import AppData
from runtime.cloud.drive.names import given_type
from runtime.errors import SpaceDevError
from runtime.models import Principal
from runtime.web.api import SettingsContext
from runtime.web.data_api import DataApi
from runtime.web.data_ops import (
    AppStores,
    FormProblem,
    base_counts,
    check_base_name,
    delete_item,
    drive_counts,
    import_stream,
    parse_item,
    parse_json,
    parse_query,
    part_chunks,
    read_capped,
    read_form,
    replace_item,
    reset_all,
    send_export,
    send_file,
    set_field,
)
from runtime.web.data_table import cell, columns, moment, previewable
from runtime.web.error_answers import problems
from runtime.web.owner import owner_only
from runtime.web.pages import page, problem

SETTINGS_PATH = "/__space/settings"
DATA_PATH = f"{SETTINGS_PATH}/data"
STATIC_PREFIX = "/__space/static"
STATIC_DIR = Path(__file__).parent / "static"
PAGE_SIZE = 100  # items or files a page, as Deta's own listings gave
PREVIEW_BYTES = 64 * 1024  # of a text file, shown on its preview page
FLASH_KEPT = 64


def _q(value: str) -> str:
    return quote(value, safe="", errors="surrogatepass")


def _address(path: str, **params: str) -> str:
    query = "&".join(f"{k}={_q(v)}" for k, v in params.items() if v)
    return f"{path}?{query}" if query else path


def base_path(name: str) -> str:
    return f"{DATA_PATH}/base/{_q(name)}"


def drive_path(name: str) -> str:
    return f"{DATA_PATH}/drive/{_q(name)}"


def shown(text: str) -> str:
    """Text safe to put on a page: a lone surrogate a client stored is shown as an escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def pretty(item: Any) -> str:
    text = json.dumps(item, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escaped, so the JSON still round-trips
        text = json.dumps(item, indent=2)
    return text


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    for unit in ("KiB", "MiB", "GiB"):
        size_f = size / 1024
        if size_f < 1024 or unit == "GiB":
            return f"{size_f:.1f} {unit}"
        size = int(size_f)
    return f"{size} B"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class _Flash:
    """What a form's redirect shows, kept here under a random id: a crafted link cannot put
    words on the page, and a reload shows the same result again."""

    def __init__(self) -> None:
        self._kept: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    def put(self, where: str, **what: Any) -> str:
        flash_id = secrets.token_urlsafe(12)
        self._kept[flash_id] = (unquote(where), what)
        while len(self._kept) > FLASH_KEPT:
            self._kept.popitem(last=False)
        return flash_id

    def get(self, request: web.Request) -> dict[str, Any]:
        where, what = self._kept.get(request.query.get("flash", ""), ("", {}))
        return what if where == request.path else {}


class DataPage:
    """`/__space/settings/data` and its forms, and the JSON API beside them."""

    def __init__(self, ctx: SettingsContext, data: Callable[[], AppData]) -> None:
        self._ctx = ctx
        self._stores = AppStores(data)
        self._flash = _Flash()

    def add_routes(self, app: web.Application) -> None:
        guard, r = owner_only(self._ctx, "an app's data", DATA_PATH), app.router
        r.add_get(DATA_PATH, guard(self.show))
        r.add_get(f"{DATA_PATH}/open", guard(self.open_named))
        r.add_get(f"{DATA_PATH}/export", guard(self.export))
        r.add_post(f"{DATA_PATH}/import", guard(self.import_))
        r.add_post(f"{DATA_PATH}/reset", guard(self.reset_all))
        r.add_get(f"{DATA_PATH}/base/{{name}}", guard(self.show_base))
        r.add_post(f"{DATA_PATH}/base/{{name}}/reset", guard(self.reset_base))
        r.add_post(f"{DATA_PATH}/base/{{name}}/items", guard(self.add_item))
        r.add_post(f"{DATA_PATH}/base/{{name}}/item", guard(self.save_item))
        r.add_post(f"{DATA_PATH}/base/{{name}}/item/delete", guard(self.delete_item))
        r.add_get(f"{DATA_PATH}/drive/{{name}}", guard(self.show_drive))
        r.add_post(f"{DATA_PATH}/drive/{{name}}/reset", guard(self.reset_drive))
        r.add_post(f"{DATA_PATH}/drive/{{name}}/files", guard(self.upload))
        r.add_get(f"{DATA_PATH}/drive/{{name}}/file", guard(self.download))
        r.add_get(f"{DATA_PATH}/drive/{{name}}/preview", guard(self.preview))
        r.add_get(f"{DATA_PATH}/base/{{name}}/item", guard(self.show_item))
        r.add_post(f"{DATA_PATH}/base/{{name}}/field", guard(self.save_field))
        r.add_post(f"{DATA_PATH}/drive/{{name}}/file/delete", guard(self.delete_file))
        DataApi(self._ctx, self._stores).add_routes(app)
        # The pages' stylesheet (base.html links it), unless another part already serves it.
        if not any(getattr(x, "canonical", None) == STATIC_PREFIX for x in r.resources()):
            r.add_static(STATIC_PREFIX, STATIC_DIR)

    def _render(
        self,
        request: web.Request,
        principal: Principal,
        view: str,
        *,
        status: int = 200,
        **context: Any,
    ) -> web.Response:
        flash = self._flash.get(request)
        error = context.pop("error", "") or flash.get("error", "")
        at = context.pop("at", "") or flash.get("at", "") or "app"
        return page(
            "data.html",
            status=status,
            title=context.pop("title"),
            view=view,
            result_at=at,
            app_name=self._ctx.app.name,
            user=principal.user or "",
            data_path=DATA_PATH,
            settings_path=SETTINGS_PATH,
            notice=flash.get("notice", ""),
            error=error,
            lines=flash.get("lines", []),
            fields_sent=flash.get("fields", {}),
            page_size=PAGE_SIZE,
            preview_kib=PREVIEW_BYTES // 1024,
            **context,
        )

    def _back(self, path: str, at: str = "", **what: Any) -> web.HTTPSeeOther:
        """303 to one of our pages (a path we built), with what to show there: in the section
        `at` (the form's own), scrolled to."""
        target, _, query = path.partition("?")
        flash = self._flash.put(target, at=at or "app", **what)
        joined = f"{path}{'&' if query else '?'}flash={flash}"
        return web.HTTPSeeOther(f"{joined}#result")

    # --- the overview -----------------------------------------------------------------------

    async def show(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        bases = await base_counts(self._stores)
        drives = await drive_counts(self._stores)
        for row in bases:
            row.update(
                url=base_path(row["name"]),
                shown=shown(row["name"]),
                size_text=size_text(row["bytes"]),
            )
        for row in drives:
            row.update(url=drive_path(row["name"]), size_text=size_text(row["bytes"]))
        return self._render(
            request,
            principal,
            "overview",
            title=f"{self._ctx.app.name} data",
            bases=bases,
            drives=drives,
        )

    async def open_named(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        base, drive = request.query.get("base", ""), request.query.get("drive", "")
        if base.strip():
            raise web.HTTPSeeOther(base_path(base))
        if drive.strip():
            raise web.HTTPSeeOther(drive_path(drive))
        raise self._back(
            DATA_PATH,
            "drives" if "drive" in request.query else "bases",
            error="Type a name to open a Base or a Drive.",
        )

    async def export(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        return await send_export(request, self._stores, self._ctx.app.name)

    async def import_(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        filename = ""
        try:
            if request.content_type != "multipart/form-data":
                raise FormProblem("Choose a zip file to import")
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if isinstance(part, BodyPartReader) and part.name == "file":
                    if not part.filename:
                        raise FormProblem("Choose a zip file to import")
                    filename = shown(part.filename)
                    report = await import_stream(self._stores, part_chunks(part), filename)
                    raise self._back(
                        DATA_PATH,
                        "transfer",
                        notice=f"Imported {shown(part.filename)}:",
                        lines=report.lines(),
                    )
            raise FormProblem("Choose a zip file to import")
        except SpaceDevError as err:
            # The zip was kept in a temporary file while read: the owner knows it by the name
            # they chose, so the message names that, never where it was kept.
            says = " ".join(problems(err))
            if filename and filename not in says:
                says = f"{filename} was not imported: {says}"
            raise self._back(DATA_PATH, "transfer", error=says) from None

    async def reset_all(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        form = await read_form(request)
        if form.get("confirm") != "yes":
            raise self._back(
                DATA_PATH,
                "reset",
                error="Nothing was deleted: tick the box to "
                "confirm that every Base and Drive of the app goes.",
            )
        await reset_all(self._stores)
        raise self._back(DATA_PATH, notice="Every Base and Drive of the app is deleted.")

    # --- one Base ---------------------------------------------------------------------------

    async def show_base(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        name = request.match_info["name"]
        text, last = request.query.get("query", ""), request.query.get("last", "")
        sort = "desc" if request.query.get("sort") == "desc" else "asc"
        view = {"query": text, "sort": "desc" if sort == "desc" else ""}
        context: dict[str, Any] = {
            "title": f"Base {shown(name)}",
            "name": shown(name),
            "url": base_path(name),
            "query": text,
            "last": last,
            "sort": sort,
            "rows": [],
            "columns": [],
            "more_fields": False,
            "next_url": "",
            "count": 0,
            "bytes_text": "",
            "first_url": _address(base_path(name), **view),
            "sort_url": _address(
                base_path(name), query=text, sort="" if sort == "desc" else "desc"
            ),
        }
        try:
            check_base_name(name)
            count, size, names = await self._stores.base(
                lambda db: (db.count(name), db.size(name), db.names())
            )
            context.update(count=count, bytes_text=size_text(size))
            if name not in names and not self._flash.get(request):
                # A typo, or a Base that is yet to be made (its first item makes it); not
                # after a form emptied it, whose result is shown instead.
                known = ", ".join(shown(n) for n in names) or "none yet"
                return self._render(
                    request,
                    principal,
                    "base",
                    status=404,
                    query_error=True,
                    missing=True,
                    error=f"No such Base: {shown(name)}. The Bases are: {known}. "
                    "Adding an item below makes this one.",
                    at="items",
                    **context,
                )
            query = parse_query(text)
            items, after = await self._stores.base(
                lambda db: db.query(name, query, PAGE_SIZE, last or None, sort)
            )
        except (SpaceDevError, BaseError) as err:
            return self._render(
                request,
                principal,
                "base",
                status=400,
                query_error=True,
                missing=False,
                error=" ".join(problems(err)),
                at="query",
                **context,
            )
        fields, more = columns(items)
        back = {"query": text, "last": last, "sort": view["sort"]}
        context["rows"] = [
            {
                "key": shown(str(item["key"])),
                "url": _address(f"{base_path(name)}/item", key=str(item["key"]), **back),
                "delete_url": _address(f"{base_path(name)}/item/delete", key=str(item["key"])),
                "cells": [{"field": f, **cell(item, f)} for f in fields],
            }
            for item in items
        ]
        context.update(columns=[shown(f) for f in fields], more_fields=more)
        if after is not None:
            context["next_url"] = _address(
                base_path(name), query=text, last=after, sort=view["sort"]
            )
        return self._render(request, principal, "base", query_error=False, missing=False, **context)

    async def show_item(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        """One item: its fields, each editable on its own, and the whole item as JSON."""
        name, key = request.match_info["name"], request.query.get("key", "")
        back = {f: request.query.get(f, "") for f in ("query", "last", "sort")}
        table = _address(base_path(name), **back)
        item = await self._stores.base(lambda db: db.get(name, key)) if key else None
        context: dict[str, Any] = {
            "title": f"Item {shown(key)} of Base {shown(name)}",
            "name": shown(name),
            "url": base_path(name),
            "key": shown(key),
            "table_url": table,
            "back": back,
            "item_url": _address(f"{base_path(name)}/item", key=key, **back),
            "field_url": _address(f"{base_path(name)}/field", key=key, **back),
            "delete_url": _address(f"{base_path(name)}/item/delete", key=key),
            "fields": [],
            "json": "",
        }
        if item is None:
            return self._render(
                request,
                principal,
                "item",
                status=404,
                at="item",
                error=f"The Base {shown(name)} has no item with the key "
                f"{shown(key) or '(none given)'}.",
                **context,
            )
        context["fields"] = [
            {"name": shown(f), "raw": f, **cell(item, f)} for f in item if f != "key"
        ]
        context["json"] = pretty(item)
        return self._render(request, principal, "item", **context)

    async def save_field(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        """One cell: a field of an item set to the JSON value typed (a new field, too)."""
        name, key = request.match_info["name"], request.query.get("key", "")
        back = {f: request.query.get(f, "") for f in ("query", "last", "sort")}
        here = _address(f"{base_path(name)}/item", key=key, **back)
        form = await read_form(request)
        field, text = form.get("field", "").strip(), form.get("value", "")
        try:
            if not key:
                raise FormProblem("Which item? The address has no ?key=")
            value = parse_json(text, f"The value of {shown(field) or 'the field'}")
            if not await set_field(self._stores, name, key, field, value):
                raise FormProblem(f"The Base {shown(name)} has no item {shown(key)} any more")
        except (SpaceDevError, BaseError) as err:
            raise self._back(
                here,
                "fields",
                error=f"{shown(field) or 'The field'} was not saved: " + " ".join(problems(err)),
                fields={"field": shown(field), "value": text},
            ) from None
        raise self._back(here, "fields", notice=f"{shown(field)} saved.")

    def _base_view(self, name: str, form: dict[str, str]) -> str:
        """The Base page as the form's page showed it (its query and page)."""
        return _address(
            base_path(name),
            query=form.get("query", ""),
            last=form.get("last", ""),
            sort=form.get("sort", ""),
        )

    async def reset_base(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        name = request.match_info["name"]
        form = await read_form(request)
        if form.get("confirm") != "yes":
            here = form.get("from") == "base"
            back = self._base_view(name, form) if here else DATA_PATH
            raise self._back(
                back,
                "reset" if here else "bases",
                error="Nothing was deleted: "
                f"tick the box to confirm that the Base {shown(name)} and all its "
                "items go.",
            )

        def drop(db: BaseDB) -> int:
            count = db.count(name)
            db.drop(name)
            return count

        count = await self._stores.base(drop)
        raise self._back(
            DATA_PATH,
            "bases",
            notice=f"The Base {shown(name)} is reset: {_plural(count, 'item')} deleted.",
        )

    async def add_item(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        name = request.match_info["name"]
        form = await read_form(request)
        back = self._base_view(name, form)
        text = form.get("item", "")
        item: dict[str, Any] = {}
        try:
            check_base_name(name)
            item = parse_item(text)
            stored = await self._stores.base(lambda db: db.insert(name, item))
        except (SpaceDevError, BaseError) as err:
            says = problems(err)
            if isinstance(err, BaseError) and err.status == 409:
                says = [
                    f"An item with the key {shown(str(item.get('key')))} is already in the "
                    "Base: edit that item instead, or choose another key."
                ]
            raise self._back(back, "add", error=" ".join(says), fields={"add": text}) from None
        raise self._back(back, "add", notice=f"Item {shown(str(stored['key']))} added.")

    async def save_item(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        name = request.match_info["name"]
        key = request.query.get("key", "")
        form = await read_form(request)
        back = _address(
            f"{base_path(name)}/item",
            key=key,
            **{f: request.query.get(f, "") for f in ("query", "last", "sort")},
        )
        text = form.get("item", "")
        try:
            if not key:
                raise FormProblem("Which item? The address has no ?key=")
            await replace_item(self._stores, name, key, parse_item(text))
        except (SpaceDevError, BaseError) as err:
            raise self._back(
                back,
                "json",
                error=f"Item {shown(key)} was not saved: " + " ".join(problems(err)),
                fields={"edit_key": shown(key), "edit": text},
            ) from None
        raise self._back(back, "json", notice=f"Item {shown(key)} saved.")

    async def delete_item(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        name = request.match_info["name"]
        key = request.query.get("key", "")
        form = await read_form(request)
        back = self._base_view(name, form)
        if key and await delete_item(self._stores, name, key):
            raise self._back(back, "items", notice=f"Item {shown(key)} deleted.")
        raise self._back(
            back, "items", notice=f"Item {shown(key)} is not in the Base (already deleted?)."
        )

    # --- one Drive --------------------------------------------------------------------------

    async def show_drive(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        name = request.match_info["name"]
        prefix, last = request.query.get("prefix", ""), request.query.get("last", "")
        store = self._stores.drive()
        context: dict[str, Any] = {
            "title": f"Drive {name}",
            "name": name,
            "url": drive_path(name),
            "prefix": prefix,
            "last": last,
            "files": [],
            "next_url": "",
            "first_url": _address(drive_path(name), prefix=prefix),
        }
        try:
            names, after = store.list(name, prefix or None, PAGE_SIZE, last or None)
            count, size = store.totals(name)
        except SpaceDevError as err:
            return self._render(
                request,
                principal,
                "drive",
                status=400,
                at="files",
                error=" ".join(problems(err)),
                count=0,
                bytes_text="",
                **context,
            )
        for file in names:
            found = store.describe(name, file)
            if found is None:  # deleted meanwhile
                continue
            file_size, ctype, modified = found
            context["files"].append(
                {
                    "name": file,
                    "size": file_size,
                    "size_text": size_text(file_size),
                    "type": ctype,
                    "modified": moment(modified),
                    "preview_url": _address(f"{drive_path(name)}/preview", name=file)
                    if previewable(ctype, file)
                    else "",
                    "download_url": _address(f"{drive_path(name)}/file", name=file),
                    "delete_url": _address(f"{drive_path(name)}/file/delete", name=file),
                }
            )
        if after is not None:
            context["next_url"] = _address(drive_path(name), prefix=prefix, last=after)
        return self._render(
            request, principal, "drive", count=count, bytes_text=size_text(size), **context
        )

    async def preview(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        """One file shown on a page: an image as itself, text as its first PREVIEW_BYTES."""
        drive, name = request.match_info["name"], request.query.get("name", "")
        store = self._stores.drive()
        context: dict[str, Any] = {
            "title": f"{name} in Drive {drive}",
            "name": drive,
            "file": name,
            "url": drive_path(drive),
            "kind": "",
            "text": "",
            "cut": False,
            "image_url": _address(f"{drive_path(drive)}/file", name=name, inline="1"),
            "download_url": _address(f"{drive_path(drive)}/file", name=name),
            "size_text": "",
            "type": "",
            "modified": "",
        }
        try:
            found = store.describe(drive, name) if name else None
            opened = store.open(drive, name) if found else None
        except SpaceDevError as err:
            return self._render(
                request,
                principal,
                "preview",
                status=400,
                at="preview",
                error=" ".join(problems(err)),
                **context,
            )
        if found is None or opened is None:
            return self._render(
                request,
                principal,
                "preview",
                status=404,
                at="preview",
                error=f"The Drive {drive} has no file called {name or '(no name given)'}.",
                **context,
            )
        size, ctype, modified = found
        kind = previewable(ctype, name)
        context.update(kind=kind, size_text=size_text(size), type=ctype, modified=moment(modified))
        if kind == "text":
            head = await asyncio.to_thread(_read_head, opened[0], PREVIEW_BYTES)
            if b"\0" in head:
                context["kind"] = ""  # binary after all
            else:
                context.update(text=head.decode("utf-8", "replace"), cut=size > PREVIEW_BYTES)
        return self._render(request, principal, "preview", **context)

    def _drive_view(self, name: str, form: dict[str, str]) -> str:
        return _address(drive_path(name), prefix=form.get("prefix", ""), last=form.get("last", ""))

    async def reset_drive(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        name = request.match_info["name"]
        form = await read_form(request)
        if form.get("confirm") != "yes":
            here = form.get("from") == "drive"
            back = self._drive_view(name, form) if here else DATA_PATH
            raise self._back(
                back,
                "reset" if here else "drives",
                error="Nothing was deleted: "
                f"tick the box to confirm that the Drive {name} and all its files "
                "go.",
            )
        try:
            drive = self._stores.drive()
            drive.drop(name)
            await asyncio.to_thread(drive.remove_dropped)
        except SpaceDevError as err:
            raise self._back(DATA_PATH, "drives", error=" ".join(problems(err))) from None
        raise self._back(
            DATA_PATH, "drives", notice=f"The Drive {name} is reset: its files are deleted."
        )

    async def upload(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        drive = request.match_info["name"]
        fields: dict[str, str] = {}
        try:
            if request.content_type != "multipart/form-data":
                raise FormProblem("Choose a file to upload")
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or not part.name:
                    continue
                if part.name != "file":  # the form puts its text fields first
                    raw = await read_capped(part_chunks(part), 8192, "A field")
                    fields.setdefault(part.name, raw.decode("utf-8", "replace"))
                    continue
                if not part.filename:
                    raise FormProblem("Choose a file to upload")
                name = fields.get("name", "").strip()
                if not name or name.endswith("/"):  # blank, or a folder: the file's own name
                    name += part.filename.replace("\\", "/").rsplit("/", 1)[-1]
                size = await self._stores.drive().put(
                    drive, name, part_chunks(part), given_type(part.headers.get("Content-Type"))
                )
                raise self._back(
                    self._drive_view(drive, fields),
                    "upload",
                    notice=f"Uploaded {name} ({size_text(size)}).",
                )
            raise FormProblem("Choose a file to upload")
        except SpaceDevError as err:
            raise self._back(
                self._drive_view(drive, fields), "upload", error=" ".join(problems(err))
            ) from None

    async def download(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        drive, name = request.match_info["name"], request.query.get("name", "")
        try:
            sent = (
                await send_file(
                    request,
                    self._stores.drive(),
                    drive,
                    name,
                    inline=request.query.get("inline") == "1",
                )
                if name
                else None
            )
        except SpaceDevError as err:
            return problem(request, 400, "Cannot download that", " ".join(problems(err)))
        if sent is None:
            return problem(
                request,
                404,
                "No such file",
                f"The Drive {drive} has no file called {name or '(no name given)'}.",
            )
        return sent

    async def delete_file(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        drive, name = request.match_info["name"], request.query.get("name", "")
        form = await read_form(request)
        back = self._drive_view(drive, form)
        store = self._stores.drive()
        try:
            existed = bool(name) and store.open(drive, name) is not None
            if existed:
                store.delete_many(drive, [name])
        except SpaceDevError as err:
            raise self._back(back, "files", error=" ".join(problems(err))) from None
        if existed:
            raise self._back(back, "files", notice=f"Deleted {name}.")
        raise self._back(
            back, "files", notice=f"{name or 'That file'} is not in the Drive (already deleted?)."
        )


def _read_head(path: Path, size: int) -> bytes:
    with path.open("rb") as f:
        return f.read(size)
