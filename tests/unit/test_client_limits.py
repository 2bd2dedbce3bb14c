"""The bound on open connections and the limit on open files (serve/client_limits.py); the
limits on bodies and slow clients are tested through a real server in
tests/integration/test_client_limits.py."""

from __future__ import annotations

import resource
import subprocess
import sys
from typing import Any

from runtime.serve.client_limits import OpenConnections, connection_limit


class Connection:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return self.name


def test_the_connection_limit_leaves_room_for_micros_and_the_rest() -> None:
    assert connection_limit(1024) == (1024 - 256) // 2
    assert connection_limit(1_048_576) == 4096
    assert connection_limit(100) == 16  # a few, however low the limit


def test_past_the_limit_the_connection_idle_longest_is_closed() -> None:
    told: list[str] = []
    pool = OpenConnections(2, told.append)
    a, b, c, d = (Connection(n) for n in "abcd")
    conns: Any = (a, b, c, d)
    pool.opened(conns[0])
    pool.opened(conns[1])
    pool.busy(conns[0])  # a request in flight: never closed for the limit
    pool.opened(conns[2])
    assert (a.closed, b.closed, c.closed) == (False, True, False)
    pool.idle(conns[0])  # a answered: now idle, after c
    pool.opened(conns[3])
    assert (a.closed, c.closed, d.closed) == (False, True, False)
    assert len(pool) == 2
    assert len(told) == 1 and "ulimit -n" in told[0]  # once, not per connection


def test_when_every_other_connection_is_busy_the_new_one_is_closed() -> None:
    pool = OpenConnections(1)
    a, b = Connection("a"), Connection("b")
    conns: Any = (a, b)
    pool.opened(conns[0])
    pool.busy(conns[0])
    pool.opened(conns[1])
    assert (a.closed, b.closed) == (False, True)
    pool.closed(conns[0])
    assert len(pool) == 0


def test_the_soft_limit_on_open_files_is_raised_to_the_hard_one() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    code = (
        "import resource\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "from runtime.serve.client_limits import raise_open_files_limit\n"
        "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(wanted), str(wanted)]
