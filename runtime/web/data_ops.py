"""What the data page and its JSON API share: one app's Bases and Drives counted, read and
changed, files and zips streamed to and from the disk, never whole in memory.

Base calls run on the app's own Base thread (`BaseDB.worker`), as the data API's do. The Drive
store's index is a SQLite connection that belongs to the event loop's thread, so its quick index
calls run there; its body reads and writes already run in threads.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast
from urllib.parse import parse_qsl, quote

from aiohttp import BodyPartReader, web

from runtime.cloud.base.store import MAX_ITEM_BYTES, BaseDB, item_size
from runtime.cloud.data import AppData
from runtime.cloud.drive.errors import TooLarge
from runtime.cloud.drive.handlers import INERT_CONTENT
from runtime.cloud.drive.store import LIST_LIMIT, DriveStore
from runtime.cloud.export_zip import export_zip
from runtime.cloud.transfer import ImportReport, import_zip
from runtime.errors import SpaceDevError
from runtime.web.data_table import PREVIEW_IMAGES

T = TypeVar("T")

CHUNK = 256 * 1024
MAX_FORM_BYTES = 4 * 1024 * 1024  # a 400 KB item percent-encoded, with room to spare
MAX_JSON_BYTES = 2 * 1024 * 1024
_THREAD_WAIT = 60.0  # seconds an export's worker waits for one index call on the loop
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9 ._()+,=@-]")


class FormProblem(SpaceDevError):
    """A form or request the owner can correct (400)."""


class AppStores:
    """One app's Bases and Drives, reached the way each store must be."""

    def __init__(self, data: Callable[[], AppData]) -> None:
        self._data = data

    @property
    def app_data(self) -> AppData:
        return self._data()

    def drive(self) -> DriveStore:
        """The Drive store; call it on the event loop's thread only."""
        return self._data().drive

    async def base(self, call: Callable[[BaseDB], T]) -> T:
        """Run `call(BaseDB)` on the app's Base thread."""
        db = await self._data().open_base()
        return await asyncio.get_running_loop().run_in_executor(db.worker, call, db)


# --- reading what the owner sent -------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str | bytes, what: str) -> Any:
    """JSON text as a value, or a FormProblem saying where it is broken."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise FormProblem(
            f"{what} is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})"
        ) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise FormProblem(f"{what} is not valid JSON ({err})") from None


def parse_query(text: str) -> Any:
    """The query box's text: a Deta query (an object or a list of objects), or None."""
    if not text.strip():
        return None
    query = parse_json(text, "The query")
    if not isinstance(query, dict | list):
        raise FormProblem(
            "A query must be an object or a list of objects",
            'e.g. {"done": false} or [{"title?pfx": "a"}, {"title?pfx": "b"}]',
        )
    return query


def parse_item(text: str | bytes) -> dict[str, Any]:
    """An item's JSON text, checked as Base would check it."""
    item = parse_json(text, "The item")
    if not isinstance(item, dict):
        raise FormProblem("An item must be a JSON object", 'e.g. {"key": "a1", "title": "milk"}')
    if item_size(item) > MAX_ITEM_BYTES:
        raise FormProblem("The item is larger than 400 KB", "Base keeps items of up to 400 KB.")
    return item


def parse_limit(raw: str | None, default: int, most: int | None = None) -> int:
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if limit < 1 or (most is not None and limit > most):
        upper = f" to {most}" if most is not None else " or more"
        raise FormProblem(f"limit must be a whole number from 1{upper}")
    return limit


async def read_capped(chunks: AsyncIterable[bytes], limit: int, what: str) -> bytes:
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise TooLarge(f"{what} is larger than {limit // (1024 * 1024)} MB")
    return bytes(data)


async def read_form(request: web.Request) -> dict[str, str]:
    """A form's text fields, urlencoded or multipart, read up to MAX_FORM_BYTES (the app's
    1 MB body limit would refuse a big item once percent-encoded)."""
    if request.content_type == "multipart/form-data":
        fields: dict[str, str] = {}
        total = 0
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name and part.filename is None:
                raw = await read_capped(part_chunks(part), MAX_FORM_BYTES - total, "The form")
                total += len(raw)
                fields.setdefault(part.name, raw.decode("utf-8", "replace"))
        return fields
    body = await read_capped(request.content.iter_chunked(CHUNK), MAX_FORM_BYTES, "The form")
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    found: dict[str, str] = {}
    for name, value in pairs:
        found.setdefault(name, value)
    return found


