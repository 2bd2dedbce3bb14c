"""One app origin as the runtime keeps it (its Spacefile, micros, builds, routing), and the
supervisor's timings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from runtime import config as defaults
from runtime.auth.policy import CompiledRule
from runtime.models import AppConfig, Spacefile
from runtime.serve.gate import Routing
from runtime.supervisor.manager import DOWN_STATES, MicroRunner, State, Timings
from runtime.supervisor.static_build import StaticBuild


def timings() -> Timings:
    """How long to wait for what; SPACE_DEV_READY_TIMEOUT lengthens the wait for slow builds."""
    return Timings(
        ready_timeout=defaults.ready_timeout(),
        backoff_start=defaults.RESTART_BACKOFF_FIRST_S,
        backoff_max=defaults.RESTART_BACKOFF_MAX_S,
        healthy_after=defaults.RESTART_BACKOFF_RESET_AFTER_S,
        stop_grace=defaults.STOP_GRACE_S,
    )


@dataclass
class AppHost:
    """One app origin: its Spacefile, its micros and the aiohttp application in front of them."""

    name: str
    config: AppConfig
    spacefile: Spacefile
    host: str
    port: int
    rules: tuple[CompiledRule, ...] = ()
    runners: dict[str, MicroRunner] = field(default_factory=dict)
    builds: dict[str, StaticBuild] = field(default_factory=dict)  # static micros' `commands`
    routing: Routing | None = None
    # The per-run secret the gate proves itself with to this app's micros, which refuse what
    # lacks it (in_micro/node/guard.cjs, in_micro/site/_space_dev_guard.py).
    gate_proof: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def public_origin(self) -> str:
        """The origin the runtime prints and links: `localhost` for 127.0.0.1, as the
        browser SDK uses plain http only there; both names are answered."""
        if self.host == "127.0.0.1":
            return f"http://localhost:{self.port}"
        return self.origin

    @property
    def hostname(self) -> str:
        """The host and port the user browses (`DETA_SPACE_APP_HOSTNAME`): apps build links
        from it, and a link to another name of the same server finds no session cookie there."""
        return self.public_origin.removeprefix("http://")

    def down_micros(self) -> dict[str, State]:
        """The micros that have failed to start (crashed, or stopped), with their state."""
        return {n: s for n, s in self.micro_states().items() if s in DOWN_STATES}

    def settled(self) -> bool:
        """Whether every micro has either answered or failed to start."""
        return all(s is State.READY or s in DOWN_STATES for s in self.micro_states().values())

    def micro_states(self) -> dict[str, State]:
        """Each micro's state; a static micro is ready once its build (if any) is."""
        states = {m.name: State.READY for m in self.spacefile.micros}
        states.update({n: b.state for n, b in self.builds.items()})
        states.update({n: r.state for n, r in self.runners.items()})
        return states

    def notices_of(self, micro: str) -> list[str]:
        """What the owner should know about a micro (a failed setup, an exposed port...)."""
        found = self.runners.get(micro) or self.builds.get(micro)
        return list(found.notices.values()) if found is not None else []

    def all_ready(self) -> bool:
        return all(state is State.READY for state in self.micro_states().values())
