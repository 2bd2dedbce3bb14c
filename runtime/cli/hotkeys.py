"""Single keys in the terminal of `space-dev up`: open the app, its settings or its logs in the
browser, restart every micro, quit. Only when stdin is a terminal; its mode is put back on the
way out, whatever the way (a normal stop, an exception, or the stop deadline's hard exit)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import tty
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from runtime.supervisor.shutdown import BEFORE_HARD_EXIT


@dataclass(frozen=True)
class Key:
    key: str
    label: str
    run: Callable[[], object]


def open_in_browser(url: str) -> Callable[[], object]:
    """A key's action: the URL in the default browser ($BROWSER if set), off the event loop
    (starting a browser may take a while, or wait for it)."""
    return lambda: asyncio.get_running_loop().run_in_executor(None, webbrowser.open, url)


class Hotkeys:
    """Reads single keys from a terminal on stdin while the runtime serves."""

    def __init__(
        self, keys: list[Key], say: Callable[[str], None], stdin: TextIO | None = None
    ) -> None:
        self._keys = {k.key: k for k in keys}
        self._say = say
        self._stdin = stdin or sys.stdin
        self._fd: int | None = None
        self._saved: list[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def legend(self) -> str:
        return "keys: " + "  ".join(f"[{k.key}] {k.label}" for k in self._keys.values())

    def install(self) -> bool:
        """Start reading keys if stdin is a terminal (else nothing happens: False)."""
        try:
            fd = self._stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return False
        if not os.isatty(fd) or _in_background(fd):
            return False
        try:
            self._saved = termios.tcgetattr(fd)
            # One key at a time, not echoed; Ctrl-C still sends SIGINT (ISIG stays on).
            tty.setcbreak(fd, termios.TCSANOW)
        except termios.error:
            return False
        self._fd = fd
        BEFORE_HARD_EXIT.append(self.restore)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._read)
        self._say(self.legend())
        return True

    def restore(self) -> None:
        """Stop reading and put the terminal back as it was (safe to call more than once)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(fd)
        if self._saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(fd, termios.TCSADRAIN, self._saved)
        with contextlib.suppress(ValueError):
            BEFORE_HARD_EXIT.remove(self.restore)

    def _read(self) -> None:
        if self._fd is None:
            return
        try:
            data = os.read(self._fd, 64)
        except OSError:
            data = b""
        if not data:  # the terminal is gone: keys are over, the runtime goes on
            self.restore()
            return
        for char in data.decode("utf-8", "replace"):
            key = self._keys.get(char.lower())
            if key is not None:
                key.run()


def _in_background(fd: int) -> bool:
    """Whether `up` runs as a background job of this terminal (`space-dev up &`): changing the
    terminal's mode from there would stop the process (SIGTTOU), and the keys are the shell's."""
    try:
        return os.tcgetpgrp(fd) != os.getpgrp()
    except OSError:
        return False  # not our controlling terminal: no job control applies
