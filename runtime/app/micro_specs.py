"""How each micro of an app starts, and what it needs before: its launch spec with its setup
plan (own Python environment, node packages, `commands`), or a static micro's build."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runtime.models import Micro, Spacefile
from runtime.spacefile import engines
from runtime.supervisor.builder import frontend
from runtime.supervisor.builder.frontend import FrontendRun
from runtime.supervisor.builder.prepare import SetupPlan, make_plan
from runtime.supervisor.environment import micro_environment, port_variables, preset_values
from runtime.supervisor.manager import LaunchSpec


@dataclass(frozen=True)
class StaticPlan:
    """A static micro served from a folder its `commands` build."""

    setup: SetupPlan
    env: Mapping[str, str]


@dataclass(frozen=True)
class SpecInputs:
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
    as_space: bool = False  # `dev` lines ignored: every micro runs as Space ran it


def serve_root(micro: Micro) -> Path:
    """The folder a static micro serves."""
    return (micro.src / (micro.serve or ".")).resolve()


def runs_dev_line(micro: Micro, as_space: bool) -> bool:
    """Whether the micro runs its `dev` line (not as Space ran it)."""
    return micro.dev is not None and not as_space


def built_frontend(micro: Micro, as_space: bool) -> bool:
    """Whether a frontend micro runs from its build, as on Space (no `dev` line run)."""
    engine = engines.lookup(micro.engine)
    return (
        engine is not None and engine.space_build is not None and not runs_dev_line(micro, as_space)
    )


def static_root(micro: Micro, data_dir: Path, app: str, as_space: bool) -> Path:
    """The folder a micro served as files is served from: a built vue, svelte or react
    micro's published build, else its `serve` folder."""
    if built_frontend(micro, as_space):
        return frontend.published_folder(data_dir, app, micro.name) / frontend.CURRENT
    return serve_root(micro)


def micro_specs(
    app: SpecInputs, only: str | None = None
) -> tuple[dict[str, LaunchSpec | None], dict[str, StaticPlan]]:
    """Each micro's launch spec (None: served from a folder by the runtime), and the builds
    of micros served as files whose build makes that folder; of the micro `only`, if given.

    It reads the micros' files (requirements, package.json, lockfiles): the runtime calls it
    off its event loop once it serves."""
    specs: dict[str, LaunchSpec | None] = {}
    builds: dict[str, StaticPlan] = {}
    for micro in app.spacefile.micros:
        if only is not None and micro.name != only:
            continue
        engine = engines.lookup(micro.engine)
        assert engine is not None  # the Spacefile was validated
        dev = micro.dev if runs_dev_line(micro, app.as_space) else None
        built = (
            frontend.plan(micro, engine, app.data_dir, app.name)
            if built_frontend(micro, app.as_space)
            else None
        )
        command = (
            built.command if built is not None else engines.start_command(engine, micro.run, dev)
        )
        # A static micro with `dev` runs that dev server and is proxied to, as `space dev` did.
        static_dev = engine.family == "static" and dev is not None
        served = (engine.family == "static" and not static_dev) or (
            built is not None and built.command is None
        )
        presets = preset_values(micro, app.saved_env, app.configured_env, os.environ)
        plan = make_plan(
            app.data_dir,
            app.name,
            micro.name,
            micro.src,
            app.spacefile.path,
            engine=micro.engine,
            family=engine.family,
            engine_default=command == engines.PYTHON_DEFAULT,
            # The dev server builds by itself: the build `commands` are for `serve`.
            commands=(
                built.commands if built is not None else () if static_dev else micro.commands
            ),
            static_build=_writes(micro, engine, built, static_dev),
            publish=built.publish if built is not None else None,
        )
        python_bin = str(plan.python.bin_dir) if plan.python is not None else None
        env = micro_environment(
            micro,
            engine,
            hostname=app.hostname,
            project_key=app.project_key,
            presets=presets,
            services=app.services,
            python_bin=python_bin,
            gate_proof=app.gate_proof,
        )
        if served or command is None:
            specs[micro.name] = None
            if plan.commands and (engine.family == "static" or built is not None):
                builds[micro.name] = StaticPlan(plan, env)
            continue
        specs[micro.name] = LaunchSpec(
            command,
            micro.src,
            env,
            port_variables(engine),
            plan,
            engines.own_reloader(engine, command, built is not None),
            command_source(micro, dev, built),
        )
    return specs, builds


def _writes(
    micro: Micro, engine: engines.Engine, built: FrontendRun | None, static_dev: bool
) -> tuple[Path, ...] | None:
    """What a micro's build writes (a source print leaves it out), or None: no build."""
    if built is not None:
        return built.writes
    if engine.family == "static" and not static_dev:
        return (serve_root(micro),)
    return None


def build_notes(app: SpecInputs) -> dict[str, str]:
    """What each built frontend micro does differently from Space here, and what to change."""
    notes: dict[str, str] = {}
    for micro in app.spacefile.micros:
        engine = engines.lookup(micro.engine)
        if engine is not None and built_frontend(micro, app.as_space):
            note = frontend.plan(micro, engine, app.data_dir, app.name).note
            if note is not None:
                notes[micro.name] = note
    return notes


def command_source(micro: Micro, dev: str | None = None, built: FrontendRun | None = None) -> str:
    """Where a micro's command comes from, for hints such as a `command not found`."""
    if built is not None and not micro.run:
        return (
            f"the server micro {micro.name}'s build made (its engine's start, as on Space; "
            "a `run` field replaces it)"
        )
    field = "dev" if dev else "run" if micro.run else "engine"
    default = (
        " (this is its engine's default command; a `run` field replaces it)"
        if field == "engine"
        else ""
    )
    return f"the `{field}` field of micro {micro.name} in the Spacefile{default}"
