"""Deta Base storage: one SQLite file per app holding all its Bases, behind a small interface.

SQLite in WAL mode won the measurement in bench/base_store.py against TinyDB, which rewrites its
whole JSON file on every write. Each method is one short transaction under a lock, so a BaseDB
may be shared by threads. An event loop first tries a single-item call with `now`, which runs
it at once on a connection of its own when nothing holds the database, and otherwise hands it
to the database's own `worker` thread, never the event loop's shared pool: calls waiting for
one app's lock then queue there, instead of taking the threads every other app and the login's
password hashing need. Query pages always run on the worker.

A query page ends after `SCAN_BYTES` read, as Deta's did, or after `BASE_PAGE_SECONDS` of
scanning, whichever comes first; the lock is let go between pages, so a costly query delays the
app's other calls by one page at most. A page with conditions is pre-filtered by SQLite
(`query_sql`), so only the rows that may match are decoded and tested in Python.

Durability: WAL with `synchronous=NORMAL`. A commit is in the WAL, in the OS's hands, before the
call returns, so a crash of the process loses no acknowledged write; a power cut may lose the
last commits before a checkpoint, never the file's consistency. `full_sync=True` (FULL) adds an
fsync to every commit for that guarantee, which a local development runtime does not need by
default (the bench prints both).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.cloud.base.errors import BaseError
from runtime.cloud.base.query import PreparedQuery, prepare_query
from runtime.cloud.base.query_sql import Fragment, prefilter
from runtime.cloud.base.update import apply_steps, check_update
from runtime.config.defaults import BASE_PAGE_SECONDS
from runtime.errors import SpaceDevError

Item = dict[str, Any]

APPLICATION_ID = 0x53444253  # "SDBS": marks the file as ours, so a foreign database is refused
SCHEMA_VERSION = 2  # 2: each item's size, in an index a page's budget is summed from
EXPIRES = "__expires"
KEY_ALPHABET = string.ascii_lowercase + string.digits
KEY_LENGTH = 12
MAX_ITEM_BYTES = 400 * 1024
# Deta read up to 1 MB of items before applying the query, then answered with what matched and
# the last key it read; doing the same keeps every query call short and pages like Deta's did.
SCAN_BYTES = 1024 * 1024
SWEEP_SECONDS = 60.0
# A filtered page's chunks of rows (see `_FilteredScan`): the first of one row, as a
# page out of time has read, then each up to this many times the one before, and at most
# `CHUNK_ROWS`: the last chunk's end is found by reading its keys, past the page's last match.
CHUNK_GROWTH = 8
CHUNK_ROWS = 4096
# Writes on the event loop's connection between two checkpoints, which the worker runs: about
# the WAL pages after which SQLite's own automatic checkpoint would have run.
CHECKPOINT_WRITES = 300
# The single calls `BaseDB.now` runs on the caller's thread, and those of them that write.
QUICK_CALLS = frozenset({"get_text", "put_prepared", "insert_prepared", "delete", "update"})
_WRITES = QUICK_CALLS - {"get_text"}
NOT_NOW: Any = object()

# Schema 2: the items are the table's own key order (WITHOUT ROWID), so a page reads them in
# sequence rather than each through an index; each item's size is in an index that holds all a
# page needs to sum its budget, without reading the items.
_TABLE = """
CREATE TABLE {name} (
    base TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires REAL,
    size INTEGER NOT NULL,
    PRIMARY KEY (base, key)
) WITHOUT ROWID
"""
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS items_expires ON items (expires) WHERE expires IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS items_sizes ON items (base, key, size, expires)",
)
_VISIBLE = "(expires IS NULL OR expires > ?)"
_UPSERT = (
    "INSERT INTO items (base, key, value, expires, size) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (base, key) DO UPDATE SET value = excluded.value, expires = excluded.expires, "
    "size = excluded.size"
)
# An overwrite that leaves the size and expiry as they were sets the text alone: SQLite
# rewrites a row's index entries whenever a statement assigns an indexed column, even to the
# value it had, which costs a single write about as much again. Changes nothing otherwise.
_OVERWRITE_TEXT = (
    "INSERT INTO items (base, key, value, expires, size) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (base, key) DO UPDATE SET value = excluded.value "
    "WHERE items.size = excluded.size AND items.expires IS excluded.expires"
)


def new_key() -> str:
    """A random 12-character key of lowercase letters and digits, as Deta generated."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


