"""Where a micro lives now: what the gate and the runtime's own calls to a micro (actions, App
Actions) need of its supervisor, and a way to wait for that to change. `MicroRunner` is the one
the runtime uses; naming only this much keeps those callers testable against a stand-in that
points at a server of the test's own.
"""

from __future__ import annotations

from typing import Protocol

from runtime.supervisor.manager import State


class MicroLocation(Protocol):
    """One process micro as seen by those who send it requests."""

    # Requests forwarded so far: the gate counts them, the reloader's guard reads them.
    requests: int
    # What the settings page and error pages say beside its state ("setup": a failed setup).
    notices: dict[str, str]

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> State: ...

    @property
    def address(self) -> tuple[str, int] | None:
        """Where its serving process listens, or None while none is ready."""
        ...

    def serves(self, address: tuple[str, int]) -> bool:
        """Whether a live process of the micro is still the one at `address`."""
        ...

    async def wait_changed(self, timeout: float) -> bool:
        """Wait for the next change of its state, its address, or the process at its address
        (a reload's swap, an exit); False when `timeout` passes first. Waiting begins before the
        first `await` yields, so a change right after a caller looked is not missed. What a
        caller waits for is in `serve/micro_call.py`, built on this and the properties."""
        ...

    @property
    def gate_proof(self) -> dict[str, str]:
        """The header that shows the micro's guard a request comes from the runtime."""
        ...

    @property
    def supervised(self) -> bool:
        """Whether it is kept running (False before its start, after its stop, and when its
        setup failed: then it was never started)."""
        ...

    @property
    def failures(self) -> int:
        """Failed starts in a row, for its error page."""
        ...

    @property
    def last_exit(self) -> int | None:
        """The exit code of its last failed start, for its error page."""
        ...

    def not_listening_hint(self) -> str:
        """What to do about a server that listens on no port the runtime can reach."""
        ...
