"""Hot reload: turn each burst of saves into the one action it calls for.

A save under a micro's `src` restarts that micro alone (the one with the deepest `src` holding
the file; a frontend micro run from its build is built again first, and what its build writes
restarts nothing); a saved Spacefile or space-dev.toml is handed to the runtime, which applies
it; a static micro needs nothing, since each request reads its files fresh, unless its
`commands` build it (or it is a vue, svelte or react micro built as on Space): then a saved
source file builds it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.config import RELOAD_DEBOUNCE_S
from runtime.supervisor import file_changes
from runtime.supervisor.builder.sources import is_source

if TYPE_CHECKING:
    from runtime.app.runtime import AppHost, Runtime
    from runtime.supervisor.manager import MicroRunner


# Files that change what a micro runs with, not its code: a micro that reloads by itself is
# still restarted for these (its reloader would not install anything).
DEPENDENCY_MANIFESTS = frozenset(
    {
        "requirements.txt",
        "pyproject.toml",
        "Pipfile",
        "Pipfile.lock",
        "poetry.lock",
        "uv.lock",
        "package.json",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lockb",
        "go.mod",
        "go.sum",
        "Cargo.toml",
        "Cargo.lock",
        ".env",
    }
)


def is_dependency_manifest(path: Path) -> bool:
    return path.name in DEPENDENCY_MANIFESTS or (
        path.name.startswith("requirements") and path.suffix == ".txt"
    )


class RestartGuard:
    """Notices a micro restarted over and over by saves nobody made: a file it writes itself
    on every start. After `limit` file-change restarts within `window` seconds with no request
    to the micro in between, the next one is refused."""

    def __init__(
        self, limit: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._times: dict[tuple[str, str], list[float]] = {}
        self._requests: dict[tuple[str, str], int] = {}

    def allow(self, key: tuple[str, str], requests: int) -> bool:
        """Whether one more file-change restart may go ahead; `requests` is the micro's count
        of requests so far (any change since the last restart clears its record)."""
        now = self._clock()
        if self._requests.get(key) != requests:
            self._requests[key] = requests
            self._times[key] = []
        recent = [t for t in self._times.get(key, []) if now - t < self.window]
        if len(recent) >= self.limit:
            self._times[key] = recent
            return False
        self._times[key] = [*recent, now]
        return True

    def forget(self, key: tuple[str, str]) -> None:
        self._times.pop(key, None)


class Reloader:
    """Watches every app folder of a runtime; restarts micros one at a time, never in a pile."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._busy: set[tuple[str, str]] = set()
        self._pending: dict[tuple[str, str], set[Path]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.guard = RestartGuard()

    def roots(self) -> list[Path]:
        """The folders to watch: each app's, and the config file's, minus nested ones."""
        folders = {host.config.path for host in self._runtime.apps}
        if self._runtime.config.config_file is not None:
            folders.add(self._runtime.config.config_file.parent)
        ordered = sorted(folders, key=lambda p: len(p.parts))
        kept: list[Path] = []
        for folder in ordered:
            if not any(folder.is_relative_to(k) for k in kept):
                kept.append(folder)
        return kept

    async def run(self) -> None:
        """Watch until cancelled."""
        ready = asyncio.Event()
        watching = asyncio.create_task(
            file_changes.watch(
                self.roots(),
                [self._runtime.config.data_dir],
                self.on_batch,
                step_ms=int(RELOAD_DEBOUNCE_S * 1000),
                ready=ready,
            )
        )
        try:
            await ready.wait()
            self._runtime.printer.info("watching for changes (--no-reload to turn off)")
            self._say_who_reloads_itself()
            await watching
        finally:
            watching.cancel()
            for task in self._tasks:
                task.cancel()

    def _say_who_reloads_itself(self) -> None:
        for host in self._runtime.apps:
            for runner in host.runners.values():
                if runner.spec.own_reloader:
                    runner.notice(
                        "own-reloader",
                        f"reloads itself on saves ({runner.spec.own_reloader}); space-dev "
                        "restarts it only for Spacefile, configuration and dependency changes, "
                        "and a broken save is then served as it is",
                    )

    async def on_batch(self, paths: set[Path]) -> None:
        """One burst of changes."""
        runtime = self._runtime
        config_file = runtime.config.config_file
        if config_file is not None and config_file in paths:
            await runtime.apply_config()
        for host in runtime.apps:
            if host.spacefile.path in paths:
                self.resume(host)
                await runtime.apply_spacefile(host)
            for micro, changed in self._by_micro(host, paths).items():
                if not await self._nothing_to_install(host, micro, changed):
                    self._restart(host, micro, changed)
            for micro, changed in self._by_build(host, paths).items():
                self._rebuild(host, micro, changed)

    def _by_micro(self, host: AppHost, paths: set[Path]) -> dict[str, set[Path]]:
        """The changed files of each process micro, each file given to the deepest `src`."""
        micros = sorted(host.spacefile.micros, key=lambda m: len(m.src.parts), reverse=True)
        found: dict[str, set[Path]] = {}
        config_file = self._runtime.config.config_file
        for path in paths:
            if path == host.spacefile.path or path == config_file:
                continue  # applied on their own, not a reason to restart a micro
            owner = next((m for m in micros if path.is_relative_to(m.src)), None)
            runner = host.runners.get(owner.name) if owner is not None else None
            if runner is None or runner.file_reloads_paused:
                continue
            if runner.spec.own_reloader and not is_dependency_manifest(path):
                continue  # its own reloader has it
            setup = runner.spec.setup
            if (
                setup is not None
                and setup.builds is not None
                and not is_source(path, setup.src, setup.builds)
            ):
                continue  # its build wrote it
            found.setdefault(runner.name, set()).add(path)
        return found

    async def _nothing_to_install(self, host: AppHost, micro: str, changed: set[Path]) -> bool:
        """Only install inputs changed, and they ask for what the micro runs with already: the
        installer rewrote its own lockfile (`npm install`), or a save changed nothing."""
        runner = host.runners[micro]
        setup = runner.spec.setup
        if setup is None or not changed <= setup.install_inputs():
            return False
        await self._runtime.builder.settled(setup)  # an install under way decides first
        spec = await self._runtime.spec_of(host, micro)
        return spec == runner.spec and setup.installed()

    def _by_build(self, host: AppHost, paths: set[Path]) -> dict[str, set[Path]]:
        """The changed source files of each static micro that is built (never its `serve`)."""
        found: dict[str, set[Path]] = {}
        micros = sorted(host.spacefile.micros, key=lambda m: len(m.src.parts), reverse=True)
        for path in paths:
            owner = next((m for m in micros if path.is_relative_to(m.src)), None)
            build = host.builds.get(owner.name) if owner is not None else None
            if (
                build is not None
                and build.plan.builds is not None
                and is_source(path, build.plan.src, build.plan.builds)
            ):
                found.setdefault(build.name, set()).add(path)
        return found

    def _rebuild(self, host: AppHost, micro: str, changed: set[Path]) -> None:
        """One build at a time per micro: saves during a build are taken by the next check."""
        build = host.builds[micro]
        task = asyncio.create_task(
            self._runtime.rebuild(host, micro, _reason(changed, build.plan.src))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _restart(self, host: AppHost, micro: str, changed: set[Path]) -> None:
        key = (host.name, micro)
        self._pending.setdefault(key, set()).update(changed)
        if key in self._busy:
            return  # the running reload will pick these up when it is done
        self._busy.add(key)
        task = asyncio.create_task(self._reload_until_settled(host, micro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload_until_settled(self, host: AppHost, micro: str) -> None:
        key = (host.name, micro)
        try:
            while self._pending.get(key):
                changed = self._pending.pop(key)
                runner = host.runners.get(micro)
                if runner is None:
                    return
                # Asked before each reload that would really happen (saves made during one are
                # taken together by the next), so the limit counts restarts, not bursts.
                if not self.guard.allow(key, runner.requests):
                    self._pause(key, runner, changed)
                    return
                # Through the runtime: a micro that never started (failed `commands`) is set up.
                await self._runtime.restart(host, micro, _reason(changed, runner.spec.cwd))
        finally:
            self._busy.discard(key)

    def _pause(self, key: tuple[str, str], runner: MicroRunner, changed: set[Path]) -> None:
        runner.pause_file_reloads(
            f"restarted {self.guard.limit} times within {self.guard.window:g} s for changed "
            f"files with no request in between (last: {_reason(changed, runner.spec.cwd)}); "
            "it probably writes them itself. Saved files no longer restart it (it keeps "
            "running); a Spacefile save or its Restart button resumes that"
        )
        self.guard.forget(key)
        self._pending.pop(key, None)

    def resume(self, host: AppHost) -> None:
        """A Spacefile save: every micro of the app reloads on file changes again."""
        for name, runner in host.runners.items():
            self.guard.forget((host.name, name))
            runner.resume_file_reloads()


def _reason(changed: set[Path], src: Path) -> str:
    """`main.py changed`, `main.py and 2 more changed`: files that still exist come first, so an
    editor's or sed's short-lived temporary file is not what the log names."""
    existing = sorted(p for p in changed if p.exists())
    shown = existing or sorted(changed)
    names = [str(p.relative_to(src)) if p.is_relative_to(src) else str(p) for p in shown]
    more = f" and {len(names) - 1} more" if len(names) > 1 else ""
    return f"{names[0]}{more} changed"
