"""Keeps each micro running: start, readiness, restarts with backoff, reloads that swap ports."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runtime.supervisor import start_hints
from runtime.supervisor.builder.prepare import SetupPlan
from runtime.supervisor.environment import GATE_PROOF_HEADER, GATE_PROOF_VARIABLE, bind_variables
from runtime.supervisor.listening import listens_on_all_interfaces, tables_readable
from runtime.supervisor.output import Printer
from runtime.supervisor.ports import free_port
from runtime.supervisor.process import MicroProcess


class State(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    CRASHED = "crashed"
    STOPPED = "stopped"
    # Running past the ready timeout without a listening socket on loopback: requests are
    # answered at once (with the hint) instead of waiting; it becomes ready if it ever answers.
    NOT_LISTENING = "not listening on $PORT"


# States in which a request is answered at once rather than waiting for the micro.
DOWN_STATES = (State.CRASHED, State.STOPPED, State.NOT_LISTENING)


@dataclass(frozen=True)
class Timings:
    """How long to wait for what; the defaults live in config.py."""

    ready_timeout: float
    backoff_start: float
    backoff_max: float
    healthy_after: float
    stop_grace: float
    # Consecutive failures after which a micro is shown as crashed rather than restarting.
    crashed_after: int = 3


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to start one micro's process, except its port."""

    command: str
    cwd: Path
    env: Mapping[str, str]
    port_variables: tuple[str, ...] = ("PORT",)  # each is set to the process's own port
    setup: SetupPlan | None = None  # its environment, packages and `commands`, before it starts
    # What reloads the command by itself on a save (`--reload`, nodemon, a dev server), if any.
    own_reloader: str | None = None
    # Where the command comes from, for hints: "the `run` field of micro api in the Spacefile".
    source: str = ""


# Called with (host, port) of a process about to be stopped; returns once no request uses it.
Drain = Callable[[str, int], Awaitable[None]]


@dataclass
class _Health:
    failures: int = 0
    delay: float = 0.0
    last_exit: int | None = None
    notes: list[str] = field(default_factory=list)


