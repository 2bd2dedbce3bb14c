"""The one printer: every micro's output and the runtime's own messages, as `name | line`."""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections import deque
from collections.abc import Iterable
from typing import TextIO

from runtime.config import LOG_LINES_KEPT

# Foreground colours that read well on dark and light terminals, as honcho picks them.
_COLOURS = (36, 33, 32, 35, 34, 91, 96, 93, 92, 95, 94)
_RUNTIME_NAME = "space-dev"
_QUEUE_SIZE = 10_000


class Printer:
    """Writes lines prefixed with their source, padded, coloured only on a terminal.

    Processes never print: they hand lines to the printer, which also keeps the last
    `keep` lines of each source for the settings page and for crash reports.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        keep: int = LOG_LINES_KEPT,
        colour: bool | None = None,
        background: bool = False,
    ):
        self._stream = stream or sys.stdout
        if colour is None:
            colour = self._stream.isatty() and "NO_COLOR" not in os.environ
        self._colour = colour
        self._keep = keep
        self._width = len(_RUNTIME_NAME)
        self._colour_of: dict[str, int] = {}
        self._lines: dict[str, deque[str]] = {}
        # In the background, a terminal that is slow or paused (`| less`) holds up a thread,
        # never the event loop that serves requests; past the queue's size lines are dropped.
        self._queue: queue.Queue[str | None] | None = None
        self._dropped = 0
        if background:
            self._queue = queue.Queue(maxsize=_QUEUE_SIZE)
            self._writer = threading.Thread(target=self._drain, name="printer", daemon=True)
            self._writer.start()

    def register(self, names: Iterable[str]) -> None:
        """Know these names up front, so the prefixes line up from the first line."""
        for name in names:
            self._width = max(self._width, len(name))
            if name not in self._colour_of:
                self._colour_of[name] = _COLOURS[len(self._colour_of) % len(_COLOURS)]

    def line(self, name: str, text: str) -> None:
        """One line of output from `name` (a micro)."""
        text = text.rstrip("\r\n")
        self._lines.setdefault(name, deque(maxlen=self._keep)).append(text)
        if name not in self._colour_of:
            self.register([name])
        self._write(name, text, self._colour_of[name])

    def info(self, text: str) -> None:
        """A message from the runtime itself."""
        for part in text.splitlines() or [""]:
            self._write(_RUNTIME_NAME, part, None)

    def last_lines(self, name: str, count: int | None = None) -> list[str]:
        """The most recent lines `name` printed, oldest first."""
        lines = list(self._lines.get(name, ()))
        return lines if count is None else lines[-count:]

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (waiting at most `timeout`), then stop the background writer."""
        if self._queue is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
            self._writer.join(timeout)
            self._queue = None

    def _write(self, name: str, text: str, colour: int | None) -> None:
        prefix = f"{name:<{self._width}} |"
        if self._colour:
            code = colour if colour is not None else 1  # the runtime's own lines in bold
            prefix = f"\x1b[{code}m{prefix}\x1b[0m"
        line = f"{prefix} {text}\n"
        if self._queue is None:
            self._emit(line)
            return
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self._dropped += 1

    def _drain(self) -> None:
        assert self._queue is not None
        while (line := self._queue.get()) is not None:
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                self._emit(f"{_RUNTIME_NAME} | ({dropped} lines not shown: the terminal was "
                           "not reading; the settings page has the last ones)\n")
            self._emit(line)

    def _emit(self, line: str) -> None:
        try:
            self._stream.write(line)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # the terminal went away (EPIPE, EIO); the lines are still kept for the page
