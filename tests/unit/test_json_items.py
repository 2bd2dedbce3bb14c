"""Items read incrementally from JSON Lines and from one JSON document, cut into any chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.cloud.json_items import (
    NOT_ITEMS,
    BrokenDocument,
    Unreadable,
    document_items,
    line_items,
)

CAP = 10_000


def _cut(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _values(found: Iterator[tuple[int, Any, int]]) -> list[Any]:
    return [value for _, value, _ in found]


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(JSON_VALUE, max_size=8),
    size=st.integers(1, 40),
    wrapped=st.booleans(),
    indent=st.sampled_from([None, 1]),
)
def test_a_document_cut_anywhere_gives_its_items(
    items: list[Any], size: int, wrapped: bool, indent: int | None
) -> None:
    document = {"before": {"x": [1, 2]}, "items": items, "after": "y"} if wrapped else items
    text = json.dumps(document, indent=indent, ensure_ascii=False).encode()
    assert _values(document_items(_cut(text, size), CAP)) == items


@settings(max_examples=100, deadline=None)
@given(items=st.lists(JSON_VALUE, max_size=8), size=st.integers(1, 40))
def test_lines_cut_anywhere_give_their_items(items: list[Any], size: int) -> None:
    text = "".join(json.dumps(item) + "\n" for item in items).encode()
    assert _values(line_items(_cut(text, size), CAP)) == items


def test_lines_that_are_no_items_are_said_and_the_rest_read() -> None:
    text = b'{"key": "a"}\r\n\n   \n{broken\n' + b'"' + b"x" * (CAP + 5) + b'"\n' + b'{"key": "b"}'
    found = list(line_items(_cut(text, 7), CAP))
    assert [(number, value) for number, value, _ in found if not isinstance(value, Unreadable)] == [
        (1, {"key": "a"}),
        (6, {"key": "b"}),
    ]
    unread = {number: value.why for number, value, _ in found if isinstance(value, Unreadable)}
    assert unread[4].startswith("not JSON") and unread[5] == f"longer than {CAP:,} bytes"


@pytest.mark.parametrize(
    "text,said",
    [
        (b"", "not JSON (the document is empty)"),
        (b"7", NOT_ITEMS),
        (b'{"rows": []}', NOT_ITEMS),
        (b'{"items": {}}', NOT_ITEMS),
        (b"{}", NOT_ITEMS),
        (b"{not json", "not JSON"),
        (b'[{"a": 1} {"b": 2}]', "a , or ] expected after item 0"),
        (b"[1, 2", "not JSON"),
        (b"[1] [2]", "more text after the document"),
        (b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]", "not JSON"),
        (b'["' + b"x" * (CAP * 20) + b'"]', "longer than"),
        (b"[\xff]", "not UTF-8"),
    ],
)
def test_a_document_that_is_no_items_is_said(text: bytes, said: str) -> None:
    with pytest.raises(BrokenDocument, match=said.replace("(", r"\(").replace(")", r"\)")):
        list(document_items(_cut(text, 3), CAP))


def test_items_come_before_a_later_break_and_a_bom_is_read() -> None:
    found = document_items(_cut(b'\xef\xbb\xbf[{"k": 1}, 2, {oops}]', 4), CAP)
    assert next(found)[1] == {"k": 1} and next(found)[1] == 2
    with pytest.raises(BrokenDocument, match="in item 2"):
        next(found)
