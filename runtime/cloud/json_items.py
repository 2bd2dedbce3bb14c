"""Base items from an export's JSON, read incrementally with one item's text in memory at a time.

Two shapes: JSON Lines (one item per line, as exports are written now), where a line that
cannot be read is one item lost; and one JSON document, a list of items or an object with
`items` (older exports, and Space's), walked value by value, where broken syntax loses the
rest of the document (`BrokenDocument`). An item's text is capped: past the cap it is
`Unreadable` (a line) or the document is broken, never held whole.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

NOT_ITEMS = "neither a list of items nor an object with `items`"
_WANT = 64 * 1024  # characters decoded at least per refill
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_BLANK = object()


@dataclass(frozen=True)
class Unreadable:
    """A line that is no item: why."""

    why: str


class BrokenDocument(Exception):
    """A JSON document that is not JSON, or not items; the message says what and where."""


def line_items(chunks: Iterable[bytes], max_text: int) -> Iterator[tuple[int, Any, int]]:
    """(line number from 1, its value or Unreadable, the length of its text) for each line
    that is not blank."""
    pending = bytearray()
    number = 0
    too_long = False
    for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            number += 1
            if not too_long:
                pending += chunk[start:end]
            found = _line(pending, too_long, max_text)
            if found is not _BLANK:
                yield number, found, len(pending)
            pending.clear()
            too_long = False
            start = end + 1
        if not too_long:
            pending += chunk[start:]
            if len(pending) > max_text:  # the rest of this line is not kept
                too_long = True
                pending.clear()
    if pending or too_long:
        found = _line(pending, too_long, max_text)
        if found is not _BLANK:
            yield number + 1, found, len(pending)


def _line(text: bytearray, too_long: bool, max_text: int) -> Any:
    if too_long or len(text) > max_text:
        return Unreadable(f"longer than {max_text:,} bytes")
    if not text.strip():
        return _BLANK
    try:
        return json.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        return Unreadable(f"not JSON ({err})")
    except RecursionError:
        return Unreadable("not JSON (nested too deeply)")


def document_items(chunks: Iterable[bytes], max_text: int) -> Iterator[tuple[int, Any, int]]:
    """(index from 0, value, the length of its text) for each item of a JSON document: a
    list, or an object whose `items` is one. Raises BrokenDocument where the document stops
    making sense."""
    text = _Text(chunks, max_text)
    first = text.peek()
    if first == "[":
        yield from _array(text)
    elif first == "{":
        yield from _object(text)
    else:
        raise BrokenDocument("not JSON (the document is empty)" if first == "" else NOT_ITEMS)
    if text.peek() != "":
        raise BrokenDocument(f"not JSON (more text after the document, at character {text.offset})")


def _array(text: _Text) -> Iterator[tuple[int, Any, int]]:
    text.take("[")
    if text.peek() == "]":
        text.take("]")
        return
    index = 0
    while True:
        start = text.offset
        value = text.value(f"item {index}")
        yield index, value, text.offset - start
        following = text.peek()
        if following not in (",", "]"):
            raise BrokenDocument(
                f"not JSON (a , or ] expected after item {index}, at character {text.offset})"
            )
        text.take(following)
        if following == "]":
            return
        index += 1


def _object(text: _Text) -> Iterator[tuple[int, Any, int]]:
    text.take("{")
    found = False
    if text.peek() == "}":
        raise BrokenDocument(NOT_ITEMS)
    while True:
        key = text.value("a key")
        if not isinstance(key, str) or text.peek() != ":":
            raise BrokenDocument(f"not JSON (a key and : expected at character {text.offset})")
        text.take(":")
        if key == "items" and not found:
            if text.peek() != "[":
                raise BrokenDocument(NOT_ITEMS)
            found = True
            yield from _array(text)
        else:
            text.value(f"the value of {key!r}")  # read past it, never kept
        following = text.peek()
        if following not in (",", "}"):
            raise BrokenDocument(f"not JSON (a , or }} expected at character {text.offset})")
        text.take(following)
        if following == "}":
            break
    if not found:
        raise BrokenDocument(NOT_ITEMS)


class _Text:
    """The document's text, decoded as it is needed; only what is not yet read is kept."""

    def __init__(self, chunks: Iterable[bytes], max_text: int) -> None:
        self._chunks = iter(chunks)
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._max = max_text
        self._text = ""
        self._at = 0
        self._dropped = 0  # characters read and let go
        self._ended = False

    @property
    def offset(self) -> int:
        return self._dropped + self._at

    def _more(self, want: int) -> None:
        """At least `want` more characters, or all that is left."""
        self._dropped += self._at
        parts = [self._text[self._at :]]
        self._at = 0
        added = 0
        try:
            while added < want and not self._ended:
                chunk = next(self._chunks, None)
                if chunk is None:
                    part = self._decoder.decode(b"", final=True)
                    self._ended = True
                else:
                    part = self._decoder.decode(chunk)
                parts.append(part)
                added += len(part)
        except UnicodeDecodeError as err:
            raise BrokenDocument(f"not JSON (not UTF-8 text: {err.reason})") from None
        self._text = "".join(parts)

    def peek(self) -> str:
        """The next character that is not white space, or "" at the end."""
        while True:
            self._at = _SPACE.match(self._text, self._at).end()  # type: ignore[union-attr]
            if self._at < len(self._text) or self._ended:
                return self._text[self._at : self._at + 1]
            self._more(_WANT)

    def take(self, char: str) -> None:
        assert self._text[self._at] == char
        self._at += 1

    def value(self, what: str) -> Any:
        """The JSON value that starts here (after white space)."""
        self.peek()
        while True:
            if self._at < len(self._text):
                try:
                    value, end = _DECODER.raw_decode(self._text, self._at)
                    # A value that ends where the text does may go on (a number): read on.
                    if end < len(self._text) or self._ended:
                        self._at = end
                        return value
                except json.JSONDecodeError as err:
                    if self._ended:
                        raise BrokenDocument(
                            f"not JSON ({err.msg} in {what}, at character "
                            f"{self._dropped + err.pos})"
                        ) from None
                except RecursionError:
                    raise BrokenDocument(f"not JSON ({what} is nested too deeply)") from None
            elif self._ended:
                raise BrokenDocument(f"not JSON (the document ends before {what})")
            held = len(self._text) - self._at
            if held > self._max:
                raise BrokenDocument(f"not JSON, or {what} is longer than {self._max:,} characters")
            self._more(max(_WANT, held))  # doubling: a long item is parsed a few times, not n
