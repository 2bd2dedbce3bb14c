"""The one printer: every micro's output and the runtime's own messages, as `name | line`."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import sys
import threading
from collections import deque
from collections.abc import Iterable
from typing import TextIO

from runtime.config import LOG_BUFFER_LINES, LOG_LINES_KEPT
from runtime.supervisor.log_buffer import RUNTIME_SOURCE, LogBuffer

# Foreground colours that read well on dark and light terminals, as honcho picks them.
_COLOURS = (36, 33, 32, 35, 34, 91, 96, 93, 92, 95, 94)
_RUNTIME_NAME = RUNTIME_SOURCE
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
        live: bool | None = None,
    ):
        self._stream = stream or sys.stdout
        if colour is None:
            colour = self._stream.isatty() and "NO_COLOR" not in os.environ
        self._colour = colour
        # On a terminal, waits are one line rewritten in place (`live`); elsewhere (a file, a
        # pipe) a wait gets a line when it is first noted and the caller's line at its end.
        self._live = self._stream.isatty() if live is None else live
        self._waits: dict[str, str] = {}
        self._status_shown = False
        self._keep = keep
        self._width = len(_RUNTIME_NAME)
        self._colour_of: dict[str, int] = {}
        self._lines: dict[str, deque[str]] = {}
        self._runs: dict[str, _Run] = {}
        # Every line with its time and level, for the logs page and `space-dev logs`.
        self.buffer = LogBuffer(LOG_BUFFER_LINES)
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
        run = self._runs.get(name)
        if run is not None and run.hold(text):
            return  # so far the same as the last start's output: shown once it differs
        if run is not None and run.held:
            for held in run.release():
                self._show(name, held)
        self._show(name, text)

    def _show(self, name: str, text: str) -> None:
        self._lines.setdefault(name, deque(maxlen=self._keep)).append(text)
        self.buffer.append(name, text)
        if name not in self._colour_of:
            self.register([name])
        self._write(name, text, self._colour_of[name])

    # --- a crash loop prints its traceback once -------------------------------------------

    def begin_run(self, name: str, after_failure: bool) -> None:
        """A new process of `name` starts. After a failure, lines that repeat what the last
        start printed, one for one, are held back; the first line that differs shows them."""
        self.end_run(name)  # the last start's, if nobody ended it
        self._runs.setdefault(name, _Run()).begin(after_failure)

    def end_run(self, name: str, ready: bool = False) -> None:
        """The process is ready (`ready`: what was held is shown) or gone: when its whole output
        was the last start's again, one line counts the repeats instead."""
        run = self._runs.get(name)
        if run is None:
            return
        if ready:
            run.matching = False
        repeated = run.end()
        if repeated:
            lines, times = repeated
            self._show(
                name,
                f"(the same {lines} line{'s' if lines != 1 else ''} as at the "
                f"last start, not shown again: {times + 1} starts in a row)",
            )
        for held in run.release():
            self._show(name, held)

    def info(self, text: str) -> None:
        """A message from the runtime itself."""
        for part in text.splitlines() or [""]:
            self.buffer.append(_RUNTIME_NAME, part)
            self._write(_RUNTIME_NAME, part, None)

    def wait_note(self, name: str, text: str) -> None:
        """How `name`'s wait goes (called now and then while it lasts): on a terminal one line,
        rewritten in place, shows every wait; elsewhere only the first note is written."""
        first = name not in self._waits
        self._waits[name] = text
        if self._live:
            self._write_status()
        elif first:
            self._write(_RUNTIME_NAME, text, None)

    def wait_end(self, name: str, text: str | None = None) -> bool:
        """`name`'s wait is over: `text`, if given, is written when a note was shown for it
        (a wait too short to be noted ends silently). Returns whether one was shown."""
        noted = self._waits.pop(name, None) is not None
        if noted and text is not None:
            self.info(text)
        elif noted and self._live:
            self._write_status()
        return noted

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
        if self._live and (self._status_shown or self._waits):
            # The status line is taken away, the line written, and the status drawn again below.
            line = "\r\x1b[K" + line + self._status_text()
            self._status_shown = bool(self._waits)
        self._put(line)

    def _write_status(self) -> None:
        self._status_shown = bool(self._waits)
        self._put("\r\x1b[K" + self._status_text())

    def _status_text(self) -> str:
        if not self._waits:
            return ""
        prefix = f"{_RUNTIME_NAME:<{self._width}} |"
        text = "; ".join(self._waits.values())
        # A line longer than the terminal would wrap, and `\r` would then rewrite only its end.
        room = shutil.get_terminal_size((100, 24)).columns - len(prefix) - 2
        if len(text) > room:
            text = text[: max(room - 3, 0)] + "..."
        if self._colour:
            prefix = f"\x1b[1m{prefix}\x1b[0m"
        return f"{prefix} {text}"

    def _put(self, line: str) -> None:
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
                self._emit(
                    f"{_RUNTIME_NAME} | ({dropped} lines not shown: the terminal was "
                    "not reading; the settings page has the last ones)\n"
                )
            self._emit(line)

    def _emit(self, line: str) -> None:
        try:
            self._stream.write(line)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # the terminal went away (EPIPE, EIO); the lines are still kept for the page


_RUN_LINES = 400  # of one start's output, compared with the next start's


class _Run:
    """One micro's output since its process started, against what the last start printed."""

    def __init__(self) -> None:
        self.previous: list[str] = []
        self.current: list[str] = []
        self.held: list[str] = []
        self.matching = False
        self.repeats = 0

    def begin(self, after_failure: bool) -> None:
        self.matching = after_failure and bool(self.previous)

    def hold(self, text: str) -> bool:
        """Keep `text` back if it is the next line of the last start's output."""
        index = len(self.current)
        if len(self.current) < _RUN_LINES:
            self.current.append(text)
        if self.matching and index < len(self.previous) and self.previous[index] == text:
            self.held.append(text)
            return True
        self.matching = False
        return False

    def release(self) -> list[str]:
        held, self.held = self.held, []
        return held

    def end(self) -> tuple[int, int] | None:
        """(lines, times) when this start printed exactly what the last one did; else None, and
        this start's output is what the next one is compared with."""
        same = self.matching and bool(self.current) and len(self.current) == len(self.previous)
        self.matching = False
        if same:
            self.held = []
            self.repeats += 1
            self.current = []
            return len(self.previous), self.repeats
        if self.current:
            self.previous, self.current, self.repeats = self.current, [], 0
        return None
