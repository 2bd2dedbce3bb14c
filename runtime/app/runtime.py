"""Wires the runtime together: for each app, its micros, its gate and its origin."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import os
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from runtime import config as defaults
from runtime import spacefile
from runtime.actions.app_actions import AppActions
from runtime.actions.firing import ActionFirer
from runtime.actions.scheduler import Scheduler
from runtime.app import changes
from runtime.app.host import AppHost, timings
from runtime.app.micro_specs import (
    SpecInputs,
    StaticPlan,
    build_notes,
    micro_specs,
    runs_dev_line,
    static_root,
)
from runtime.auth.credentials import SESSION_COOKIE, Credentials
from runtime.auth.failures import FailureCounter
from runtime.auth.policy import compile_app_rules, policy_for
from runtime.auth.routes import MountTable
from runtime.cloud.site import DataSite
from runtime.config import environment
from runtime.datadir.accounts import (
    LOGIN_LINK_MAX_AGE,
    LoginLimiter,
    LoginLinks,
    ensure_owner,
)
from runtime.datadir.store import Store
from runtime.errors import InvalidFile, SpaceDevError
from runtime.models import AppConfig, RuntimeConfig, Spacefile
from runtime.serve import hosts
from runtime.serve.client_limits import (
    ClientLimits,
    OpenConnections,
    connection_limit,
    open_files_limit,
)
from runtime.serve.forwarded import request_cookie
from runtime.serve.front import PAGES_PREFIX, FrontRunner
from runtime.serve.gate import Gate, GatedMicro, Routing
from runtime.serve.key_guesses import KeyGuesses
from runtime.serve.not_found import not_found_html
from runtime.serve.proxy import Proxy
from runtime.serve.request_log import RequestLog
from runtime.serve.static import StaticSite
from runtime.supervisor import reaper
from runtime.supervisor.builder.prepare import Builder
from runtime.supervisor.manager import LaunchSpec, MicroRunner
from runtime.supervisor.output import Printer
from runtime.supervisor.ports import assign_ports
from runtime.supervisor.static_build import StaticBuild
from runtime.web import control_api, error_answers, health
from runtime.web.api import SettingsApi, SettingsContext
from runtime.web.app_actions_page import AppActionsPage
from runtime.web.console import AppLogs, Console, add_control_api_routes
from runtime.web.data_page import DataPage
from runtime.web.login import Login
from runtime.web.owner_notice import OwnerNotice
from runtime.web.pages import problem, wants_html
from runtime.web.settings import SETTINGS_PATH, Settings

__all__ = ["AppHost", "Runtime", "timings"]  # AppHost and timings live in app/host.py

Specs = tuple[dict[str, LaunchSpec | None], dict[str, StaticPlan]]


class Runtime:
    """Every app of one `space-dev up`: started together, stopped together."""

    def __init__(self, config: RuntimeConfig, printer: Printer, *, ephemeral: bool = False) -> None:
        environment.check()  # a wrong SPACE_DEV_* value stops the start before anything runs
        self.config = config
        self.printer = printer
        self.store = Store(config.data_dir)
        self._project_keys: dict[str, str] = {}  # app -> DETA_PROJECT_KEY, as micros get it
        self.client_limits = ClientLimits(
            lambda: defaults.max_body_size(self.config),
            timeout=defaults.client_timeout(),
            connections=OpenConnections(connection_limit(open_files_limit()), printer.info),
        )
        self.data_site = DataSite(
            config.data_dir,
            lambda: self._project_keys,
            self.client_limits,
            ephemeral=ephemeral,
            say=printer.info,
            settings_pages=self._settings_pages,
        )
        self.proxy = Proxy()
        self.timings = timings()
        self.builder = Builder(config.data_dir, printer)
        # Taken out of the environment at once: micros inherit it, and it is the owner's password.
        self._owner_password = environment.owner_password()
        self.apps: list[AppHost] = []
        self._sites: list[web.AppRunner] = []
        self.host_checks: list[hosts.AllowedHosts] = []  # one per app port: allowed_hosts
        self._tasks: set[asyncio.Task[None]] = set()
        self._logs: dict[str, AppLogs] = {}  # app -> what its logs page and `logs` read
        self._closing = asyncio.Event()  # set at the stop: the logs' live streams end
        self.credentials = Credentials(self.store)
        self.links = LoginLinks(self.store.secret())
        self.limiter = LoginLimiter()
        self.key_guesses = KeyGuesses(
            FailureCounter(
                defaults.KEY_FAILURES_ALLOWED,
                defaults.KEY_FAILURE_WINDOW_S,
                defaults.FAILURE_CLIENTS_KEPT,
            )
        )
        self._token = secrets.token_urlsafe(32)
        firer = ActionFirer(
            self._runner_of,
            self.proxy,
            self.store,
            self.printer,
            ready_wait=defaults.ACTION_READY_WAIT_S,
            timeout=defaults.ACTION_TIMEOUT_S,
        )
        self.app_actions = AppActions(
            self._runner_of,
            self._providing_micros,
            self.proxy,
            ready_wait=defaults.ACTION_READY_WAIT_S,
            timeout=defaults.ACTION_TIMEOUT_S,
        )
        # Always made, so `space-dev trigger` and the Run button work under --no-schedule too;
        # each app's actions are handed to it as its Spacefile is read (`load`).
        self.scheduler = Scheduler({}, firer.fire, self.printer.info)

    # --- start ----------------------------------------------------------------------------

    def load(self) -> None:
        """Read every app's Spacefile, reporting all problems before anything starts."""
        loaded: list[tuple[AppConfig, Spacefile]] = []
        failures: list[InvalidFile] = []
        for cfg in self.config.apps:
            try:
                loaded.append((cfg, spacefile.load(cfg.path)))
            except InvalidFile as err:
                failures.append(err)
        if failures:
            if len(failures) == 1:
                raise failures[0]
            raise SpaceDevError("\n\n".join(str(f) for f in failures))
        ports = assign_ports([cfg.port for cfg, _ in loaded], self.config.host)
        for (cfg, sf), port in zip(loaded, ports, strict=True):
            rules = compile_app_rules(cfg, sf)
            host = AppHost(defaults.app_name(cfg, sf), cfg, sf, self.config.host, port, rules)
            for warning in sf.warnings:
                if self.config.as_space and warning.where.endswith(".dev"):
                    continue  # `dev` lines are not run: what is wrong with one does not matter
                self.printer.info(f"{host.name}: warning: {warning}")
            self.apps.append(host)
            self.scheduler.replace(host.name, sf.actions)
        names = [a.name for a in self.apps]
        for name in set(names):
            if names.count(name) > 1:
                raise SpaceDevError(
                    f"two apps are called {name!r}",
                    "give each a different `name` in space-dev.toml",
                )

    def claim(self) -> None:
        """Take the data dir, end what a killed runtime left there, start the watchdog."""
        reaper.claim(self.store.file, self.timings.stop_grace, self.printer.info)

    def release(self) -> None:
        """After the stop: let the watchdog go and drop this runtime's process record."""
        reaper.release(self.store.file)

    async def start(
        self, reloader: Callable[[Runtime], Coroutine[Any, Any, Any]] | None = None
    ) -> None:
        """Bind every origin, then set up and start every micro."""
        await self.proxy.start()
        await self.data_site.start()
        for host in self.apps:
            self.store.remember_app(host.name, host.config.path)
            await self._serve(host)  # first, so the port is known (and taken) before micros start
            self._build(host)
        self.printer.register(m.name for h in self.apps for m in h.spacefile.micros)
        self.store.write_runtime_info(self.apps[0].origin, self._token)
        self._welcome_owner()
        self.spawn(self._watch_data_dir())
        self.spawn(self._flush_last_used())
        if self.config.reload and reloader is not None:
            self.spawn(reloader(self))
        for host in self.apps:
            self.spawn(self._start_micros(host))
        if self.config.schedule:
            self.spawn(self.scheduler.run())

    def _owner_session(self, request: web.Request) -> bool:
        """Whether the request carries the owner's session (the app's data is the owner's)."""
        cookie = request_cookie(request.headers, SESSION_COOKIE)
        principal = self.credentials.session(cookie) if cookie else None
        return principal is not None and principal.owner

    def _runner_of(self, app: str, micro: str) -> MicroRunner | None:
        """Where an action's micro runs now (None: static, or gone with a Spacefile edit)."""
        host = next((h for h in self.apps if h.name == app), None)
        return host.runners.get(micro) if host is not None else None

    def _providing_micros(self, app: str) -> list[str]:
        """The app's micros with `provide_actions: true` (App Actions), as its Spacefile is now."""
        host = next((h for h in self.apps if h.name == app), None)
        if host is None:
            return []
        return [m.name for m in host.spacefile.micros if m.provide_actions]

    def _welcome_owner(self) -> None:
        """At the first start, make the owner; every start, print a one-use sign-in link."""
        # The password is needed only to make the owner: let it go (its scrypt hash is kept).
        password, self._owner_password = self._owner_password, None
        created = ensure_owner(self.store, password)
        del password
        self.credentials.reload()
        owner = self.store.users.owner()
        assert owner is not None
        if created is not None and created.password is not None:
            self.printer.info(
                f"created the owner account {created.name!r} with the password "
                f"{created.password} (shown once; change it with space-dev users passwd)"
            )
        elif created is not None:
            self.printer.info(
                f"created the owner account {created.name!r} with the password from "
                f"{environment.PASSWORD_VARIABLE} (change it with space-dev users passwd)"
            )
        link = f"{self.apps[0].public_origin}/__space/login?token={self.links.issue(owner.name)}"
        until = datetime.now(UTC) + timedelta(seconds=LOGIN_LINK_MAX_AGE)
        self.printer.info(
            f"sign in as {owner.name}: {link} (one use, until "
            f"{until:%H:%M} UTC, in {LOGIN_LINK_MAX_AGE // 60} min)"
        )

    def status(self) -> dict[str, Any]:
        """Every app as `space-dev status` shows it: its URL, its micros, their states."""
        apps = []
        for host in self.apps:
            states = host.micro_states()
            apps.append(
                {
                    "name": host.name,
                    "url": host.public_origin + "/",
                    "micros": [
                        {
                            "name": m.name,
                            "path": m.path,
                            "state": states[m.name].value,
                            "url": host.public_origin + m.path.rstrip("/") + "/",
                        }
                        for m in host.spacefile.micros
                    ],
                }
            )
        return {"apps": apps}

    def refresh(self) -> None:
        """Re-read the data dir (another process changed it) so the next request sees it."""
        self.credentials.reload()

    async def _watch_data_dir(self) -> None:
        """Catch changes no one told us about (the CLI normally does, synchronously)."""
        import watchfiles

        async for _ in watchfiles.awatch(
            self.config.data_dir, debounce=50, step=20, recursive=False
        ):
            self.credentials.reload()

    async def _flush_last_used(self) -> None:
        """Keys' "last used" times are kept in memory and written every few seconds."""
        while True:
            await asyncio.sleep(5)
            # A locked, fsynced write: off the event loop, so no request waits for the disk.
            await asyncio.to_thread(self.credentials.flush_last_used)

    def _build(self, host: AppHost) -> None:
        """A runner for each process micro, and the routing in front of them."""
        # Once, at the start, before micros run.
        specs, builds = micro_specs(self._spec_inputs(host))
        for micro, note in build_notes(self._spec_inputs(host)).items():
            self.printer.info(f"{micro}: {note}")
        for micro, spec in specs.items():
            if spec is not None:
                host.runners[micro] = self._new_runner(micro, spec)
        for micro, plan in builds.items():
            host.builds[micro] = StaticBuild(plan.setup, plan.env, self.builder, self.printer)
        host.routing = self.routing_for(host)

    def _new_runner(self, name: str, spec: LaunchSpec) -> MicroRunner:
        """A supervisor for one process micro (not started)."""
        return MicroRunner(name, spec, self.printer, self.timings, drain=self.proxy.wait_idle)

    async def specs(self, host: AppHost) -> Specs:
        """How each micro of the app starts now (None: a static micro, served by the runtime),
        and the builds of micros served as files; their files are read off the event loop."""
        return await asyncio.to_thread(micro_specs, self._spec_inputs(host))

    async def spec_of(self, host: AppHost, name: str) -> LaunchSpec | None:
        """How one micro starts now (None: served by the runtime, or gone from the Spacefile)."""
        specs, _ = await asyncio.to_thread(micro_specs, self._spec_inputs(host), name)
        return specs.get(name)

    def _spec_inputs(self, host: AppHost) -> SpecInputs:
        project_key = self._project_keys[host.name] = self.store.project_key(host.name)
        return SpecInputs(
            host.name,
            host.spacefile,
            host.hostname,
            project_key,
            host.config.env,
            self.store.get_env(host.name),
            self.data_site.micro_variables(os.environ.get("PYTHONPATH")),
            self.config.data_dir,
            host.gate_proof,
            self.config.as_space,
        )

    def _settings_pages(self) -> dict[str, str]:
        """Each app's settings page, where its project key is shown: for the data API's log."""
        return {host.name: host.public_origin + SETTINGS_PATH for host in self.apps}

    def routing_for(self, host: AppHost) -> Routing:
        """The gate's view of the app as it is now: mounts, policies, who serves each micro."""
        gated: dict[str, GatedMicro] = {}
        for micro in host.spacefile.micros:
            policy = policy_for(micro, host.rules)
            runner = host.runners.get(micro.name)
            if runner is None:
                site = StaticSite(
                    static_root(micro, self.config.data_dir, host.name, self.config.as_space)
                )
                gated[micro.name] = GatedMicro(micro.name, policy, static=site)
            else:
                gated[micro.name] = GatedMicro(micro.name, policy, runner=runner)
        mounts = MountTable({m.path: m.name for m in host.spacefile.micros})
        cookies = {SESSION_COOKIE, *(c for h in self.apps for c in h.config.auth.key_cookies)}
        return Routing(mounts, gated, host.config.auth, frozenset(cookies))

    async def save_env(self, host: AppHost, values: Mapping[str, str]) -> list[str]:
        """Keep the Configuration values and restart the micros whose environment changed.

        Returns the names of the micros restarted.
        """
        self.store.set_env(host.name, values)
        self.refresh()
        specs, _ = await self.specs(host)
        return self._restart_changed(host, specs, "configuration changed")

    # --- what changes an app while it runs -------------------------------------------------

    async def apply_spacefile(self, host: AppHost) -> None:
        """Take a saved Spacefile: start, stop or restart exactly the micros it changes.

        An invalid Spacefile changes nothing: every micro keeps running and the errors are shown.
        """
        began = time.monotonic()
        try:
            new = await asyncio.to_thread(spacefile.load, host.config.path)
            rules = compile_app_rules(host.config, new)
        except SpaceDevError as err:
            self.printer.info(
                f"{host.name}: the saved Spacefile is not valid; everything keeps "
                f"running as before.\n{err}"
            )
            return
        # Read before anything changes, so the app is never seen half applied.
        specs, builds = await asyncio.to_thread(
            micro_specs, dataclasses.replace(self._spec_inputs(host), spacefile=new)
        )
        old_names = {m.name for m in host.spacefile.micros}
        host.spacefile, host.rules = new, rules
        self.scheduler.replace(host.name, new.actions)
        stopping = [host.runners.pop(n) for n in list(host.runners) if specs.get(n) is None]
        added = [n for n, spec in specs.items() if spec is not None and n not in host.runners]
        for name in added:
            host.runners[name] = self._new_runner(name, specs[name])  # type: ignore[arg-type]
        host.routing = self.routing_for(host)  # paths and public routes take effect now
        restarted = self._restart_changed(host, specs, "Spacefile changed")
        self._refresh_builds(host, builds)  # a micro now served as files (a `dev` line removed)
        for runner in stopping:
            self.spawn(runner.stop())
        never_started = [n for n, r in host.runners.items() if not r.supervised and n not in added]
        for name in added + never_started:
            self.spawn(self.start_one(host, name))
        gone = sorted(old_names - {m.name for m in new.micros})
        summary = (
            ", ".join(
                f"{label} {', '.join(names)}"
                for label, names in (("added", added), ("removed", gone), ("restarting", restarted))
                if names
            )
            or "routes updated"
        )
        self.printer.info(
            f"{host.name}: Spacefile reloaded in {time.monotonic() - began:.2f} s ({summary})"
        )

    async def apply_config(self) -> None:
        """Take a saved space-dev.toml: new env values, auth settings, route rules and the cap on
        request bodies (app/changes.py says which take effect now)."""
        path = self.config.config_file
        if path is None:
            return
        try:
            fresh = await asyncio.to_thread(defaults.load, path)
        except SpaceDevError as err:
            self.printer.info(f"space-dev.toml is not valid; nothing changed.\n{err}")
            return
        before = self.config
        self.config, said = changes.runtime_wide(self.config, fresh)
        if self.config.allowed_hosts != before.allowed_hosts:  # checked on every request
            for check in self.host_checks:
                check.allow(self.config.allowed_hosts)
        for line in said:
            self.printer.info(line)
        by_folder = {cfg.path: cfg for cfg in fresh.apps}
        for host in self.apps:
            change = changes.app_change(
                host.name, host.config, host.port, by_folder.get(host.config.path), host.spacefile
            )
            for line in change.said:
                self.printer.info(line)
            if change.config is None:
                continue
            host.config, host.rules = change.config, change.rules
            specs, _ = await self.specs(host)
            restarted = self._restart_changed(host, specs, "space-dev.toml changed")
            note = f", restarting {', '.join(restarted)}" if restarted else ""
            self.printer.info(f"{host.name}: space-dev.toml applied{note}")
        for host in self.apps:  # key cookies are stripped runtime-wide, so every app's routing
            host.routing = self.routing_for(host)

    def _restart_changed(
        self, host: AppHost, specs: Mapping[str, LaunchSpec | None], reason: str
    ) -> list[str]:
        """Reload each running micro whose launch spec is no longer what it runs with."""
        restarted = []
        for name, spec in specs.items():
            runner = host.runners.get(name)
            if runner is not None and spec is not None and spec != runner.spec:
                restarted.append(name)
                self.spawn(self._setup_and_reload(host, name, runner, spec, reason))
        return restarted

    async def _setup_and_reload(
        self, host: AppHost, name: str, runner: MicroRunner, spec: LaunchSpec, reason: str
    ) -> None:
        """Set up what changed (a requirements edit installs), then swap in the new process;
        a failed setup leaves the running version serving."""
        if not await self._setup(runner, spec):
            self.printer.info(
                f"{name}: setup failed; still serving the previous version "
                "(the settings page has the error)"
            )
            return
        reloaded = await runner.reload(reason, spec)
        if reloaded and spec.setup is not None:
            await self.builder.prune(spec.setup)
        if reloaded or runner.address is None:
            runner.notices.pop("reload", None)
        else:  # the old process still serves: the owner's pages and the settings page say so
            said = self.printer.last_lines(name, 1)
            runner.notices["reload"] = "reload failed, serving the previous version" + (
                f": {said[0].strip()}" if said else ""
            )

    async def _setup(self, runner: MicroRunner, spec: LaunchSpec) -> bool:
        """Run the micro's setup; its error, if any, is kept for the settings page."""
        if spec.setup is None:
            return True
        error = await self.builder.prepare(spec.setup, spec.env)
        if error is None:
            runner.notices.pop("setup", None)
        else:
            runner.notices["setup"] = f"setup failed: {error}"
        return error is None

    async def _serve(self, host: AppHost) -> None:
        requests = RequestLog(defaults.REQUESTS_KEPT)
        notice = OwnerNotice(host)
        gate = Gate(
            host.name,
            self.proxy,
            lambda: host.routing,
            self.credentials,
            self.printer,
            defaults.REQUEST_WAIT_S,
            self.config.data_dir / "tmp",
            host.gate_proof,
            self.key_guesses,
            requests,
            notice.rewrite,
        )
        logs = self._logs[host.name] = AppLogs(
            host.name,
            lambda: [m.name for m in host.spacefile.micros],
            self.printer.buffer,
            requests,
            lambda: {
                n: {"state": s.value, "notices": host.notices_of(n)}
                for n, s in host.micro_states().items()
            },
        )
        app = web.Application(
            handler_args={"max_field_size": 65536}, middlewares=error_answers.pages_middlewares()
        )
        health.add_routes(app, lambda: {n: s.value for n, s in host.micro_states().items()})
        control_api.add_routes(
            app,
            self._token,
            self.refresh,
            host.name,
            self.scheduler.run_now,
            self.app_actions,
            status=self.status,
            say=self.printer.info,
        )
        Login(
            host.name, self.store, self.credentials, self.limiter, self.links, self.refresh
        ).add_routes(app)
        settings = SettingsContext(
            host,
            self.store,
            self.credentials,
            self.printer,
            lambda values: self.save_env(host, values),
            self.refresh,
            self.spawn,
            lambda micro, reason: self.restart(host, micro, reason, by_owner=True),
            self.scheduler,
            self.app_actions,
        )
        Settings(settings).add_routes(app)
        SettingsApi(settings).add_routes(app)
        DataPage(settings, lambda: self.data_site.data.app(host.name)).add_routes(app)
        AppActionsPage(settings, lambda: self.app_actions).add_routes(app)
        Console(settings, logs, self._closing, notice.dismiss).add_routes(app)
        add_control_api_routes(app, self._token, self._logs.get, host.name)
        self.data_site.add_browser_routes(app, host.name, self._owner_session)
        # After every page: whatever else is under /__space/ is the runtime's 404 page, whatever the
        # method (aiohttp's own answer would be a bare 404 or 405 in plain text).
        app.router.add_route("*", PAGES_PREFIX + "{tail:.*}", _not_found)
        allowed = hosts.AllowedHosts(host.host, self.config.allowed_hosts)
        self.host_checks.append(allowed)
        runner = FrontRunner(
            app, gate.handle, allowed, self.client_limits, access_log=None, handle_signals=False
        )
        await runner.setup()
        site = web.TCPSite(runner, host.host, host.port, reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            await runner.cleanup()
            if err.errno == errno.EADDRINUSE:
                raise SpaceDevError(
                    f"port {host.port} on {host.host} is already in use (app {host.name})",
                    "stop what uses it, or pick another with --port or `port` in space-dev.toml",
                ) from None
            raise SpaceDevError(
                f"cannot listen on {host.host}:{host.port} (app {host.name}): "
                # aiohttp wraps the OS's reason in its own sentence: keep the reason alone.
                f"{(err.strerror or str(err)).rsplit(': ', 1)[-1].lower()}",
                "--host must be an address of this machine, such as 127.0.0.1 or 0.0.0.0",
            ) from None
        self._sites.append(runner)
        if host.port == 0:  # the OS picked one
            host.port = int(runner.addresses[0][1])

    async def _start_micros(self, host: AppHost) -> None:
        # Side by side: one micro's `npm install` does not hold up the others.
        await asyncio.gather(
            *(self.start_one(host, name) for name in list(host.runners)),
            *(build.run() for build in host.builds.values()),
        )
        self.spawn(self._announce_when_ready(host))

    async def restart(self, host: AppHost, name: str, reason: str, by_owner: bool = False) -> None:
        """Restart one micro; one that never started (its `commands` failed) is set up again.

        The owner's Restart also resumes file-change reloads the reloader's guard paused.
        """
        runner = host.runners[name]
        if by_owner:
            runner.resume_file_reloads()
        if runner.supervised:
            # Its setup too: a saved requirements.txt or package.json installs before the swap.
            spec = await self.spec_of(host, name) or runner.spec
            await self._setup_and_reload(host, name, runner, spec, reason)
        else:
            await self.start_one(host, name)

    def _refresh_builds(self, host: AppHost, builds: Mapping[str, StaticPlan]) -> None:
        """After a Spacefile edit: the builds of micros served as files, as the file says now;
        a new or changed one builds (the others keep their state)."""
        for name in [n for n in host.builds if n not in builds]:
            del host.builds[name]
        for name, plan in builds.items():
            build = host.builds.get(name)
            if build is None or build.plan != plan.setup or build.env != dict(plan.env):
                host.builds[name] = StaticBuild(plan.setup, plan.env, self.builder, self.printer)
                self.spawn(host.builds[name].run())

    async def rebuild(self, host: AppHost, name: str, reason: str) -> None:
        """A static micro's source changed: build again if its inputs differ."""
        build = host.builds.get(name)
        if build is not None:
            await build.run(reason)

    async def start_one(self, host: AppHost, name: str) -> None:
        """Run the micro's `commands` if they changed, then start supervising it."""
        runner = host.runners[name]
        if spec := await self.spec_of(host, name):
            runner.spec = spec  # what it is set up for now (a fixed requirements.txt...)
        if await self._setup(runner, runner.spec):
            if runner.spec.setup is not None:
                await self.builder.prune(runner.spec.setup)  # nothing runs the older ones
            runner.start()
        else:
            runner.mark_crashed()
            self.printer.info(
                f"{name}: not started, as its setup failed; it is not tried again "
                "by itself: fix the cause, then save a file of it or press Restart "
                "on the settings page"
            )

    async def _announce_when_ready(self, host: AppHost) -> None:
        """`ready: NAME URL` once every micro has answered or failed to start, naming the ones
        that are down; once those are up too, the line again without them."""
        # Several runners and static builds settle this, and only some of them have an event to
        # wait on; a line printed once may look now and then.
        while not host.settled():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        down = host.down_micros()
        shown = ", ".join(f"{name}: {state.value}" for name, state in down.items())
        self.printer.info(
            f"ready: {host.name} {host.public_origin}/"
            + (f" ({shown})" if shown else "")
            + f" · {self._how_it_runs(host)}"
            + f" · settings: {host.public_origin}{SETTINGS_PATH}"
        )
        if not down:
            return
        while not host.all_ready():  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        self.printer.info(f"ready: {host.name} {host.public_origin}/ (every micro is up now)")

    def _how_it_runs(self, host: AppHost) -> str:
        """The `ready:` line's word on how the app runs: as Space ran it, or its dev lines."""
        if self.config.as_space:
            return "as Space ran it (--as-space: `dev` lines not used)"
        dev = [m.name for m in host.spacefile.micros if runs_dev_line(m, False)]
        if not dev:
            return "as Space ran it"
        runs = "runs its `dev` line" if len(dev) == 1 else "run their `dev` lines"
        return f"dev servers: {', '.join(dev)} {runs} (--as-space runs the app as Space did)"

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` in the background; it is cancelled when the runtime stops, and a failure
        is reported rather than lost."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        err = task.exception()
        self.printer.info(
            f"internal error in {task.get_coro().__qualname__}: "  # type: ignore[union-attr]
            f"{type(err).__name__}: {err} (run with --debug for the traceback)"
        )
        logging.getLogger("space-dev").debug("background task failed", exc_info=err)

    # --- stop -----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop every micro (and what they started), then close every origin."""
        self._closing.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.scheduler.close()
        grace = self.timings.stop_grace
        # Beside the runners, within the same grace: what micros left in their groups when their
        # own process exited. Then any group still listed (none, normally).
        await asyncio.gather(
            *(r.stop() for h in self.apps for r in h.runners.values()),
            asyncio.to_thread(reaper.REAPER.end_all, grace, leaderless_only=True),
            return_exceptions=True,
        )
        await asyncio.to_thread(reaper.REAPER.end_all, grace)
        for site in self._sites:
            await site.cleanup()
        await self.data_site.close()
        await self.proxy.close()
        self.credentials.flush_last_used()
        self.store.clear_runtime_info()


async def _not_found(request: web.Request) -> web.Response:
    """A path under /__space/ that is no page: the same 404 page a static micro gives."""
    if not wants_html(request):
        return problem(request, 404, "Not found")
    return web.Response(
        status=404,
        text=not_found_html(unquote(request.rel_url.raw_path)),
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )
