"""A page of Base items as a table: one column per field the items have, each value shown
short, a nested value (an object or a list) folded so a row stays one line high."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

MAX_COLUMNS = 16  # fields past these are still in each item's JSON, a click away
SHORT_TEXT = 80  # characters of a text value shown in its cell; the whole value is on hover
PREVIEW_IMAGES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"}
)  # never SVG: it can carry script
TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/toml",
    "application/yaml",
    "application/x-yaml",
)


def columns(items: list[dict[str, Any]]) -> tuple[list[str], bool]:
    """The fields of a page's items in the order they first appear (the key first, always), and
    whether some were left out for room."""
    seen: dict[str, None] = {}
    for item in items:
        for field in item:
            if field != "key":
                seen.setdefault(field, None)
    names = list(seen)
    return names[:MAX_COLUMNS], len(names) > MAX_COLUMNS


def dumped(value: Any, indent: int | None = None) -> str:
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escaped, so it still reads as JSON
        text = json.dumps(value, indent=indent)
    return text


_EMPTY_CELL = {
    "missing": False,
    "summary": "",
    "json": "",
    "text": "",
    "whole": "",
    "kind": "",
    "edit": "",
}


def cell(item: dict[str, Any], field: str) -> dict[str, Any]:
    """What one cell shows: `missing`, a folded `summary` with its JSON, or a short `text`."""
    return {**_EMPTY_CELL, **_cell(item, field)}


def _cell(item: dict[str, Any], field: str) -> dict[str, Any]:
    if field not in item:
        return {"missing": True}
    value = item[field]
    if isinstance(value, dict):
        count = len(value)
        return {
            "summary": f"{{{count} field{'' if count == 1 else 's'}}}",
            "json": dumped(value, 2),
            "edit": dumped(value, 2),
        }
    if isinstance(value, list):
        count = len(value)
        return {
            "summary": f"[{count} value{'' if count == 1 else 's'}]",
            "json": dumped(value, 2),
            "edit": dumped(value, 2),
        }
    if isinstance(value, str):
        # A lone surrogate a client stored is shown as its escape, never sent as is.
        whole = value.encode("utf-8", "backslashreplace").decode("utf-8")
        short = whole if len(whole) <= SHORT_TEXT else whole[:SHORT_TEXT] + "…"
        return {"text": short, "whole": whole, "kind": "text", "edit": dumped(value)}
    return {"text": dumped(value), "whole": dumped(value), "kind": "value", "edit": dumped(value)}


def previewable(content_type: str, name: str) -> str:
    """`image`, `text`, or "" for a file the page cannot show."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in PREVIEW_IMAGES:
        return "image"
    if kind.startswith(TEXT_TYPES) or kind.endswith(("+json", "+xml")):
        return "text"
    if kind == "application/octet-stream" and name.lower().endswith(
        (".txt", ".md", ".csv", ".log", ".json", ".yaml", ".yml", ".toml")
    ):
        return "text"
    return ""


def moment(epoch: float) -> str:
    """A file's time as the data dir writes times: `2026-01-02T03:04:05Z`."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
