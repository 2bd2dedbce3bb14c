"""Take a secret out of the runtime's own environment, including the kernel's copy of it.

`os.environ.pop` only unsets the variable for this process and its future children. The block
the process started with stays in its memory, and `/proc/<pid>/environ` reads that block: any
process of the same user (every micro) could read the owner's password there. So the value is
also overwritten in place, through `/proc/self/mem`, which a process may always write for itself.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

# Fields of /proc/self/stat, counted from 1 as proc(5) does: where the environment block lies.
_ENV_START_FIELD = 50
_ENV_END_FIELD = 51


def take_secret(name: str) -> str | None:
    """The variable's value (None when unset or empty), gone from every copy of the environment."""
    value = os.environ.pop(name, None)
    if value is None:
        return None
    try:
        _blank_in_start_block(name)
    except OSError as err:  # no /proc (not Linux), or a kernel that refuses the write
        log.debug("could not blank %s in the process's environment block: %s", name, err)
    return value or None


def _blank_in_start_block(name: str) -> None:
    start, end = _environment_block()
    prefix = name.encode() + b"="
    with open("/proc/self/mem", "r+b", buffering=0) as mem:
        mem.seek(start)
        block = mem.read(end - start)
        offset = 0
        for entry in block.split(b"\0"):
            if entry.startswith(prefix):
                value_at = start + offset + len(prefix)
                mem.seek(value_at)
                mem.write(b"\0" * (len(entry) - len(prefix)))
            offset += len(entry) + 1


def _environment_block() -> tuple[int, int]:
    with open("/proc/self/stat", "rb") as stat:
        text = stat.read()
    # The command name (field 2) is in parentheses and may hold spaces: count after its end.
    fields = text[text.rindex(b")") + 2 :].split()
    first = 3
    return int(fields[_ENV_START_FIELD - first]), int(fields[_ENV_END_FIELD - first])
