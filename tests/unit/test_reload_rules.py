"""The reloader's pure rules: files a micro writes, dependency manifests, the restart guard, and
reading which interfaces a port listens on."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.app.reload import RestartGuard, is_dependency_manifest
from runtime.supervisor.file_changes import is_written_by_micro
from runtime.supervisor.listening import wildcard_listeners


@pytest.mark.parametrize(
    "name",
    [
        "app.log",
        "server.log.1",
        "data.db",
        "data.db-journal",
        "app.sqlite",
        "app.sqlite3",
        "app.sqlite3-wal",
        "db.sqlite-shm",
        "gunicorn.pid",
        ".main.py.swp",
        "main.py~",
        ".#main.py",
        "4913",
        "upload.tmp",
        "vite.config.js.timestamp-1690000000000-4f2a.mjs",
        "vite.config.ts.timestamp-12.mjs",
        ".DS_Store",
    ],
)
def test_files_micros_write_are_not_code(name: str) -> None:
    assert is_written_by_micro(name)


@pytest.mark.parametrize(
    "name",
    [
        "main.py",
        "index.js",
        "vite.config.js",
        "app.json",
        "style.css",
        "logo.svg",
        "db.py",
        "login.html",
        "catalog.py",
    ],
)
def test_code_is_code(name: str) -> None:
    assert not is_written_by_micro(name)


@pytest.mark.parametrize(
    "name,manifest",
    [
        ("requirements.txt", True),
        ("requirements-dev.txt", True),
        ("package.json", True),
        ("package-lock.json", True),
        ("pnpm-lock.yaml", True),
        ("yarn.lock", True),
        ("go.mod", True),
        ("pyproject.toml", True),
        (".env", True),
        ("main.py", False),
        ("index.js", False),
        ("requirements.md", False),
    ],
)
def test_dependency_manifests(name: str, manifest: bool) -> None:
    assert is_dependency_manifest(Path("app") / name) is manifest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_guard_refuses_the_sixth_restart_within_a_minute() -> None:
    clock = Clock()
    guard = RestartGuard(clock=clock)
    key = ("app", "api")
    assert all(guard.allow(key, requests=0) for _ in range(5))
    assert not guard.allow(key, requests=0)


def test_guard_forgets_restarts_older_than_its_window() -> None:
    clock = Clock()
    guard = RestartGuard(clock=clock)
    key = ("app", "api")
    for _ in range(5):
        assert guard.allow(key, 0)
        clock.now += 13
    assert guard.allow(key, 0)  # the first one is now more than 60 s old


def test_a_request_in_between_clears_the_record() -> None:
    guard = RestartGuard(clock=Clock())
    key = ("app", "api")
    for requests in range(20):
        assert guard.allow(key, requests)


def test_guard_counts_each_micro_alone() -> None:
    guard = RestartGuard(clock=Clock())
    for _ in range(5):
        assert guard.allow(("app", "a"), 0)
    assert guard.allow(("app", "b"), 0)
    assert not guard.allow(("app", "a"), 0)


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   1: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   2: 0100007F:1F91 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0
   3: 00000000:1F92 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0
"""
TCP6 = """  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:1F93 00000000000000000000000000000000:0000 0A
   1: 00000000000000000000000001000000:1F94 00000000000000000000000000000000:0000 0A
"""


@pytest.mark.parametrize(
    "table,port,expected",
    [
        (TCP, 8080, []),  # loopback only
        (TCP, 8081, ["0.0.0.0:8081"]),
        (TCP, 8082, []),  # an established connection, not a listener
        (TCP6, 8083, ["[::]:8083"]),
        (TCP6, 8084, []),  # ::1
        (TCP, 9999, []),
    ],
)
def test_wildcard_listeners(table: str, port: int, expected: list[str]) -> None:
    assert wildcard_listeners(table, port) == expected
