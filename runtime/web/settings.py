"""The owner's settings page of one app: micros, Configuration, API keys, route rules, actions."""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from runtime.actions.scheduler import UnknownAction
from runtime.auth.keys import CUSTOM_VALUE_RULE
from runtime.datadir.datafile import utc_text
from runtime.errors import SpaceDevError
from runtime.models import Principal
from runtime.supervisor.manager import MicroRunner, State
from runtime.web.api import (
    NotFound,
    SettingsContext,
    api_keys_enabled,
    create_key,
    env_variables,
    key_listing,
    micros_json,
    revoke_key,
    save_env_changes,
    set_key_active,
)
from runtime.web.login import safe_next
from runtime.web.owner import owner_only
from runtime.web.pages import page, problem

SETTINGS_PATH = "/__space/settings"
STATIC_PREFIX = "/__space/static"
STATIC_DIR = Path(__file__).parent / "static"
LOG_LINES = 40
ENV_FIELD = "env."  # form field prefix, so a variable can be called anything ("name", "next")
RESTART_REASON = "restarted from the settings page"
KEY_FIELDS = ("name", "description", "client_type", "value")
RUNS_SHOWN = 5  # per action; the data dir keeps more
RESTART_WAIT_S = 10.0  # the Restart button answers once the new process serves, or after this
_SECTIONS = {"keys": "keys", "env": "configuration"}  # form addresses -> sections of the page
# A redirect's `done=...` (its first word) -> the section whose form it answers.
_RESULT_AT = {"env": "configuration", "restarted": "micros", "action": "actions", "key": "keys"}

SOURCE_LABELS = {
    "saved": "saved here",
    "config": "space-dev.toml",
    "shell": "shell",
    "default": "default",
    "unset": "unset",
}
# Characters a generated key is made of: such a key needs no quoting beyond double quotes.
_PLAIN = re.compile(r"[A-Za-z0-9._~+=:/-]+")


