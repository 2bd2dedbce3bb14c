"""An app's Base and Drive data to and from one zip file, in the layout Space's own export used:
`bases/<name>.json` (a list of items) and `drives/<name>/<file name>`."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from runtime.cloud.base.errors import BaseError
from runtime.cloud.data import AppData
from runtime.errors import SpaceDevError

_CHUNK = 1 << 20
_PUT_BATCH = 25  # Base's own limit per put: an import goes through the same rules


@dataclass
class ImportReport:
    """What an import took, and what it could not understand (with why)."""

    items: dict[str, int] = field(default_factory=dict)  # base -> items stored
    files: dict[str, int] = field(default_factory=dict)  # drive -> files stored
    skipped: list[str] = field(default_factory=list)  # "entry: why"

    def lines(self) -> list[str]:
        out = [f"base {name}: {count} item{'s' if count != 1 else ''}"
               for name, count in sorted(self.items.items())]
        out += [f"drive {name}: {count} file{'s' if count != 1 else ''}"
                for name, count in sorted(self.files.items())]
        out += [f"not imported: {line}" for line in self.skipped]
        return out or ["the file holds no Base or Drive data"]


def export_zip(data: AppData, target: Path) -> tuple[int, int]:
    """Write every Base and Drive of the app to `target` (atomically); (items, files) written."""
    items = files = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for base, rows in data.base.export().items():
                zf.writestr(f"bases/{base}.json", json.dumps(rows, indent=1))
                items += len(rows)
            for drive in data.drive.names():
                for name in _all_names(data, drive):
                    found = data.drive.open(drive, name)
                    if found is None:  # deleted meanwhile
                        continue
                    path, _, _ = found
                    zf.write(path, f"drives/{drive}/{name}")
                    files += 1
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return items, files


def _all_names(data: AppData, drive: str) -> list[str]:
    names: list[str] = []
    last: str | None = None
    while True:
        page, last = data.drive.list(drive, last=last)
        names += page
        if last is None:
            return names


async def import_zip(data: AppData, source: Path) -> ImportReport:
    """Put every Base item and Drive file of the zip into the app's data (same keys and names
    are replaced); what is not understood is reported, never guessed at."""
    report = ImportReport()
    try:
        archive = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as err:
        raise SpaceDevError(
            f"cannot read {source} as a zip file ({err})",
            "give the file `space-dev data export` or Space's own export wrote",
        ) from None
    with archive:
        for entry in archive.infolist():
            if entry.is_dir():
                continue
            where = entry.filename
            parts = where.split("/")
            if len(parts) == 2 and parts[0] == "bases" and parts[1].endswith(".json"):
                await _import_base(data, archive, entry, parts[1][: -len(".json")], report)
            elif len(parts) >= 3 and parts[0] == "drives" and parts[1]:
                await _import_file(data, archive, entry, parts[1], "/".join(parts[2:]), report)
            else:
                report.skipped.append(f"{where}: neither bases/<name>.json nor drives/<name>/...")
    return report


async def _import_base(data: AppData, archive: zipfile.ZipFile, entry: zipfile.ZipInfo,
                       base: str, report: ImportReport) -> None:
    where = entry.filename
    try:
        content: Any = json.loads(archive.read(entry))
    except (ValueError, UnicodeDecodeError) as err:
        report.skipped.append(f"{where}: not JSON ({err})")
        return
    items = content.get("items") if isinstance(content, dict) else content
    if not isinstance(items, list):
        report.skipped.append(f"{where}: neither a list of items nor an object with `items`")
        return
    stored = 0
    db = await data.open_base()
    loop = asyncio.get_running_loop()
    for number, item in enumerate(items):
        if not isinstance(item, dict):
            report.skipped.append(f"{where}: item {number} is not an object")
            continue
        try:
            # On the app's Base thread: the event loop never waits for a query holding it.
            await loop.run_in_executor(db.worker, db.put_many, base, [item])
        except BaseError as err:
            report.skipped.append(f"{where}: item {number}: {'; '.join(err.messages)}")
            continue
        stored += 1
    report.items[base] = report.items.get(base, 0) + stored


async def _import_file(data: AppData, archive: zipfile.ZipFile, entry: zipfile.ZipInfo,
                       drive: str, name: str, report: ImportReport) -> None:
    try:
        with archive.open(entry) as member:
            await data.drive.put(drive, name, _chunks(member))
    except SpaceDevError as err:
        report.skipped.append(f"{entry.filename}: {err.message}")
        return
    report.files[drive] = report.files.get(drive, 0) + 1


async def _chunks(member: IO[bytes]) -> AsyncIterator[bytes]:
    while block := member.read(_CHUNK):
        yield block
