"""What a saved space-dev.toml changes while the runtime runs: the settings every request reads,
taken at once, and each app's own settings; with what the developer is told about them."""

from __future__ import annotations

import dataclasses

from runtime import config
from runtime.auth.policy import CompiledRule, compile_app_rules
from runtime.config.sizes import format_size
from runtime.errors import SpaceDevError
from runtime.models import AppConfig, RuntimeConfig, Spacefile


def runtime_wide(current: RuntimeConfig, fresh: RuntimeConfig) -> tuple[RuntimeConfig, list[str]]:
    """`current` with the runtime-wide settings of `fresh` that apply at once (the cap on
    request bodies, allowed_hosts: both read by every request), and what to say about them."""
    said = []
    if fresh.max_body_size != current.max_body_size:
        current = dataclasses.replace(current, max_body_size=fresh.max_body_size)
        said.append(
            "space-dev.toml applied: request bodies up to "
            f"{format_size(config.max_body_size(fresh))}"
        )
    if fresh.as_space and not current.as_space:
        said.append("space-dev.toml: as_space takes effect at the next `space-dev up`")
    if fresh.allowed_hosts != current.allowed_hosts:
        current = dataclasses.replace(current, allowed_hosts=fresh.allowed_hosts)
        names = ", ".join(fresh.allowed_hosts) or "none besides localhost and 127.0.0.1"
        said.append(f"space-dev.toml applied: allowed_hosts is now {names}")
    return current, said


@dataclasses.dataclass(frozen=True)
class AppChange:
    """An app's new settings from a saved space-dev.toml, or why they are not taken."""

    config: AppConfig | None  # None: nothing changed, or not applied (`said` says why)
    rules: tuple[CompiledRule, ...] = ()
    said: tuple[str, ...] = ()


def app_change(
    app: str, running: AppConfig, port: int, fresh: AppConfig | None, spacefile: Spacefile
) -> AppChange:
    """What a saved space-dev.toml changes of one running app: its env values, auth and route
    rules now; its name and port only at the next start."""
    if fresh is None or fresh == running:
        return AppChange(None)
    said = []
    if (fresh.name or app) != app or fresh.port not in (None, port):
        said.append(f"{app}: a new name or port takes effect at the next `space-dev up`")
    fresh = dataclasses.replace(fresh, name=running.name, port=running.port)
    try:
        rules = compile_app_rules(fresh, spacefile)
    except SpaceDevError as err:
        return AppChange(None, said=(*said, f"{app}: space-dev.toml not applied.\n{err}"))
    return AppChange(fresh, rules, tuple(said))
