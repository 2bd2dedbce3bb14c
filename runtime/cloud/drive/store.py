"""One app's Drives on disk: file bodies in a folder per drive, their names in a SQLite index."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import sqlite3
import time
from collections.abc import AsyncIterable, Iterable, Iterator
from pathlib import Path

from .bodies import join_parts, new_body_name, unlink, write_body
from .errors import BadName, DriveError, NoSuchUpload, TooLarge, UploadBusy
from .names import drive_folder, drive_problem, guess_type, name_problem, prefix_end
from .sweep import STALE_SECONDS, UPLOAD_TTL_SECONDS, UPLOADS_DIR, sweep

__all__ = [
    "BadName",
    "DriveError",
    "DriveStore",
    "NoSuchUpload",
    "STALE_SECONDS",
    "TooLarge",
    "UPLOAD_TTL_SECONDS",
    "UploadBusy",
]

INDEX_FILE = "index.sqlite3"
MAX_PART_NUMBER = 10_000  # S3's multipart limit; Deta's part-size rules were S3's too
LIST_LIMIT = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    drive TEXT NOT NULL,
    name BLOB NOT NULL,          -- UTF-8 bytes, so ORDER BY is byte order
    body TEXT NOT NULL,          -- the body's file name in the drive's folder
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    modified REAL NOT NULL,
    PRIMARY KEY (drive, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    drive TEXT NOT NULL,
    name BLOB NOT NULL,
    content_type TEXT,
    created REAL NOT NULL
);
"""

# The class has a method named `list`, which hides the builtin inside its body.
_Names = list[str]
_Keys = list[bytes]

# Where a dropped drive's folder waits to be deleted; a drive's folder never starts with `.`.
_DROPPED = ".dropped-"


