"""HTTP byte ranges on one file: what a `Range` header asks of a file of a given size."""

from __future__ import annotations

import re
from typing import NamedTuple

_ONE_RANGE = re.compile(r"(\d*)-(\d*)")


class Plan(NamedTuple):
    """The answer to send: 200 with the whole file, 206 with bytes [start, stop), or 416."""

    status: int
    start: int
    stop: int


def plan_range(header: str | None, size: int) -> Plan:
    """Decide the response to `Range: header` for a file of `size` bytes (RFC 9110 14.2).

    A header we cannot read, in another unit or asking for several ranges is ignored, which
    the RFC allows: the client gets the whole file with 200."""
    whole = Plan(200, 0, size)
    if not header:
        return whole
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return whole
    match = _ONE_RANGE.fullmatch(spec.strip())
    if match is None or match.group(0) == "-":
        return whole
    first, last = match.group(1), match.group(2)
    if not first:  # "-n": the last n bytes
        length = int(last)
        if length == 0 or size == 0:
            return Plan(416, 0, 0)
        return Plan(206, max(0, size - length), size)
    start = int(first)
    if last and int(last) < start:
        return whole  # "5-3" is not a range at all
    if start >= size:
        return Plan(416, 0, 0)
    stop = min(int(last) + 1, size) if last else size
    return Plan(206, start, stop)