def item_size(item: Item) -> int:
    """The size of an item as compact UTF-8 JSON, the measure of the 400 KB limit."""
    text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


# ASCII-only JSON: a lone surrogate from a client's JSON cannot break SQLite's UTF-8. One
# encoder for every call: `json.dumps` with options makes a new one each time.
_encode = json.JSONEncoder(separators=(",", ":")).encode


def _expires(item: Item) -> float | None:
    value = item.get(EXPIRES)
    # Deta documents `__expires` as a Unix time, a number; anything else never expires.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass(frozen=True, slots=True)
class Prepared:
    """An item ready to store: with its key (made when it had none) and its stored text."""

    item: Item
    key: str
    text: str  # ASCII JSON, never shorter than the item's UTF-8 JSON (`item_size`)
    expires: float | None

    def row(self, base: str) -> tuple[str, str, str, float | None, int]:
        """The values of its row in `items`, in `_UPSERT`'s order."""
        return (base, self.key, self.text, self.expires, len(self.text))


def prepare_item(item: Any) -> Prepared:
    """The item as it will be stored; BaseError(400) when it is no object or its key no text."""
    if not isinstance(item, dict):
        raise BaseError(400, "An item must be a JSON object")
    item = dict(item)
    if item.get("key", "") == "":  # absent or empty: generate one (the SDKs drop an empty key)
        item["key"] = new_key()
    key = _check_key(item["key"])
    return Prepared(item, key, _encode(item), _expires(item))


def prepare_items(items: list[Any]) -> list[Prepared]:
    """`prepare_item` of each; BaseError(400) when two have the same key."""
    prepared = [prepare_item(item) for item in items]
    if len({entry.key for entry in prepared}) != len(prepared):
        raise BaseError(400, "Two items in one request have the same key")
    return prepared


def _busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _check_key(key: Any) -> str:
    if not isinstance(key, str):
        raise BaseError(400, "Key must be a string")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise BaseError(400, "Key must be valid Unicode text") from None
    return key


class _Page:
    """What one query page reads: the Base, where it starts, its order and its budget."""

    def __init__(
        self,
        base: str,
        query: PreparedQuery,
        limit: int,
        last: str | None,
        sort: str,
        scan_bytes: int,
        now: float,
    ) -> None:
        self.base = base
        self.query = query
        self.limit = limit
        self.last = last
        self.scan_bytes = scan_bytes
        self.now = now
        self.ascending = sort == "asc"
        self.order = "ASC" if self.ascending else "DESC"
        self.after = ">" if self.ascending else "<"  # past a key, in the page's order
        self.upto = "<=" if self.ascending else ">="
        self.all_live = False  # no item is expired: the rows need no test of `expires`

    def where(self, after: str | None = None, upto: str | None = None) -> tuple[str, list[Any]]:
        """The rows of the page, or of its part past `after` and up to `upto` (keys read, in the
        page's order), as SQL and its parameters.

        Each side has one bound only: SQLite seeks an index by one lower and one upper bound,
        and tests any other row by row, so a chunk bounded by `last` and by `after` would be
        read from `last` on. `after` and `upto` lie within the others, so they replace them."""
        where = ["base = ?"] if self.all_live else ["base = ?", _VISIBLE]
        params: list[Any] = [self.base] if self.all_live else [self.base, self.now]
        lower: list[tuple[str, str]] = []  # (operator, key) on each side of the key order
        upper: list[tuple[str, str]] = []
        bounds = self.query.key_range
        if bounds is not None:
            # SQLite compares TEXT by its UTF-8 bytes: the key order the query module assumes.
            if bounds.lo is not None:
                lower.append((">=" if bounds.lo_inclusive else ">", bounds.lo))
            if bounds.hi is not None:
                upper.append(("<=" if bounds.hi_inclusive else "<", bounds.hi))
        start, end = (lower, upper) if self.ascending else (upper, lower)
        if self.last is not None:
            start.append((self.after, self.last))
        if after is not None:
            start[:] = [(self.after, after)]
        if upto is not None:
            end[:] = [(self.upto, upto)]
        for operator, key in lower + upper:
            where.append(f"key {operator} ?")
            params.append(key)
        return " AND ".join(where), params


