"""Everything a micro needs before it starts, in order: its Python environment, its node
packages, its `commands`; each skipped when its inputs are what they were last time."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runtime.supervisor import setup
from runtime.supervisor.builder import frontend, node_modules, python_env, sources
from runtime.supervisor.builder.frontend import Publish
from runtime.supervisor.builder.node_modules import NodeDeps
from runtime.supervisor.builder.python_env import PythonEnv
from runtime.supervisor.output import Printer

SETUP_FOLDER = "setup"  # under the data dir: setup/<app>/<micro>[.node]: fingerprints


@dataclass(frozen=True)
class SetupPlan:
    """What one micro's setup consists of (compared: a different plan means a new setup)."""

    app: str
    micro: str
    src: Path
    spacefile: Path
    commands: tuple[str, ...] = ()
    python: PythonEnv | None = None
    node: NodeDeps | None = None
    # A static micro's build: the folders it writes (`serve`), left out of its source print.
    builds: tuple[Path, ...] | None = None
    # A frontend micro's build output, copied where it runs from after each good build.
    publish: Publish | None = None

    def install_inputs(self) -> set[Path]:
        """The files its installs are made from (requirements, package.json, lockfiles)."""
        found = set(self.node.inputs()) if self.node is not None else set()
        if self.python is not None:
            found.add(self.python.requirements)
        return found

    def installed(self) -> bool:
        """Whether its environment and packages are what those files ask for now."""
        return (self.python is None or self.python.ready) and (
            self.node is None or not self.node.needed()
        )


def make_plan(
    data_dir: Path,
    app: str,
    micro: str,
    src: Path,
    spacefile: Path,
    *,
    engine: str,
    family: str,
    engine_default: bool,
    commands: tuple[str, ...],
    static_build: tuple[Path, ...] | None = None,
    publish: Publish | None = None,
) -> SetupPlan:
    """The setup a micro of this engine family needs."""
    python = (
        python_env.plan(data_dir, app, micro, src, engine, engine_default)
        if family == "python"
        else None
    )
    # Space's node and frontend engines installed packages; a static micro needs them for its
    # build or dev server. A custom micro's `commands` say what it needs.
    node = (
        node_modules.plan(src, data_dir / SETUP_FOLDER / app / f"{micro}.node", engine, family)
        if family in ("node", "frontend", "static")
        else None
    )
    return SetupPlan(app, micro, src, spacefile, commands, python, node, static_build, publish)


class Builder:
    """Runs setups: one at a time per micro (never the same install twice at once), side by
    side across micros."""

    def __init__(self, data_dir: Path, printer: Printer) -> None:
        self._data_dir = data_dir
        self._printer = printer
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._noted: set[tuple[str, str]] = set()
        self._said: set[tuple[str, str]] = set()  # notes about a build, each said once

    def _marker(self, plan: SetupPlan) -> Path:
        return self._data_dir / SETUP_FOLDER / plan.app / plan.micro

    async def settled(self, plan: SetupPlan) -> None:
        """Return once no setup of this micro is running (the files it writes are then final)."""
        async with self._locks.setdefault((plan.app, plan.micro), asyncio.Lock()):
            pass

    async def prepare(self, plan: SetupPlan, env: Mapping[str, str]) -> str | None:
        """Set the micro up; None when it may start, else what failed (for the settings page)."""
        key = (plan.app, plan.micro)
        async with self._locks.setdefault(key, asyncio.Lock()):
            if plan.python is not None:
                note = python_env.engine_note(plan.python)
                if note and key not in self._noted:
                    self._noted.add(key)
                    self._printer.line(plan.micro, note)
                error = await python_env.prepare(plan.micro, plan.python, env, self._printer)
                if error:
                    return error
            if plan.node is not None:
                note = await node_modules.engine_note(plan.node, env)
                if note and key not in self._noted:
                    self._noted.add(key)
                    self._printer.line(plan.micro, note)
                error = await node_modules.prepare(plan.micro, plan.node, env, self._printer)
                if error:
                    return error
            marker = self._marker(plan)
            if plan.publish is not None and not plan.publish.current.exists():
                marker.unlink(missing_ok=True)  # nothing published yet: build
            print_ = await self._commands_print(plan)
            built = bool(plan.commands) and _read(marker) != print_
            error = await setup.run_setup(
                plan.micro, plan.commands, plan.src, env, self._printer, marker, print_
            )
            if error is None and plan.builds is not None and plan.commands:
                # Taken again after the build, so a source file the build itself wrote is
                # not a reason to build again.
                setup.write_marker(marker, await self._commands_print(plan))
            if error is None and built and plan.publish is not None:
                error = await self._publish(plan.micro, plan.publish)
                if error is not None:
                    marker.unlink(missing_ok=True)  # built again next time
            return error

    async def _publish(self, micro: str, plan: Publish) -> str | None:
        try:
            error, note = await asyncio.to_thread(frontend.publish, plan)
        except OSError as err:
            error, note = f"cannot copy the build to {plan.folder}: {err.strerror or err}", None
        if note is not None and (key := (str(plan.folder), note)) not in self._said:
            self._said.add(key)
            self._printer.info(f"{micro}: {note}")
        if error is not None:
            self._printer.info(f"{micro}: {error}")
        return error

    async def _commands_print(self, plan: SetupPlan) -> str:
        # Off the event loop: a static build's print reads its whole source tree.
        return await asyncio.to_thread(self.commands_print, plan)

    def commands_print(self, plan: SetupPlan) -> str:
        """What the commands' last good run depended on; a static build also on its sources."""
        text = plan.spacefile.read_text(encoding="utf-8", errors="replace")
        print_ = setup.fingerprint(plan.commands, text)
        if plan.builds is not None:
            print_ += ":" + sources.tree_print(plan.src, plan.builds)
        return print_

    async def outdated(self, plan: SetupPlan) -> bool:
        """Whether a static build's inputs differ from its last good run (a save calls for it)."""

        def differs() -> bool:
            try:
                return self._marker(plan).read_text() != self.commands_print(plan)
            except OSError:
                return True

        return await asyncio.to_thread(differs)

    async def prune(self, plan: SetupPlan) -> None:
        """The micro's new setup works: remove its older environments."""
        keep = plan.python.env_dir if plan.python is not None else None
        await asyncio.to_thread(python_env.prune, self._data_dir, plan.app, plan.micro, keep)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None
