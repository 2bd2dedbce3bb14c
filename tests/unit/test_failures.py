"""Failed tries counted in memory: the window, the wait, the bound on memory, who a client is."""

from __future__ import annotations

import pytest

from runtime.auth.failures import FailureCounter, client_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_allowed_failures_then_a_wait_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    counter = FailureCounter(3, 60.0, 100, clock)
    for _ in range(2):
        counter.failed("a")
        clock.now += 1
    assert counter.retry_after("a") == 0
    counter.failed("a")
    assert counter.retry_after("a") == 58  # the first failure, 2 s ago, leaves in 58 s
    assert counter.retry_after("b") == 0  # another client is not concerned
    clock.now += 58
    assert counter.retry_after("a") == 0


def test_failing_on_keeps_the_wait_and_forget_ends_it() -> None:
    clock = Clock()
    counter = FailureCounter(2, 10.0, 100, clock)
    for _ in range(10):
        counter.failed("a")
        clock.now += 3
    assert counter.retry_after("a") == 4  # the older of the last two, 6 s ago, leaves in 4 s
    counter.forget("a")
    assert counter.retry_after("a") == 0


def test_memory_is_bounded_and_the_longest_quiet_goes_first() -> None:
    clock = Clock()
    counter = FailureCounter(1, 60.0, 3, clock)
    for client in ("a", "b", "c"):
        counter.failed(client)
        clock.now += 1
    counter.failed("a")  # a failed again: b is now the one quiet longest
    counter.failed("d")
    assert len(counter) == 3
    assert counter.retry_after("b") == 0 and counter.retry_after("a") > 0
    assert counter.retry_after("c") > 0 and counter.retry_after("d") > 0


def test_keys_out_of_the_window_are_dropped_when_room_is_needed() -> None:
    clock = Clock()
    counter = FailureCounter(1, 60.0, 1000, clock)
    for n in range(500):
        counter.failed(n)
    clock.now += 61
    counter.failed("new")
    assert len(counter) == 1


@pytest.mark.parametrize(
    ("remote", "client"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("127.0.0.1", "127.0.0.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("::1", "::/64"),
        (None, ""),
        ("/run/space-dev.sock", "/run/space-dev.sock"),
    ],
)
def test_a_client_is_its_address_or_its_ipv6_slash_64(remote: str | None, client: str) -> None:
    assert client_of(remote) == client