class MicroRunner:
    """Supervises one micro: keeps one good process serving and knows where it listens."""

    def __init__(
        self,
        name: str,
        spec: LaunchSpec,
        printer: Printer,
        timings: Timings,
        drain: Drain | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        # Starting from the first moment: a request that comes while the micro's `commands` run
        # waits for it rather than being told it is stopped.
        self.state = State.STARTING
        self._printer = printer
        self._timings = timings
        self._drain = drain
        self._current: MicroProcess | None = None
        self._ready = asyncio.Event()
        # Set, then replaced, at each change of state, serving address or serving process: a
        # caller waits on the one it was given (see wait_changed), so no change is missed.
        self._change = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()  # cuts a backoff pause short
        self._reload_lock = asyncio.Lock()
        self._health = _Health(delay=timings.backoff_start)
        self._retired: set[asyncio.Task[None]] = set()
        self._restart_requested = False  # the next exit is ours, not a crash
        self._candidate: MicroProcess | None = None  # a reload's new process, not yet serving
        # What the owner should know about this micro, by kind (shown on the settings page).
        self.notices: dict[str, str] = {}
        self.requests = 0  # forwarded so far; the reloader's guard asks whether anyone uses it
        self._told_ports: set[int] = set()  # other ports it was found on, said once each
        self.file_reloads_paused = False  # set by the reloader's guard, cleared by the owner

    # --- what the proxy and the pages ask -------------------------------------------------

    @property
    def address(self) -> tuple[str, int] | None:
        """Where the serving process listens, or None while none is ready."""
        proc = self._current
        if proc is None or not self._ready.is_set():
            return None
        return proc.host, proc.port

    def serves(self, address: tuple[str, int]) -> bool:
        """Whether a live process of this micro is still the one at `address`."""
        proc = self._current
        return proc is not None and proc.running and (proc.host, proc.port) == address

    @property
    def gate_proof(self) -> dict[str, str]:
        """The header that shows a request comes from the runtime: the micro's guard refuses
        what lacks it (the gate adds it to what it forwards; the runtime's own calls too)."""
        proof = self.spec.env.get(GATE_PROOF_VARIABLE)
        return {GATE_PROOF_HEADER: proof} if proof else {}

    @property
    def port(self) -> int | None:
        return self._current.port if self._current else None

    @property
    def pid(self) -> int | None:
        return self._current.pid if self._current else None

    @property
    def supervised(self) -> bool:
        """Whether the runner is keeping a process running (False before start and after stop)."""
        return self._task is not None and not self._task.done()

    async def wait_changed(self, timeout: float) -> bool:
        """Wait for the next change of where or how the micro runs: its state, its serving
        address, or the exit of one of its processes. False when `timeout` passes first."""
        change = self._change
        try:
            await asyncio.wait_for(change.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Begin supervising in the background (once: a second call does nothing)."""
        if self.supervised:
            return
        self._stopping = False
        self._task = asyncio.create_task(self._supervise(), name=f"supervise {self.name}")

    def mark_crashed(self) -> None:
        """Never started (its `commands` failed): shown as crashed, requests answered at once."""
        self._set_state(State.CRASHED)

    async def stop(self) -> None:
        """Stop the micro and every process it started, a reload's new one included."""
        self._stopping = True
        self._wake.set()
        for proc in (self._current, self._candidate):
            if proc is not None:
                await proc.stop(self._timings.stop_grace)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)
        self._set_state(State.STOPPED)

    async def reload(self, reason: str, spec: LaunchSpec | None = None) -> bool:
        """Start a new process beside the serving one; move traffic once it answers.

        If the new process fails, the old one keeps serving and False is returned.
        """
        async with self._reload_lock:
            if spec is not None:
                self.spec = spec
            if self._stopping:
                return False
            old = self._current
            if old is None or not self._ready.is_set() or old.on_other_port:
                # Nothing good is serving: a plain restart is all there is to do. Nor can two
                # processes of a server that picks its own port run side by side: the new one
                # would find the port taken.
                self._printer.info(f"{self.name}: restarting ({reason})")
                self._health.delay = 0.0
                if old is not None and old.running:
                    self._restart_requested = True  # its exit is ours, not a crash
                    await old.stop(self._timings.stop_grace)
                self._wake.set()
                return True
            began = time.monotonic()
            try:
                new = self._candidate = await self._spawn()
                ok = await new.wait_ready(self._timings.ready_timeout, lambda _: None)
                if ok:
                    self._tell_other_port(new)
            except BaseException:
                if self._candidate is not None:  # cancelled (Ctrl-C): leave nothing behind
                    await self._candidate.stop(self._timings.stop_grace)
                raise
            finally:
                self._candidate = None
            if self._stopping or self._current is not old:
                # Stopped meanwhile, or the old process died and the supervisor already
                # started a new one (of the same, saved code): ours is not needed.
                await new.stop(self._timings.stop_grace)
                return ok and not self._stopping
            if not ok:
                detail = (
                    f"exit code {new.returncode}"
                    if new.returncode is not None
                    else f"not answering on port {new.port} after {self._timings.ready_timeout:g} s"
                )
                await new.stop(self._timings.stop_grace)
                self._printer.info(
                    f"{self.name}: reload failed ({detail}); still serving the previous version"
                )
                return False
            self._current = new
            self._mark_ready()  # wakes whoever waits for the micro to move
            self._printer.info(
                f"{self.name}: reloaded in {time.monotonic() - began:.2f} s ({reason})"
            )
            self._retire(old)
            return True

    # --- internals ------------------------------------------------------------------------

    async def _spawn(self) -> MicroProcess:
        """Start a process on a fresh port; OSError when it cannot even be started."""
        port = free_port()
        env = dict(self.spec.env)
        for variable in self.spec.port_variables:
            env[variable] = str(port)
        env.update(bind_variables(env, port))
        # Its exit is a change: a call it broke learns at once that its process died.
        proc = MicroProcess(
            self.name,
            self.spec.command,
            self.spec.cwd,
            env,
            port,
            self._printer,
            on_exit=self._changed,
        )
        await proc.start()
        return proc

    def _retire(self, old: MicroProcess) -> None:
        """Stop a replaced process once the requests it is serving have finished."""

        async def retire() -> None:
            if self._drain is not None:
                await self._drain(old.host, old.port)
            await old.stop(self._timings.stop_grace)

        task = asyncio.create_task(retire())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    def _set_state(self, state: State) -> None:
        self.state = state
        self._changed()

    def _changed(self) -> None:
        """Wake everyone waiting in wait_changed; later callers wait for the next change."""
        self._change.set()
        self._change = asyncio.Event()

    def _mark_ready(self) -> None:
        self.notices.pop("listening", None)
        self._ready.set()
        self._set_state(State.READY)
        self._check_exposure()

    def notice(self, kind: str, text: str | None) -> None:
        """Set (or with None, clear) one thing the owner should know; logged when it is new."""
        if text is None:
            self.notices.pop(kind, None)
        elif self.notices.get(kind) != text:
            self.notices[kind] = text
            self._printer.info(f"{self.name}: {text}")

    def pause_file_reloads(self, why: str) -> None:
        """Saved files no longer restart this micro (its process keeps running) until resumed."""
        self.file_reloads_paused = True
        self.notice("paused", why)

    def resume_file_reloads(self) -> None:
        if self.file_reloads_paused:
            self.file_reloads_paused = False
            self.notice("paused", None)
            self._printer.info(f"{self.name}: reloading on file changes again")

    def _check_exposure(self) -> None:
        proc = self._current
        wide = listens_on_all_interfaces(proc.port) if proc is not None else []
        self.notice(
            "exposed",
            f"listens on all interfaces ({', '.join(wide)}): other machines on the network can "
            "reach it without signing in. Make it listen on 127.0.0.1 ($HOST) instead."
            if wide
            else None,
        )
        unguarded = (
            proc is not None and not proc.guarded and bool(proc.env.get(GATE_PROOF_VARIABLE))
        )
        self.notice(
            "unguarded",
            f"its server does not check that requests come through the gate, so a page on "
            f"another local origin can reach it on port {proc.port} without signing in. "
            "space-dev guards Node.js servers and python's common ones (http.server, Flask, "
            "Django, uvicorn, hypercorn, gunicorn, waitress, aiohttp); serve the micro with one "
            "of those if you can."
            if unguarded and proc is not None
            else None,
        )

    async def _supervise(self) -> None:
        while not self._stopping:
            if self._ready.is_set():
                # A reload put a good process in place during the pause: serve with it.
                code, healthy_for = await self._serve_until_exit()
            else:
                self._set_state(State.STARTING if self._health.failures == 0 else self.state)
                self._printer.begin_run(self.name, after_failure=self._health.failures > 0)
                try:
                    proc = await self._spawn()
                except OSError as err:
                    # The folder went away (a branch switch), the shell is missing...: say so
                    # and try again later, as for a crash.
                    self._printer.info(
                        f"{self.name}: cannot start `{self.spec.command}` in "
                        f"{self.spec.cwd}: {err.strerror or err}"
                    )
                    proc = None
                if proc is None:
                    code, healthy_for = -1, 0.0
                else:
                    self._current = proc
                    if await self._await_ready(proc):
                        self._printer.end_run(self.name, ready=True)
                        self._mark_ready()
                        code, healthy_for = await self._serve_until_exit()
                    else:
                        code, healthy_for = await proc.wait(), 0.0
            self._printer.end_run(self.name)
            self._ready.clear()
            self._changed()  # no address now
            if self._stopping:
                return
            self._after_exit(code, healthy_for)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self._health.delay)
            except TimeoutError:
                pass
            self._health.delay = min(
                max(self._health.delay * 2, self._timings.backoff_start), self._timings.backoff_max
            )

    async def _await_ready(self, proc: MicroProcess) -> bool:
        """Wait for the micro to answer; past the timeout, report once and keep waiting while
        it runs (without a listening socket it is NOT_LISTENING meanwhile)."""

        def progress(elapsed: float) -> None:
            self._printer.wait_note(
                self.name, f"waiting for {self.name} on port {proc.given_port} ({elapsed:.0f} s)"
            )

        if await proc.wait_ready(self._timings.ready_timeout, progress):
            self._printer.wait_end(
                self.name, f"{self.name}: answered after {time.monotonic() - proc.started_at:.1f} s"
            )
            self._tell_other_port(proc)
            return True
        if not proc.running:
            self._printer.wait_end(self.name)
            return False
        waited = f"after {self._timings.ready_timeout:g} s"
        if await asyncio.to_thread(proc.listening_ports):
            self._printer.wait_end(
                self.name,
                f"{self.name}: not answering on port {proc.port} {waited}. Its last lines:",
            )
        else:
            self._set_state(State.NOT_LISTENING)
            hint = self.not_listening_hint()
            self.notices["listening"] = hint  # for the settings page; the log has it below
            self._printer.wait_end(self.name, f"{self.name}: {hint} Its last lines:")
        for line in self._printer.last_lines(self.name, 10):
            self._printer.info(f"    {line}")
        if await proc.wait_ready(float("inf"), lambda _: None):
            self._printer.info(f"{self.name}: answers now, on port {proc.port}")
            self._tell_other_port(proc)
            return True
        return False

    def not_listening_hint(self) -> str:
        """What is wrong with a micro that listens nowhere, and what to do."""
        proc = self._current
        port = proc.given_port if proc is not None else 0
        return start_hints.not_listening(
            self.spec.command,
            self.spec.cwd,
            self.spec.source,
            port,
            self._timings.ready_timeout,
            other_ports_seen=tables_readable(),
        )

    def _tell_other_port(self, proc: MicroProcess) -> None:
        """Say once that the micro serves on a port of its own, not on $PORT, and how to tell
        it the port it is given; the settings page shows it while it lasts."""
        if not proc.on_other_port:
            self.notices.pop("port", None)
            return
        text = start_hints.other_port(
            self.spec.command,
            self.spec.cwd,
            proc.port,
            proc.given_port,
            self.spec.own_reloader is not None,
        )
        self.notices["port"] = text
        if proc.port not in self._told_ports:
            self._told_ports.add(proc.port)
            self._printer.info(f"{self.name}: {text}")

    async def _serve_until_exit(self) -> tuple[int, float]:
        """Wait until the serving process exits on its own (a reload swap is not an exit);
        returns its exit code and how long it was healthy."""
        ready_at = time.monotonic()
        while True:
            proc = self._current
            assert proc is not None
            code = await proc.wait()
            if self._current is proc:
                return code, time.monotonic() - ready_at

    def _after_exit(self, code: int, healthy_for: float) -> None:
        health = self._health
        if self._restart_requested:
            self._restart_requested = False
            health.delay = 0.0
            self._set_state(State.RESTARTING)
            return
        if healthy_for >= self._timings.healthy_after:
            health.failures = 0
            health.delay = self._timings.backoff_start
        health.failures += 1
        health.last_exit = code
        crashed = health.failures >= self._timings.crashed_after
        self._set_state(State.CRASHED if crashed else State.RESTARTING)
        self._printer.info(
            f"{self.name}: exited with code {code}; starting again in {health.delay:g} s"
            + (f" ({health.failures} failures in a row)" if crashed else "")
        )
        if health.failures == 1 and code != 0:
            hint = start_hints.exit_hint(
                code,
                self.spec.command,
                self.spec.cwd,
                self.spec.source,
                self._printer.last_lines(self.name, 30),
            )
            if hint:
                self._printer.info(f"{self.name}: {hint}")

    @property
    def failures(self) -> int:
        """Failed starts in a row (0 once it has run well for a while)."""
        return self._health.failures

    @property
    def last_exit(self) -> int | None:
        """The exit code of its last failed start, if any."""
        return self._health.last_exit
