"""The environment each micro starts with (SPEC section 3), built from plain values."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from runtime.engines import Engine
from runtime.models import Micro


def preset_values(
    micro: Micro,
    saved: Mapping[str, str],
    configured: Mapping[str, str],
    shell: Mapping[str, str],
) -> dict[str, str]:
    """Each `presets.env` value: the settings page, else [apps.env], else the shell, else default.

    A variable with none of these stays unset, as on Space.
    """
    values: dict[str, str] = {}
    for preset in micro.env:
        for source in (saved, configured, shell):
            if preset.name in source:
                values[preset.name] = source[preset.name]
                break
        else:
            if preset.default is not None:
                values[preset.name] = preset.default
    return values


def micro_environment(
    micro: Micro,
    engine: Engine,
    *,
    hostname: str,
    project_key: str,
    presets: Mapping[str, str],
    shell: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The full environment of a micro's process, without its port (set per process)."""
    env = dict(os.environ if shell is None else shell)
    env.pop("SPACE_DEV_PASSWORD", None)  # the owner's password is nobody else's business
    env.update(
        DETA_PROJECT_KEY=project_key,
        DETA_SPACE_APP="true",
        DETA_SPACE_APP_HOSTNAME=hostname,
        DETA_SPACE_APP_MICRO_NAME=micro.name,
        DETA_SPACE_APP_MICRO_TYPE=micro.kind,
        DETA_SPACE_APP_VERSION="dev",
    )
    if engine.family == "python":
        # The runtime's own interpreter comes first, so `python` and `uvicorn` resolve to it.
        bin_dir = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")  # lines reach the log as they are printed
    env.update(presets)
    return env


def port_variables(engine: Engine) -> tuple[str, ...]:
    """The variables that carry a process's own port."""
    return ("PORT", "UVICORN_PORT") if engine.family == "python" else ("PORT",)