class _FilteredScan:
    """One filtered page read in chunks of rows, and what it has read so far.

    The matches of a chunk are read first, stopping at the one that fills the page; then SQLite
    sums the sizes of the rows up to there (or of the whole chunk) from the size index: within
    the page's budget, the matches stand; else the rows are walked to the one the budget runs
    out at, which ends the page, and only the matches up to it are kept."""

    def __init__(
        self, db: sqlite3.Connection, page: _Page, found: Fragment, deadline: float
    ) -> None:
        self.db = db
        self.page = page
        self.found = found
        self.deadline = deadline
        self.items: list[Item] = []  # the matches kept so far, in the page's order
        self.scanned = 0  # bytes of the chunks taken whole
        self.rows = 0  # rows of the chunks taken whole
        self.size = 1  # rows in the next chunk
        self.after: str | None = None  # the last key of the chunks taken whole

    def answer(self) -> tuple[list[Item], str | None]:
        """The page's items and the key to continue after (or None)."""
        self.db.execute("BEGIN")  # one snapshot for the page's several statements
        try:
            self._note_expiry()
            while True:
                answer = self._next_chunk()
                if answer is not None:
                    return answer
        finally:
            self.db.execute("COMMIT")

    def _note_expiry(self) -> None:
        # In the usual case nothing has expired: one look at the expiry index spares every row
        # the test.
        soonest = self.db.execute(
            "SELECT min(expires) FROM items WHERE expires IS NOT NULL"
        ).fetchone()[0]
        self.page.all_live = soonest is None or soonest > self.page.now

    def _next_chunk(self) -> tuple[list[Item], str | None] | None:
        """Reads the next chunk: the page's answer, or None when the page goes on past it."""
        end = self._chunk_end()
        where, params = self.page.where(self.after, end)
        matched, full_at = self._matches(where, params)
        if full_at is not None:
            return self._filled(where, params, matched, full_at)
        return self._taken_whole(where, params, end, matched)

    def _chunk_end(self) -> str | None:
        """The next chunk's last key, from the index alone; None: all that is left."""
        where, params = self.page.where(self.after)
        last_row = self.db.execute(
            f"SELECT key FROM items INDEXED BY items_sizes WHERE {where} "
            f"ORDER BY key {self.page.order} LIMIT 1 OFFSET ?",
            [*params, self.size - 1],
        ).fetchone()
        return None if last_row is None else last_row[0]

    def _matches(
        self, where: str, params: list[Any]
    ) -> tuple[list[tuple[str, Item]], tuple[str, int] | None]:
        """The chunk's matches as (key, item) in the page's order, and the (key, size) of the
        match past the page's limit, if the chunk holds one."""
        match = self.page.query.matches
        room = self.page.limit - len(self.items)
        matched: list[tuple[str, Item]] = []
        for key, length, value in self.db.execute(
            f"SELECT key, size, value FROM items WHERE {where} AND {self.found.sql} "
            f"ORDER BY key {self.page.order}",
            [*params, *self.found.params],
        ):
            item = json.loads(value)
            if match(item):
                if len(matched) == room:
                    return matched, (key, length)
                matched.append((key, item))
        return matched, None

    def _filled(
        self,
        where: str,
        params: list[Any],
        matched: list[tuple[str, Item]],
        full_at: tuple[str, int],
    ) -> tuple[list[Item], str | None]:
        """The page is full if the budget lasts up to the match past its limit: that match is
        read, and it says a further match exists. Else the budget runs out before it."""
        upto, upto_params = self.page.where(self.after, full_at[0])
        (total,) = self.db.execute(
            f"SELECT total(size) FROM items INDEXED BY items_sizes WHERE {upto}",
            upto_params,
        ).fetchone()
        if self.scanned + total - full_at[1] < self.page.scan_bytes:
            self.items += [item for _, item in matched]
            return self.items, self.items[-1]["key"]
        return self._budget_end(where, params, matched)

    def _taken_whole(
        self, where: str, params: list[Any], end: str | None, matched: list[tuple[str, Item]]
    ) -> tuple[list[Item], str | None] | None:
        """A chunk without a match past the limit: all its matches are kept if the budget lasts
        past it (the next row is read too); None when the page goes on to the next chunk."""
        total, count = self.db.execute(
            f"SELECT total(size), count(*) FROM items INDEXED BY items_sizes WHERE {where}",
            params,
        ).fetchone()
        if count == 0:
            return self.items, None
        if self.scanned + total >= self.page.scan_bytes:
            return self._budget_end(where, params, matched)
        self.items += [item for _, item in matched]
        if end is None:
            return self.items, None  # no row is left
        self.scanned += total
        self.rows += count
        if time.monotonic() >= self.deadline:
            return self.items, end if self._more_after(end) else None
        self.after = end
        # Aim at what is left of the budget, by the rows' size so far.
        left = (self.page.scan_bytes - self.scanned) * self.rows / max(self.scanned, 1)
        self.size = max(1, min(self.size * CHUNK_GROWTH, int(left * 0.9), CHUNK_ROWS))
        return None

    def _budget_end(
        self, where: str, params: list[Any], matched: list[tuple[str, Item]]
    ) -> tuple[list[Item], str | None]:
        """The budget runs out in this chunk: the row it runs out at is the page's last."""
        scanned = self.scanned
        stop = None
        for key, length in self.db.execute(
            f"SELECT key, size FROM items INDEXED BY items_sizes WHERE {where} "
            f"ORDER BY key {self.page.order}",
            params,
        ):
            scanned += length
            if scanned >= self.page.scan_bytes:
                stop = key
                break
        assert stop is not None
        self.scanned = scanned
        # Keys compare in Python as in SQLite: code points order as UTF-8 bytes do.
        ascending = self.page.ascending
        self.items += [item for key, item in matched if (key <= stop if ascending else key >= stop)]
        return self.items, stop if self._more_after(stop) else None

    def _more_after(self, key: str) -> bool:
        where, params = self.page.where(key)
        return (
            self.db.execute(f"SELECT 1 FROM items WHERE {where} LIMIT 1", params).fetchone()
            is not None
        )


