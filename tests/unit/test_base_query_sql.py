"""The SQL pre-filter never changes an answer: every page of every query is the same with it as
when every item is read and tested in Python, on the query tables of test_base_query and on
random items and queries."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.cloud.base.errors import BadQuery
from runtime.cloud.base.query import parse_query
from runtime.cloud.base.query_sql import json_path, prefilter
from runtime.cloud.base.store import BaseDB
from tests.unit.test_base_query import CASES, KEY_ACROSS_OR, KEY_RANGES, USER

Page = tuple[list[dict[str, Any]], str | None]

# USER, and items that differ from it in the ways the cases test: types, missing fields, text
# SQLite reads its own way (NUL, surrogates, big and odd numbers), keys it cannot name.
ODD_ITEMS: list[dict[str, Any]] = [
    USER,
    {**USER, "key": "user-b", "name": "beverly", "age": 51.0, "active": 1, "nick": "x"},
    {**USER, "key": "user-c", "age": "51", "score": 7, "tags": ["rome", 1, False], "nums": [3]},
    {"key": "user-d", "name": "Bev\x00erly", "email": "a\x00@deta.sh", "age": 2**64 + 51},
    {"key": "user-e", "name": "B\ud800", "email": "\udc00@deta.sh", "age": 50.999999999999},
    {"key": "user-f", "name": "Beverly\U0001f600", "age": 1e-320, "tags": "berlin"},
    {"key": "user-g", "profile": {"age": "22", "town": ["name"]}, "nums": [1, 2, 3.0]},
    {"key": "user-h", "age": float("inf"), "name": "Éva"},  # stored as Infinity
    {"key": "user-i", "a.b": 1, 'q"uote': "x", "back\\slash": "y", "é": "z", "": 1},
    {"key": "usera", "name": "Beverly", "age": 51, "active": True, "nick": None, "empty": ""},
    {"key": "user-\u00e9", "name": "C", "age": -0.0, "score": 7.5000000001},
    {"key": "zed", "name": "A", "age": 9007199254740993, "tags": [[True], [1], None]},
]


def pages(db: BaseDB, base: str, query: Any, *, in_sql: bool, **options: Any) -> list[Page]:
    """Every page of a query, followed from `last` to the end."""
    found: list[Page] = []
    last = None
    while True:
        items, last = db.query(
            base, query, last=last, scan_seconds=60, prefilter_in_sql=in_sql, **options
        )
        found.append((items, last))
        if last is None or len(found) > 500:
            return found


@pytest.fixture(scope="module")
def odd_db() -> Iterator[BaseDB]:
    with tempfile.TemporaryDirectory() as folder, BaseDB(Path(folder) / "app.sqlite3") as db:
        db.put_many("b", ODD_ITEMS)
        # Many more, so that pages are taken in several chunks.
        db.put_many(
            "many",
            [{**item, "key": f"{item['key']}-{n:03d}"} for n in range(15) for item in ODD_ITEMS],
        )
        yield db


QUERIES = (
    [case[0] for case in CASES]
    + [case[0] for case in KEY_RANGES]
    + [case[0] for case in KEY_ACROSS_OR if case[1]]
    + [
        {"l?contains": 1},
        {"tags?contains": None},
        {"tags?not_contains": [1]},
        {"name?gt": "Bev"},
        {"name?lt": "B\ud801"},
        {"email?contains": "@"},
        {"age?gt": 51},
        {"age?gte": 0},
        {"age?lte": 0},
        {"age": 2**64 + 51},
        {"age?ne": 9007199254740993},
        {"age?r": [-1e-300, 1e-300]},
        {"a.b": 1},
        {'q"uote': "x"},
        {"é": "z"},
        {"name?ne": "Bev"},
        {"name?not_contains": "erly"},
        {"email?not_contains": "a"},
        {"nick?ne": None},
        {"active?ne": True},
        {"age": 1e999},
        {"age?lt": 1e999},
        {"name?pfx": "B\ud800"},
    ]
)


@pytest.mark.parametrize("query", QUERIES, ids=[repr(q)[:70] for q in QUERIES])
@pytest.mark.parametrize(
    ("base", "options"),
    [
        ("b", {"sort": "desc", "limit": 2}),
        ("many", {"scan_bytes": 6000}),
        ("many", {"scan_bytes": 20_000, "limit": 7, "sort": "desc"}),
    ],
)
def test_every_query_case_pages_the_same_in_sql_and_in_python(
    odd_db: BaseDB, query: Any, base: str, options: dict[str, Any]
) -> None:
    in_python = pages(odd_db, base, query, in_sql=False, **options)
    assert pages(odd_db, base, query, in_sql=True, **options) == in_python


def test_the_cases_find_something_and_the_pre_filter_takes_most() -> None:
    """A guard on the test above: it compares pages that hold items, and most of its queries
    do reach SQL (a pre-filter that gave up on everything would pass it)."""
    filtered = [q for q in QUERIES if prefilter(parse_query(q)) is not None]
    assert len(filtered) > 0.8 * len([q for q in QUERIES if parse_query(q) and all(parse_query(q))])
    with tempfile.TemporaryDirectory() as folder, BaseDB(Path(folder) / "a.sqlite3") as db:
        db.put_many("b", ODD_ITEMS)
        assert sum(bool(db.query("b", q)[0]) for q in QUERIES) > len(QUERIES) / 2


@pytest.mark.parametrize(
    ("path", "sql"),
    [
        (("a",), '$."a"'),
        (("profile", "town", "name"), '$."profile"."town"."name"'),
        (("0",), '$."0"'),  # a label, never a list index
        (('q"uote',), None),
        (("back\\slash",), None),
        (("é",), None),
        (("tab\t",), None),
    ],
)
def test_only_paths_sqlite_reads_as_written_go_to_sql(
    path: tuple[str, ...],
    sql: str | None,
) -> None:
    assert json_path(path) == sql


def test_a_filtered_page_reads_only_the_rows_the_filter_lets_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.cloud.base import store

    with BaseDB(tmp_path / "app.sqlite3") as db:
        db.put_many("b", [{"key": f"k{n:04d}", "name": f"item{n % 100}"} for n in range(25)])
        for start in range(25, 3000, 25):
            db.put_many(
                "b",
                [{"key": f"k{n:04d}", "name": f"item{n % 100}"} for n in range(start, start + 25)],
            )
        decoded = [0]
        loads = store.json.loads

        def counted(text: str) -> Any:
            decoded[0] += 1
            return loads(text)

        monkeypatch.setattr(store.json, "loads", counted)
        items, last = db.query("b", {"name?pfx": "item99"})
        assert last is None and len(items) == 30
        assert decoded[0] == 30
        decoded[0] = 0
        assert db.query("b", {"name?pfx": "item99"}, prefilter_in_sql=False) == (items, None)
        assert decoded[0] == 3000


# --- random items and queries ---------------------------------------------------------------

FIELDS = ["a", "b", "key", "a.b", "é", 'q"', "0"]
TEXT = st.lists(
    st.sampled_from(
        ["a", "b", "A", "\x00", "é", "\ud800", "\udc00", "\U0001f600", '"', "\\", "ab", "\\u0000"]
    ),
    max_size=3,
).map("".join)
NUMBERS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([2**53 + 1, 2**64, -(2**70), 0.5, -0.0, 1e-320, 1e300]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=3)
    ),
    max_leaves=6,
)
ITEMS = st.lists(
    st.dictionaries(st.sampled_from(FIELDS[:2] + FIELDS[3:]), VALUES, max_size=4),
    min_size=1,
    max_size=12,
)
OPS = ["", "?ne", "?lt", "?gt", "?lte", "?gte", "?pfx", "?r", "?contains", "?not_contains"]
PATHS = st.sampled_from(["a", "b", "a.b", "b.a", "é", 'q"', "0", "a.0", "key"])
CONDITION = st.tuples(
    PATHS,
    st.sampled_from(OPS),
    st.one_of(VALUES, st.lists(st.one_of(NUMBERS, TEXT), min_size=2, max_size=2)),
)
QUERY = st.lists(st.lists(CONDITION, min_size=1, max_size=3), min_size=1, max_size=3)
_bases = itertools.count()


@pytest.fixture(scope="module")
def random_db() -> Iterator[BaseDB]:
    with tempfile.TemporaryDirectory() as folder, BaseDB(Path(folder) / "app.sqlite3") as db:
        yield db


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    items=ITEMS,
    groups=QUERY,
    scan_bytes=st.integers(1, 400),
    limit=st.integers(1, 4),
    sort=st.sampled_from(["asc", "desc"]),
)
def test_random_queries_page_the_same_in_sql_and_in_python(
    random_db: BaseDB,
    items: list[dict[str, Any]],
    groups: list[list[Any]],
    scan_bytes: int,
    limit: int,
    sort: str,
) -> None:
    query = [{f"{path}{op}": value for path, op, value in group} for group in groups]
    try:
        parse_query(query)
    except BadQuery:
        return
    base = f"b{next(_bases)}"
    keyed = [{**item, "key": f"k{n:02d}"} for n, item in enumerate(items)]
    random_db.put_many(base, keyed)
    options = {"scan_bytes": scan_bytes, "limit": limit, "sort": sort}
    in_python = pages(random_db, base, query, in_sql=False, **options)
    assert pages(random_db, base, query, in_sql=True, **options) == in_python
    # And the whole answer is the one of a scan with no budget.
    assert pages(random_db, base, query, in_sql=True) == pages(random_db, base, query, in_sql=False)


def test_numbers_the_margin_lets_through_are_settled_in_python(tmp_path: Path) -> None:
    with BaseDB(tmp_path / "app.sqlite3") as db:
        db.put_many(
            "b",
            [
                {"key": "a", "n": 1.0000000001},
                {"key": "b", "n": 1},
                {"key": "c", "n": 2**64 + 1},
                {"key": "d", "n": 2**64},
            ],
        )
        assert [i["key"] for i in db.query("b", {"n": 1})[0]] == ["b"]
        assert [i["key"] for i in db.query("b", {"n?gt": 1})[0]] == ["a", "c", "d"]
        assert [i["key"] for i in db.query("b", {"n": 2**64})[0]] == ["d"]
        assert [i["key"] for i in db.query("b", {"n": float(2**64)})[0]] == ["d"]
