"""One OS process of a micro: started in its own session, watched, and stopped with its children."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from runtime import system
from runtime.supervisor import reaper
from runtime.supervisor.environment import (
    GATE_PROOF_HEADER,
    GATE_PROOF_VARIABLE,
    GUARD_HEADER,
    PROBE_HEADER,
)
from runtime.supervisor.listening import Address, group_loopback_ports, tables_readable
from runtime.supervisor.output import Printer

# Hosts a micro may listen on; Node's `listen(port, "localhost")` can pick ::1 alone.
LOOPBACK_HOSTS = ("127.0.0.1", "::1")
# A new process is looked at often, since every 10 ms late is 10 ms added to each reload; one
# that takes its time less often (each look reads the kernel's socket table); a stopping group
# is checked less often, since each check scans the process table.
_READY_POLLS = ((1.0, 0.01), (30.0, 0.05))  # (until this many seconds after start, interval)
_READY_POLL_LATE = 0.25
_STOP_POLL = 0.05
# How often the process group's own sockets are read while it does not answer on $PORT (a scan
# of the process table), by seconds since its start: a server on a port of its own is found
# within two.
OTHER_PORT_SCANS = ((5.0, 0.5), (60.0, 2.0))
OTHER_PORT_SCAN_LATE_S = 10.0
OTHER_PORT_SCAN_S = OTHER_PORT_SCANS[0][1]


class MicroProcess:
    """A started micro process: its port, its output, its end.

    Each process gets its own session (so its own process group): stopping it signals the
    whole group, so a shell, a `npm run dev` and the server they started all go together.
    """

    def __init__(
        self,
        name: str,
        command: str,
        cwd: Path,
        env: Mapping[str, str],
        port: int,
        printer: Printer,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.command = command
        self.cwd = cwd
        self.env = dict(env)
        self.port = port  # where it serves: $PORT, or the port it chose itself (wait_ready)
        self.given_port = port  # its $PORT
        self.host = LOOPBACK_HOSTS[0]  # updated by wait_ready to the one that answered
        self._tables = tables_readable()
        self._next_scan = 0.0
        self._seen_before: set[int] = set()
        self._elsewhere: Address | None = None  # the port it listens on instead of $PORT
        # Whether the micro's guard answered the readiness probe (set by wait_ready): if not,
        # its server refuses nothing that skips the gate, and the owner is told.
        self.guarded = False
        self._probe = probe_request(self.env.get(GATE_PROOF_VARIABLE, ""))
        self._printer = printer
        self._proc: asyncio.subprocess.Process | None = None
        # Called the moment the process exits: `wait` returns only once its output pipe closes,
        # which a child it started may hold open long after.
        self._on_exit = on_exit
        self._reader: asyncio.Task[None] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Start the command under /bin/sh in the micro's folder."""
        self.started_at = time.monotonic()
        self._next_scan = self.started_at + OTHER_PORT_SCAN_S
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_shell(
            lambda: _ExitTelling(self._on_exit, limit=1 << 20, loop=loop),
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._proc = asyncio.subprocess.Process(transport, protocol, loop)
        reaper.track(self._proc.pid)  # so it is ended even if this runtime is killed
        self._reader = asyncio.create_task(self._pump_output())

    async def _pump_output(self) -> None:
        assert self._proc and self._proc.stdout
        stream = self._proc.stdout
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than the limit: show it in pieces
                raw = await stream.read(1 << 20)
            if not raw:
                return
            text = raw.decode("utf-8", errors="replace")
            if PROBE_MARK in text:
                continue  # the server's access log of our probe, not something the user did
            self._printer.line(self.name, text)

    async def wait(self) -> int:
        """Wait for the process to exit and for its last output line to be shown."""
        assert self._proc
        code = await self._proc.wait()
        reaper.leader_exited(self._proc.pid)  # what it started may still run
        if self._reader:
            # Children that inherited the pipe may keep it open; don't wait on them forever.
            try:
                await asyncio.wait_for(asyncio.shield(self._reader), 0.5)
            except TimeoutError:
                pass
        return code

    async def wait_ready(self, timeout: float, on_waiting: Callable[[float], None]) -> bool:
        """Wait until the micro answers an HTTP request (True), or exits or time runs out (False).

        One request once a connection is accepted (a refused one reaches no program), which the
        micro's guard answers itself, or an unguarded server answers as it would a visit to `/`.
        An open port is not enough: gunicorn opens its port before its workers load the app,
        and a worker that then fails to boot would get traffic. Any status counts as an answer.
        A server that ignores $PORT and listens on a loopback port of its own is found in the
        process group's open sockets and used (`port` becomes it; `given_port` stays $PORT).
        `on_waiting(elapsed)` is called about once a second while waiting, for the progress line.
        """
        deadline = time.monotonic() + timeout
        next_note = time.monotonic() + 1.0
        while self.running and time.monotonic() < deadline:
            for host, port in await self._targets():
                head = await _answer_head(host, port, self._probe, self._proc, deadline, next_note)
                if head is not None:
                    self.host, self.port = host, port
                    self.guarded = _GUARDED in head.lower()
                    return True
            now = time.monotonic()
            if now >= next_note:
                on_waiting(now - self.started_at)
                next_note = now + 1.0
            await asyncio.sleep(_poll_interval(now - self.started_at))
        return False

    def listening_ports(self) -> dict[int, Address]:
        """The loopback ports the micro's process group listens on now (empty: none, or this
        system cannot say)."""
        return group_loopback_ports(self._proc.pid) if self._proc is not None else {}

    @property
    def on_other_port(self) -> bool:
        """Whether it serves on a port of its own choosing rather than the $PORT it was given."""
        return self.port != self.given_port

    async def _targets(self) -> list[Address]:
        """Where to send the readiness request now: $PORT (a connection the kernel refuses
        reaches no program, so trying it is quiet), and a port of the server's own choosing
        once the process group is seen listening there."""
        targets = [(host, self.given_port) for host in LOOPBACK_HOSTS]
        if not self._tables:
            return targets  # no socket table (not Linux): $PORT is all there is
        now = time.monotonic()
        if now >= self._next_scan:
            # A scan reads the process table (tens of milliseconds on a busy machine): off the
            # event loop, and less often the longer the micro takes.
            seen = await asyncio.to_thread(self.listening_ports)
            self._next_scan = time.monotonic() + _scan_interval(now - self.started_at)
            seen.pop(self.given_port, None)
            # A port seen in two scans in a row is the server's, not a helper's first moment (a
            # dev server may open its reload socket before its own); the lowest is the page
            # server's (3000, 4200, 5000, 5173, 8000 against 9229 for the inspector, 24678 for
            # Vite's reload socket).
            settled = sorted(set(seen) & self._seen_before)
            self._seen_before = set(seen)
            self._elsewhere = seen[settled[0]] if settled else None
        return targets + ([self._elsewhere] if self._elsewhere is not None else [])

    async def stop(self, grace: float) -> None:
        """SIGTERM to the whole group, SIGKILL to whatever is left after `grace` seconds."""
        if self._proc is None:
            return
        pgid = self._proc.pid  # session leader: its pid is the group id
        if _signal_group(pgid, signal.SIGTERM):
            deadline = time.monotonic() + grace
            # The group's other members are not our children: nothing tells when they are gone.
            # A look at the group reads /proc: off the event loop, where other micros serve.
            while time.monotonic() < deadline:  # noqa: ASYNC110
                if not await asyncio.to_thread(_group_alive, pgid, self._proc):
                    break
                await asyncio.sleep(_STOP_POLL)
            _signal_group(pgid, signal.SIGKILL)
        await self.wait()
        reaper.untrack(pgid)
        if self._reader and not self._reader.done():
            self._reader.cancel()


class _ExitTelling(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's own protocol of `create_subprocess_shell`, which also says when the process
    exits."""

    def __init__(
        self, on_exit: Callable[[], None] | None, *, limit: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(limit=limit, loop=loop)
        self._on_exit = on_exit

    def process_exited(self) -> None:
        super().process_exited()
        if self._on_exit is not None:
            self._on_exit()


# The readiness request asks for `/`, which apps answer quietly (a path of the runtime's own would
# be a 404, which some frameworks log with a stack trace), and carries the gate's proof and a
# header the micro's guard answers by itself; the gate drops both from what clients send. The
# mark in its query (which routing ignores) and user agent is how the access-log line a server
# may write for it is known and left out of the log.
PROBE_MARK = "space-dev-readiness-check"
_GUARDED = f"\r\n{GUARD_HEADER.lower()}:".encode()


def probe_request(gate_proof: str) -> bytes:
    """The readiness request, with the gate's proof: the micro's guard answers it."""
    proof = f"{GATE_PROOF_HEADER}: {gate_proof}\r\n" if gate_proof else ""
    return (
        f"HEAD /?{PROBE_MARK} HTTP/1.1\r\nHost: localhost\r\n{proof}{PROBE_HEADER}: ready"
        f"\r\nUser-Agent: {PROBE_MARK}\r\nConnection: close\r\n\r\n"
    ).encode()


def _scan_interval(elapsed: float) -> float:
    for until, interval in OTHER_PORT_SCANS:
        if elapsed < until:
            return interval
    return OTHER_PORT_SCAN_LATE_S


def _poll_interval(elapsed: float) -> float:
    for until, interval in _READY_POLLS:
        if elapsed < until:
            return interval
    return _READY_POLL_LATE


async def _answer_head(
    host: str,
    port: int,
    probe: bytes,
    proc: asyncio.subprocess.Process | None,
    deadline: float,
    note_at: float,
) -> bytes | None:
    """The head of the HTTP answer the server at host:port gives the probe, once it gives one.

    The wait for the answer ends early when the process exits, and at `note_at` so the caller
    can show progress (a slow first answer is then asked for again).
    """
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (TimeoutError, OSError):
        return None
    try:
        try:
            writer.write(probe)
            await writer.drain()
        except RuntimeError:
            # uvloop's word for a connection the server closed at once (a worker that failed to
            # boot): no answer, as an OSError would be under asyncio's own loop.
            return None
        answer = asyncio.ensure_future(_read_head(reader))
        waits: set[asyncio.Future[object]] = {answer}  # type: ignore[arg-type]
        if proc is not None:
            waits.add(asyncio.ensure_future(proc.wait()))
        # At least a moment, at most until the next progress note or the deadline.
        now = time.monotonic()
        limit = max(0.05, min(deadline, note_at) - now)
        done, pending = await asyncio.wait(
            waits, timeout=limit, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        if answer in done and not answer.cancelled() and answer.exception() is None:
            return answer.result()
        return None
    except OSError:
        return None
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """An answer's head (through its blank line; what arrived if the server closed early), or
    None when it is not HTTP."""
    if await reader.readexactly(5) != b"HTTP/":
        return None
    try:
        rest = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as cut:
        rest = cut.partial
    except asyncio.LimitOverrunError:
        rest = b""
    return b"HTTP/" + rest


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _group_alive(pgid: int, leader: asyncio.subprocess.Process) -> bool:
    """True while any process of the group other than a reaped leader remains (members that
    are only zombies waiting for a reaper are gone for our purpose, where that can be seen)."""
    return leader.returncode is None or system.group_alive(pgid)
