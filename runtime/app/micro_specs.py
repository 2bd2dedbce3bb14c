"""How each micro of an app starts, and what it needs before: its launch spec with its setup
plan (own Python environment, node packages, `commands`), or a static micro's build."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runtime.models import Micro, Spacefile
from runtime.spacefile import engines
from runtime.supervisor.builder.prepare import SetupPlan, make_plan
from runtime.supervisor.environment import micro_environment, port_variables, preset_values
from runtime.supervisor.manager import LaunchSpec


@dataclass(frozen=True)
class StaticPlan:
    """A static micro served from a folder its `commands` build."""

    setup: SetupPlan
    env: Mapping[str, str]


@dataclass(frozen=True)
class AppView:
    """What the specs are made from, for one app now."""

    name: str
    spacefile: Spacefile
    hostname: str
    project_key: str
    configured_env: Mapping[str, str]
    saved_env: Mapping[str, str]
    services: Mapping[str, str]
    data_dir: Path
    gate_proof: str = ""  # the app's per-run secret the gate proves itself with


def serve_root(micro: Micro) -> Path:
    """The folder a static micro serves."""
    return (micro.src / (micro.serve or ".")).resolve()


def micro_specs(app: AppView) -> tuple[dict[str, LaunchSpec | None], dict[str, StaticPlan]]:
    """Each micro's launch spec (None: served from its folder by the runtime), and the builds
    of static micros whose `commands` make that folder."""
    specs: dict[str, LaunchSpec | None] = {}
    builds: dict[str, StaticPlan] = {}
    for micro in app.spacefile.micros:
        engine = engines.lookup(micro.engine)
        assert engine is not None  # the Spacefile was validated
        command = engines.start_command(engine, micro.run, micro.dev)
        # A static micro with `dev` runs that dev server and is proxied to, as `space dev` did.
        static_dev = engine.family == "static" and micro.dev is not None
        presets = preset_values(micro, app.saved_env, app.configured_env, os.environ)
        plan = make_plan(app.data_dir, app.name, micro.name, micro.src, app.spacefile.path,
                         engine=micro.engine, family=engine.family,
                         engine_default=command == engines.PYTHON_DEFAULT,
                         # The dev server builds by itself: the build `commands` are for `serve`.
                         commands=() if static_dev else micro.commands,
                         static_build=((serve_root(micro),)
                                       if engine.family == "static" and not static_dev else None))
        python_bin = str(plan.python.bin_dir) if plan.python is not None else None
        env = micro_environment(micro, engine, hostname=app.hostname,
                                project_key=app.project_key, presets=presets,
                                services=app.services, python_bin=python_bin,
                                gate_proof=app.gate_proof)
        if (engine.family == "static" and not static_dev) or command is None:
            specs[micro.name] = None
            if engine.family == "static" and micro.commands:
                builds[micro.name] = StaticPlan(plan, env)
            continue
        specs[micro.name] = LaunchSpec(command, micro.src, env, port_variables(engine), plan,
                                       engines.own_reloader(engine, command),
                                       command_source(micro))
    return specs, builds


def command_source(micro: Micro) -> str:
    """Where a micro's command comes from, for hints such as a `command not found`."""
    field = "dev" if micro.dev else "run" if micro.run else "engine"
    default = (" (this is its engine's default command; a `run` field replaces it)"
               if field == "engine" else "")
    return f"the `{field}` field of micro {micro.name} in the Spacefile{default}"
