"""Deta Base storage on a real SQLite file: keys, paging, order, expiry, conflicts, durability."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from runtime.cloud.base.errors import BaseError
from runtime.cloud.base.store import (
    CHECKPOINT_WRITES,
    NOT_NOW,
    BaseDB,
    prepare_item,
    prepare_items,
)
from runtime.errors import SpaceDevError


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path, clock: Clock) -> Iterator[BaseDB]:
    with BaseDB(tmp_path / "app.sqlite3", clock=clock) as opened:
        yield opened


def keys(items: list[dict[str, Any]]) -> list[str]:
    return [item["key"] for item in items]


def fetch_all(db: BaseDB, base: str, **options: Any) -> list[str]:
    found: list[str] = []
    last = None
    while True:
        items, last = db.query(base, last=last, **options)
        found += keys(items)
        if last is None:
            return found


def test_put_generates_keys_and_returns_items_as_stored(db: BaseDB) -> None:
    given = [{"a": 1}, {"key": "", "b": 2}, {"key": "mine", "__expires": 1_800_000_000}]
    stored = db.put_many("b", given)
    assert given[0] == {"a": 1}  # the caller's items are not changed
    assert [re.fullmatch(r"[a-z0-9]{12}", k) is not None for k in keys(stored)] == [
        True,
        True,
        False,
    ]
    assert stored[2] == {"key": "mine", "__expires": 1_800_000_000}
    for item in stored:
        assert db.get("b", item["key"]) == item


def test_put_replaces_the_whole_item(db: BaseDB) -> None:
    db.put_many("b", [{"key": "k", "a": 1, "b": 2}])
    db.put_many("b", [{"key": "k", "c": 3}])
    assert db.get("b", "k") == {"key": "k", "c": 3}


@pytest.mark.parametrize(
    "bad",
    [
        [{"key": "ok"}, {"key": 7}],
        [{"key": "ok"}, {"key": None}],
        [{"key": "ok"}, {"key": True}],
        [{"key": "ok"}, {"key": ["a"]}],
        [{"key": "ok"}, "not an object"],
        [{"key": "ok"}, {"key": "ok"}],
        [{"key": "ok"}, {"key": "\ud800"}],
    ],
)
def test_bad_batch_stores_nothing(db: BaseDB, bad: list[Any]) -> None:
    with pytest.raises(BaseError) as caught:
        db.put_many("b", bad)
    assert caught.value.status == 400
    assert db.get("b", "ok") is None


def test_bases_are_separate(db: BaseDB) -> None:
    db.put_many("one", [{"key": "k", "v": 1}])
    db.put_many("two", [{"key": "k", "v": 2}])
    db.delete("one", "k")
    assert db.get("one", "k") is None
    assert db.get("two", "k") == {"key": "k", "v": 2}


def test_insert_conflicts_only_with_a_live_item(db: BaseDB, clock: Clock) -> None:
    assert db.insert("b", {"key": "k", "v": 1}) == {"key": "k", "v": 1}
    with pytest.raises(BaseError) as caught:
        db.insert("b", {"key": "k", "v": 2})
    assert (caught.value.status, caught.value.messages) == (409, ["Key already exists"])
    assert db.get("b", "k") == {"key": "k", "v": 1}
    db.put_many("b", [{"key": "old", "__expires": clock.now + 10}])
    clock.now += 10
    assert db.insert("b", {"key": "old", "v": 3}) == {"key": "old", "v": 3}
    clock.now += 1000
    assert db.get("b", "old") == {"key": "old", "v": 3}  # the new item has no expiry
    assert re.fullmatch(r"[a-z0-9]{12}", db.insert("b", {"v": 4})["key"])


def test_delete_is_idempotent(db: BaseDB) -> None:
    db.delete("b", "never-there")
    db.put_many("b", [{"key": "k"}])
    db.delete("b", "k")
    db.delete("b", "k")
    assert db.get("b", "k") is None


def test_update(db: BaseDB) -> None:
    db.put_many("b", [{"key": "k", "n": 1, "list": ["a"]}])
    db.update("b", "k", {"increment": {"n": 2}, "append": {"list": "b"}})
    assert db.get("b", "k") == {"key": "k", "n": 3, "list": ["a", "b"]}
    with pytest.raises(BaseError) as caught:
        db.update("b", "missing", {"set": {"a": 1}})
    assert (caught.value.status, caught.value.messages) == (404, ["Key not found"])
    with pytest.raises(BaseError) as caught:
        db.update("b", "missing", {"set": {"key": "x"}})
    assert caught.value.status == 400  # an invalid update is refused before the lookup
    with pytest.raises(BaseError) as caught:
        db.update("b", "k", {"set": {"a": 1}, "increment": {"list": 1}})
    assert caught.value.status == 400
    assert db.get("b", "k") == {"key": "k", "n": 3, "list": ["a", "b"]}  # nothing half-applied


@pytest.mark.parametrize("meanwhile", ["changed", "deleted"])
def test_update_of_an_item_another_process_writes_between_its_read_and_write(
    db: BaseDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    """The update reads, then writes only an item still as read: a change made in between
    (here by another connection, as a CLI command would) is never lost under it."""
    db.put_many("b", [{"key": "k", "n": 1, "tags": ["a"]}])
    other = sqlite3.connect(tmp_path / "app.sqlite3", isolation_level=None)
    computed = BaseDB._updated
    calls = []

    def write_meanwhile(value: str, steps: Any) -> Any:
        if not calls:
            if meanwhile == "changed":
                other.execute(
                    "UPDATE items SET value = ? WHERE key = 'k'",
                    ['{"key":"k","n":10,"tags":["x"]}'],
                )
            else:
                other.execute("DELETE FROM items WHERE key = 'k'")
        calls.append(value)
        return computed(value, steps)

    monkeypatch.setattr(BaseDB, "_updated", staticmethod(write_meanwhile))
    if meanwhile == "changed":
        db.update("b", "k", {"increment": {"n": 1}, "append": {"tags": "b"}})
        assert db.get("b", "k") == {"key": "k", "n": 11, "tags": ["x", "b"]}
        assert len(calls) == 2  # read again, in a transaction
    else:
        with pytest.raises(BaseError) as caught:
            db.update("b", "k", {"increment": {"n": 1}})
        assert caught.value.status == 404
        assert db.get("b", "k") is None
    other.close()


def test_update_cannot_grow_an_item_past_400_kb(db: BaseDB) -> None:
    db.put_many("b", [{"key": "k", "text": "x" * 300_000}])
    with pytest.raises(BaseError) as caught:
        db.update("b", "k", {"set": {"more": "y" * 200_000}})
    assert caught.value.status == 400
    assert "more" not in (db.get("b", "k") or {})


def test_update_sets_expiry(db: BaseDB, clock: Clock) -> None:
    db.put_many("b", [{"key": "k"}])
    db.update("b", "k", {"set": {"__expires": clock.now + 5}})
    assert db.get("b", "k") == {"key": "k", "__expires": clock.now + 5}
    clock.now += 5
    assert db.get("b", "k") is None
    with pytest.raises(BaseError) as caught:
        db.update("b", "k", {"set": {"a": 1}})
    assert caught.value.status == 404


# Byte order of UTF-8: upper case before lower case, "%" before letters, and U+FFFF before
# U+1F600 (UTF-16 order, as JavaScript sorts, would put the emoji first).
ORDERED = ["%@#//#!#)#$_", "A", "B", "a", "a/b", "aa", "b", "~", "é", "\uffff", "\U0001f600"]


def test_query_returns_key_byte_order(db: BaseDB) -> None:
    db.put_many("b", [{"key": k} for k in reversed(ORDERED)])
    assert keys(db.query("b")[0]) == ORDERED
    assert keys(db.query("b", sort="desc")[0]) == ORDERED[::-1]


@pytest.mark.parametrize("sort", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 2, 3, 10, 11, 12])
def test_paging_visits_every_item_once(db: BaseDB, sort: str, limit: int) -> None:
    db.put_many("b", [{"key": k} for k in ORDERED])
    expected = ORDERED if sort == "asc" else ORDERED[::-1]
    assert fetch_all(db, "b", limit=limit, sort=sort) == expected


def test_last_is_given_only_while_matches_remain(db: BaseDB) -> None:
    db.put_many("b", [{"key": f"k{i}", "n": i} for i in range(5)])
    assert db.query("b", limit=5) == (db.query("b")[0], None)  # exactly a page: no last
    assert db.query("b", limit=4)[1] == "k3"
    assert db.query("b", {"n?lt": 1}, limit=1) == ([{"key": "k0", "n": 0}], None)
    assert db.query("b", {"n?ne": 2}, limit=2) == (
        [{"key": "k0", "n": 0}, {"key": "k1", "n": 1}],
        "k1",
    )
    assert keys(db.query("b", {"n?ne": 2}, limit=2, last="k1")[0]) == ["k3", "k4"]
    assert db.query("b", limit=2, last="k1", sort="desc") == ([{"key": "k0", "n": 0}], None)
    assert db.query("b", last="", limit=1)[0] == [{"key": "k0", "n": 0}]
    assert db.query("b", last="zzz") == ([], None)


def test_query_filters_and_key_conditions(db: BaseDB) -> None:
    db.put_many("b", [{"key": k, "i": i} for i, k in enumerate(["ab", "abc", "abd", "ac", "b"])])
    assert keys(db.query("b", {"key?pfx": "ab"})[0]) == ["ab", "abc", "abd"]
    assert keys(db.query("b", {"key?pfx": "ab"}, sort="desc")[0]) == ["abd", "abc", "ab"]
    assert keys(db.query("b", {"key?r": ["abc", "ac"]})[0]) == ["abc", "abd", "ac"]
    assert keys(db.query("b", {"key?>": "abd"})[0]) == ["ac", "b"]
    assert keys(db.query("b", {"key?<=": "abc"})[0]) == ["ab", "abc"]
    assert keys(db.query("b", {"key": "ac"})[0]) == ["ac"]
    assert keys(db.query("b", {"key?ne": "ac"})[0]) == ["ab", "abc", "abd", "b"]
    assert keys(db.query("b", [{"key?pfx": "ab", "i": 0}, {"key?pfx": "ab", "i": 2}])[0]) == [
        "ab",
        "abd",
    ]
    assert keys(db.query("b", [{"i?gte": 3}, {"i": 0}])[0]) == ["ab", "ac", "b"]
    with pytest.raises(BaseError):
        db.query("b", {"n?bad": 1})


def test_key_conditions_narrow_what_is_read(db: BaseDB) -> None:
    # With a scan budget of one row, only a query that reads the key range alone finds "b1".
    db.put_many("b", [{"key": f"a{i:03d}"} for i in range(50)] + [{"key": "b1"}])
    assert db.query("b", {"key?pfx": "b"}, scan_bytes=1) == ([{"key": "b1"}], None)
    assert db.query("b", {"key": "b1"}, scan_bytes=1) == ([{"key": "b1"}], None)
    assert db.query("b", {"key?gte": "b"}, scan_bytes=1) == ([{"key": "b1"}], None)


def test_scan_budget_pages_like_deta(db: BaseDB) -> None:
    db.put_many("b", [{"key": f"k{i:03d}", "n": i % 7} for i in range(25)])
    items, last = db.query("b", {"n": 6}, scan_bytes=40)
    assert last is not None and len(items) < 4  # fewer than all matches, and a key to go on
    pages = []
    last = None
    while True:
        items, last = db.query("b", {"n": 6}, scan_bytes=40, last=last)
        pages.append(keys(items))
        if last is None:
            break
    assert [k for page in pages for k in page] == ["k006", "k013", "k020"]
    assert len(pages) > 1


def test_time_budget_pages_too_and_always_moves_on(db: BaseDB) -> None:
    """A page also ends once its scan time is spent (the lock is let go between pages); with no
    time at all, each page still reads one item, and the pages add up to the one-page answer."""
    db.put_many("b", [{"key": f"k{i:03d}", "n": i % 7} for i in range(25)])
    whole = db.query("b", [{"n": 6}, {"n": 2}])
    assert whole[1] is None and keys(whole[0]) == [
        "k002",
        "k006",
        "k009",
        "k013",
        "k016",
        "k020",
        "k023",
    ]
    assert db.query("b", [{"n": 6}, {"n": 2}], scan_seconds=0) == ([], "k000")
    assert db.query("b", [{"n": 6}, {"n": 2}], scan_seconds=0, last="k001") == (
        [{"key": "k002", "n": 2}],
        "k002",
    )
    paged = fetch_all(db, "b", query=[{"n": 6}, {"n": 2}], scan_seconds=0)
    assert paged == keys(whole[0])
    assert fetch_all(db, "b", query={"n": 6}, scan_seconds=0, sort="desc") == [
        "k020",
        "k013",
        "k006",
    ]


def test_a_page_reads_its_query_once(db: BaseDB, monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.cloud.base import query as query_module

    db.put_many("b", [{"key": f"k{i:03d}", "n": i} for i in range(30)])
    parsed: list[str] = []
    parse = query_module._parse_condition

    def counted(field: str, value: Any) -> Any:
        parsed.append(field)
        return parse(field, value)

    monkeypatch.setattr(query_module, "_parse_condition", counted)
    items, _ = db.query("b", [{"key?pfx": "k", "n?lt": 3}, {"key?pfx": "k", "n": 29}])
    assert keys(items) == ["k000", "k001", "k002", "k029"]
    assert sorted(parsed) == ["key?pfx", "key?pfx", "n", "n?lt"]  # not once per item, nor twice


@pytest.mark.parametrize(
    "options",
    [
        {"limit": 0},
        {"limit": -1},
        {"limit": "5"},
        {"limit": True},
        {"sort": "up"},
        {"sort": ""},
        {"last": 5},
    ],
)
def test_bad_paging_options_are_400(db: BaseDB, options: dict[str, Any]) -> None:
    with pytest.raises(BaseError) as caught:
        db.query("b", **options)
    assert caught.value.status == 400


def test_expired_items_are_invisible_everywhere(db: BaseDB, clock: Clock, tmp_path: Path) -> None:
    db.put_many("b", [{"key": "gone", "__expires": clock.now - 1}, {"key": "stays"}])
    db.put_many("b", [{"key": "soon", "__expires": int(clock.now) + 60}])
    db.put_many("b", [{"key": "text", "__expires": "tomorrow"}])  # not a number: never expires
    db.put_many("old", [{"key": "x", "__expires": clock.now}])  # expiring now is expired
    assert db.get("b", "gone") is None
    assert db.get("b", "soon") is not None
    assert keys(db.query("b")[0]) == ["soon", "stays", "text"]
    assert db.count("b") == 3 and db.count("old") == 0
    assert db.names() == ["b"]
    clock.now += 61
    assert keys(db.query("b")[0]) == ["stays", "text"]
    assert db.export() == {"b": [{"key": "stays"}, {"key": "text", "__expires": "tomorrow"}]}
    db.put_many("b", [{"key": "new"}])  # a write sweeps the expired rows out of the file
    raw = sqlite3.connect(tmp_path / "app.sqlite3")
    assert raw.execute("SELECT count(*) FROM items").fetchone()[0] == 3
    raw.close()


def test_names_count_drop_export(db: BaseDB) -> None:
    db.put_many("zeta", [{"key": "1"}])
    db.put_many("alpha", [{"key": "2"}, {"key": "1"}])
    db.put_many("", [{"key": "e"}])
    assert db.names() == ["", "alpha", "zeta"]
    assert db.count("alpha") == 2 and db.count("nothing") == 0
    assert db.export() == {
        "": [{"key": "e"}],
        "alpha": [{"key": "1"}, {"key": "2"}],
        "zeta": [{"key": "1"}],
    }
    db.drop("alpha")
    assert db.names() == ["", "zeta"] and db.get("alpha", "1") is None
    db.drop_all()
    assert db.names() == [] and db.export() == {}


def test_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "app.sqlite3"
    with BaseDB(path) as first:
        first.put_many("b", [{"key": "k", "nested": {"a": [1, 2.5, None, True]}, "u": "é€😀"}])
    with BaseDB(path) as again:
        assert again.get("b", "k") == {
            "key": "k",
            "nested": {"a": [1, 2.5, None, True]},
            "u": "é€😀",
        }


def test_a_crash_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from runtime.cloud.base.store import BaseDB\n"
        "db = BaseDB(Path(sys.argv[1]))\n"
        "for i in range(50):\n"
        "    db.put_many('b', [{'key': f'k{i:02d}'}])\n"
        "os._exit(3)  # no close, no checkpoint, no cleanup\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], timeout=60)
    assert done.returncode == 3
    with BaseDB(path) as db:
        assert db.count("b") == 50


def test_a_crash_loses_no_write_made_on_the_event_loops_connection(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from runtime.cloud.base.store import NOT_NOW, BaseDB, prepare_item, prepare_items\n"
        "db = BaseDB(Path(sys.argv[1]))\n"
        "def now(*call):  # as the handlers do: at once, or on the worker when busy\n"
        "    if db.now(*call) is NOT_NOW:\n"
        "        db.worker.submit(getattr(db, call[0]), *call[1:]).result()\n"
        "for i in range(700):  # past a checkpoint, which the worker runs\n"
        "    now('put_prepared', 'b', prepare_items([{'key': f'k{i:03d}'}]))\n"
        "now('insert_prepared', 'b', prepare_item({'key': 'new'}))\n"
        "now('update', 'b', 'k000', {'set': {'n': 1}})\n"
        "now('delete', 'b', 'k001')\n"
        "os._exit(3)  # no close, no cleanup\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], timeout=60)
    assert done.returncode == 3
    with BaseDB(path) as db:
        assert db.count("b") == 700  # 700 put, one inserted, one deleted
        assert db.get("b", "k000") == {"key": "k000", "n": 1} and db.get("b", "k001") is None


def test_single_calls_run_at_once_unless_another_process_holds_the_file(db: BaseDB) -> None:
    assert db.now("put_prepared", "b", prepare_items([{"key": "k", "n": 1}])) is None
    db.worker.submit(lambda: None).result(10)  # the first write's sweep of expired items
    assert db.now("get_text", "b", "k") == '{"key":"k","n":1}'
    other = sqlite3.connect(db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # as a CLI command writing
    try:
        assert db.now("put_prepared", "b", prepare_items([{"key": "k", "n": 2}])) is NOT_NOW
        assert db.now("update", "b", "k", {"set": {"n": 3}}) is NOT_NOW
        assert db.now("get_text", "b", "k") == '{"key":"k","n":1}'  # readers never wait
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert db.get("b", "k") == {"key": "k", "n": 1}  # what was refused was not half done
    with db._lock:  # a query page, or a call on the worker
        assert db.now("get_text", "b", "k") is NOT_NOW


def test_writes_on_the_event_loops_connection_are_checkpointed(db: BaseDB) -> None:
    """The WAL is folded back into the file by the worker, so it stays bounded."""
    wal = Path(f"{db.path}-wal")
    for i in range(4 * CHECKPOINT_WRITES):
        rows = prepare_items([{"key": f"k{i % 50}", "n": i}])
        if db.now("put_prepared", "b", rows) is NOT_NOW:
            db.worker.submit(db.put_prepared, "b", rows).result(10)
        if i == CHECKPOINT_WRITES // 2:
            half = wal.stat().st_size
    db.worker.submit(lambda: None).result(10)
    assert wal.stat().st_size < 4 * half  # 8 halves' worth were written


def test_the_worker_starts_the_wal_over_so_the_event_loop_never_syncs(db: BaseDB) -> None:
    """Starting the WAL over syncs its new header: the worker's upkeep does it, after its
    checkpoint, rather than the next write on the event loop's connection."""
    wal = Path(f"{db.path}-wal")
    db.put_many("b", [{"key": "first"}])  # and the sweep of expired items, not due again
    for i in range(CHECKPOINT_WRITES - 1):
        assert db.now("put_prepared", "b", prepare_items([{"key": f"k{i}"}])) is not NOT_NOW
    db.worker.submit(lambda: None).result(10)  # no upkeep due yet
    salts = wal.read_bytes()[16:24]  # the header's salts change when the WAL starts over
    assert db.now("put_prepared", "b", prepare_items([{"key": "last"}])) is not NOT_NOW
    assert wal.read_bytes()[16:24] == salts  # appended to the WAL as it was
    db.worker.submit(lambda: None).result(10)  # the upkeep this write queued has run
    assert wal.read_bytes()[16:24] != salts
    assert db.count("b") == CHECKPOINT_WRITES + 1
    assert db.get("b", "last") == {"key": "last"}


