"""The owner's runtime JSON API (keys, configuration, micros) and the operations the settings page
shares with it, over a `SettingsContext` that app.py builds (web/ never imports app.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from aiohttp import web

from runtime.actions.app_actions import AppActions
from runtime.actions.scheduler import Scheduler
from runtime.auth.credentials import Credentials
from runtime.auth.keys import check_custom_value, new_key
from runtime.datadir.store import Store
from runtime.errors import Conflict, NotFound, SpaceDevError
from runtime.models import ApiKey, AppConfig, Principal, Spacefile
from runtime.supervisor.environment import Source, resolve_preset
from runtime.supervisor.manager import MicroRunner, State
from runtime.supervisor.output import Printer
from runtime.web.actions import run_answer
from runtime.web.owner import owner_only

API_PREFIX = "/__space/api"


# Where a Configuration value comes from, in the order they win.


class SettingsApp(Protocol):
    """What the settings need of one app origin (app.py's AppHost fits it)."""

    @property
    def name(self) -> str: ...
    @property
    def origin(self) -> str: ...
    @property
    def public_origin(self) -> str: ...  # what pages show: localhost for 127.0.0.1
    @property
    def spacefile(self) -> Spacefile: ...
    @property
    def config(self) -> AppConfig: ...
    @property
    def runners(self) -> Mapping[str, MicroRunner]: ...
    def micro_states(self) -> Mapping[str, State]: ...
    def notices_of(self, micro: str) -> list[str]: ...


@dataclass(frozen=True)
class SettingsContext:
    """One app and the runtime services its settings page and API use."""

    app: SettingsApp
    store: Store
    credentials: Credentials
    printer: Printer
    save_env: Callable[[Mapping[str, str]], Awaitable[list[str]]]  # -> micros restarted
    refresh: Callable[[], None]  # after each store write, so the gate sees it at once
    spawn: Callable[[Coroutine[Any, Any, Any]], None]  # a background task the runtime owns
    restart: Callable[[str, str], Coroutine[Any, Any, Any]]  # (micro, reason)
    scheduler: Scheduler  # runs actions now, and knows when they run next
    app_actions: AppActions | None = None  # the micros' App Actions, asked when shown


# --- keys ---------------------------------------------------------------------------------------


def create_key(
    ctx: SettingsContext,
    name: str,
    description: str = "",
    client_type: str = "",
    value: str | None = None,
) -> tuple[ApiKey, str]:
    """Make and keep a key; returns its record and the key itself, which is never kept."""
    if value is not None:
        check_custom_value(value, instead="leave the value empty to get a generated key")
    record, key = new_key(ctx.app.name, name, description, client_type, value)
    try:
        ctx.store.keys.create(record)
    except SpaceDevError as err:  # the name, or the value, is taken
        raise Conflict(err.message, err.hint) from None
    ctx.refresh()
    return record, key


def set_key_active(ctx: SettingsContext, name: str, active: bool) -> ApiKey:
    """Switch a key off or on; NotFound if the app has no such key."""
    try:
        record = ctx.store.keys.set_active(ctx.app.name, name, active)
    except SpaceDevError as err:  # the store's only refusal here: no such key
        raise NotFound(err.message, err.hint) from None
    ctx.refresh()
    return record


def revoke_key(ctx: SettingsContext, name: str) -> None:
    """Delete a key for good; NotFound if the app has no such key."""
    try:
        ctx.store.keys.revoke(ctx.app.name, name)
    except SpaceDevError as err:
        raise NotFound(err.message, err.hint) from None
    ctx.refresh()


def key_listing(key: ApiKey) -> dict[str, Any]:
    """A key as lists show it (the CLI's `keys list --json`): never the secret or its hash."""
    return {
        "name": key.name,
        "description": key.description,
        "client_type": key.client_type,
        "prefix": key.prefix,
        "active": key.active,
        "created": key.created,
        "last_used": key.last_used,
    }


def api_keys_enabled(sf: Spacefile) -> bool:
    """Whether any micro takes API keys (`presets: api_keys: true`)."""
    return any(m.api_keys for m in sf.micros)


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvVariable:
    """One `presets.env` name of the app, the micros that use it and its current value."""

    name: str
    micros: tuple[str, ...]
    description: str
    default: str | None
    saved: str | None  # set on the settings page (or the API)
    value: str | None  # what the micros get; None: unset
    source: Source
    fallback: str | None  # what they would get with no saved value
    fallback_source: Source


def env_variables(ctx: SettingsContext) -> list[EnvVariable]:
    """Every `presets.env` variable, once per name (micros sharing a name share its value)."""
    saved = ctx.store.get_env(ctx.app.name)
    configured = ctx.app.config.env
    found: dict[str, EnvVariable] = {}
    for micro in ctx.app.spacefile.micros:
        for preset in micro.env:
            known = found.get(preset.name)
            if known is not None:
                found[preset.name] = replace(
                    known,
                    micros=(*known.micros, micro.name),
                    description=known.description or preset.description,
                )
                continue
            value, source = resolve_preset(
                preset.name, preset.default, saved, configured, os.environ
            )
            # What it would be without the saved value: shown in the empty field.
            fallback, fallback_source = resolve_preset(
                preset.name, preset.default, {}, configured, os.environ
            )
            found[preset.name] = EnvVariable(
                preset.name,
                (micro.name,),
                preset.description,
                preset.default,
                saved.get(preset.name),
                value,
                source,
                fallback,
                fallback_source,
            )
    return list(found.values())


def env_json(variables: list[EnvVariable]) -> dict[str, Any]:
    """`GET /__space/api/env`: the values by name, and where each comes from."""
    return {
        "values": {v.name: v.value for v in variables},
        "variables": [
            {
                "name": v.name,
                "micros": list(v.micros),
                "description": v.description,
                "default": v.default,
                "saved": v.saved,
                "value": v.value,
                "source": v.source,
            }
            for v in variables
        ],
    }


async def save_env_changes(ctx: SettingsContext, changes: Mapping[str, str | None]) -> list[str]:
    """Set (a string) or remove (None) saved values by name; other saved values stay.

    Returns the micros restarted because their environment changed.
    """
    known = {v.name for v in env_variables(ctx)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise SpaceDevError(
            f"unknown configuration name{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            f"the Spacefile's presets.env names are: {', '.join(sorted(known)) or '(none)'}",
        )
    values = dict(ctx.store.get_env(ctx.app.name))
    for name, value in changes.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    restarted = await ctx.save_env(values)
    ctx.refresh()
    return restarted


# --- micros -------------------------------------------------------------------------------------


def micros_json(ctx: SettingsContext) -> list[dict[str, Any]]:
    """`GET /__space/api/micros`: each micro as the gate and the supervisor see it now."""
    rows = []
    for micro in ctx.app.spacefile.micros:
        runner = ctx.app.runners.get(micro.name)
        rows.append(
            {
                "name": micro.name,
                "path": micro.path,
                "engine": micro.engine,
                "state": ctx.app.micro_states()[micro.name].value,
                "port": runner.port if runner else None,
                "public": micro.public,
                "public_routes": list(micro.public_routes),
                "api_keys": micro.api_keys,
                "auth_enabled": ctx.store.auth_enabled(ctx.app.name, micro.name),
                "notices": ctx.app.notices_of(micro.name),
            }
        )
    return rows


# --- the JSON handlers --------------------------------------------------------------------------


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise SpaceDevError("the body must be a JSON object", 'e.g. {"name": "ci"}')
    return body


def _text(body: Mapping[str, Any], field: str, default: str = "") -> str:
    value = body.get(field, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise SpaceDevError(f"`{field}` must be a string")
    return value


class SettingsApi:
    """`/__space/api/...`: what the settings page does, as JSON, for the owner's session."""

    def __init__(self, ctx: SettingsContext) -> None:
        self._ctx = ctx

    def add_routes(self, app: web.Application) -> None:
        guard = owner_only(self._ctx, "an app's settings")
        app.router.add_get(f"{API_PREFIX}/keys", guard(self.list_keys))
        app.router.add_post(f"{API_PREFIX}/keys", guard(self.create_key))
        app.router.add_patch(f"{API_PREFIX}/keys/{{name}}", guard(self.update_key))
        app.router.add_delete(f"{API_PREFIX}/keys/{{name}}", guard(self.delete_key))
        app.router.add_get(f"{API_PREFIX}/env", guard(self.get_env))
        app.router.add_put(f"{API_PREFIX}/env", guard(self.put_env))
        app.router.add_get(f"{API_PREFIX}/micros", guard(self.micros))
        app.router.add_post(f"{API_PREFIX}/actions/{{id}}", guard(self.run_action))

    async def list_keys(self, request: web.Request, _: Principal) -> web.Response:
        keys = self._ctx.store.keys.list(self._ctx.app.name)
        return web.json_response([key_listing(k) for k in keys])

    async def create_key(self, request: web.Request, _: Principal) -> web.Response:
        body = await _json_object(request)
        value = body.get("value")
        if value is not None and not isinstance(value, str):
            raise SpaceDevError(
                "`value` must be a string", "or leave it out to get a generated key"
            )
        record, key = create_key(
            self._ctx,
            _text(body, "name"),
            _text(body, "description"),
            _text(body, "client_type"),
            value or None,
        )
        # The same fields as `space-dev keys create`; the key is in no other answer, ever.
        return web.json_response(
            {
                "name": record.name,
                "description": record.description,
                "prefix": record.prefix,
                "api_key": key,
                "created": record.created,
                "client_type": record.client_type,
                "active": record.active,
            },
            status=201,
            headers={"Cache-Control": "no-store"},
        )

    async def update_key(self, request: web.Request, _: Principal) -> web.Response:
        name = request.match_info["name"]
        body = await _json_object(request)
        extra = sorted(set(body) - {"active"})
        if extra or not isinstance(body.get("active"), bool):
            raise SpaceDevError(
                "only `active` (true or false) can be changed"
                + (f"; not {', '.join(extra)}" if extra else ""),
                'send {"active": false} to switch a key off; make a new key to change the rest',
            )
        record = set_key_active(self._ctx, name, body["active"])
        return web.json_response(key_listing(record))

    async def delete_key(self, request: web.Request, _: Principal) -> web.Response:
        revoke_key(self._ctx, request.match_info["name"])
        return web.Response(status=204)

    async def get_env(self, request: web.Request, _: Principal) -> web.Response:
        return web.json_response(env_json(env_variables(self._ctx)))

    async def put_env(self, request: web.Request, _: Principal) -> web.Response:
        body = await _json_object(request)
        # `{"values": {...}}` (the shape GET answers) or the names themselves at the top level.
        changes = body["values"] if isinstance(body.get("values"), dict) else body
        for name, value in changes.items():
            if value is not None and not isinstance(value, str):
                raise SpaceDevError(f"the value of {name} must be a string, or null to remove it")
        restarted = await save_env_changes(self._ctx, changes)
        return web.json_response({**env_json(env_variables(self._ctx)), "restarted": restarted})

    async def micros(self, request: web.Request, _: Principal) -> web.Response:
        return web.json_response(micros_json(self._ctx))

    async def run_action(self, request: web.Request, _: Principal) -> web.Response:
        return await run_answer(
            self._ctx.scheduler.run_now, self._ctx.app.name, request.match_info["id"]
        )
