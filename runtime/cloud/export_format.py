"""The layout of an export zip: the entry that holds each Base's items and each Drive file.

A current export starts with `space-dev-export.json` (`{"format": ..., "version": 2}`) and
writes every Base, Drive and file name as one percent-encoded path segment, so any name a Base
or Drive accepts comes back byte for byte and no entry name nests or climbs (`..`):

    bases/<base>.jsonl          the Base's items, one JSON object per line
    drives/<drive>/<file name>  the file's bytes

A zip without that entry is read in the older layout (space-dev's first exports, and Space's
own): `bases/<name>.json` holding one JSON document, `drives/<name>/<file name>`, names as
they stand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MARKER = "space-dev-export.json"
FORMAT = "space-dev data export"
VERSION = 2
MAX_MARKER_BYTES = 64 * 1024

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_SAFE_TEXT = frozenset(chr(byte) for byte in _SAFE)
_HEX = frozenset("0123456789ABCDEFabcdef")
_DOT = ord(".")
_LINES = ".jsonl"
_DOCUMENT = ".json"


@dataclass(frozen=True)
class Destination:
    """Where an entry's content goes: a Base (`file` is None) or one file of a Drive."""

    store: str  # the Base or Drive name
    file: str | None = None
    lines: bool = True  # a Base's items as JSON Lines, else as one JSON document

    @property
    def is_base(self) -> bool:
        return self.file is None


def marker_text() -> str:
    return (
        json.dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "names": "percent-encoded UTF-8, one path segment each",
                "bases": "bases/<base>.jsonl, one item per line",
                "drives": "drives/<drive>/<file name>",
            },
            indent=1,
        )
        + "\n"
    )


def marker_version(text: bytes) -> int | None:
    """The layout version the marker names, or None when it is not our marker at all."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        return None
    version = value.get("version")
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def encode_name(name: str) -> str:
    """`name` as one path segment: its UTF-8 bytes, all but letters, digits and `-_.~`
    percent-encoded, and a leading `.` too (no segment is `.`, `..` or hidden)."""
    out = []
    for index, byte in enumerate(name.encode("utf-8")):
        if byte in _SAFE and not (index == 0 and byte == _DOT):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def decode_name(segment: str) -> str:
    """The name `encode_name` made this segment from; ValueError for any other text."""
    raw = bytearray()
    index = 0
    while index < len(segment):
        char = segment[index]
        if char == "%":
            digits = segment[index + 1 : index + 3]
            if len(digits) != 2 or not set(digits) <= _HEX:
                raise ValueError("a % not followed by two hex digits")
            raw.append(int(digits, 16))
            index += 3
        elif char in _SAFE_TEXT:
            raw.append(ord(char))
            index += 1
        else:
            raise ValueError(f"{char!r} must be percent-encoded")
    return raw.decode("utf-8")


def base_entry(base: str) -> str:
    return f"bases/{encode_name(base)}{_LINES}"


def drive_entry(drive: str, name: str) -> str:
    return f"drives/{encode_name(drive)}/{encode_name(name)}"


def destination_of(entry: str, current: bool) -> Destination | str:
    """Where the entry goes, or why it is not imported."""
    parts = entry.split("/")
    if current:
        return _current_destination(parts)
    if len(parts) == 2 and parts[0] == "bases" and parts[1].endswith(_DOCUMENT):
        return Destination(parts[1][: -len(_DOCUMENT)], lines=False)
    if len(parts) >= 3 and parts[0] == "drives" and parts[1]:
        if parts[1] in (".", ".."):
            return "a Drive cannot be named . or .."
        return Destination(parts[1], "/".join(parts[2:]))
    return "neither bases/<name>.json nor drives/<name>/..."


def _current_destination(parts: list[str]) -> Destination | str:
    try:
        if len(parts) == 2 and parts[0] == "bases" and parts[1].endswith(_LINES):
            return Destination(decode_name(parts[1][: -len(_LINES)]))
        if len(parts) == 3 and parts[0] == "drives" and parts[1] and parts[2]:
            return Destination(decode_name(parts[1]), decode_name(parts[2]))
    except (ValueError, UnicodeDecodeError) as err:
        return f"its name is not a percent-encoded UTF-8 name ({err})"
    return "neither bases/<base>.jsonl nor drives/<drive>/<file name>"
