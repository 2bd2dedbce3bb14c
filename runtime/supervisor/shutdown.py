"""Stop signals: the first SIGINT, SIGTERM or SIGHUP asks the event loop to stop; a stop that has
not finished by the deadline, or a second signal, kills every micro's process group and exits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from runtime.supervisor.reaper import REAPER, Reaper

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_DEADLINE = 1  # the stop did not finish in time
EXIT_SECOND_SIGNAL = 130  # as a shell reports a job ended by Ctrl-C

_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


# What must happen even when the process ends at once (os._exit skips `finally` and atexit):
# the terminal's mode put back, if the start-up keys changed it.
BEFORE_HARD_EXIT: list[Callable[[], None]] = []


def run_before_hard_exit() -> None:
    for hook in BEFORE_HARD_EXIT:
        with contextlib.suppress(Exception):
            hook()


def _say(text: str) -> None:
    """One line on stderr, with no lock taken: safe in a signal handler, whatever was running."""
    with contextlib.suppress(OSError):
        os.write(2, f"space-dev | {text}\n".encode())


class StopSignals:
    """Signal handlers installed with `signal.signal`, not the loop's `add_signal_handler`.

    Python runs them between two bytecodes of the main thread, so they run even while a
    coroutine keeps the event loop busy and the loop would never read its wakeup pipe. They
    only ask the loop to stop (`call_soon_threadsafe`) and arm a timer thread: if `done()` has
    not been called within `deadline` seconds, the timer kills every group and exits. Neither
    the handlers nor the timer take a Python lock the interrupted code might hold: they talk
    over a pipe and write with `os.write`.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_stop: Callable[[], None],
        deadline: float,
        reaper: Reaper = REAPER,
    ) -> None:
        self._loop = loop
        self._on_stop = on_stop
        self._deadline = deadline
        self._reaper = reaper
        self._received = 0
        self._previous: dict[int, _Handler] = {}
        self._read, self._write = os.pipe()
        self._timer = threading.Thread(target=self._wait_for_stop, name="stop-timer", daemon=True)

    @property
    def received(self) -> int:
        """How many stop signals have arrived."""
        return self._received

    def install(self) -> None:
        """Start the (idle) timer and take over the stop signals."""
        # Started now, not in the handler: starting a thread takes locks the interrupted
        # main thread may be holding.
        self._timer.start()
        for sig in STOP_SIGNALS:
            if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                continue  # started under nohup: the user asked to outlive the terminal
            self._previous[sig] = signal.signal(sig, self._handle)

    def done(self) -> None:
        """The stop has finished (or the runtime ended without one): the timer stands down."""
        with contextlib.suppress(OSError):
            os.write(self._write, b"d")

    def restore(self) -> None:
        """Put the previous handlers back and end the timer."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
        self.done()
        if self._timer.is_alive():
            self._timer.join(1)
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._received += 1
        if self._received > 1:
            self._reaper.kill_all()
            _say(f"{signal.Signals(signum).name} again: killed every micro at once")
            run_before_hard_exit()
            os._exit(EXIT_SECOND_SIGNAL)
        with contextlib.suppress(OSError):
            os.write(self._write, b"a")  # arm the timer
        with contextlib.suppress(RuntimeError):  # the loop has already closed
            self._loop.call_soon_threadsafe(self._on_stop)

    def _wait_for_stop(self) -> None:
        try:
            first = os.read(self._read, 1)
        except OSError:
            return
        if first != b"a":
            return  # done before any signal
        ready, _, _ = select.select([self._read], [], [], self._deadline)
        if ready:
            return
        # A loop wedged in pure Python holds the GIL: each system call of the scan below hands
        # it over, and winning it back took a switch interval (5 ms) every time, seconds in all.
        sys.setswitchinterval(1e-4)
        self._reaper.kill_all()
        _say(
            f"the stop did not finish within {self._deadline:g} s: killed every micro "
            "(SIGKILL) and exited"
        )
        run_before_hard_exit()
        os._exit(EXIT_DEADLINE)
