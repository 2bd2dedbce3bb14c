"""Scheduled actions: when each runs next (rates and UTC cron), and one task that runs them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from runtime.errors import SpaceDevError
from runtime.models import Action
from runtime.spacefile.intervals import parse_cron, rate_seconds

Trigger = Literal["schedule", "manual"]
# The longest single sleep: a wall-clock jump (a laptop waking up, NTP) is noticed within it.
MAX_SLEEP_S = 60.0
# The rarest date a valid cron line can want is a leap day on a given weekday; 8 years always
# holds a leap day (2100 is not one), and with the OR rule any Feb 29 matches.
_HORIZON = timedelta(days=366 * 8 + 2)


def next_run(interval: str, after: datetime) -> datetime:
    """The first time strictly after `after` that `interval` runs (UTC).

    A rate (`N minutes|hours|days`) runs every N units counted from `after` (the scheduler passes
    the previous run's planned time, so runs never drift); a cron line runs at the first minute
    its fields allow. ValueError for an interval that is neither, or a cron line that never
    comes (`0 0 30 2 *`).
    """
    after = after.astimezone(UTC) if after.tzinfo else after.replace(tzinfo=UTC)
    seconds = rate_seconds(interval)
    if seconds is not None:
        return after + timedelta(seconds=seconds)
    cron = parse_cron(interval)
    when = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = when + _HORIZON
    while when < limit:
        # Each miss jumps to the start of the next month, day, hour or minute: few steps.
        if when.month not in cron.months:
            year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
            when = when.replace(year=year, month=month, day=1, hour=0, minute=0)
        elif not cron.day_matches(when.day, (when.weekday() + 1) % 7):
            when = (when + timedelta(days=1)).replace(hour=0, minute=0)
        elif when.hour not in cron.hours:
            when = (when + timedelta(hours=1)).replace(minute=0)
        elif when.minute not in cron.minutes:
            when += timedelta(minutes=1)
        else:
            return when
    raise ValueError(f'the cron line "{interval}" names no date that exists')


@dataclass(frozen=True)
class RunRecord:
    """One run of an action, as kept in the data dir and shown."""

    time: str  # when it started, UTC, `2021-04-22T11:50:08Z`
    status: int | str  # the micro's HTTP status, or "error: ..."
    duration_ms: int
    trigger: Trigger

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "trigger": self.trigger,
        }

    @property
    def ok(self) -> bool:
        return isinstance(self.status, int) and 200 <= self.status < 300


class UnknownAction(SpaceDevError):
    """No such app or action (404)."""

    status = 404


class AlreadyRunning(SpaceDevError):
    """The previous run of the action has not finished (409)."""

    status = 409


Fire = Callable[[str, Action, Trigger], Coroutine[Any, Any, RunRecord]]  # (app, action, trigger)


@dataclass
class _Entry:
    action: Action
    due: datetime | None = None  # None: not planned yet (planned when the loop next looks)
    broken: bool = False  # its interval never comes; reported once, never run by the clock


class Scheduler:
    """Runs each app's actions at their times, and on demand, never two runs of one at once.

    One task sleeps until the earliest planned run (at most MAX_SLEEP_S at a time), starts what
    is due, and plans the next. `run_now` works whether or not that task runs (`--no-schedule`).
    """

    def __init__(
        self,
        actions: Mapping[str, Sequence[Action]],
        fire: Fire,
        log: Callable[[str], None],
        *,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._fire = fire
        self._log = log
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep or self._pause
        self._apps: dict[str, dict[str, _Entry]] = {}
        self._running: dict[tuple[str, str], asyncio.Task[RunRecord]] = {}
        self._wake = asyncio.Event()
        self.active = False  # the clock task is running
        for app, listed in actions.items():
            self.replace(app, listed)

    # --- the action lists ---------------------------------------------------------------------

    def replace(self, app: str, actions: Sequence[Action]) -> None:
        """Take an app's new action list (a reloaded Spacefile).

        An action whose micro and interval did not change keeps its planned time; a new or
        changed one is planned from now.
        """
        old = self._apps.get(app, {})
        fresh: dict[str, _Entry] = {}
        for action in actions:
            if action.trigger != "schedule" or not action.interval:
                continue
            kept = old.get(action.id)
            same = kept is not None and (kept.action.interval, kept.action.micro) == (
                action.interval,
                action.micro,
            )
            if kept is not None and same:
                fresh[action.id] = _Entry(action, kept.due, kept.broken)
                continue
            entry = fresh[action.id] = _Entry(action)
            if self.active:  # else the clock plans it when it starts
                entry.due = self._plan(app, entry, self._clock())
        self._apps[app] = fresh
        self._wake.set()

    def actions(self, app: str) -> list[Action]:
        return [e.action for e in self._apps.get(app, {}).values()]

    def next_due(self, app: str, action_id: str) -> datetime | None:
        """When the clock next runs the action; None when it is not running or not planned."""
        entry = self._apps.get(app, {}).get(action_id)
        return entry.due if self.active and entry is not None else None

    def running(self, app: str, action_id: str) -> bool:
        task = self._running.get((app, action_id))
        return task is not None and not task.done()

    # --- runs -----------------------------------------------------------------------------------

    async def run_now(self, app: str, action_id: str, trigger: Trigger = "manual") -> RunRecord:
        """Run an action at once and wait for its record.

        UnknownAction or AlreadyRunning when it cannot start. The run goes on (and is kept) even
        if the caller stops waiting.
        """
        entries = self._apps.get(app)
        if entries is None:
            raise UnknownAction(
                f"no app called {app!r} is running",
                f"the apps are: {', '.join(sorted(self._apps)) or '(none)'}",
            )
        entry = entries.get(action_id)
        if entry is None:
            ids = ", ".join(entries)
            raise UnknownAction(
                f'app {app} has no action "{action_id}"',
                f"its actions are: {ids}"
                if ids
                else "add one under a micro's `actions` in the Spacefile",
            )
        if self.running(app, action_id):
            raise AlreadyRunning(
                f'action "{action_id}" of app {app} is still running',
                "wait for it to finish, then run it again",
            )
        return await asyncio.shield(self._start(app, entry.action, trigger))

    def _start(self, app: str, action: Action, trigger: Trigger) -> asyncio.Task[RunRecord]:
        key = (app, action.id)
        task = asyncio.create_task(self._fire(app, action, trigger), name=f"action {action.id}")
        self._running[key] = task

        def done(finished: asyncio.Task[RunRecord]) -> None:
            if self._running.get(key) is finished:
                del self._running[key]
            if not finished.cancelled() and finished.exception() is not None:
                self._log(f"{action.micro}: action {action.id} failed: {finished.exception()!r}")

        task.add_done_callback(done)
        return task

    # --- the clock ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run every action at its times until cancelled; then cancel the runs under way."""
        self.active = True
        try:
            while True:
                now = self._clock()
                self._run_due(now)
                planned = [e.due for es in self._apps.values() for e in es.values() if e.due]
                wait = MAX_SLEEP_S
                if planned:
                    wait = min(wait, max(0.0, (min(planned) - now).total_seconds()))
                self._wake.clear()
                await self._sleep(wait)
        finally:
            self.active = False
            await self.close()

    async def close(self) -> None:
        """Cancel the runs under way (the runtime is stopping)."""
        runs = list(self._running.values())
        for task in runs:
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)

    def _run_due(self, now: datetime) -> None:
        """Start every action whose time has come and plan its next run."""
        for app, entries in self._apps.items():
            for entry in entries.values():
                if entry.broken:
                    continue
                if entry.due is None:
                    entry.due = self._plan(app, entry, now)
                    continue
                if entry.due > now:
                    continue
                action = entry.action
                if self.running(app, action.id):
                    self._log(
                        f"{action.micro}: action {action.id} skipped: its previous run "
                        "is still going"
                    )
                else:
                    self._start(app, action, "schedule")
                entry.due = self._plan(app, entry, entry.due, now)

    def _plan(
        self, app: str, entry: _Entry, after: datetime, now: datetime | None = None
    ) -> datetime | None:
        """The next run after `after`; runs missed while the machine slept are not made up."""
        interval = entry.action.interval or ""
        try:
            due = next_run(interval, after)
            if now is not None and due <= now:
                rate = rate_seconds(interval)
                if rate is None:
                    due = next_run(interval, now)
                else:  # keep to the grid counted from the start
                    missed = int((now - due).total_seconds() // rate) + 1
                    due += timedelta(seconds=rate * missed)
        except ValueError as err:
            entry.broken = True
            self._log(
                f"{entry.action.micro}: action {entry.action.id} of {app} will never run "
                f"on its own: {err}"
            )
            return None
        return due

    async def _pause(self, seconds: float) -> None:
        """Sleep, waking early when an action list changes."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that comes as the
        # event is set, and the runtime's stop would then wait a whole sleep.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
