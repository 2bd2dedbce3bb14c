"""Calling a micro where it lives now: its address in a URL or Host header, and when a call that
failed goes again (the gate, actions and App Actions share this one policy).

Nothing here polls the runner: a wait ends at the runner's next change (a reload's swap, the
serving process's exit, a new state). The one timed retry is for a refused connection while the
runner says nothing changed: a server that restarts inside the same process group (nodemon,
`uvicorn --reload`) comes back on the same port without telling anyone.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from runtime.supervisor.location import MicroLocation
from runtime.supervisor.manager import DOWN_STATES

Address = tuple[str, int]
T = TypeVar("T")

# A refused connection to an address the runner still gives is tried again this often.
REFUSED_RETRY_S = 0.05
# The supervisor sees a process's exit a moment after its connections break: how long a broken
# call waits to learn whether the process died (then a replayable call may go again).
EXIT_NOTICE_S = 0.5


class Failure(enum.Enum):
    """How one attempt to call the micro failed."""

    REFUSED = "refused"  # nothing reached the micro: the connection was refused or never made
    BROKEN = "broken"  # sent, and the connection closed before an answer came


class Next(enum.Enum):
    """What a caller does after a failure."""

    RETRY = "retry"  # ask where the micro lives once it moved (or after REFUSED_RETRY_S)
    RESEND = "resend"  # once, to the micro's next process, when this one died of the call
    GIVE_UP = "give up"  # the failure is the answer


def after_failure(
    failure: Failure, *, time_left: bool, replayable: bool, resent: bool, died: bool
) -> Next:
    """The retry policy.

    A refused call reached nothing, so it may always go again while there is time (a reload's
    old process is gone, the new one is a moment away). A broken call may have been acted on:
    only a replayable one (a safe request without a body), only once, and only when its process
    died under it (a live micro that closed the connection has answered); a second death is the
    micro's answer, as browsers do on a dead kept-alive connection.
    """
    if failure is Failure.REFUSED:
        return Next.RETRY if time_left else Next.GIVE_UP
    if replayable and not resent and died:
        return Next.RESEND
    return Next.GIVE_UP


class NoAddress(Exception):
    """The micro had no address to call within the wait: its runner's state says why."""


def host_literal(host: str) -> str:
    """A host as it stands in a URL or a Host header: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def authority(address: Address) -> str:
    """`host:port` of a URL or a Host header: `127.0.0.1:8080`, `[::1]:8080`."""
    return f"{host_literal(address[0])}:{address[1]}"


def micro_url(address: Address, path: str) -> str:
    """The plain-HTTP URL of `path` on the micro at `address`."""
    return f"http://{authority(address)}{path}"


async def wait_until(runner: MicroLocation, done: Callable[[], bool], timeout: float) -> bool:
    """Wait until `done()` holds, checking it at each change of the runner; False after
    `timeout` without it."""
    deadline = time.monotonic() + timeout
    while not done():
        remaining = deadline - time.monotonic()
        # wait_changed starts waiting before it yields: no change between the check and the
        # wait is missed.
        if remaining <= 0 or not await runner.wait_changed(remaining):
            return done()
    return True


async def wait_address(runner: MicroLocation, timeout: float) -> Address | None:
    """Where to send a call: waits while the micro starts or restarts, not while it is down."""
    await wait_until(
        runner, lambda: runner.address is not None or runner.state in DOWN_STATES, timeout
    )
    return runner.address


async def wait_gone(runner: MicroLocation, address: Address, timeout: float) -> bool:
    """Whether the process at `address` stops being the micro's live one within `timeout`
    (it exited, or another took its place)."""
    return await wait_until(runner, lambda: not runner.serves(address), timeout)


async def wait_moved(runner: MicroLocation, address: Address, timeout: float) -> bool:
    """Whether the micro's address is another than `address` (or none yet) within `timeout`."""
    return await wait_until(runner, lambda: runner.address != address, timeout)


async def call_micro(
    runner: MicroLocation,
    attempt: Callable[[Address], Awaitable[T]],
    *,
    wait: float,
    refused: tuple[type[BaseException], ...],
    broken: tuple[type[BaseException], ...] = (),
    replayable: bool = False,
    refused_grace: float = 0.0,
) -> T:
    """`attempt(address)` where the micro lives now, again as `after_failure` says.

    `refused` and `broken` are the caller's exceptions for each `Failure`. Waits up to `wait` for
    an address (NoAddress when there is none), and keeps trying a refused connection until then,
    or for `refused_grace` from the start if that is longer; then the last refusal is raised, as
    is a broken call that does not go again. Any other exception of `attempt` goes through.
    """
    began = time.monotonic()
    deadline = began + wait
    resent = False
    while True:
        address = await wait_address(runner, max(0.0, deadline - time.monotonic()))
        if address is None:
            raise NoAddress(runner.name)
        try:
            return await attempt(address)
        except refused:
            deadline = max(deadline, began + refused_grace)
            step = after_failure(
                Failure.REFUSED,
                time_left=time.monotonic() < deadline,
                replayable=replayable,
                resent=resent,
                died=False,
            )
            if step is Next.GIVE_UP:
                raise
            # At once when the runner already gives another address, else at its next change.
            await wait_moved(
                runner, address, min(REFUSED_RETRY_S, max(0.0, deadline - time.monotonic()))
            )
        except broken:
            died = replayable and not resent and await wait_gone(runner, address, EXIT_NOTICE_S)
            step = after_failure(
                Failure.BROKEN,
                time_left=time.monotonic() < deadline,
                replayable=replayable,
                resent=resent,
                died=died,
            )
            if step is Next.GIVE_UP:
                raise
            resent = True
            # Not to the dead process again: a pool may hold more connections to it.
            await wait_moved(runner, address, max(0.0, deadline - time.monotonic()))