SCHEMA_1 = """
CREATE TABLE items (base TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires REAL,
                    UNIQUE (base, key));
CREATE INDEX items_expires ON items (expires) WHERE expires IS NOT NULL;
PRAGMA application_id = 1396982355;
PRAGMA user_version = 1;
"""


def test_a_file_of_schema_1_is_moved_to_schema_2_with_its_items(
    tmp_path: Path, clock: Clock
) -> None:
    """The file earlier versions wrote (its schema as they made it) opens with every item, its
    expiry and its size, and pages as before."""
    path = tmp_path / "app.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA_1)
    rows = [
        ("b", f"k{i:03d}", f'{{"key":"k{i:03d}","n":{i},"s":"\\u00e9"}}', None) for i in range(300)
    ]
    rows.append(("b", "gone", '{"key":"gone"}', clock.now - 1))
    rows.append(("c", "x", '{"key":"x","__expires":4000000000}', 4_000_000_000.0))
    old.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", rows)
    old.commit()
    old.close()
    with BaseDB(path, clock=clock) as db:
        assert db.count("b") == 300 and db.get("b", "gone") is None
        assert db.get("b", "k007") == {"key": "k007", "n": 7, "s": "\u00e9"}
        assert db.get("c", "x") == {"key": "x", "__expires": 4000000000}
        sizes = dict(db._db.execute("SELECT key, size FROM items WHERE base = 'b'"))
        assert sizes["k007"] == len(rows[7][2])
        assert fetch_all(db, "b", query={"n?gte": 290}, scan_bytes=500) == [
            f"k{i}" for i in range(290, 300)
        ]
        assert db.query("b", {"n?gte": 290}, scan_bytes=500) == db.query(
            "b", {"n?gte": 290}, scan_bytes=500, prefilter_in_sql=False
        )
    with BaseDB(path, clock=clock) as again:  # opened again: nothing to move
        assert again.count("b") == 300
        assert again._db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_threads_share_one_db(db: BaseDB) -> None:
    def work(n: int) -> None:
        db.put_many("b", [{"key": f"t{n}-{i}"} for i in range(10)])
        db.query("b", {"key?pfx": f"t{n}-"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(40)))
    assert db.count("b") == 400


