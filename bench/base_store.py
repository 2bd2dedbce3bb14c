"""Measure storage for the Base emulator: TinyDB against SQLite (WAL), at 1k, 10k and 100k items.

Run: python bench/base_store.py [--sizes 1000,10000,100000] [--quick]

Per store and base size it times, each as the median of many calls:
- put: one new item, committed (what one SDK `put` costs), and a full 25-item `put_many`;
- get: one item by key;
- pfx page: `{"key?pfx": "a"}` with limit 100 (about 1/36 of the keys match: a full page);
- field page (SQLite only): `{"age?gte": 90}` with limit 100, which must decode items to filter.
Then the put rate on the largest base against the smallest (the target: within 20%), and the
cost of `asyncio.to_thread` next to a direct call, which decides how the HTTP handlers call in.
TinyDB is plain `TinyDB(path)` (its JSON file rewritten on every write); SQLite is `BaseDB` with
`synchronous=NORMAL` (the default) and FULL.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import string
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB

from runtime.cloud.base.store import BaseDB, new_key

BIO = "".join(random.Random(1).choices(string.ascii_letters + " ", k=200))


def make_item(rng: random.Random) -> dict[str, Any]:
    """A typical small app item: about 300 bytes of JSON."""
    return {
        "key": new_key(),
        "name": "".join(rng.choices(string.ascii_lowercase, k=8)),
        "age": rng.randrange(100),
        "tags": rng.sample(["a", "b", "c", "d", "e"], 2),
        "bio": BIO,
    }


def median_ms(calls: int, action: Callable[[], object]) -> float:
    for _ in range(min(calls, 10)):  # warm the caches first: the first calls measure the disk
        action()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


class TinyStore:
    """The same operations on TinyDB, one table per Base, as the data dir's store would do it."""

    def __init__(self, path: Path) -> None:
        self.db = TinyDB(path)
        self.table = self.db.table("bench")
        self.q = Query()

    def load(self, items: list[dict[str, Any]]) -> None:
        self.table.insert_multiple(items)

    def put_many(self, items: list[dict[str, Any]]) -> None:
        if len(items) == 1:
            self.table.upsert(items[0], self.q.key == items[0]["key"])
        else:  # new keys only in this bench: one write, kinder to TinyDB than 25 upserts
            self.table.insert_multiple(items)

    def get(self, key: str) -> object:
        return self.table.get(self.q.key == key)

    def pfx_page(self, prefix: str) -> object:
        found = self.table.search(self.q.key.test(lambda k: k.startswith(prefix)))
        return sorted(found, key=lambda item: item["key"])[:100]

    def close(self) -> None:
        self.db.close()


class SqliteStore:
    def __init__(self, path: Path, full_sync: bool) -> None:
        self.db = BaseDB(path, full_sync=full_sync)

    def load(self, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), 1000):
            self.db.put_many("bench", items[start : start + 1000])

    def put_many(self, items: list[dict[str, Any]]) -> None:
        self.db.put_many("bench", items)

    def get(self, key: str) -> object:
        return self.db.get("bench", key)

    def pfx_page(self, prefix: str) -> object:
        return self.db.query("bench", {"key?pfx": prefix}, limit=100)

    def field_page(self) -> object:
        return self.db.query("bench", {"age?gte": 90}, limit=100)

    def close(self) -> None:
        self.db.close()


def measure(name: str, store: Any, size: int, quick: bool) -> dict[str, Any]:
    rng = random.Random(size)
    items = [make_item(rng) for _ in range(size)]
    start = time.perf_counter()
    store.load(items)
    load_s = time.perf_counter() - start
    slow = name == "tinydb"
    # TinyDB rewrites and scans everything per call: a few calls give its figure.
    calls = 5 if slow and size >= 100_000 else 20 if slow else 300 if quick else 2000
    keys = [item["key"] for item in items]
    # Items are made before the clock starts: the figures are the store's alone.
    singles = iter([[make_item(rng)] for _ in range(calls + 10)])
    batches = iter([[make_item(rng) for _ in range(25)] for _ in range(max(3, calls // 10) + 10)])
    few = max(3, calls // 10)
    row = {
        "store": name,
        "items": size,
        "load s": load_s,
        "put ms": median_ms(calls, lambda: store.put_many(next(singles))),
        "put25 ms": median_ms(few, lambda: store.put_many(next(batches))),
        "get ms": median_ms(calls, lambda: store.get(rng.choice(keys))),
        "pfx page ms": median_ms(few, lambda: store.pfx_page("a")),
        "field page ms": median_ms(few, store.field_page) if hasattr(store, "field_page") else None,
    }
    return row


def thread_cost(folder: Path) -> tuple[float, float]:
    """Microseconds per get, called directly and through asyncio.to_thread."""
    db = BaseDB(folder / "thread.sqlite3")
    db.put_many("b", [{"key": "k", "v": 1}])
    direct = median_ms(2000, lambda: db.get("b", "k")) * 1000

    async def threaded() -> float:
        times = []
        for _ in range(2000):
            start = time.perf_counter()
            await asyncio.to_thread(db.get, "b", "k")
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1_000_000

    via = asyncio.run(threaded())
    db.close()
    return direct, via


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--quick", action="store_true", help="fewer calls per figure")
    parser.add_argument("--no-tinydb", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for size in sizes:
            stores: list[tuple[str, Callable[[Path], Any]]] = [
                ("sqlite", lambda p: SqliteStore(p, full_sync=False)),
                ("sqlite FULL", lambda p: SqliteStore(p, full_sync=True)),
            ]
            if not args.no_tinydb and size >= 10_000:
                stores.insert(0, ("tinydb", TinyStore))
            for name, make in stores:
                path = folder / f"{name.replace(' ', '-')}-{size}.db"
                store = make(path)
                rows.append(measure(name, store, size, args.quick))
                store.close()
                print(".", end="", flush=True)
        direct, via = thread_cost(folder)
    print()
    columns = list(rows[0])
    widths = [max(len(c), *(len(fmt(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(fmt(row[c]).rjust(w) for c, w in zip(columns, widths, strict=True)))
    print()
    for name in ("tinydb", "sqlite", "sqlite FULL"):
        mine = [r for r in rows if r["store"] == name]
        if len(mine) >= 2:
            ratio = mine[-1]["put ms"] / mine[0]["put ms"]
            print(f"{name}: put at {mine[-1]['items']} items / at {mine[0]['items']}: {ratio:.2f}x")
    sqlite = {r["items"]: r for r in rows if r["store"] == "sqlite"}
    tiny = {r["items"]: r for r in rows if r["store"] == "tinydb"}
    for size in sorted(set(sqlite) & set(tiny)):
        for column in ("put ms", "get ms", "pfx page ms"):
            print(
                f"{size} items, {column}: tinydb / sqlite = "
                f"{tiny[size][column] / sqlite[size][column]:.0f}x"
            )
    print(f"get: {direct:.1f} us direct, {via:.1f} us through asyncio.to_thread")


if __name__ == "__main__":
    main()
