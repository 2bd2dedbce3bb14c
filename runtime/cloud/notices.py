"""Lines for the runtime's log about what a micro's data calls got wrong, each said at most once
per interval: a micro retrying in a loop must not bury the terminal under the same line."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from runtime.config.defaults import DATA_NOTICE_EVERY_S

MAX_REMEMBERED = 256  # distinct lines remembered; the oldest is forgotten first


class Notices:
    """Says a line through `say` unless the same line was said less than `every` seconds ago."""

    def __init__(
        self,
        say: Callable[[str], None],
        every: float = DATA_NOTICE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._say = say
        self._every = every
        self._clock = clock
        self._said: OrderedDict[str, float] = OrderedDict()

    def say(self, text: str) -> bool:
        """Say `text` (True), or stay quiet when it was said within the interval (False)."""
        now = self._clock()
        last = self._said.get(text)
        if last is not None and now - last < self._every:
            return False
        self._said[text] = now
        self._said.move_to_end(text)
        while len(self._said) > MAX_REMEMBERED:
            self._said.popitem(last=False)
        self._say(text)
        return True