def test_a_foreign_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    text = tmp_path / "notes.sqlite3"
    text.write_bytes(b"not a database at all, but long enough to look like a header" * 4)
    before = text.read_bytes()
    with pytest.raises(SpaceDevError, match="not a Base database"):
        BaseDB(text)
    assert text.read_bytes() == before

    other = tmp_path / "other.sqlite3"
    raw = sqlite3.connect(other)
    raw.execute("CREATE TABLE t (a)")
    raw.commit()
    raw.close()
    before = other.read_bytes()
    with pytest.raises(SpaceDevError, match="another program"):
        BaseDB(other)
    assert other.read_bytes() == before
    assert not (tmp_path / "other.sqlite3-wal").exists()


def test_a_locked_file_is_not_called_foreign(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    BaseDB(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")  # so that opening must switch it back to WAL
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SpaceDevError, match="Could not open") as caught:
            BaseDB(path, timeout=0.05)
        assert "not a Base database" not in str(caught.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with BaseDB(path) as db:
        assert db.names() == []


def _row(db: BaseDB, key: str) -> tuple[str, float | None, int]:
    return db._db.execute(
        "SELECT value, expires, size FROM items WHERE base = 'b' AND key = ?", (key,)
    ).fetchone()


@pytest.mark.parametrize("via", ["put", "update"])
def test_an_overwrite_keeps_size_and_expiry_true_to_the_text(db: BaseDB, via: str) -> None:
    """An overwrite of the same size and expiry sets the text alone; any other changes them
    too: the sizes a page's budget is summed from, and the expiry, always match the text."""

    def write(item: dict[str, Any]) -> None:
        if via == "put":
            db.put_prepared("b", [prepare_item(item)])
        else:
            db.update("b", "k", {"set": {f: v for f, v in item.items() if f != "key"}})

    db.put_prepared("b", [prepare_item({"key": "k", "a": "xx", "__expires": 2_000_000_000})])
    for item in (
        {"key": "k", "a": "yy", "__expires": 2_000_000_000},  # same size, same expiry
        {"key": "k", "a": "zzzz", "__expires": 2_000_000_000},  # longer
        {"key": "k", "a": "zzzz", "__expires": 2_000_000_001},  # same size, later expiry
        {"key": "k", "a": "z", "__expires": 2_000_000_002},  # both change
    ):
        write(item)
        value, expires, size = _row(db, "k")
        assert json.loads(value) == item
        assert (expires, size) == (item["__expires"], len(value))
    assert db.query("b", {"__expires": 2_000_000_002}) == ([db.get("b", "k")], None)
