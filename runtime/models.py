"""Plain frozen values shared by every layer: the Spacefile, the config, keys, users, principals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from runtime.errors import Problem

# --- the Spacefile -------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvPreset:
    """One `presets.env` entry of a micro."""

    name: str
    description: str = ""
    default: str | None = None


@dataclass(frozen=True)
class Action:
    """One `actions` entry: a scheduled call into a micro."""

    id: str
    micro: str
    name: str = ""
    description: str = ""
    trigger: str = "schedule"
    interval: str | None = None  # `default_interval` as written: "5 minutes" or a cron line
    path: str | None = None


@dataclass(frozen=True)
class Micro:
    """One micro of a Spacefile, with every default already applied."""

    name: str
    src: Path  # absolute folder
    engine: str
    primary: bool
    path: str  # where it is mounted: "/" for the primary, else "/<name>" unless set
    serve: str | None = None  # static engine: folder under src to serve
    run: str | None = None
    dev: str | None = None
    commands: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    public: bool = False
    public_routes: tuple[str, ...] = ()
    env: tuple[EnvPreset, ...] = ()
    api_keys: bool = False
    actions: tuple[Action, ...] = ()
    provide_actions: bool = False

    @property
    def kind(self) -> Literal["primary", "normal"]:
        return "primary" if self.primary else "normal"


@dataclass(frozen=True)
class Spacefile:
    """A whole, valid Spacefile."""

    path: Path  # the Spacefile itself, absolute
    micros: tuple[Micro, ...]
    app_name: str | None = None
    icon: str | None = None
    auto_pwa: bool | None = None
    warnings: tuple[Problem, ...] = ()

    @property
    def app_dir(self) -> Path:
        return self.path.parent

    @property
    def primary(self) -> Micro:
        return next(m for m in self.micros if m.primary)

    def micro(self, name: str) -> Micro:
        return next(m for m in self.micros if m.name == name)

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(a for m in self.micros for a in m.actions)


# --- space-dev.toml ------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteRule:
    """An `[[apps.routes]]` rule: who may pass on some paths of one micro."""

    micro: str
    path: str
    methods: tuple[str, ...] | None = None  # None: every method
    api_key_required: bool = False
    allow: str | None = None  # expression source; None: the owner (and the owner's keys)
    line: int | None = None  # where it stands in the config, for errors


@dataclass(frozen=True)
class AuthConfig:
    """`[apps.auth]`: where API keys may come from."""

    key_headers: tuple[str, ...]
    key_cookies: tuple[str, ...]


@dataclass(frozen=True)
class AppConfig:
    """One `[[apps]]` entry, or the one app given on the command line."""

    path: Path  # absolute folder holding the Spacefile
    auth: AuthConfig
    name: str | None = None  # None: the Spacefile's app_name, else the folder's name
    port: int | None = None  # None: the next free port
    env: Mapping[str, str] = field(default_factory=dict)
    routes: tuple[RouteRule, ...] = ()


@dataclass(frozen=True)
class RuntimeConfig:
    """Everything `space-dev` reads from `space-dev.toml` and the command line."""

    host: str
    port: int
    data_dir: Path
    reload: bool
    schedule: bool
    apps: tuple[AppConfig, ...]
    config_file: Path | None = None
    # Names the apps answer to besides the loopback ones and `host` (DNS rebinding).
    allowed_hosts: tuple[str, ...] = ()
    max_body_size: int | None = None  # bytes; None: the default (config/defaults.py)
    as_space: bool = False  # every micro as Space ran it: `dev` lines not used


# --- identities ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    """A stored API key: never the key itself, only its SHA-256."""

    app: str
    name: str
    key_hash: str  # hex SHA-256 of the whole key
    prefix: str
    description: str = ""
    client_type: str = ""
    active: bool = True
    created: str = ""  # "2021-04-22T11:50:08Z"
    last_used: str | None = None


@dataclass(frozen=True)
class User:
    """A local account. The first one is the owner of every app."""

    name: str
    password_hash: str  # scrypt, see auth/passwords.py
    groups: tuple[str, ...] = ()
    owner: bool = False


@dataclass(frozen=True)
class Principal:
    """Who is asking, once a credential has been checked."""

    kind: Literal["session", "api-key"]
    user: str | None = None  # session: the user's name
    owner: bool = False  # session of the owner, or a key (keys belong to the owner)
    groups: frozenset[str] = frozenset()
    key_name: str | None = None
    client_type: str | None = None