class Settings:
    """`/__space/settings` and its forms; every form is a POST (the CSRF middleware guards it)."""

    def __init__(self, ctx: SettingsContext) -> None:
        self._ctx = ctx

    def add_routes(self, app: web.Application) -> None:
        guard = owner_only(self._ctx, "an app's settings", SETTINGS_PATH)
        app.router.add_get(SETTINGS_PATH, guard(self.show))
        app.router.add_post(f"{SETTINGS_PATH}/micros/{{name}}/restart", guard(self.restart))
        app.router.add_post(f"{SETTINGS_PATH}/env", guard(self.save_env))
        app.router.add_post(f"{SETTINGS_PATH}/keys", guard(self.create_key))
        app.router.add_post(f"{SETTINGS_PATH}/keys/{{name}}/{{action}}", guard(self.key_action))
        app.router.add_post(f"{SETTINGS_PATH}/actions/{{id}}/run", guard(self.run_action))
        # A form's answer is shown at the address it posted to: typed again or reloaded, that
        # address leads back to the page (the page also puts its own address back, see below).
        for form in _SECTIONS:
            app.router.add_get(f"{SETTINGS_PATH}/{form}", guard(self.form_address))
        # The pages' stylesheet (base.html links it), unless another part already serves it.
        if not any(getattr(r, "canonical", None) == STATIC_PREFIX for r in app.router.resources()):
            app.router.add_static(STATIC_PREFIX, STATIC_DIR)

    # --- the page -----------------------------------------------------------------------------

    async def show(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        done = request.query.get("done", "")
        at = _RESULT_AT.get(done.split("-", 1)[0], "app")
        if done == "action-failed":
            error = self._run_notice(request.query.get("action", ""))
            return await self._render(request, principal, error=error, at=at)
        return await self._render(request, principal, notice=self._notice(request), at=at)

    async def _render(
        self,
        request: web.Request,
        principal: Principal,
        *,
        status: int = 200,
        notice: str = "",
        error: str = "",
        new_key: dict[str, str] | None = None,
        key_form: dict[str, str] | None = None,
        at: str = "app",
    ) -> web.Response:
        """The page; `at` is the section whose form gave `notice` or `error`: they show there."""
        ctx = self._ctx
        sf = ctx.app.spacefile
        micros = micros_json(ctx)
        for row in micros:
            row["static"] = row["name"] not in ctx.app.runners
            row["log"] = ctx.printer.last_lines(row["name"], LOG_LINES)
        off = [m["name"] for m in micros if not m["auth_enabled"]]
        actions = [
            {
                "action": a,
                "runs": ctx.store.runs(ctx.app.name, a.id)[:RUNS_SHOWN],
                "next": _when(ctx.scheduler.next_due(ctx.app.name, a.id)),
                "running": ctx.scheduler.running(ctx.app.name, a.id),
            }
            for a in sf.actions
        ]
        app_actions = []
        if ctx.app_actions is not None and any(m.provide_actions for m in sf.micros):
            # Asked of the micros now (their list may change with a save); one still starting
            # is not waited for long: the App Actions page waits longer.
            app_actions = (await ctx.app_actions.listing(ctx.app.name, wait=0.5)).actions
        return page(
            "settings.html",
            status=status,
            title=f"{ctx.app.name} settings",
            app=ctx.app,
            user=principal.user or "",
            micros=micros,
            public_micros=off,
            all_public=bool(micros) and len(off) == len(micros),
            variables=env_variables(ctx),
            source_labels=SOURCE_LABELS,
            project_key=ctx.store.project_key(ctx.app.name),
            keys_enabled=api_keys_enabled(sf),
            key_micros=[m.name for m in sf.micros if m.api_keys],
            keys=[key_listing(k) for k in ctx.store.keys.list(ctx.app.name)],
            key_form=key_form or dict.fromkeys(KEY_FIELDS, ""),
            new_key=new_key,
            custom_value_rule=CUSTOM_VALUE_RULE,
            key_headers=ctx.app.config.auth.key_headers,
            key_cookies=ctx.app.config.auth.key_cookies,
            rules=ctx.app.config.routes,
            actions=actions,
            scheduling=ctx.scheduler.active,
            app_actions=app_actions,
            notice=notice,
            error=error,
            result_at=at,
            address=_address(request.path, new_key is not None),
        )

    def _notice(self, request: web.Request) -> str:
        """The line shown after a form's redirect, rebuilt from fixed wording, never echoed."""
        done = request.query.get("done", "")
        names = {m.name for m in self._ctx.app.spacefile.micros}
        if done == "env-saved":
            restarted = [n for n in request.query.get("restarted", "").split(",") if n in names]
            if restarted:
                return f"Configuration saved. Restarted: {', '.join(restarted)}."
            return "Configuration saved. No micro's environment changed, so none was restarted."
        micro = request.query.get("micro", "")
        if done == "restarted" and micro in names:
            if micro not in self._ctx.app.runners:
                return (
                    f"{micro} is static: its files are read on every request, so there is "
                    "nothing to restart."
                )
            return f"Restarting {micro}: the old process serves until the new one answers."
        if done == "action-ran":
            return self._run_notice(request.query.get("action", ""))
        key = request.query.get("key", "")
        if not key:
            return ""
        # Only a name of this app's keys is repeated: a crafted link cannot put words here.
        # (A revoked key is gone, so its notice says "the key".)
        known = key in {k.name for k in self._ctx.store.keys.list(self._ctx.app.name)}
        named = f"Key {key}" if known else "The key"
        wording = {
            "key-disabled": f"{named} is switched off: requests with it now get 401.",
            "key-enabled": f"{named} is switched on again.",
            "key-revoked": f"{named} is revoked for good.",
        }
        return wording.get(done, "")

    # --- forms --------------------------------------------------------------------------------

    async def restart(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in {m.name for m in self._ctx.app.spacefile.micros}:
            return problem(request, 404, "No such micro", f"This app has no micro called {name}.")
        form = await request.post()
        runner = self._ctx.app.runners.get(name)
        if runner is not None:  # a static micro has no process: nothing to restart
            done = asyncio.Event()

            async def restart() -> None:
                try:
                    await self._ctx.restart(name, RESTART_REASON)
                finally:
                    done.set()

            pid, failures = runner.pid, runner.failures
            self._ctx.spawn(restart())
            # The page that follows shows the new process (its port), not the old one, unless
            # it takes longer than this to answer.
            await _settled(runner, done, pid, failures, RESTART_WAIT_S)
        back = str(form.get("next", ""))
        if back and safe_next(back) == back:  # the error page's button: back where it failed
            raise web.HTTPSeeOther(back)
        raise _back("restarted", "micros", micro=name)

    async def form_address(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        """A form's address typed or reloaded: the settings page at that section."""
        section = request.path.rsplit("/", 1)[-1]
        raise web.HTTPSeeOther(f"{SETTINGS_PATH}#{_SECTIONS.get(section, 'app')}")

    async def save_env(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        form = await request.post()
        changes: dict[str, str | None] = {}
        for field, raw in form.items():
            if field.startswith(ENV_FIELD) and isinstance(raw, str):
                # A blank field removes the saved value: the config, shell or default applies.
                changes[field.removeprefix(ENV_FIELD)] = raw if raw.strip() else None
        try:
            restarted = await save_env_changes(self._ctx, changes)
        except SpaceDevError as err:
            return await self._render(
                request, principal, status=400, error=_say(err), at="configuration"
            )
        raise _back("env-saved", "configuration", restarted=",".join(restarted))

    async def create_key(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        form = await request.post()
        fields = {f: str(form.get(f, "")).strip() for f in KEY_FIELDS}
        try:
            record, key = create_key(
                self._ctx,
                fields["name"],
                fields["description"],
                fields["client_type"],
                fields["value"] or None,
            )
        except SpaceDevError as err:
            return await self._render(
                request,
                principal,
                status=err.status,
                error=_say(err),
                key_form=fields,
                at="create-key",
            )
        # The key is shown on this response only (no redirect: it must never be in a URL).
        shown = {"name": record.name, "key": key, "curl": self._curl(request, key)}
        return await self._render(request, principal, status=201, new_key=shown)

    async def key_action(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        name, action = request.match_info["name"], request.match_info["action"]
        try:
            if action == "revoke":
                revoke_key(self._ctx, name)
            elif action in ("disable", "enable"):
                set_key_active(self._ctx, name, action == "enable")
            else:
                return problem(request, 404, "Not found")
        except NotFound as err:
            return await self._render(request, principal, status=404, error=_say(err), at="keys")
        raise _back(f"key-{action}d", "keys", key=name)

    async def run_action(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        action_id = request.match_info["id"]
        try:
            record = await self._ctx.scheduler.run_now(self._ctx.app.name, action_id)
        except UnknownAction as err:
            return problem(request, 404, "No such action", _say(err))
        except SpaceDevError as err:  # still running (409), or not kept: a broken data dir (500)
            return await self._render(
                request, principal, status=err.status, error=_say(err), at="actions"
            )
        raise _back("action-ran" if record.ok else "action-failed", "actions", action=action_id)

    def _run_notice(self, action_id: str) -> str:
        """What the last run of a known action gave, from the data dir (never from the URL)."""
        if action_id not in {a.id for a in self._ctx.app.spacefile.actions}:
            return ""
        runs = self._ctx.store.runs(self._ctx.app.name, action_id)
        if not runs:
            return ""
        status, took = runs[0].get("status"), runs[0].get("duration_ms")
        if isinstance(status, int):
            return f"Action {action_id} ran in {took} ms: the micro answered {status}."
        return f"Action {action_id} did not run: {str(status).removeprefix('error: ')}."

    def _curl(self, request: web.Request, key: str) -> str:
        """A command that calls a micro taking keys with this key, ready to paste."""
        ctx = self._ctx
        micro = next((m for m in ctx.app.spacefile.micros if m.api_keys), ctx.app.spacefile.primary)
        # The origin the owner is browsing (it may be a name other than the bound address).
        url = f"{request.scheme}://{request.host}{micro.path.rstrip('/')}/"
        auth = ctx.app.config.auth
        if auth.key_headers:
            credential = ["-H", f"{auth.key_headers[0]}: {key}"]
        else:
            credential = ["-b", f"{auth.key_cookies[0] if auth.key_cookies else 'key'}={key}"]
        flag, text = credential
        quoted = f'"{text}"' if _PLAIN.fullmatch(key) else shlex.quote(text)
        return f"curl {flag} {quoted} {url}"


async def _settled(
    runner: MicroRunner, done: asyncio.Event, pid: int | None, failures: int, timeout: float
) -> None:
    """Wait until a restart has its new process serving, or has failed, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done.is_set():
            if runner.state is State.READY and (runner.pid != pid or pid is None):
                return  # the new process serves
            if runner.state is State.READY and runner.address is not None:
                return  # a reload that failed: the old process still serves
            if runner.failures > failures or runner.state is State.STOPPED:
                return  # it failed again: the page says so
        await asyncio.sleep(0.05)


def _back(done: str, section: str, **params: str) -> web.HTTPSeeOther:
    """303 to the settings page, scrolled to what the form gave (shown in `section`)."""
    query = urlencode({"done": done, **params})
    return web.HTTPSeeOther(f"{SETTINGS_PATH}?{query}#result")


def _address(path: str, new_key: bool) -> str:
    """Where the address bar should point once a form's answer is shown: the settings page at
    the section the form changed (reloading it gives the page again; a key is in no URL)."""
    if path == SETTINGS_PATH:
        return ""
    if new_key:
        return f"{SETTINGS_PATH}#new-key-card"
    parts = path.removeprefix(SETTINGS_PATH + "/").split("/")
    section = {
        "keys": "keys",
        "env": "configuration",
        "actions": "actions",
        "micros": "micros",
    }.get(parts[0], "app")
    return f"{SETTINGS_PATH}#{section}"


def _when(due: datetime | None) -> str:
    return utc_text(due) if due is not None else ""  # as the runs' times are written


def _say(err: SpaceDevError) -> str:
    """A user error as one sentence with its hint."""
    parts = [err.message, err.hint] if err.hint else [err.message]
    return " ".join(p[:1].upper() + p[1:].rstrip(".") + "." for p in parts)
