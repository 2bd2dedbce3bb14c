"""The last lines of every source (micros and space-dev itself) with their time and level, kept
in memory for the logs page and `space-dev logs`, and handed to whoever follows them live."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

RUNTIME_SOURCE = "space-dev"
LEVELS = ("info", "warn", "error")

# A guess from the words of a line: a process's output has no level of its own (stderr and
# stdout arrive merged), so words that mark trouble in every common server's output decide.
_ERROR_WORDS = re.compile(
    r"\b(error|exception|traceback|crash(ed)?|failed|fatal|panic|critical)\b|^\s*File \""
    r"|exited with code [1-9]|^\s*(Uncaught )?[\w.]*(Error|Exception)\b",
    re.IGNORECASE,
)
_WARN_WORDS = re.compile(r"\b(warn(ing)?|deprecat\w*)\b", re.IGNORECASE)
# A sign-in link's token (space-dev prints one at each start): the terminal shows it whole, the
# buffer keeps it masked, so a shared logs page or `space-dev logs` output signs nobody in.
_TOKEN_VALUE = re.compile(r"([?&]token=)[^&\s]+")


def masked(text: str) -> str:
    """The line with the value of any `token=` in a URL replaced by `…`."""
    return _TOKEN_VALUE.sub(r"\1…", text) if "token=" in text else text


def level_of(text: str) -> str:
    """info, warn or error, from the words of the line."""
    if _ERROR_WORDS.search(text):
        return "error"
    if _WARN_WORDS.search(text):
        return "warn"
    return "info"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line: its number in the buffer (for "after this one"), when, whose, how bad."""

    seq: int
    time: float  # seconds since the epoch
    source: str  # a micro's name, or RUNTIME_SOURCE
    level: str
    text: str

    def as_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "time": self.time,
            "micro": self.source,
            "level": self.level,
            "text": self.text,
        }


class _Waiter:
    __slots__ = ("loop", "event")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()


class LogBuffer:
    """A bounded ring of lines; appended from any thread, followed from the event loop."""

    def __init__(self, size: int) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._seq = 0
        self._waiters: set[_Waiter] = set()

    @property
    def last_seq(self) -> int:
        return self._seq

    def append(self, source: str, text: str, level: str | None = None) -> LogEntry:
        with self._lock:
            self._seq += 1
            entry = LogEntry(self._seq, time.time(), source, level or level_of(text), masked(text))
            self._entries.append(entry)
            waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            try:
                if _in_loop(waiter.loop):
                    waiter.event.set()
                else:
                    waiter.loop.call_soon_threadsafe(waiter.event.set)
            except RuntimeError:
                pass  # that loop is closed: nobody is following any more
        return entry

    def entries(self, after: int = 0, sources: Iterable[str] | None = None) -> list[LogEntry]:
        """The kept lines numbered above `after`, oldest first, of `sources` (None: all)."""
        with self._lock:
            kept = list(self._entries)
        wanted = None if sources is None else frozenset(sources)
        return [e for e in kept if e.seq > after and (wanted is None or e.source in wanted)]

    async def wait_after(self, seq: int, timeout: float) -> bool:
        """Wait until a line numbered above `seq` exists (True) or `timeout` passes (False)."""
        waiter = _Waiter()
        with self._lock:
            if self._seq > seq:
                return True
            self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter.event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.discard(waiter)


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