class BaseDB:
    """One app's Bases in one SQLite file: items by (base, key), JSON values, expiry."""

    def __init__(
        self,
        path: Path,
        clock: Callable[[], float] = time.time,
        *,
        full_sync: bool = False,
        timeout: float = 5.0,
        worker: ThreadPoolExecutor | None = None,
    ) -> None:
        self.path = Path(path)
        self._full_sync = full_sync
        self._clock = clock
        self._lock = threading.Lock()
        # One thread: the calls are serialised by the lock anyway, and this way one app's
        # backlog holds one thread, not a share of a pool others use. Started on first use.
        self.worker = worker or ThreadPoolExecutor(1, thread_name_prefix="base")
        self._next_sweep = 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each statement commits alone unless a method opens a transaction itself.
        # `timeout` is how long a call waits for another process (a CLI command) to let go.
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=timeout
        )
        # The event loop's own connection (`now`): it never waits for another process, and
        # leaves checkpoints (which sync the file) to the worker thread.
        self._quick: sqlite3.Connection | None = None
        self._quick_writes = 0
        self._upkeep_queued = False
        try:
            self._open()
            self._quick = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=0
            )
            self._quick.execute("PRAGMA wal_autocheckpoint = 0")
            self._quick.execute(f"PRAGMA synchronous = {'FULL' if full_sync else 'NORMAL'}")
        except sqlite3.OperationalError as error:  # locked, unreadable: the file may be fine
            self._db.close()
            raise SpaceDevError(
                f"Could not open the Base database {self.path}: {error}",
                "Check its permissions, or whether another program holds it, and try again.",
            ) from None
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise SpaceDevError(
                f"{self.path} is not a Base database ({error})",
                "Move the file away; the runtime will start a new, empty one.",
            ) from None
        except BaseException:
            self._db.close()
            if self._quick is not None:
                self._quick.close()
            raise

    def _open(self) -> None:
        # Check whose file this is before changing anything in it (WAL mode is a change).
        app_id = self._db.execute("PRAGMA application_id").fetchone()[0]
        tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != APPLICATION_ID and (app_id != 0 or tables):
            raise SpaceDevError(
                f"{self.path} is a SQLite file of another program, not a Base database",
                "Move the file away; the runtime will start a new, empty one.",
            )
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SpaceDevError(
                f"{self.path} was written by a newer space-dev (schema {version})",
                "Upgrade space-dev to open it.",
            )
        try:  # SQLite's JSON functions, built in since 3.38 and in most builds before
            self._has_json = self._db.execute("SELECT json_type('{}')").fetchone() is not None
        except sqlite3.OperationalError:
            self._has_json = False
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute(f"PRAGMA synchronous = {'FULL' if self._full_sync else 'NORMAL'}")
        with self._transaction():
            tables = {
                row[0]
                for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if "items" not in tables:
                self._db.execute(_TABLE.format(name="items"))
            elif version < 2:  # schema 1: a rowid table with no sizes; copied over once
                self._db.execute("DROP INDEX IF EXISTS items_expires")
                self._db.execute(_TABLE.format(name="items_2"))
                self._db.execute(
                    "INSERT INTO items_2 (base, key, value, expires, size) "
                    "SELECT base, key, value, expires, length(value) FROM items"
                )
                self._db.execute("DROP TABLE items")
                self._db.execute("ALTER TABLE items_2 RENAME TO items")
            for statement in _INDEXES:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self, db: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock at once, so a read-then-write never meets a writer midway.
        db = db or self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _sweep(self, now: float) -> None:
        # Expired items are invisible at once; removing them now and then keeps the file small.
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            self._db.execute("DELETE FROM items WHERE expires IS NOT NULL AND expires <= ?", (now,))

    # --- single calls: each `_name(db, ...)` runs on one connection, under the lock ------------

    def now(self, name: str, *args: Any) -> Any:
        """`_name(*args)` of `QUICK_CALLS` on the caller's thread, at once, or `NOT_NOW` when it
        would wait: for the lock (a query page or another call under way) or for another
        process holding the file. An event loop calls this first, the worker only if it must."""
        assert name in QUICK_CALLS, name
        if self._quick is None or not self._lock.acquire(blocking=False):
            return NOT_NOW
        try:
            result = getattr(self, f"_{name}")(self._quick, *args)
        except sqlite3.OperationalError as error:
            if _busy(error):
                return NOT_NOW  # nothing was done: the statement or its BEGIN was refused
            raise
        finally:
            self._lock.release()
        if name in _WRITES:
            self._after_quick_write()
        return result

    def _after_quick_write(self) -> None:
        # Syncing the file (a checkpoint) and sweeping expired items are left to the worker:
        # either may take a while, and the caller is an event loop.
        self._quick_writes += 1
        due = self._quick_writes >= CHECKPOINT_WRITES or self._clock() >= self._next_sweep
        if due and not self._upkeep_queued:
            self._upkeep_queued = True
            try:
                self.worker.submit(self._upkeep)
            except RuntimeError:  # closing: the next open checkpoints
                pass

    def _upkeep(self) -> None:
        # A checkpoint syncs the WAL and the file: milliseconds, which calls on the event loop
        # would wait out on the worker if the lock were held for all of it. So most of it runs
        # first without the lock, on a connection of its own, while they go on writing; then,
        # under the lock, the frames written meanwhile are folded in (a checkpoint that writes
        # meanwhile cannot finish, and the WAL would grow), and one small write starts the WAL
        # over here, so that the sync of its new header does not fall on the event loop.
        with self._lock:
            self._sweep(self._clock())
            due = self._quick_writes >= CHECKPOINT_WRITES
            if not due:
                self._upkeep_queued = False
                return
        try:
            alone = sqlite3.connect(self.path, isolation_level=None, timeout=0)
            try:
                alone.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                alone.close()
        except sqlite3.Error:  # another process checkpoints, say: the one below will do
            pass
        with self._lock:
            self._upkeep_queued = False
            if self._quick is None:  # closed meanwhile
                return
            self._quick_writes = 0
            busy, frames, folded = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy and frames > 0 and frames == folded:
                # Rewrites the header's page as it is: the next write restarts the WAL.
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def put_many(self, base: str, items: list[Any]) -> list[Item]:
        """Store items, replacing those with the same keys; all or none. Return them as stored."""
        prepared = prepare_items(items)
        rows = [entry.row(base) for entry in prepared]
        with self._lock, self._transaction() as db:
            db.executemany(_UPSERT, rows)
            self._sweep(self._clock())
        return [entry.item for entry in prepared]

    def put_prepared(self, base: str, prepared: list[Prepared]) -> None:
        """`put_many` of items already through `prepare_items`."""
        with self._lock:
            self._put_prepared(self._db, base, prepared)

    def _put_prepared(self, db: sqlite3.Connection, base: str, prepared: list[Prepared]) -> None:
        rows = [entry.row(base) for entry in prepared]
        if len(rows) == 1:
            # One statement commits alone: a new key or the same size and expiry, at once;
            # else the row is overwritten whole by a second one.
            if db.execute(_OVERWRITE_TEXT, rows[0]).rowcount == 0:
                db.execute(_UPSERT, rows[0])
            return
        with self._transaction(db):
            db.executemany(_UPSERT, rows)

    def insert(self, base: str, item: Any) -> Item:
        """Store a new item; raise BaseError(409) if a live item has its key."""
        prepared = prepare_item(item)
        self.insert_prepared(base, prepared)
        return prepared.item

    def insert_prepared(self, base: str, prepared: Prepared) -> None:
        """`insert` of an item already through `prepare_item`."""
        with self._lock:
            self._insert_prepared(self._db, base, prepared)

    def _insert_prepared(self, db: sqlite3.Connection, base: str, prepared: Prepared) -> None:
        # An expired item is gone as far as anyone can tell, so its key is free again.
        cursor = db.execute(
            "INSERT INTO items (base, key, value, expires, size) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (base, key) DO UPDATE SET value = excluded.value, "
            "expires = excluded.expires, size = excluded.size "
            "WHERE items.expires IS NOT NULL AND items.expires <= ?",
            (*prepared.row(base), self._clock()),
        )
        if cursor.rowcount == 0:
            raise BaseError(409, "Key already exists")

    def get(self, base: str, key: str) -> Item | None:
        """The live item with this key, or None."""
        text = self.get_text(base, key)
        return json.loads(text) if text is not None else None

    def get_text(self, base: str, key: str) -> str | None:
        """The live item with this key as stored, JSON text, or None."""
        with self._lock:
            return self._get_text(self._db, base, key)

    def _get_text(self, db: sqlite3.Connection, base: str, key: str) -> str | None:
        row = db.execute(
            f"SELECT value FROM items WHERE base = ? AND key = ? AND {_VISIBLE}",
            (base, key, self._clock()),
        ).fetchone()
        return row[0] if row else None

    def delete(self, base: str, key: str) -> None:
        """Remove the item with this key, if there is one."""
        with self._lock:
            self._delete(self._db, base, key)

    def _delete(self, db: sqlite3.Connection, base: str, key: str) -> None:
        db.execute("DELETE FROM items WHERE base = ? AND key = ?", (base, key))

    def update(self, base: str, key: str, updates: Any) -> None:
        """Apply a PATCH body to a live item; BaseError(400) if invalid, (404) if no such item."""
        with self._lock:
            self._update(self._db, base, key, updates)

    def _update(self, db: sqlite3.Connection, base: str, key: str, updates: Any) -> None:
        steps = check_update(updates)
        # Read, then write only if the item is still as read: two statements, no transaction
        # of its own. Another process that changed the item in between makes it go again,
        # read and write in one transaction.
        row = db.execute(
            f"SELECT value, expires, size FROM items WHERE base = ? AND key = ? AND {_VISIBLE}",
            (base, key, self._clock()),
        ).fetchone()
        if row is None:
            raise BaseError(404, "Key not found")
        text, expires, size = self._updated(row[0], steps)
        if (expires, size) == (row[1], row[2]):
            # The indexed columns as they were: assigned, they would cost a rewrite of the
            # row's index entries (see `_OVERWRITE_TEXT`).
            changed = db.execute(
                "UPDATE items SET value = ? WHERE base = ? AND key = ? AND value = ?",
                (text, base, key, row[0]),
            ).rowcount
        else:
            changed = db.execute(
                "UPDATE items SET value = ?, expires = ?, size = ? "
                "WHERE base = ? AND key = ? AND value = ?",
                (text, expires, size, base, key, row[0]),
            ).rowcount
        if changed:
            return
        with self._transaction(db):
            row = db.execute(
                f"SELECT value FROM items WHERE base = ? AND key = ? AND {_VISIBLE}",
                (base, key, self._clock()),
            ).fetchone()
            if row is None:
                raise BaseError(404, "Key not found")
            db.execute(
                "UPDATE items SET value = ?, expires = ?, size = ? WHERE base = ? AND key = ?",
                (*self._updated(row[0], steps), base, key),
            )

    @staticmethod
    def _updated(
        value: str, steps: list[tuple[str, tuple[str, ...], Any]]
    ) -> tuple[str, float | None, int]:
        """The stored text, expiry and size of an item after `steps`."""
        item = apply_steps(json.loads(value), steps)
        text = _encode(item)
        if len(text) > MAX_ITEM_BYTES and item_size(item) > MAX_ITEM_BYTES:
            raise BaseError(400, "The updated item would exceed 400 KB")
        return text, _expires(item), len(text)

    def query(
        self,
        base: str,
        query: Any = None,
        limit: int = 1000,
        last: str | None = None,
        sort: str = "asc",
        scan_bytes: int = SCAN_BYTES,
        scan_seconds: float = BASE_PAGE_SECONDS,
        *,
        prefilter_in_sql: bool = True,
    ) -> tuple[list[Item], str | None]:
        """A page of live matching items in key order, and the key to continue after (or None).

        The page ends early, with the last key read, once `scan_bytes` were read or
        `scan_seconds` spent; at least one item is read, so paging always moves on. The items
        are the same with `prefilter_in_sql` or without (it only makes a filtered page faster)."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise BaseError(400, "limit must be a whole number of at least 1")
        if last is not None and not isinstance(last, str):
            raise BaseError(400, "last must be a string key")
        if sort not in ("asc", "desc"):
            raise BaseError(400, 'sort must be "asc" or "desc"')
        prepared = prepare_query(query)  # once for the page: refused before any scan
        page = _Page(base, prepared, limit, last or None, sort, scan_bytes, self._clock())
        found = prefilter(prepared.groups) if prefilter_in_sql and self._has_json else None
        with self._lock:
            deadline = time.monotonic() + scan_seconds
            if found is not None and scan_bytes > 0:
                try:
                    return self._filtered_page(page, found, deadline)
                except sqlite3.OperationalError as error:
                    # Text SQLite's JSON reader refuses (Python wrote Infinity for 1e999):
                    # the page is read again in Python, from its start.
                    if "malformed JSON" not in str(error):
                        raise
                    page.all_live = False  # known only within the page's snapshot, now over
            return self._scanned_page(page, deadline)

    def _scanned_page(self, page: _Page, deadline: float) -> tuple[list[Item], str | None]:
        """Every item of the page read and tested in Python."""
        match = page.query.matches
        items: list[Item] = []
        last_read: str | None = None
        scanned = 0
        where, params = page.where()
        cursor = self._db.execute(
            f"SELECT key, value FROM items WHERE {where} ORDER BY key {page.order}", params
        )
        try:
            for key, value in cursor:
                if scanned >= page.scan_bytes or (scanned and time.monotonic() >= deadline):
                    return items, last_read  # more rows remain unread: page like Deta
                scanned += len(value)
                item = json.loads(value)
                if match(item):
                    if len(items) == page.limit:
                        return items, items[-1]["key"]  # a further match exists
                    items.append(item)
                last_read = key
            return items, None
        finally:
            cursor.close()

    def _filtered_page(
        self, page: _Page, found: Fragment, deadline: float
    ) -> tuple[list[Item], str | None]:
        """The same page as `_scanned_page`, where only the rows the SQL pre-filter lets
        through are read in Python (see `_FilteredScan`)."""
        return _FilteredScan(self._db, page, found, deadline).answer()

    def names(self) -> list[str]:
        """The names of the Bases that hold live items, sorted."""
        names = []
        with self._lock:
            now = self._clock()
            row = self._db.execute("SELECT min(base) FROM items").fetchone()
            # One index seek per Base rather than a scan of every item.
            while row is not None and row[0] is not None:
                name = row[0]
                live = self._db.execute(
                    f"SELECT 1 FROM items WHERE base = ? AND {_VISIBLE} LIMIT 1", (name, now)
                ).fetchone()
                if live:
                    names.append(name)
                row = self._db.execute(
                    "SELECT min(base) FROM items WHERE base > ?", (name,)
                ).fetchone()
        return names

    def count(self, base: str) -> int:
        """How many live items a Base holds."""
        with self._lock:
            row = self._db.execute(
                f"SELECT count(*) FROM items WHERE base = ? AND {_VISIBLE}", (base, self._clock())
            ).fetchone()
        return int(row[0])

    def size(self, base: str) -> int:
        """How many bytes a Base's live items take as stored JSON."""
        with self._lock:
            row = self._db.execute(
                f"SELECT sum(length(CAST(value AS BLOB))) FROM items WHERE base = ? AND {_VISIBLE}",
                (base, self._clock()),
            ).fetchone()
        return int(row[0] or 0)

    def drop(self, base: str) -> None:
        """Remove a Base and all its items."""
        with self._lock:
            self._db.execute("DELETE FROM items WHERE base = ?", (base,))

    def drop_all(self) -> None:
        """Remove every Base."""
        with self._lock:
            self._db.execute("DELETE FROM items")

    def export(self) -> dict[str, list[Item]]:
        """Every live item, by Base name, in key order."""
        result: dict[str, list[Item]] = {}
        with self._lock:
            rows = self._db.execute(
                f"SELECT base, value FROM items WHERE {_VISIBLE} ORDER BY base, key",
                (self._clock(),),
            )
            for base, value in rows:
                result.setdefault(base, []).append(json.loads(value))
        return result

    def close(self) -> None:
        """Close the file; the object is unusable afterwards."""
        # Calls not yet started are dropped; one running finishes its page before the close.
        self.worker.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._db.close()
            if self._quick is not None:
                self._quick.close()
                self._quick = None

    def __enter__(self) -> BaseDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
