"""Failed tries counted in memory, to slow guessing: of a password per user name and client, of
API keys per client. Bounded in size, never on disk, cheap enough for every request."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Callable, Hashable


def client_of(remote: str | None) -> str:
    """The client a request counts against: its address, or for IPv6 its /64, which one host
    (one home, one cloud machine) gets whole and can pick addresses from at will."""
    if not remote:
        return ""
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])  # a zone id (`%eth0`) is not read
    except ValueError:
        return remote  # a Unix socket's name
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class FailureCounter:
    """`allowed` failures of one key within `window` seconds make it wait until the oldest of
    them is `window` old. Keeps the times of the last `allowed` failures of at most `max_keys`
    keys; past that the key that failed longest ago is forgotten first."""

    def __init__(
        self,
        allowed: int,
        window: float,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allowed = allowed
        self._window = window
        self._max_keys = max_keys
        self._clock = clock
        # Ordered by last failure, oldest first (each failure moves its key to the end).
        self._failures: dict[Hashable, deque[float]] = {}

    def retry_after(self, key: Hashable) -> int:
        """Whole seconds to wait before `key` may try again; 0 when it may try now."""
        times = self._failures.get(key)
        if times is None or len(times) < self._allowed:
            return 0
        wait = times[0] + self._window - self._clock()
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, key: Hashable) -> None:
        now = self._clock()
        times = self._failures.pop(key, None)
        if times is None:
            self._make_room(now)
            times = deque(maxlen=self._allowed)
        times.append(now)
        self._failures[key] = times

    def forget(self, key: Hashable) -> None:
        """A success: the key's failures no longer count."""
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)

    def _make_room(self, now: float) -> None:
        cutoff = now - self._window
        failures = self._failures
        # Keys whose last failure is out of the window count for nothing: drop them, oldest first.
        while failures:
            oldest = next(iter(failures))
            if failures[oldest][-1] > cutoff:
                break
            del failures[oldest]
        while len(failures) >= self._max_keys:
            del failures[next(iter(failures))]