async def part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    """A multipart part's bytes as they arrive."""
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


# --- Bases ----------------------------------------------------------------------------------


async def base_counts(stores: AppStores) -> list[dict[str, Any]]:
    def count(db: BaseDB) -> list[dict[str, Any]]:
        return [{"name": n, "items": db.count(n), "bytes": db.size(n)} for n in db.names()]

    return await stores.base(count)


async def replace_item(stores: AppStores, base: str, key: str, item: dict[str, Any]) -> Any:
    """Store `item` under `key`, replacing what was there; the key cannot change."""
    if "key" in item and item["key"] != key:
        raise FormProblem(
            "The key of an item cannot be changed",
            f'Keep "key": {json.dumps(key)}, or add a new item with the new key and delete '
            "this one.",
        )
    stored = {**item, "key": key}
    return (await stores.base(lambda db: db.put_many(base, [stored])))[0]


async def set_field(stores: AppStores, base: str, key: str, field: str, value: Any) -> bool:
    """Set one top-level field of an item (one cell of the table); False when there is no
    such item. Read and written in one call on the Base thread, so no other write slips in."""
    if field == "key":
        raise FormProblem(
            "The key of an item cannot be changed",
            "Add a new item with the new key and delete this one.",
        )
    if not field:
        raise FormProblem("Which field? The form names none")

    def change(db: BaseDB) -> bool:
        item = db.get(base, key)
        if item is None:
            return False
        changed = {**item, field: value}
        if item_size(changed) > MAX_ITEM_BYTES:
            raise FormProblem(f"The item would be larger than Base's {MAX_ITEM_BYTES} bytes")
        db.put_many(base, [changed])
        return True

    return await stores.base(change)


async def delete_item(stores: AppStores, base: str, key: str) -> bool:
    """Remove one item; False when there was none."""

    def delete(db: BaseDB) -> bool:
        if db.get(base, key) is None:
            return False
        db.delete(base, key)
        return True

    return await stores.base(delete)


def check_base_name(name: str) -> str:
    if not name.strip():
        raise FormProblem("A Base name cannot be blank")
    return name


# --- Drives ---------------------------------------------------------------------------------


async def drive_counts(stores: AppStores) -> list[dict[str, Any]]:
    store = stores.drive()
    rows = []
    for drive in store.names():
        count, size = store.totals(drive)
        rows.append({"name": drive, "files": count, "bytes": size})
    return rows


def attachment(filename: str) -> str:
    """A Content-Disposition that makes the browser save the file under this name."""
    shown = filename.rsplit("/", 1)[-1] or "download"
    plain = _UNSAFE_FILENAME.sub("_", shown)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(shown, safe='')}"


def _download_headers(content_type: str, filename: str) -> dict[str, str]:
    # The owner's files are served on the app's own origin: never rendered there (an HTML file
    # would run with the owner's session), always saved.
    return {
        "Content-Type": content_type,
        "Content-Disposition": attachment(filename),
        **INERT_CONTENT,
        "Cache-Control": "no-store",
    }


async def _stream(request: web.Request, f: BinaryIO, headers: dict[str, str]) -> web.StreamResponse:
    size = os.fstat(f.fileno()).st_size
    response = web.StreamResponse(headers=headers)
    response.content_length = size
    await response.prepare(request)
    if request.method != "HEAD":
        offset = 0
        while offset < size:
            chunk = await asyncio.to_thread(os.pread, f.fileno(), min(CHUNK, size - offset), offset)
            if not chunk:
                break
            await response.write(chunk)
            offset += len(chunk)
    await response.write_eof()
    return response


async def send_file(
    request: web.Request, store: DriveStore, drive: str, name: str, inline: bool = False
) -> web.StreamResponse | None:
    """Stream a Drive file as a download (`inline`: a raster image to show on the preview
    page, as itself); None when there is no such file."""
    # A put of the same name may replace and remove the body between the lookup and the open;
    # the next lookup finds the new one.
    for _ in range(3):
        found = store.open(drive, name)
        if found is None:
            return None
        path, _size, content_type = found
        try:
            f: BinaryIO = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            continue
        try:
            headers = _download_headers(content_type, name)
            if inline and content_type.split(";")[0].strip().lower() in PREVIEW_IMAGES:
                headers["Content-Disposition"] = "inline"
            return await _stream(request, f, headers)
        finally:
            f.close()
    return None


