"""The settings read from the environment (`SPACE_DEV_*`), each checked with a message that
names the variable."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from runtime.config.defaults import CLIENT_TIMEOUT_S, MICRO_READY_TIMEOUT_S
from runtime.errors import SpaceDevError

READY_TIMEOUT_VARIABLE = "SPACE_DEV_READY_TIMEOUT"
CLIENT_TIMEOUT_VARIABLE = "SPACE_DEV_CLIENT_TIMEOUT"


def seconds(name: str, default: float, environ: Mapping[str, str] = os.environ) -> float:
    """The positive number of seconds in the variable `name`; `default` when it is unset."""
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SpaceDevError(
            f"{name}={raw!r} is not a number of seconds",
            f"give a number above 0, such as {default:g}, or leave {name} out for {default:g} s",
        )
    return value


def ready_timeout(environ: Mapping[str, str] = os.environ) -> float:
    """How long a micro may take to answer on its port at its start."""
    return seconds(READY_TIMEOUT_VARIABLE, MICRO_READY_TIMEOUT_S, environ)


def client_timeout(environ: Mapping[str, str] = os.environ) -> float:
    """How long a client may keep the runtime waiting (for a request head, or its body)."""
    return seconds(CLIENT_TIMEOUT_VARIABLE, CLIENT_TIMEOUT_S, environ)
