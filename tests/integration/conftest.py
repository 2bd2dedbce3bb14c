"""Runs `space-dev up` as a real subprocess on a port from the OS, and reads what it prints."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from multidict import CIMultiDict

REPO = Path(__file__).resolve().parents[2]
OWNER_PASSWORD = "correct horse battery"  # SPACE_DEV_PASSWORD for every run_up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Up:
    """A running `space-dev up` and everything it printed."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        env: dict[str, str],
        port: int,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self._lock = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=preexec_fn,  # e.g. a lower limit on open files
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))
                self._lock.notify_all()

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30.0, start: int = 0) -> re.Match[str]:
        """The first line (from index `start`) matching `pattern`, waiting for it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for line in self.lines[start:]:
                    match = regex.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(
                        f"no line matching {pattern!r} within {timeout} s; output:\n"
                        + "\n".join(self.lines)
                    )
                self._lock.wait(min(remaining, 0.1))

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_for(r"ready: ", timeout)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def run_up(
    app_dir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    data_dir: Path | None = None,
) -> Up:
    port = free_port()
    data = data_dir or app_dir.parent / "data"
    full_env = {**os.environ, "SPACE_DEV_PASSWORD": OWNER_PASSWORD, **(env or {})}
    full_env.pop("NO_COLOR", None)
    args = ["up", str(app_dir), "--port", str(port), "--data-dir", str(data), *extra]
    return Up(args, cwd or app_dir.parent, full_env, port)


@pytest.fixture
def up_factory() -> Iterator[object]:
    started: list[Up] = []

    def start(app_dir: Path, *extra: str, **kwargs: object) -> Up:
        up = run_up(app_dir, *extra, **kwargs)  # type: ignore[arg-type]
        started.append(up)
        return up

    yield start
    for up in started:
        try:
            up.stop()
        except subprocess.TimeoutExpired:
            up.kill()


def fetch(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30.0,
) -> tuple[int, CIMultiDict[str], bytes]:
    """One request with the standard library (no redirects followed)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, CIMultiDict(response.headers.items()), response.read()
    except urllib.error.HTTPError as err:
        return err.code, CIMultiDict(err.headers.items()), err.read()


def get_json(url: str, **kwargs: object) -> tuple[int, dict]:
    status, _, body = fetch("GET", url, **kwargs)  # type: ignore[arg-type]
    return status, json.loads(body) if body else {}


def login(url: str, user: str = "dev", password: str = OWNER_PASSWORD) -> str:
    """Sign in with the login form; the `space_session` cookie's value."""
    from http.cookies import SimpleCookie
    from urllib.parse import urlencode

    form = urlencode({"username": user, "password": password, "next": "/"})
    status, headers, _ = fetch(
        "POST",
        url + "/__space/login",
        body=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 303, status
    cookie: SimpleCookie = SimpleCookie()
    for line in headers.getall("Set-Cookie"):
        cookie.load(line)
    return cookie["space_session"].value


@pytest.fixture(scope="session")
def package_caches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One download cache per test run for every test that installs packages (uv, pip, npm)."""
    root = tmp_path_factory.mktemp("package-caches")
    return {
        "UV_CACHE_DIR": str(root / "uv"),
        "PIP_CACHE_DIR": str(root / "pip"),
        "npm_config_cache": str(root / "npm"),
        # yarn when corepack runs it, and corepack's own downloads of it.
        "YARN_CACHE_FOLDER": str(root / "yarn"),
        "COREPACK_HOME": str(root / "corepack"),
        # A micro's first install compiles nothing here, but the registries can be slow.
        "SPACE_DEV_READY_TIMEOUT": "60",
    }
