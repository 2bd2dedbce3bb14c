"""Byte sizes as space-dev.toml writes them: a number and a binary unit, such as "100 MiB"."""

from __future__ import annotations

import re

UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
SIZE_HINT = 'write a number and a unit (B, KiB, MiB or GiB), such as "100 MiB"'
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*")


def parse_size(text: str) -> int:
    """The number of bytes `text` names; ValueError with the reason otherwise."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError("it is not a number followed by a unit")
    number, unit = match.groups()
    # Any letter case: "mib" is no other unit. "MB" is refused rather than guessed (10^6 or 2^20).
    known = {name.lower(): name for name in UNITS}
    if unit.lower() not in known:
        raise ValueError(f'unknown unit "{unit}"')
    size = int(float(number) * UNITS[known[unit.lower()]])
    if size < 1:
        raise ValueError("a size must be at least 1 byte")
    return size


def format_size(size: int) -> str:
    """`size` in the largest unit it is a whole number of: 104857600 -> "100 MiB"."""
    for unit, factor in reversed(UNITS.items()):
        if size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"  # for the type checker: "B" above divides every size
