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

    def say(self, text: str, topic: str | None = None) -> bool:
        """Say `text` (True), or stay quiet when its `topic` (the text itself unless given) was
        said within the interval (False). The text is made printable first: it may hold what a
        request sent (a Base name, a query's field), which must not drive the terminal."""
        topic = text if topic is None else topic
        now = self._clock()
        last = self._said.get(topic)
        if last is not None and now - last < self._every:
            return False
        self._said[topic] = now
        self._said.move_to_end(topic)
        while len(self._said) > MAX_REMEMBERED:
            self._said.popitem(last=False)
        self._say(printable(text))
        return True


def printable(text: str) -> str:
    """`text` with every character that is not printable (controls, escapes, line breaks, lone
    surrogates) written as a Python escape, so a line stays one plain line on a terminal."""
    if text.isprintable() and text.isascii():
        return text
    return "".join(
        ch
        if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF
        else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
        for ch in text
    )
