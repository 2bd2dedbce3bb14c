"""A static micro's build: its `commands` write the `serve` folder before it is served, and again
when a source file under `src` changes; its state is shown like a process micro's."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from runtime.supervisor.builder.prepare import Builder, SetupPlan
from runtime.supervisor.manager import State
from runtime.supervisor.output import Printer


class StaticBuild:
    """One static micro's build, run once at a time; saves during a build make one more."""

    def __init__(
        self, plan: SetupPlan, env: Mapping[str, str], builder: Builder, printer: Printer
    ) -> None:
        self.plan = plan
        self.env = dict(env)
        self.state = State.STARTING
        self.notices: dict[str, str] = {}
        self._builder = builder
        self._printer = printer
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.plan.micro

    async def run(self, reason: str | None = None) -> bool:
        """Build if its inputs changed since the last good build; True when the folder is good."""
        async with self._lock:
            if reason is not None:
                if not await self._builder.outdated(self.plan):
                    return self.state is State.READY
                self._printer.info(f"{self.name}: rebuilding ({reason})")
            error = await self._builder.prepare(self.plan, self.env)
            if error is None:
                self.notices.pop("setup", None)
                self.state = State.READY
                return True
            self.notices["setup"] = f"build failed: {error}"
            # A rebuild that fails leaves the last good folder served, but says so.
            if reason is None:
                self.state = State.CRASHED
            return False
