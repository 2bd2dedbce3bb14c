"""An app's Base and Drive data read from one zip file: an export (`export_zip`), an older
one, or Space's own (the layouts: `export_format`).

An import streams: it reads the zip one entry and one item at a time (`zipread`, `json_items`),
so memory stays flat whatever the zip holds. It runs in a worker thread, writes Base items in
batches, and names Drive files in batches on the event loop's thread (the Drive index belongs
to it), so the loop is never held for more than one short transaction.

An import checks before it writes: first every directory record (declared sizes against the
limits in `config/defaults.py`), then every entry it will import is read through once (the
bytes against their declared size and CRC-32). A zip that fails either check changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from runtime.cloud.base.errors import BaseError
from runtime.cloud.base.store import MAX_ITEM_BYTES, BaseDB, item_size
from runtime.cloud.data import AppData
from runtime.cloud.drive.bodies import new_body_name, unlink, write_body_from
from runtime.cloud.drive.names import drive_problem, name_problem
from runtime.cloud.drive.store import DriveStore
from runtime.cloud.export_format import (
    MARKER,
    MAX_MARKER_BYTES,
    VERSION,
    Destination,
    destination_of,
    marker_version,
)
from runtime.cloud.json_items import BrokenDocument, Unreadable, document_items, line_items
from runtime.cloud.zipread import Entry, ZipProblem, ZipReader
from runtime.config import defaults
from runtime.errors import SpaceDevError

T = TypeVar("T")

_ITEM_BATCH = 500  # items per Base transaction while importing...
_ITEM_BATCH_BYTES = 4 << 20  # ...or fewer, once their text is this long
_ITEMS_PER_BREATH = 32  # items parsed between two chances for the loop to take the GIL
_FILE_BATCH = 64  # Drive files named per index transaction (on the loop: keep it short)
# An item's compact UTF-8 is at most five times its JSON text (a 4-byte character, `1e15`
# written 1000000000000000.0): below this, measuring it (one more encoding) is skipped.
_SURELY_SMALL = MAX_ITEM_BYTES // 5
_MAX_REPORTED = 100  # lines of what was not imported; past that, only counted
_MAX_NAMES = 1000  # Bases and Drives counted by name in a report; past that, together


@dataclass(frozen=True)
class ImportLimits:
    """What an import may unpack to (the defaults are `config/defaults.py`'s)."""

    entry_bytes: int = defaults.IMPORT_MAX_ENTRY_BYTES
    total_bytes: int = defaults.IMPORT_MAX_TOTAL_BYTES
    ratio: int = defaults.IMPORT_MAX_RATIO
    ratio_from: int = defaults.IMPORT_RATIO_FROM_BYTES
    item_text: int = defaults.IMPORT_MAX_ITEM_TEXT


@dataclass
class ImportReport:
    """What an import took, and what it could not understand (with why)."""

    items: dict[str, int] = field(default_factory=dict)  # base -> items stored
    files: dict[str, int] = field(default_factory=dict)  # drive -> files stored
    skipped: list[str] = field(default_factory=list)  # "entry: why"
    other_items: int = 0  # in Bases past the first _MAX_NAMES
    other_files: int = 0
    more_skipped: int = 0  # past the first _MAX_REPORTED

    def stored(self, counts: dict[str, int], name: str, count: int) -> int:
        """Add `count` under `name`; what does not fit the report's names is returned."""
        if name in counts or len(counts) < _MAX_NAMES:
            counts[name] = counts.get(name, 0) + count
            return 0
        return count

    def skip(self, line: str) -> None:
        if len(self.skipped) < _MAX_REPORTED:
            self.skipped.append(line)
        else:
            self.more_skipped += 1

    @property
    def empty(self) -> bool:
        """Whether the import found no item and no file it could take."""
        return not (
            any(self.items.values())
            or any(self.files.values())
            or self.other_items
            or self.other_files
        )

    def nothing_said(self, name: str) -> tuple[str, str]:
        """The error for a zip with nothing to import: what, what was skipped, what to do."""
        skipped = "; ".join(self.skipped[:5])
        return (
            f"nothing to import in {name}: it holds no Base items and no Drive files"
            + (f" (skipped: {skipped})" if skipped else ""),
            "give a zip that `space-dev data export` or Space's own export wrote "
            "(bases/NAME.jsonl, drives/NAME/FILE)",
        )

    def finish(self) -> None:
        """Fold what was only counted into the lists a page or an API shows."""
        if self.more_skipped:
            self.skipped.append(f"and {self.more_skipped:,} more entries or items")
            self.more_skipped = 0

    def lines(self) -> list[str]:
        out = [
            f"base {name}: {_count(count, 'item')}" for name, count in sorted(self.items.items())
        ]
        if self.other_items:
            out.append(f"more Bases: {_count(self.other_items, 'item')}")
        out += [
            f"drive {name}: {_count(count, 'file')}" for name, count in sorted(self.files.items())
        ]
        if self.other_files:
            out.append(f"more Drives: {_count(self.other_files, 'file')}")
        out += [f"not imported: {line}" for line in self.skipped]
        return out or ["the file holds no Base or Drive data"]


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


# --- import ---------------------------------------------------------------------------------


async def import_zip(
    data: AppData, source: Path, limits: ImportLimits | None = None
) -> ImportReport:
    """Put every Base item and Drive file of the zip into the app's data (same keys and names
    are replaced); what is not understood is reported, never guessed at. A zip past the limits,
    or damaged, is refused whole (SpaceDevError) and nothing is written."""
    # Opened here, on the loop's thread: the Drive index is used from it alone; the Base file
    # on the app's Base thread, as opening it may wait for another process.
    base, drive = await data.open_base(), data.drive
    run = _Import(base, drive, asyncio.get_running_loop(), limits or ImportLimits())
    return await asyncio.to_thread(run.run, source)


class _Import:
    """One import, run in a worker thread."""

    def __init__(
        self, base: BaseDB, drive: DriveStore, loop: asyncio.AbstractEventLoop, limits: ImportLimits
    ) -> None:
        self.base = base
        self.drive = drive
        self._loop = loop
        self._limits = limits
        self.report = ImportReport()

    def run(self, source: Path) -> ImportReport:
        try:
            reader = ZipReader(source)
        except (OSError, ZipProblem) as err:
            why = err.message if isinstance(err, ZipProblem) else str(err)
            raise SpaceDevError(
                f"cannot read {source} as a zip file ({why})",
                "give the file `space-dev data export` or Space's own export wrote",
            ) from None
        with reader:
            try:
                current = self._check_directory(reader)
                self._check_entries(reader, current)
            except ZipProblem as err:
                raise SpaceDevError(
                    err.message,
                    err.hint
                    or (
                        "Nothing was imported. Export the data again, or check the zip with "
                        "`unzip -t`."
                    ),
                ) from None
            self._write(reader, current)
        self.report.finish()
        return self.report

    # --- the checks, before anything is written ----------------------------------------------

    def _check_directory(self, reader: ZipReader) -> bool:
        """Every record's declared size against the limits; True for a current export."""
        limits = self._limits
        total = 0
        current = False
        for entry in reader.entries():
            size = entry.size
            if size > limits.entry_bytes:
                raise _too_big(
                    reader,
                    entry.name,
                    f"would unpack to {_size(size)}, more than "
                    f"the {_size(limits.entry_bytes)} one entry may",
                )
            if size > limits.ratio_from and size > limits.ratio * max(entry.packed, 1):
                raise _too_big(
                    reader,
                    entry.name,
                    f"would unpack to {_size(size)} from "
                    f"{_size(entry.packed)}, more than {limits.ratio} times its "
                    "packed size (the limit against zip bombs)",
                )
            total += size
            if total > limits.total_bytes:
                raise _too_big(
                    reader,
                    entry.name,
                    f"brings what the zip unpacks to past "
                    f"{_size(limits.total_bytes)}, the most an import takes",
                )
            if entry.name == MARKER:
                current = self._read_marker(reader, entry)
        packed = max(reader.file_size, 1)
        if total > limits.ratio_from and total > limits.ratio * packed:
            raise _too_big(
                reader,
                None,
                f"would unpack to {_size(total)} from "
                f"{_size(reader.file_size)}, more than {limits.ratio} times its "
                "size (the limit against zip bombs)",
            )
        return current

    def _read_marker(self, reader: ZipReader, entry: Entry) -> bool:
        if entry.size > MAX_MARKER_BYTES:
            return False  # not ours: read as an older export, where it is skipped
        version = marker_version(b"".join(reader.chunks(entry)))
        if version is not None and version > VERSION:
            raise SpaceDevError(
                f"{reader.path.name} was exported by a newer space-dev (layout {version})",
                "Upgrade space-dev to import it.",
            )
        return version == VERSION

    def _check_entries(self, reader: ZipReader, current: bool) -> None:
        """Read every entry that will be imported through once: sizes and CRC-32."""
        for entry, _destination in self._destinations(reader, current, report=False):
            for _ in reader.chunks(entry):
                pass

    def _destinations(
        self, reader: ZipReader, current: bool, *, report: bool
    ) -> Iterator[tuple[Entry, Destination]]:
        for entry in reader.entries():
            if entry.is_dir or (current and entry.name == MARKER):
                continue
            destination = destination_of(entry.name, current)
            if isinstance(destination, str):
                if report:
                    self.report.skip(f"{entry.name}: {destination}")
                continue
            yield entry, destination

    # --- writing -----------------------------------------------------------------------------

    def _write(self, reader: ZipReader, current: bool) -> None:
        files = _FileBatch(self)
        try:
            for entry, destination in self._destinations(reader, current, report=True):
                if destination.is_base:
                    files.flush()
                    self._import_items(reader, entry, destination)
                else:
                    self._import_file(reader, entry, destination, files)
            files.flush()
        except BaseException as err:
            files.drop()
            # Past the checks, only a zip changed meanwhile or a full disk stops an import.
            if not isinstance(err, ZipProblem | BrokenDocument | OSError):
                raise
            what = err.message if isinstance(err, ZipProblem) else str(err)
            raise SpaceDevError(
                f"the import stopped: {what}",
                "What came before it in the zip is imported; import the zip "
                "again once the cause is fixed.",
            ) from None

    def _import_items(self, reader: ZipReader, entry: Entry, destination: Destination) -> None:
        where, base = entry.name, destination.store
        cap = self._limits.item_text
        if destination.lines:
            items: Iterator[tuple[int, Any, int]] = line_items(reader.chunks(entry), cap)
            label = "line"
        else:
            try:  # read through once first: broken syntax skips the whole file, as it did
                for number, _, _ in document_items(reader.chunks(entry), cap):
                    _let_the_loop_in(number)
            except BrokenDocument as err:
                self.report.skip(f"{where}: {err}")
                return
            items = document_items(reader.chunks(entry), cap)
            label = "item"
        batch = _ItemBatch(self, where, base, label)
        for number, item, text_size in items:
            _let_the_loop_in(number)
            if isinstance(item, Unreadable):
                self.report.skip(f"{where}: {label} {number}: {item.why}")
            elif not isinstance(item, dict):
                self.report.skip(f"{where}: {label} {number} is not an object")
            elif text_size > _SURELY_SMALL and item_size(item) > MAX_ITEM_BYTES:
                self.report.skip(
                    f"{where}: {label} {number} is larger than 400 KB, the most a Base item may be"
                )
            else:
                batch.add(number, item, text_size)
        batch.flush()
        self._count_items(base, batch.stored)

    def _import_file(
        self, reader: ZipReader, entry: Entry, destination: Destination, files: _FileBatch
    ) -> None:
        drive, name = destination.store, destination.file
        assert name is not None
        problem = drive_problem(drive) or name_problem(name)
        if problem:
            self.report.skip(f"{entry.name}: {problem}")
            return
        if files.drive != drive:
            files.flush()
            files.start(drive, self.drive.body_folder(drive))
        assert files.folder is not None
        body = new_body_name()
        size = write_body_from(files.folder, body, reader.chunks(entry))
        files.add(name, body, size)

    def on_loop(self, call: Callable[[], T]) -> T:
        """Run `call` on the event loop's thread and wait for it."""

        async def run() -> T:
            return call()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def _count_items(self, base: str, count: int) -> None:
        if count:
            self.report.other_items += self.report.stored(self.report.items, base, count)

    def count_files(self, drive: str, count: int) -> None:
        self.report.other_files += self.report.stored(self.report.files, drive, count)


class _ItemBatch:
    """Items put together, in one transaction each batch; a batch Base refuses is put one by
    one, so each refused item is reported with why."""

    def __init__(self, run: _Import, where: str, base: str, label: str) -> None:
        self._run = run
        self._where = where
        self._base = base
        self._label = label
        self._items: list[tuple[int, dict[str, Any]]] = []
        self._keys: set[str] = set()
        self._bytes = 0
        self.stored = 0

    def add(self, number: int, item: dict[str, Any], size: int) -> None:
        key = item.get("key")
        if isinstance(key, str) and key in self._keys:
            self.flush()  # a later item with the same key replaces the earlier, as puts do
        self._items.append((number, item))
        if isinstance(key, str):
            self._keys.add(key)
        self._bytes += size
        if len(self._items) >= _ITEM_BATCH or self._bytes >= _ITEM_BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._items:
            return
        db = self._run.base
        try:
            db.put_many(self._base, [item for _, item in self._items])
            self.stored += len(self._items)
        except BaseError:
            for number, item in self._items:
                try:
                    db.put_many(self._base, [item])
                    self.stored += 1
                except BaseError as err:
                    self._run.report.skip(
                        f"{self._where}: {self._label} {number}: {'; '.join(err.messages)}"
                    )
        self._items.clear()
        self._keys.clear()
        self._bytes = 0


class _FileBatch:
    """Drive bodies written but not yet named: named together, in one index transaction."""

    def __init__(self, run: _Import) -> None:
        self._run = run
        self.drive: str | None = None
        self.folder: Path | None = None
        self._files: list[tuple[str, str, int]] = []

    def start(self, drive: str, folder: Path) -> None:
        self.drive, self.folder = drive, folder

    def add(self, name: str, body: str, size: int) -> None:
        self._files.append((name, body, size))
        if len(self._files) >= _FILE_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self._files or self.drive is None:
            return
        files, drive, store = list(self._files), self.drive, self._run.drive
        self._run.on_loop(lambda: store.add_bodies(drive, files))
        self._files.clear()
        self._run.count_files(drive, len(files))

    def drop(self) -> None:
        """Remove the bodies no index names (an import that stopped)."""
        if self.folder is not None:
            for _, body, _ in self._files:
                unlink(self.folder / body)
        self._files.clear()


def _let_the_loop_in(number: int) -> None:
    # The event loop's thread waits for the GIL while this thread parses; left to itself, the
    # interpreter hands it over only every 5 ms (sys.getswitchinterval()). A sleep(0) now and
    # then hands it over at once when the loop waits, and costs next to nothing when not.
    if number % _ITEMS_PER_BREATH == 0:
        time.sleep(0)


def _too_big(reader: ZipReader, entry: str | None, what: str) -> SpaceDevError:
    subject = f"{entry} in {reader.path.name}" if entry else reader.path.name
    return SpaceDevError(
        f"{subject} {what}",
        "Nothing was imported. A genuine file this large or this compressible (mostly zeros, "
        "say) can go into the Drive directly: unzip it and upload it on the data page.",
    )


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
