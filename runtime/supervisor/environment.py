"""The environment each micro starts with, built from plain values."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from runtime.config.environment import PASSWORD_VARIABLE
from runtime.models import Micro
from runtime.spacefile.engines import Engine
from runtime.supervisor.builder import node_tools

# What servers read to choose the interface they listen on (Node apps by convention, uvicorn,
# `flask run`); each micro gets loopback.
LOOPBACK_VARIABLES = {
    "HOST": "127.0.0.1",
    "UVICORN_HOST": "127.0.0.1",
    "FLASK_RUN_HOST": "127.0.0.1",
    "STREAMLIT_SERVER_ADDRESS": "127.0.0.1",
    "GRADIO_SERVER_NAME": "127.0.0.1",
}

# Dev tools stay quiet and offline: no usage reports sent from a developer's machine, no notice
# about them printed at every start (Next.js, Nuxt, Astro, Gatsby, Angular's CLI, Storybook,
# Streamlit, Gradio, and the cross-tool DO_NOT_TRACK). What the shell sets stands.
QUIET_VARIABLES = {
    "DO_NOT_TRACK": "1",
    "NEXT_TELEMETRY_DISABLED": "1",
    "NUXT_TELEMETRY_DISABLED": "1",
    "ASTRO_TELEMETRY_DISABLED": "1",
    "GATSBY_TELEMETRY_DISABLED": "1",
    "NG_CLI_ANALYTICS": "false",
    "STORYBOOK_DISABLE_TELEMETRY": "1",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    "GRADIO_ANALYTICS_ENABLED": "False",
}

# Each process's own port, under the names servers read it by: $PORT (Node servers, Next.js,
# Nuxt, Create React App), uvicorn's, `flask run`'s, Streamlit's, Gradio's. Vite, Angular's and
# Astro's dev servers and Django's runserver read none: the hint for a port never listened on
# says what to add to their command.
NODE_PORT_VARIABLES = ("PORT",)
PYTHON_PORT_VARIABLES = (
    "PORT",
    "UVICORN_PORT",
    "FLASK_RUN_PORT",
    "STREAMLIT_SERVER_PORT",
    "GRADIO_SERVER_PORT",
)

# Loaded first into every Node.js process (NODE_OPTIONS): a `listen(PORT)` naming no host binds
# $HOST instead of every interface, where the micro would be reachable past the gate; and the
# guard, which refuses a request that did not come through the gate.
_NODE = Path(__file__).resolve().parents[1] / "in_micro" / "node"
NODE_PRELOADS = (_NODE / "loopback.cjs", _NODE / "guard.cjs")

# The gate proves itself to a micro on every request: this header carries the app's per-run
# secret, which the micro's guard finds in this variable (docs/decisions.md, "Threat model").
GATE_PROOF_VARIABLE = "SPACE_DEV_GATE_PROOF"
GATE_PROOF_HEADER = "X-Space-Gate"
# The readiness request carries this header (beside the proof), which the micro's guard answers
# by itself; its answer carries GUARD_HEADER: the micro is guarded.
PROBE_HEADER = "X-Space-Probe"
GUARD_HEADER = "X-Space-Guard"

# Where a `presets.env` value comes from, in the order that decides it.
Source = Literal["saved", "config", "shell", "default", "unset"]


def resolve_preset(
    name: str,
    default: str | None,
    saved: Mapping[str, str],
    configured: Mapping[str, str],
    shell: Mapping[str, str],
) -> tuple[str | None, Source]:
    """One variable's value and its source: the settings page, else [apps.env], else the shell,
    else the Spacefile's default; unset (None) when none has it, as on Space."""
    if name in saved:
        return saved[name], "saved"
    if name in configured:
        return configured[name], "config"
    if name in shell:
        return shell[name], "shell"
    if default is not None:
        return default, "default"
    return None, "unset"


def preset_values(
    micro: Micro,
    saved: Mapping[str, str],
    configured: Mapping[str, str],
    shell: Mapping[str, str],
) -> dict[str, str]:
    """Each `presets.env` variable of the micro that has a value (see resolve_preset)."""
    values: dict[str, str] = {}
    for preset in micro.env:
        value, _ = resolve_preset(preset.name, preset.default, saved, configured, shell)
        if value is not None:
            values[preset.name] = value
    return values


def micro_environment(
    micro: Micro,
    engine: Engine,
    *,
    hostname: str,
    project_key: str,
    presets: Mapping[str, str],
    shell: Mapping[str, str] | None = None,
    services: Mapping[str, str] | None = None,
    python_bin: str | None = None,
    gate_proof: str = "",
) -> dict[str, str]:
    """The full environment of a micro's process, without its port (set per process).

    `python_bin` is the bin folder of a python micro's own environment, which then comes first
    on PATH instead of the runtime's."""
    env = dict(os.environ if shell is None else shell)
    env.pop(PASSWORD_VARIABLE, None)  # the owner's password is nobody else's business
    env.update(
        DETA_PROJECT_KEY=project_key,
        DETA_SPACE_APP="true",
        DETA_SPACE_APP_HOSTNAME=hostname,
        DETA_SPACE_APP_MICRO_NAME=micro.name,
        DETA_SPACE_APP_MICRO_TYPE=micro.kind,
        DETA_SPACE_APP_VERSION="dev",
    )
    env.pop(GATE_PROOF_VARIABLE, None)  # only the runtime's own, never one from the shell
    if gate_proof:
        env[GATE_PROOF_VARIABLE] = gate_proof
    # Only the gate faces the network: servers that read these listen on loopback alone.
    env.update(LOOPBACK_VARIABLES)
    for name, value in QUIET_VARIABLES.items():
        env.setdefault(name, value)
    env.update(node_options(env.get("NODE_OPTIONS", "")))
    env.update(services or {})  # where Base and Drive are, and the certificate to trust
    if engine.family == "python":
        # Its own environment's interpreter comes first, else the runtime's, so `python` and
        # `uvicorn` resolve to it.
        bin_dir = python_bin or os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p)
        if python_bin:
            env["VIRTUAL_ENV"] = os.path.dirname(python_bin)
            env.pop("PYTHONHOME", None)
        env.setdefault("PYTHONUNBUFFERED", "1")  # lines reach the log as they are printed
    if engine.family in ("node", "frontend", "static"):
        env.update(node_tools.shims_env(micro.src, env))
    env.update(presets)
    return env


def node_options(given: str) -> dict[str, str]:
    """NODE_OPTIONS with the preloads added to what the shell had (each only if its file is
    there: a `--require` of a missing file would stop every node process)."""
    added = [f'--require "{p}"' for p in NODE_PRELOADS if p.is_file() and str(p) not in given]
    if not added:
        return {}
    return {"NODE_OPTIONS": " ".join([given, *added]).strip()}


def port_variables(engine: Engine) -> tuple[str, ...]:
    """The variables that carry a process's own port: python's servers' names for a python or
    custom micro (whose command may be any of them), $PORT alone for the others."""
    return PYTHON_PORT_VARIABLES if engine.family in ("python", "custom") else NODE_PORT_VARIABLES


def bind_variables(env: Mapping[str, str], port: int) -> dict[str, str]:
    """Variables that carry a process's own address, set per process beside its port.

    gunicorn binds 0.0.0.0 when it finds $PORT; GUNICORN_CMD_ARGS is how it is told otherwise.
    A bind the developer set there already is left as it is.
    """
    args = env.get("GUNICORN_CMD_ARGS", "")
    if "--bind" in args or args.startswith("-b") or " -b" in args:
        return {}
    return {"GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port} {args}".strip()}
