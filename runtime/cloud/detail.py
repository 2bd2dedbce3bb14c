"""space-dev's own detail beside an answer given in Deta's words: a response header the SDKs
never read (they read `errors[0]`, which keeps Deta's text), and the runtime's log."""

from __future__ import annotations

import json

DETAIL_HEADER = "X-Space-Detail"
MAX_DETAIL_CHARS = 1000  # a field name in a query may be long; the header stays a header


def header_text(detail: str) -> str:
    """`detail` as one line of printable ASCII: other characters as JSON escapes (`\\n`, `\\u00e9`),
    so a field name from a query can neither break the header nor change its meaning."""
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[:MAX_DETAIL_CHARS] + "..."
    return json.dumps(detail)[1:-1].replace("\x7f", "\\u007f")  # DEL: JSON leaves it raw


def detail_headers(detail: str) -> dict[str, str]:
    """The header that carries `detail`, or none when there is nothing to add."""
    return {DETAIL_HEADER: header_text(detail)} if detail else {}


def read_header_text(value: str) -> str:
    """The detail a header carries, escapes undone (what the runtime's log shows)."""
    try:
        text = json.loads(f'"{value}"')
    except ValueError:
        return value
    return text if isinstance(text, str) else value