# --- export and import ----------------------------------------------------------------------


class _LoopDrive:
    """The Drive store as `export_zip` reads it from a worker thread: each call runs on the
    event loop's thread, which owns the store's SQLite connection."""

    def __init__(self, store: DriveStore, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop

    def _run(self, call: Callable[[], T]) -> T:
        async def on_loop() -> T:
            return call()

        return asyncio.run_coroutine_threadsafe(on_loop(), self._loop).result(_THREAD_WAIT)

    def names(self) -> list[str]:
        return self._run(self._store.names)

    def list(
        self,
        drive: str,
        prefix: str | None = None,
        limit: int = LIST_LIMIT,
        last: str | None = None,
    ) -> tuple[list[str], str | None]:
        return self._run(lambda: self._store.list(drive, prefix, limit, last))

    def open(self, drive: str, name: str) -> tuple[Path, int, str] | None:
        return self._run(lambda: self._store.open(drive, name))


@dataclass
class _ExportView:
    base: BaseDB
    drive: _LoopDrive


async def export_to(stores: AppStores, target: Path) -> tuple[int, int]:
    """Write the app's data to `target` as a zip, in a worker thread; (items, files)."""
    view = _ExportView(
        await stores.base(lambda db: db), _LoopDrive(stores.drive(), asyncio.get_running_loop())
    )
    return await asyncio.to_thread(export_zip, cast(AppData, view), target)


def export_name(app: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{_UNSAFE_FILENAME.sub('_', app).replace(' ', '_')}-data-{stamp}.zip"


async def send_export(request: web.Request, stores: AppStores, app: str) -> web.StreamResponse:
    """The app's data as a zip download; the temporary file is gone afterwards."""
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="space-dev-export-"))
    try:
        target = folder / "export.zip"
        await export_to(stores, target)
        f: BinaryIO = await asyncio.to_thread(open, target, "rb")
        try:
            return await _stream(request, f, _download_headers("application/zip", export_name(app)))
        finally:
            f.close()
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)


async def _spool(chunks: AsyncIterable[bytes], target: Path) -> int:
    f: BinaryIO = await asyncio.to_thread(open, target, "xb")
    size = 0
    try:
        batch = bytearray()
        async for chunk in chunks:
            batch += chunk
            size += len(chunk)
            if len(batch) >= 1 << 20:
                full, batch = batch, bytearray()
                await asyncio.to_thread(f.write, full)
        if batch:
            await asyncio.to_thread(f.write, batch)
    finally:
        f.close()
    return size


async def import_stream(
    stores: AppStores, chunks: AsyncIterable[bytes], name: str = "the uploaded file"
) -> ImportReport:
    """Spool an uploaded zip to a temporary file, then import it into the app's data. Errors
    speak of the file by `name` (what the owner chose), never of the temporary copy."""
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="space-dev-import-"))
    try:
        source = folder / "import.zip"
        if await _spool(chunks, source) == 0:
            raise FormProblem(
                f"{name} is empty", "Choose a zip that `space-dev data export` or Space wrote."
            )
        # Both stores opened first as each must be: the import uses them from a worker thread
        # (Base) and through this thread (the Drive index).
        await stores.base(lambda db: db)
        stores.drive()
        try:
            report = await import_zip(stores.app_data, source)
        except SpaceDevError as err:
            err.message = _renamed(err.message, source, name)
            err.hint = _renamed(err.hint, source, name)
            err.args = (err.message,)
            raise
        if report.empty:
            raise FormProblem(*report.nothing_said(name))
        return report
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)


def _renamed(text: str, source: Path, name: str) -> str:
    text = text.replace(str(source), name).replace(str(source.parent), "a temporary folder")
    return text.replace(source.name, name)


def report_json(report: ImportReport) -> dict[str, Any]:
    return {"items": report.items, "files": report.files, "skipped": report.skipped}


async def reset_all(stores: AppStores) -> None:
    """Remove every Base and every Drive of the app."""
    await stores.base(lambda db: db.drop_all())
    drive = stores.drive()
    drive.drop_all()
    await asyncio.to_thread(drive.remove_dropped)
