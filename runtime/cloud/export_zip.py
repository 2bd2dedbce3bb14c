"""An app's Base and Drive data written to one zip file (the layout: `export_format`),
streaming: Bases a page of items at a time, Drive files a block at a time, so memory stays flat
whatever the app holds. `transfer.import_zip` reads it back.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

from runtime.cloud.base.store import BaseDB
from runtime.cloud.data import AppData
from runtime.cloud.export_format import MARKER, base_entry, drive_entry, marker_text

_COPY_CHUNK = 1 << 20
_EXPORT_PAGE = 1000  # items per Base query while exporting


def export_zip(data: AppData, target: Path) -> tuple[int, int]:
    """Write every Base and Drive of the app to `target` (atomically); (items, files) written."""
    items = files = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(_entry(MARKER, time.time()), marker_text())
            for base in data.base.names():
                items += _export_base(zf, data.base, base)
            for drive in data.drive.names():
                files += _export_drive(zf, data, drive)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return items, files


def _entry(name: str, modified: float) -> zipfile.ZipInfo:
    # ZipInfo keeps the name as given (ZipFile.write would normalise `a/../b` to `b`).
    stamp = time.localtime(max(modified, 315532800.0))[:6]  # zip dates start in 1980
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _export_base(zf: zipfile.ZipFile, db: BaseDB, base: str) -> int:
    count = 0
    last: str | None = None
    with zf.open(_entry(base_entry(base), time.time()), "w", force_zip64=True) as out:
        while True:
            page, last = db.query(base, None, _EXPORT_PAGE, last)
            # ASCII JSON, as the store keeps it: one line per item whatever its strings hold.
            out.write(
                "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in page).encode(
                    "ascii"
                )
            )
            count += len(page)
            if last is None:
                return count


def _export_drive(zf: zipfile.ZipFile, data: AppData, drive: str) -> int:
    count = 0
    last: str | None = None
    while True:
        names, last = data.drive.list(drive, last=last)
        for name in names:
            found = data.drive.open(drive, name)
            if found is None:  # deleted meanwhile
                continue
            try:
                source = open(found[0], "rb")  # noqa: SIM115 (closed below)
            except FileNotFoundError:  # replaced meanwhile: the new one goes with the next export
                continue
            with source:
                status = os.fstat(source.fileno())
                info = _entry(drive_entry(drive, name), status.st_mtime)
                info.file_size = status.st_size  # so zipfile knows when it needs zip64
                with zf.open(info, "w") as out:
                    while block := source.read(_COPY_CHUNK):
                        out.write(block)
            count += 1
        if last is None:
            return count
