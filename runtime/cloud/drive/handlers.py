"""The Deta Drive HTTP API (`/v1/{project_id}/{drive}/...`) over a DriveStore."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, BinaryIO
from urllib.parse import unquote, unquote_plus

from aiohttp import web

from .errors import BadName, DriveError, TooLarge
from .names import given_type
from .ranges import plan_range
from .store import LIST_LIMIT, DriveStore

log = logging.getLogger(__name__)

# Deta took at most 10 MB on POST /files and parts of at most 10 MB; the SDKs send parts of
# exactly 10 MiB, so MiB is the unit that lets every SDK through.
MAX_BODY = 10 * 1024 * 1024
MAX_PART = 10 * 1024 * 1024
MAX_DELETE_NAMES = 1000
_MAX_JSON = 2 * 1024 * 1024  # 1000 names of up to 1 KiB each, with room for JSON escapes
_READ_CHUNK = 256 * 1024
_SEND_CHUNK = 512 * 1024
# A file's bytes are whatever a client stored (a visitor's upload, say) and the API is also
# served on the app's own origin, where the owner's session opens the settings: a stored HTML or
# SVG file must never run there. `sandbox` gives a document it renders an origin of its own;
# reading the bytes (`fetch`, the SDKs, an `<img>`) is unchanged for the app's own pages.
# `Cross-Origin-Resource-Policy` keeps them from any other origin's page: every port of
# 127.0.0.1 is one site, so the owner's cookie goes with a `<script src>` put there.
INERT_CONTENT = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class _Call:
    request: web.Request
    store: DriveStore
    drive: str
    project_id: str
    upload_id: str = ""

    def answer(self, status: int = 200, **fields: Any) -> web.Response:
        return web.json_response(
            {**fields, "project_id": self.project_id, "drive_name": self.drive}, status=status
        )


_Handler = Callable[[_Call], Awaitable[web.StreamResponse]]


async def handle_drive(
    request: web.Request, store: DriveStore, drive: str, rest: str
) -> web.StreamResponse:
    """Answer one Drive API request; `rest` is the raw path after `/v1/{project_id}/{drive}`."""
    for pattern, methods in _ROUTES:
        match = pattern.fullmatch(rest)
        if match is None:
            continue
        handler = methods.get(request.method)
        if handler is None:
            response = _error(405, f"method {request.method} is not allowed on {rest}")
            response.headers["Allow"] = ", ".join(methods)
            return response
        upload_id = unquote(match.groupdict().get("upload", ""))
        call = _Call(request, store, drive, _project_id(request), upload_id)
        try:
            return await handler(call)
        except DriveError as exc:
            return _error(exc.status, exc.message)
        except ConnectionError:
            raise  # the client went away: nobody to answer
        except OSError as exc:  # disk full, permissions: the app should hear why
            return _error(500, f"drive storage failed: {exc.strerror or exc}")
    return _error(404, f"no Drive API route {rest or '/'}")


# --- files ------------------------------------------------------------------------------------


async def _put_file(call: _Call) -> web.StreamResponse:
    name = _name(call.request)
    _check_length(call.request, MAX_BODY)
    await call.store.put(
        call.drive, name, _body(call.request), _content_type(call.request), max_bytes=MAX_BODY
    )
    return call.answer(201, name=name)


async def _list(call: _Call) -> web.StreamResponse:
    query = _raw_query(call.request)
    try:
        limit = int(query.get("limit") or LIST_LIMIT)
    except ValueError:
        raise BadName("limit must be a number", "Send limit=1..1000.") from None
    names, last = call.store.list(
        call.drive,
        prefix=query.get("prefix") or None,
        limit=min(limit, LIST_LIMIT),  # Deta capped a page at 1000 names; paging says the rest
        last=query.get("last") or None,
        recursive=query.get("recursive", "true").lower() != "false",
    )
    payload: dict[str, Any] = {"names": names}
    if last is not None:
        payload["paging"] = {"size": len(names), "last": last}
    return web.json_response(payload)


async def _delete_files(call: _Call) -> web.StreamResponse:
    payload = await _read_json(call.request)
    names = payload.get("names") if isinstance(payload, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadName("names must be a list of strings", 'Send {"names": ["a.txt", ...]}.')
    if not names:
        raise BadName("names is empty", "Send at least one name.")
    if len(names) > MAX_DELETE_NAMES:
        raise BadName(
            f"more than {MAX_DELETE_NAMES} names", f"Delete at most {MAX_DELETE_NAMES} at a time."
        )
    # Deta refused a call with no name in it at all (the npm SDK turns the 400 into "Names
    # can't be empty"); blank names beside real ones fail one by one in a 200.
    if all(not name.strip() for name in names):
        raise BadName("every name is empty or blank", "Send the names of the files to delete.")
    deleted, failed = call.store.delete_many(call.drive, names)
    return web.json_response({"deleted": deleted, "failed": failed})


async def _download(call: _Call) -> web.StreamResponse:
    request = call.request
    name = _name(request)
    opened = await _open_body(call.store, call.drive, name)
    if opened is None:
        return _error(404, f"file {name!r} not found")
    f, etag, ctype = opened
    try:
        st = os.fstat(f.fileno())
        size = st.st_size
        last_modified = formatdate(st.st_mtime, usegmt=True)
        ranged = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        if if_range is not None and if_range.strip() not in (etag, last_modified):
            ranged = None  # the client's copy is of another version: send all of this one
        plan = plan_range(ranged, size)
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": etag,
            "Last-Modified": last_modified,
            **INERT_CONTENT,
        }
        if plan.status == 416:
            refused = _error(416, f"range {ranged} is outside the file's {size} bytes")
            refused.headers.update(headers)
            refused.headers["Content-Range"] = f"bytes */{size}"
            return refused
        headers["Content-Type"] = ctype
        if plan.status == 206:
            headers["Content-Range"] = f"bytes {plan.start}-{plan.stop - 1}/{size}"
        response = web.StreamResponse(status=plan.status, headers=headers)
        response.content_length = plan.stop - plan.start
        await response.prepare(request)
        if request.method != "HEAD":
            offset = plan.start
            while offset < plan.stop:
                count = min(_SEND_CHUNK, plan.stop - offset)
                chunk = await asyncio.to_thread(os.pread, f.fileno(), count, offset)
                if not chunk:
                    break  # cannot happen with a body that is never written in place
                try:
                    await response.write(chunk)
                except ConnectionError:
                    # The client went away mid-body (a closed tab, a player that seeks): an
                    # everyday event, not an error.
                    log.debug(
                        "drive %s: client left after %d bytes of %s", call.drive, offset, name
                    )
                    return response
                offset += len(chunk)
        await response.write_eof()
        return response
    finally:
        f.close()


async def _open_body(store: DriveStore, drive: str, name: str) -> tuple[BinaryIO, str, str] | None:
    # A put of the same name may replace and remove the body between the lookup and the
    # open; the second lookup finds the new one.
    for _ in range(3):
        found = store.open(drive, name)
        if found is None:
            return None
        path, _size, ctype = found
        try:
            f: BinaryIO = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            continue
        return f, f'"{path.name}"', ctype
    return None


# --- chunked uploads --------------------------------------------------------------------------


async def _start_upload(call: _Call) -> web.StreamResponse:
    name = _name(call.request)
    upload_id = call.store.start_upload(call.drive, name, _content_type(call.request))
    return call.answer(202, name=name, upload_id=upload_id)


async def _put_part(call: _Call) -> web.StreamResponse:
    request = call.request
    name = _name(request)
    try:
        part = int(request.query.get("part", ""))
    except ValueError:
        raise BadName("part must be a number", "Send part=1 for the first part.") from None
    _check_length(request, MAX_PART)
    await call.store.put_part(
        call.drive,
        call.upload_id,
        name,
        part,
        _body(request),
        _content_type(request),
        max_bytes=MAX_PART,
    )
    return call.answer(200, name=name, upload_id=call.upload_id, part=part)


async def _finish_upload(call: _Call) -> web.StreamResponse:
    name = _name(call.request)
    await call.store.finish_upload(call.drive, call.upload_id, name)
    return call.answer(200, name=name, upload_id=call.upload_id)


async def _abort_upload(call: _Call) -> web.StreamResponse:
    name = _name(call.request)
    call.store.abort_upload(call.drive, call.upload_id, name)
    return call.answer(200, name=name, upload_id=call.upload_id)


_ROUTES: list[tuple[re.Pattern[str], dict[str, _Handler]]] = [
    (re.compile(r"/files"), {"POST": _put_file, "GET": _list, "DELETE": _delete_files}),
    (re.compile(r"/files/download"), {"GET": _download, "HEAD": _download}),
    (re.compile(r"/uploads"), {"POST": _start_upload}),
    (re.compile(r"/uploads/(?P<upload>[^/]+)/parts"), {"POST": _put_part}),
    (re.compile(r"/uploads/(?P<upload>[^/]+)"), {"PATCH": _finish_upload, "DELETE": _abort_upload}),
]


# --- reading requests -------------------------------------------------------------------------


def _error(status: int, *messages: str) -> web.Response:
    return web.json_response({"errors": list(messages)}, status=status)


def _name(request: web.Request) -> str:
    name = request.query.get("name")
    if name is None:
        raise BadName("name is missing", "Send the file name as ?name=... (URL-encoded).")
    return name


def _content_type(request: web.Request) -> str | None:
    # Not request.content_type: aiohttp answers application/octet-stream when none was sent.
    return given_type(request.headers.get("Content-Type"))


def _check_length(request: web.Request, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"body larger than {limit} bytes", "Send parts of at most 10 MiB.")


def _body(request: web.Request) -> Any:
    return request.content.iter_chunked(_READ_CHUNK)


async def _read_json(request: web.Request) -> Any:
    _check_length(request, _MAX_JSON)
    data = bytearray()
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        data += chunk
        if len(data) > _MAX_JSON:
            raise TooLarge(f"body larger than {_MAX_JSON} bytes", "Send at most 1000 names.")
    try:
        return json.loads(data)
    except ValueError:
        raise BadName("body is not JSON", 'Send {"names": [...]} as JSON.') from None


def _raw_query(request: web.Request) -> dict[str, str]:
    """The query with `prefix` and `last` read as the SDKs write them.

    deta-python and deta-javascript put those two into the URL without encoding them, so a
    `+` there is a plus; deta-go form-encodes its whole query, where `+` is a space. The Go
    client is told apart by the User-Agent Go's HTTP client always sends."""
    plus_is_space = request.headers.get("User-Agent", "").startswith("Go-http-client/")
    decode = unquote_plus if plus_is_space else unquote
    out: dict[str, str] = {}
    for piece in request.rel_url.raw_query_string.split("&"):
        key, _, value = piece.partition("=")
        try:
            out.setdefault(unquote_plus(key), decode(value, errors="strict"))
        except UnicodeDecodeError:
            raise BadName(f"query value of {key!r} is not UTF-8", "Encode it as UTF-8.") from None
    return out


def _project_id(request: web.Request) -> str:
    found = request.match_info.get("project_id")
    if found:
        return found
    match = re.search(r"/v1/([^/]+)/", request.rel_url.raw_path)
    return unquote(match.group(1)) if match else ""
