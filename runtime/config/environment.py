"""The settings read from the environment (`SPACE_DEV_*`), each checked with a message that
names the variable; `check` reads them all at the start, so a wrong one stops `up` at once."""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Mapping

from runtime.auth.passwords import MIN_PASSWORD_LENGTH
from runtime.config.defaults import CLIENT_TIMEOUT_S, MICRO_READY_TIMEOUT_S, PACKAGES_AS_OF
from runtime.config.secret_env import take_secret
from runtime.errors import SpaceDevError

READY_TIMEOUT_VARIABLE = "SPACE_DEV_READY_TIMEOUT"
CLIENT_TIMEOUT_VARIABLE = "SPACE_DEV_CLIENT_TIMEOUT"
# The owner's password at the first start; taken out of the environment as it is read.
PASSWORD_VARIABLE = "SPACE_DEV_PASSWORD"
# `SPACE_DEV_INSTALLER=pip` (or `uv`) forces one; bench/setup.py compares them this way.
INSTALLER_VARIABLE = "SPACE_DEV_INSTALLER"
INSTALLERS = ("uv", "pip")
# `SPACE_DEV_PACKAGES_AS_OF=2025-06-01` resolves as of another day; `latest`, as of now.
PACKAGES_AS_OF_VARIABLE = "SPACE_DEV_PACKAGES_AS_OF"
LATEST = "latest"


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


def installer(environ: Mapping[str, str] = os.environ) -> str | None:
    """The Python installer asked for (`uv` or `pip`); None: uv when there is one, else pip."""
    raw = environ.get(INSTALLER_VARIABLE, "")
    wanted = raw.strip().lower()
    if not wanted:
        return None
    if wanted not in INSTALLERS:
        raise SpaceDevError(
            f"{INSTALLER_VARIABLE}={raw!r} is not an installer space-dev knows",
            f"give `uv` or `pip`, or leave {INSTALLER_VARIABLE} out to use uv when it is "
            "installed, else pip",
        )
    return wanted


def packages_as_of(environ: Mapping[str, str] = os.environ) -> str | None:
    """The day a micro's packages resolve as of (YYYY-MM-DD); None for the newest releases."""
    raw = environ.get(PACKAGES_AS_OF_VARIABLE, "")
    text = raw.strip()
    if not text:
        return PACKAGES_AS_OF
    if text.lower() == LATEST:
        return None
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise SpaceDevError(
            f"{PACKAGES_AS_OF_VARIABLE}={raw!r} is neither a day nor `{LATEST}`",
            f"give a day as YYYY-MM-DD (e.g. {PACKAGES_AS_OF}, when Space stopped), or "
            f"`{LATEST}` for the newest releases, or leave {PACKAGES_AS_OF_VARIABLE} out for "
            f"{PACKAGES_AS_OF}",
        ) from None


def owner_password() -> str | None:
    """The owner's password from the environment (None: unset), taken out of it at once, as
    micros inherit the runtime's environment."""
    password = take_secret(PASSWORD_VARIABLE)
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise SpaceDevError(
            f"{PASSWORD_VARIABLE} is too short ({len(password)} characters, at least "
            f"{MIN_PASSWORD_LENGTH} are needed, as for `space-dev users add`)",
            f"set a longer one, or leave {PASSWORD_VARIABLE} out to get a random password",
        )
    return password


def check(environ: Mapping[str, str] = os.environ) -> None:
    """Read every setting of the environment, so a wrong value is told before anything starts
    (the password is checked as it is taken: `owner_password`)."""
    ready_timeout(environ)
    client_timeout(environ)
    installer(environ)
    packages_as_of(environ)
