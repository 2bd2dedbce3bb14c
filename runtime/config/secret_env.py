"""Take a secret out of the runtime's own environment, including the kernel's copy of it.

`os.environ.pop` only unsets the variable for this process and its future children. The block
the process started with stays in its memory, and `/proc/<pid>/environ` reads that block: any
process of the same user (every micro) could read the owner's password there. So the value is
also overwritten in place (`system.blank_in_start_environment`), where the system allows it.
"""

from __future__ import annotations

import logging
import os

from runtime import system

log = logging.getLogger(__name__)


def take_secret(name: str) -> str | None:
    """The variable's value (None when unset or empty), gone from every copy of the environment
    this system lets us reach (where there is no /proc, the block the process started with
    keeps it)."""
    value = os.environ.pop(name, None)
    if value is None:
        return None
    try:
        if not system.blank_in_start_environment(name):
            log.debug("no /proc: %s stays in the process's start environment block", name)
    except OSError as err:  # a kernel that refuses the write
        log.debug("could not blank %s in the process's environment block: %s", name, err)
    return value or None