class DriveStore:
    """The Drives of one app under `root`: `root/<drive folder>/<body id>` plus an index.

    Calls that move file bodies are coroutines and do their disk work in threads; the rest
    touch only the index and are quick. Use it from one event loop thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(root / INDEX_FILE, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Each write fsyncs the body before the index names it; NORMAL keeps the index
        # consistent after a power cut, at worst forgetting the last few puts.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._finishing: set[str] = set()
        sweep(self._db, self.root, time.time())

    def close(self) -> None:
        """Close the index."""
        self._db.close()

    # --- whole files ------------------------------------------------------------------------

    async def put(
        self,
        drive: str,
        name: str,
        stream: AsyncIterable[bytes],
        content_type: str | None = None,
        *,
        max_bytes: int | None = None,
    ) -> int:
        """Store `stream` as `name`, replacing any file of that name; returns the size.

        The body goes to a temp file that is fsynced and renamed before the index names it,
        so readers see the old file or the whole new one. Raises TooLarge past `max_bytes`."""
        key = _check(drive, name)
        folder = self._folder(drive, create=True)
        body = new_body_name()
        size = await write_body(folder, body, stream, max_bytes)
        try:
            self._commit(drive, key, body, size, content_type or guess_type(name))
        except BaseException:
            unlink(folder / body)
            raise
        return size

    def open(self, drive: str, name: str) -> tuple[Path, int, str] | None:
        """The body's path, size and content type, or None when there is no such file."""
        key = _check(drive, name)
        row = self._db.execute(
            "SELECT body, size, content_type FROM files WHERE drive = ? AND name = ?",
            (drive, key),
        ).fetchone()
        if row is None:
            return None
        return self._folder(drive) / row[0], row[1], row[2]

    def describe(self, drive: str, name: str) -> tuple[int, str, float] | None:
        """A file's size, content type and last change (epoch seconds), or None."""
        key = _check(drive, name)
        row = self._db.execute(
            "SELECT size, content_type, modified FROM files WHERE drive = ? AND name = ?",
            (drive, key),
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), float(row[2]))

    def totals(self, drive: str) -> tuple[int, int]:
        """How many files a Drive holds, and their bytes together."""
        _check_drive(drive)
        row = self._db.execute(
            "SELECT count(*), sum(size) FROM files WHERE drive = ?", (drive,)
        ).fetchone()
        return int(row[0]), int(row[1] or 0)

    def list(
        self,
        drive: str,
        prefix: str | None = None,
        limit: int = LIST_LIMIT,
        last: str | None = None,
        *,
        recursive: bool = True,
    ) -> tuple[_Names, str | None]:
        """Up to `limit` names after `last` starting with `prefix`, in byte order, and the
        name to pass as `last` for the next page (None when no more remain).

        With `recursive=False`, names in sub-folders of `prefix` collapse to one entry
        ending in `/`, as Deta's `recursive=false` listing did."""
        _check_drive(drive)
        if not 1 <= limit <= LIST_LIMIT:
            raise BadName(f"limit must be from 1 to {LIST_LIMIT}", "Ask for fewer names a page.")
        pre = (prefix or "").encode("utf-8")
        end = prefix_end(pre) if pre else None
        after, inclusive = b"", True
        if last:
            after, inclusive = last.encode("utf-8"), False
            if not recursive and after.endswith(b"/"):
                # The last entry was a folder: go past everything in it.
                after, inclusive = prefix_end(after) or after, True
        if pre and (after < pre or (after == pre and inclusive)):
            after, inclusive = pre, True
        if recursive:
            keys = self._names(drive, after, inclusive, end, limit + 1)
        else:
            keys = self._entries(drive, pre, after, inclusive, end, limit + 1)
        names = [k.decode("utf-8") for k in keys[:limit]]
        return names, (names[-1] if len(keys) > limit else None)

    def delete_many(self, drive: str, names: Iterable[str]) -> tuple[_Names, dict[str, str]]:
        """Delete files; returns (deleted, failed: name -> reason).

        As on Deta, a name with no file counts as deleted: the file is gone either way.
        Only invalid names fail."""
        _check_drive(drive)
        deleted: _Names = []
        failed: dict[str, str] = {}
        bodies: _Names = []
        seen: set[str] = set()
        with self._tx():
            for name in names:
                if name in seen:
                    continue
                seen.add(name)
                problem = name_problem(name)
                if problem:
                    failed[str(name)] = problem
                    continue
                row = self._db.execute(
                    "DELETE FROM files WHERE drive = ? AND name = ? RETURNING body",
                    (drive, name.encode("utf-8")),
                ).fetchone()
                if row:
                    bodies.append(row[0])
                deleted.append(name)
        folder = self._folder(drive)
        for body in bodies:
            unlink(folder / body)  # one missed here is unlisted and swept at the next start
        return deleted, failed

    # --- chunked uploads --------------------------------------------------------------------

    def start_upload(self, drive: str, name: str, content_type: str | None = None) -> str:
        """Begin a chunked upload of `name`; returns its id."""
        key = _check(drive, name)
        upload_id = secrets.token_hex(16)
        self._parts(drive, upload_id).mkdir(parents=True)
        self._db.execute(
            "INSERT INTO uploads (id, drive, name, content_type, created) VALUES (?, ?, ?, ?, ?)",
            (upload_id, drive, key, content_type, time.time()),
        )
        return upload_id

    async def put_part(
        self,
        drive: str,
        upload_id: str,
        name: str,
        part_number: int,
        stream: AsyncIterable[bytes],
        content_type: str | None = None,
        *,
        max_bytes: int | None = None,
    ) -> int:
        """Store part `part_number` (from 1) of an upload, replacing a part sent before under
        that number (a retry); returns its size."""
        self._upload(drive, upload_id, name)
        if not 1 <= part_number <= MAX_PART_NUMBER:
            raise BadName(
                f"part must be from 1 to {MAX_PART_NUMBER}", "Number the parts 1, 2, 3, ..."
            )
        parts = self._parts(drive, upload_id)
        try:
            await write_body(parts, f"{part_number:05d}", stream, max_bytes, durable=False)
        except FileNotFoundError:  # aborted while this part was on its way
            raise _no_upload(upload_id) from None
        if content_type:
            # Most SDKs send the file's content type with each part, not at the start.
            self._db.execute(
                "UPDATE uploads SET content_type = ? WHERE id = ?", (content_type, upload_id)
            )
        return part_number

    async def finish_upload(self, drive: str, upload_id: str, name: str) -> int:
        """Join the parts in number order into the file `name`; returns its size. No parts
        make an empty file."""
        row = self._upload(drive, upload_id, name)
        self._finishing.add(upload_id)
        try:
            folder = self._folder(drive, create=True)
            body = new_body_name()
            parts = self._parts(drive, upload_id)
            size = await asyncio.to_thread(join_parts, parts, folder, body)
            try:
                with self._tx():
                    self._db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
                    self._commit(drive, row[0], body, size, row[1] or guess_type(name), tx=False)
            except BaseException:
                unlink(folder / body)
                raise
            await asyncio.to_thread(shutil.rmtree, parts, True)
            return size
        finally:
            self._finishing.discard(upload_id)

    def abort_upload(self, drive: str, upload_id: str, name: str) -> None:
        """Drop an unfinished upload and its parts."""
        self._upload(drive, upload_id, name)
        self._db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
        shutil.rmtree(self._parts(drive, upload_id), ignore_errors=True)

    # --- many files at once (an import) --------------------------------------------------------

    def body_folder(self, drive: str) -> Path:
        """The folder `add_bodies` takes a drive's bodies from, made if need be; writing a
        body there (`bodies.write_body_from`) touches no index, so any thread may."""
        _check_drive(drive)
        return self._folder(drive, create=True)

    def add_bodies(self, drive: str, files: Iterable[tuple[str, str, int]]) -> None:
        """Name bodies already written to `body_folder(drive)`, as (name, body, size), in one
        transaction, replacing files of the same names; content types come from the names."""
        replaced: _Names = []
        with self._tx():
            for name, body, size in files:
                old = self._point(drive, _check(drive, name), body, size, guess_type(name))
                if old:
                    replaced.append(old)
        folder = self._folder(drive)
        for body in replaced:
            unlink(folder / body)

    # --- whole drives -----------------------------------------------------------------------

    def names(self) -> _Names:
        """The drives that hold files, sorted."""
        rows = self._db.execute("SELECT DISTINCT drive FROM files ORDER BY drive").fetchall()
        return [r[0] for r in rows]

    def drop(self, drive: str) -> None:
        """Delete a drive: its files and unfinished uploads. Its folder is only moved aside (one
        rename); `remove_dropped` deletes it, which takes as long as the files are many."""
        with self._tx():
            self._db.execute("DELETE FROM files WHERE drive = ?", (drive,))
            self._db.execute("DELETE FROM uploads WHERE drive = ?", (drive,))
        self._move_aside(self._folder(drive))

    def drop_all(self) -> None:
        """Delete every drive of the app (moved aside, as `drop` does)."""
        with self._tx():
            self._db.execute("DELETE FROM files")
            self._db.execute("DELETE FROM uploads")
        for entry in list(self.root.iterdir()):
            if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith(_DROPPED):
                self._move_aside(entry)

    def remove_dropped(self) -> None:
        """Delete the folders `drop` and `drop_all` moved aside (and any a crash left there).
        Blocking file work: the runtime calls it off the event loop."""
        for entry in self.root.glob(_DROPPED + "*"):
            shutil.rmtree(entry, ignore_errors=True)

    # --- inside -----------------------------------------------------------------------------

    def _move_aside(self, folder: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            folder.rename(self.root / f"{_DROPPED}{secrets.token_hex(8)}")

    def _folder(self, drive: str, create: bool = False) -> Path:
        folder = self.root / drive_folder(drive)
        if create:
            folder.mkdir(exist_ok=True)
        return folder

    def _parts(self, drive: str, upload_id: str) -> Path:
        return self._folder(drive) / UPLOADS_DIR / upload_id

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _commit(
        self, drive: str, key: bytes, body: str, size: int, ctype: str, tx: bool = True
    ) -> None:
        """Point `key` at a new body, then remove the one it replaced."""
        with self._tx() if tx else contextlib.nullcontext():
            old = self._point(drive, key, body, size, ctype)
        if old:
            # An open download keeps reading the old body: POSIX frees it at close.
            unlink(self._folder(drive) / old)

    def _point(self, drive: str, key: bytes, body: str, size: int, ctype: str) -> str | None:
        """Index `key` as `body`; the body it named before, if another (inside a transaction)."""
        old = self._db.execute(
            "SELECT body FROM files WHERE drive = ? AND name = ?", (drive, key)
        ).fetchone()
        self._db.execute(
            "INSERT OR REPLACE INTO files (drive, name, body, size, content_type, modified)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (drive, key, body, size, ctype, time.time()),
        )
        return old[0] if old and old[0] != body else None

    def _upload(self, drive: str, upload_id: str, name: str) -> tuple[bytes, str | None]:
        key = _check(drive, name)
        row = self._db.execute(
            "SELECT drive, name, content_type FROM uploads WHERE id = ?", (upload_id,)
        ).fetchone()
        if row is None or row[0] != drive or row[1] != key:
            raise _no_upload(upload_id)
        if upload_id in self._finishing:
            raise UploadBusy(
                f"upload {upload_id} is being completed", "Wait for the completing call."
            )
        return row[1], row[2]

    def _names(
        self, drive: str, after: bytes, inclusive: bool, end: bytes | None, count: int
    ) -> _Keys:
        sql = "SELECT name FROM files WHERE drive = ? AND name " + (">=" if inclusive else ">")
        args: tuple[object, ...] = (drive, after)
        sql += " ?"
        if end is not None:
            sql += " AND name < ?"
            args += (end,)
        sql += " ORDER BY name LIMIT ?"
        args += (count,)
        return [r[0] for r in self._db.execute(sql, args)]

    def _entries(
        self, drive: str, pre: bytes, after: bytes, inclusive: bool, end: bytes | None, count: int
    ) -> _Keys:
        """Names directly under `pre`, with each sub-folder once as `pre/sub/`: one index
        seek per entry, skipping a folder's files by seeking past the folder."""
        out: _Keys = []
        while len(out) < count:
            found = self._names(drive, after, inclusive, end, 1)
            if not found:
                break
            key = found[0]
            cut = key.find(b"/", len(pre))
            if cut < 0:
                out.append(key)
                after, inclusive = key, False
            else:
                folder = key[: cut + 1]
                out.append(folder)
                after, inclusive = prefix_end(folder) or folder, True
        return out


def _check_drive(drive: str) -> None:
    problem = drive_problem(drive)
    if problem:
        raise BadName(problem, "Use a non-empty drive name.")


def _check(drive: str, name: str) -> bytes:
    _check_drive(drive)
    problem = name_problem(name)
    if problem:
        raise BadName(problem, "Use a non-empty file name that does not end with '/'.")
    return name.encode("utf-8")


def _no_upload(upload_id: str) -> NoSuchUpload:
    return NoSuchUpload(
        f"no upload {upload_id} for this file",
        "Start a chunked upload with POST /uploads?name=... and use the upload_id it returns.",
    )
