"""Clearing what a crash or an abandoned chunked upload left in an app's drive folders."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

from .bodies import TMP_PREFIX, unlink
from .names import drive_folder

UPLOADS_DIR = ".uploads"
# A temp file or an unlisted body this old belongs to no write still under way: a crash left it.
STALE_SECONDS = 3600
# An unfinished chunked upload this old is abandoned: dropped at the next start.
UPLOAD_TTL_SECONDS = 86400


def sweep(db: sqlite3.Connection, root: Path, now: float) -> None:
    """Remove what a crash or an abandoned upload left: temp files, bodies the index does
    not name, uploads older than a day."""
    old = db.execute(
        "DELETE FROM uploads WHERE created < ? RETURNING drive, id", (now - UPLOAD_TTL_SECONDS,)
    ).fetchall()
    for drive, upload_id in old:
        shutil.rmtree(root / drive_folder(drive) / UPLOADS_DIR / upload_id, ignore_errors=True)
    live_uploads = {r[0] for r in db.execute("SELECT id FROM uploads")}
    by_folder: dict[str, list[str]] = {}
    for (drive,) in db.execute("SELECT DISTINCT drive FROM files"):
        by_folder.setdefault(drive_folder(drive), []).append(drive)
    for (drive,) in db.execute("SELECT DISTINCT drive FROM uploads"):
        by_folder.setdefault(drive_folder(drive), [])
    for folder in root.iterdir():
        if not folder.is_dir() or folder.is_symlink():
            continue
        drives = by_folder.get(folder.name)
        bodies: set[str] = set()
        for drive in drives or ():
            rows = db.execute("SELECT body FROM files WHERE drive = ?", (drive,))
            bodies.update(r[0] for r in rows)
        for entry in folder.iterdir():
            if entry.name == UPLOADS_DIR:
                for upload in entry.iterdir():
                    if upload.name not in live_uploads and _stale(upload, now):
                        shutil.rmtree(upload, ignore_errors=True)
            elif entry.name.startswith(TMP_PREFIX) or _is_body(entry.name):
                if entry.name not in bodies and _stale(entry, now):
                    unlink(entry)
        if drives is None:
            with contextlib.suppress(OSError):  # only when nothing is left in it
                (folder / UPLOADS_DIR).rmdir()
            with contextlib.suppress(OSError):
                folder.rmdir()


def _is_body(name: str) -> bool:
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


def _stale(path: Path, now: float) -> bool:
    try:
        return path.lstat().st_mtime < now - STALE_SECONDS
    except FileNotFoundError:
        return False
