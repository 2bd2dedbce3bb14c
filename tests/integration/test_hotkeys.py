"""The keys of `space-dev up` in a terminal, driven through a pseudo-terminal: o, s and l open
the browser ($BROWSER) at the app, its settings and its logs; r restarts every micro; q quits;
the terminal's mode is put back at the end, also when a second Ctrl-C ends the process at once.
Without a terminal on stdin, no key is read and none is offered."""

from __future__ import annotations

import io
import os
import pty
import signal
import stat
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.cli.hotkeys import Hotkeys, Key
from tests.integration.conftest import OWNER_PASSWORD, free_port
from tests.integration.micros import PY_ECHO, write_app

SPACEFILE = """
v: 0
micros:
  - name: api
    src: .
    engine: python3.9
    run: python main.py
"""


class Terminal:
    """`space-dev up` with a pseudo-terminal as stdin; its output read from a pipe."""

    def __init__(self, tmp_path: Path, micro: str = PY_ECHO) -> None:
        app = write_app(tmp_path / "keys", SPACEFILE, {"main.py": micro})
        self.opened = tmp_path / "opened.txt"
        browser = tmp_path / "browser.sh"
        browser.write_text(f'#!/bin/sh\necho "$1" >> {self.opened}\n')
        browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
        self.port = free_port()
        self.master, self.slave = pty.openpty()
        env = {**os.environ, "SPACE_DEV_PASSWORD": OWNER_PASSWORD, "BROWSER": str(browser)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runtime",
                "up",
                str(app),
                "--port",
                str(self.port),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            stdin=self.slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=tmp_path,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60.0, start: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines[start:]):
            assert time.monotonic() < deadline, f"no {text!r} in:\n" + "\n".join(self.lines)
            time.sleep(0.05)

    def press(self, key: str) -> None:
        os.write(self.master, key.encode())

    def mode(self) -> int:
        return termios.tcgetattr(self.slave)[3]  # the local flags: ICANON, ECHO...

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for fd in (self.master, self.slave):
            os.close(fd)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path)
    try:
        yield term
    finally:
        term.close()


def _opened(term: Terminal, count: int) -> list[str]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if term.opened.exists() and len(term.opened.read_text().split()) >= count:
            return term.opened.read_text().split()
        time.sleep(0.05)
    raise AssertionError(f"the browser was not opened {count} times")


def test_keys_open_restart_and_quit_and_the_terminal_is_put_back(terminal: Terminal) -> None:
    cooked = terminal.mode()
    assert cooked & termios.ICANON and cooked & termios.ECHO
    terminal.wait_for(
        "keys: [o] open the app  [s] settings  [l] logs  [r] restart every micro  [q] quit"
    )
    terminal.wait_for("ready: ")
    assert not terminal.mode() & (termios.ICANON | termios.ECHO)  # one key at a time, unechoed
    origin = f"http://localhost:{terminal.port}"
    for key in "osl":
        terminal.press(key)
        _opened(terminal, "osl".index(key) + 1)
    assert _opened(terminal, 3) == [
        f"{origin}/",
        f"{origin}/__space/settings",
        f"{origin}/__space/logs",
    ]
    mark = len(terminal.lines)
    terminal.press("r")
    terminal.wait_for("restarting every micro (r)", start=mark)
    terminal.wait_for("api: reloaded", start=mark)
    terminal.press("x")  # not a key: nothing happens
    terminal.press("q")
    assert terminal.proc.wait(30) == 0
    terminal.wait_for("stopped")
    assert terminal.mode() == cooked


def test_ctrl_c_twice_ends_at_once_with_the_terminal_put_back(tmp_path: Path) -> None:
    # A micro that ignores SIGTERM keeps the stop waiting: the second Ctrl-C ends it at once.
    stubborn = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + PY_ECHO
    terminal = Terminal(tmp_path, stubborn)
    try:
        cooked = terminal.mode()
        terminal.wait_for("keys: [o]")
        terminal.wait_for("ready: ")
        assert terminal.mode() != cooked
        terminal.proc.send_signal(signal.SIGINT)
        terminal.wait_for("stopping: ")
        terminal.proc.send_signal(signal.SIGINT)
        assert terminal.proc.wait(30) == 130
        assert terminal.mode() == cooked
    finally:
        terminal.close()


def test_no_keys_without_a_terminal() -> None:
    said: list[str] = []
    read, write = os.pipe()
    try:
        with os.fdopen(read, closefd=False) as stdin:
            keys = Hotkeys([Key("q", "quit", lambda: None)], said.append, stdin)
            assert keys.install() is False
        assert said == []
        assert Hotkeys([], said.append, io.StringIO()).install() is False  # no descriptor
    finally:
        os.close(read)
        os.close(write)
