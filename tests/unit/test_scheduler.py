"""When actions run (rates and UTC cron), and the Scheduler's loop driven by a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from runtime.actions.scheduler import (
    MAX_SLEEP_S,
    AlreadyRunning,
    RunRecord,
    Scheduler,
    Trigger,
    UnknownAction,
    next_run,
)
from runtime.models import Action
from runtime.spacefile.intervals import parse_cron


def at(text: str) -> datetime:
    """`2024-03-08 09:00` (or with seconds) as a UTC time."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (interval, after, the next run). 2024-03-08 is a Friday; 2024 is a leap year.
CASES = [
    # rates: every N units from `after` (the previous planned run, or the start of `up`)
    ("1 minute", "2024-03-08 10:07:30", "2024-03-08 10:08:30"),
    ("5 minutes", "2024-03-08 10:07:30", "2024-03-08 10:12:30"),
    ("1 hour", "2024-03-08 23:30", "2024-03-09 00:30"),
    ("12 hours", "2024-03-08 13:00", "2024-03-09 01:00"),
    ("2 days", "2024-02-28 08:00", "2024-03-01 08:00"),
    # cron: the first matching minute strictly after
    ("* * * * *", "2024-03-08 10:07:59", "2024-03-08 10:08"),
    ("* * * * *", "2024-03-08 10:07", "2024-03-08 10:08"),
    ("*/15 * * * *", "2024-03-08 10:07", "2024-03-08 10:15"),
    ("*/15 * * * *", "2024-03-08 10:15", "2024-03-08 10:30"),
    ("*/15 * * * *", "2024-03-08 10:45:01", "2024-03-08 11:00"),
    ("0/5 * * * *", "2024-03-08 10:07", "2024-03-08 10:10"),  # Quartz's "from 0, every 5"
    ("7/20 * * * *", "2024-03-08 10:28", "2024-03-08 10:47"),
    ("9,39 * * * ?", "2024-03-08 10:10", "2024-03-08 10:39"),
    ("0 */2 * * *", "2024-03-08 01:00", "2024-03-08 02:00"),
    ("0 */2 * * *", "2024-03-08 23:30", "2024-03-09 00:00"),
    ("0 00 * * *", "2024-03-08 00:00", "2024-03-09 00:00"),
    ("30 23 * * *", "2024-03-08 23:30", "2024-03-09 23:30"),
    ("0 9-17/4 * * *", "2024-03-08 10:00", "2024-03-08 13:00"),
    ("0 9-17/4 * * *", "2024-03-08 17:00", "2024-03-09 09:00"),
    ("15 8,12-13 * * *", "2024-03-08 12:15", "2024-03-08 13:15"),
    # names, any case; Sunday is 0, 7 or SUN
    ("0 8 * * MON-FRI", "2024-03-08 09:00", "2024-03-11 08:00"),
    ("0 8 * * mon-fri", "2024-03-11 07:59", "2024-03-11 08:00"),
    ("0 0 * * 0", "2024-03-08 12:00", "2024-03-10 00:00"),
    ("0 0 * * 7", "2024-03-08 12:00", "2024-03-10 00:00"),
    ("0 0 * * SUN", "2024-03-08 12:00", "2024-03-10 00:00"),
    ("0 0 * * 5-7", "2024-03-09 00:00", "2024-03-10 00:00"),
    ("0 0 * * 5-7", "2024-03-10 00:00", "2024-03-15 00:00"),
    ("0 0 * * */2", "2024-03-08 00:00", "2024-03-09 00:00"),  # Sun, Tue, Thu, Sat
    ("0 0 1 JAN *", "2024-06-01 00:00", "2025-01-01 00:00"),
    ("0 0 1 jun-aug/2 *", "2024-06-01 00:00", "2024-08-01 00:00"),
    ("59 23 31 12 *", "2024-12-31 23:59", "2025-12-31 23:59"),
    # day of month OR day of week when both are restricted (Friday 13th: either one)
    ("0 0 13 * FRI", "2024-03-01 00:00", "2024-03-08 00:00"),
    ("0 0 13 * FRI", "2024-03-08 00:00", "2024-03-13 00:00"),
    ("0 0 13 * FRI", "2024-03-13 00:00", "2024-03-15 00:00"),
    ("0 0 1,15 * 3", "2024-03-02 00:00", "2024-03-06 00:00"),
    # ...but a day field starting with "*" or "?" does not restrict: then both must match
    ("0 0 */2 * MON", "2024-03-01 00:00", "2024-03-11 00:00"),
    ("0 12 ? * WED", "2024-03-08 00:00", "2024-03-13 12:00"),
    ("0 12 13 * ?", "2024-03-08 00:00", "2024-03-13 12:00"),
    # month ends and leap days
    ("0 0 31 * *", "2024-04-01 00:00", "2024-05-31 00:00"),
    ("0 0 30 * *", "2024-01-31 00:00", "2024-03-30 00:00"),
    ("0 0 29 2 *", "2024-03-01 00:00", "2028-02-29 00:00"),
    ("0 0 29 2 *", "2023-01-01 00:00", "2024-02-29 00:00"),
    ("0 0 29 2 *", "2096-03-01 00:00", "2104-02-29 00:00"),  # 2100 is not a leap year
    ("0 0 29 2 MON", "2024-02-27 00:00", "2024-02-29 00:00"),  # OR: any Feb Monday, or the 29th
    ("0 0 29 2 MON", "2024-03-01 00:00", "2025-02-03 00:00"),
]


@pytest.mark.parametrize(("interval", "after", "expected"), CASES)
def test_next_run(interval: str, after: str, expected: str) -> None:
    assert next_run(interval, at(after)) == at(expected)


def test_times_are_utc_whatever_the_zone_given() -> None:
    paris = timezone(timedelta(hours=2))
    after = datetime(2024, 6, 1, 12, 30, tzinfo=paris)  # 10:30 UTC
    assert next_run("0 * * * *", after) == at("2024-06-01 11:00")
    assert next_run("0 * * * *", after).tzinfo == UTC
    assert next_run("0 * * * *", datetime(2024, 6, 1, 10, 30)) == at("2024-06-01 11:00")


@pytest.mark.parametrize("interval", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 FEB ?"])
def test_a_date_that_never_comes(interval: str) -> None:
    with pytest.raises(ValueError, match="no date"):
        next_run(interval, at("2024-01-01 00:00"))


@pytest.mark.parametrize("interval", ["5 fortnights", "every hour", "61 * * * *", "* * * *"])
def test_not_an_interval(interval: str) -> None:
    with pytest.raises(ValueError):
        next_run(interval, at("2024-01-01 00:00"))


def _brute_force(interval: str, after: datetime) -> datetime:
    """Minute by minute, with the cron rules written out plainly: the reference."""
    fields = interval.split()
    cron = parse_cron(interval)
    when = after.replace(second=0, microsecond=0)
    while True:
        when += timedelta(minutes=1)
        dom, dow = when.day in cron.days, (when.weekday() + 1) % 7 in cron.weekdays
        restricted = fields[2][0] not in "*?" and fields[4][0] not in "*?"
        day_ok = (dom or dow) if restricted else (dom and dow)
        if (
            when.minute in cron.minutes
            and when.hour in cron.hours
            and when.month in cron.months
            and day_ok
        ):
            return when


@pytest.mark.parametrize(
    "interval",
    [
        "*/7 3-5 * * *",
        "0 0 1,31 * 1",
        "20 4 */3 * *",
        "0 22 * * 6-7",
        "45 */5 8-10 * ?",
        "0 0 28-31 2,4 *",
    ],
)
def test_agrees_with_the_minute_by_minute_search(interval: str) -> None:
    for start in ("2024-01-30 22:17", "2024-02-27 04:20", "2024-12-31 23:59:59"):
        assert next_run(interval, at(start)) == _brute_force(interval, at(start)), start


# --- the Scheduler, on a fake clock ----------------------------------------------------------


class FakeClock:
    """Time that passes only when the scheduler sleeps (each sleep lets other tasks run)."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.jumps: dict[int, timedelta] = {}  # the nth sleep also skips this much (suspend)

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        for _ in range(5):  # runs just started get going before the time moves on
            await asyncio.sleep(0)
        self.now += timedelta(seconds=seconds) + self.jumps.pop(len(self.sleeps), timedelta())


START = at("2024-03-08 10:07:30")


def action(action_id: str, interval: str, micro: str = "api") -> Action:
    return Action(action_id, micro, interval=interval)


class Harness:
    """A Scheduler on a FakeClock whose runs are recorded (and can be held open)."""

    def __init__(self, actions: dict[str, list[Action]], clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock(START)
        self.fired: list[tuple[str, str, Trigger, datetime]] = []
        self.logs: list[str] = []
        self.hold: asyncio.Event | None = None
        self.scheduler = Scheduler(
            actions, self.fire, self.logs.append, clock=self.clock, sleep=self.clock.sleep
        )
        self.task: asyncio.Task[None] | None = None

    async def fire(self, app: str, act: Action, trigger: Trigger) -> RunRecord:
        self.fired.append((app, act.id, trigger, self.clock.now))
        if self.hold is not None:
            await self.hold.wait()
        return RunRecord(self.clock.now.isoformat(), 200, 1, trigger)

    def start(self) -> None:
        self.task = asyncio.create_task(self.scheduler.run())

    async def until(self, check: Callable[[], bool], limit: int = 20000) -> None:
        for _ in range(limit):
            if check():
                return
            await asyncio.sleep(0)
        raise AssertionError(f"never happened; fired {self.fired}, logs {self.logs}")

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_a_rate_runs_every_n_minutes_counted_from_the_start() -> None:
    h = Harness({"notes": [action("tidy", "2 minutes")]})
    h.start()
    await h.until(lambda: len(h.fired) >= 3)
    await h.stop()
    assert [f[3] for f in h.fired[:3]] == [START + timedelta(minutes=m) for m in (2, 4, 6)]
    assert {(f[0], f[1], f[2]) for f in h.fired} == {("notes", "tidy", "schedule")}
    assert max(h.clock.sleeps) <= MAX_SLEEP_S  # never one long blind sleep
    assert min(h.clock.sleeps) > 0  # and never a busy loop


async def test_cron_runs_on_its_minutes_and_each_action_at_its_own_time() -> None:
    h = Harness(
        {
            "notes": [action("quarter", "*/15 * * * *"), action("hourly", "0 * * * *")],
            "blog": [action("ping", "3 minutes", micro="web")],
        }
    )
    h.start()
    await h.until(lambda: sum(f[1] == "hourly" for f in h.fired) >= 2)
    await h.stop()
    times = {
        name: [f[3] for f in h.fired if f[1] == name] for name in ("quarter", "hourly", "ping")
    }
    assert times["quarter"][:4] == [
        at(t)
        for t in ("2024-03-08 10:15", "2024-03-08 10:30", "2024-03-08 10:45", "2024-03-08 11:00")
    ]
    assert times["hourly"][:2] == [at("2024-03-08 11:00"), at("2024-03-08 12:00")]
    assert times["ping"][0] == START + timedelta(minutes=3)
    assert all(f[0] == "blog" for f in h.fired if f[1] == "ping")


async def test_a_run_still_going_is_not_started_again() -> None:
    h = Harness({"notes": [action("slow", "1 minute")]})
    h.hold = asyncio.Event()
    h.start()
    await h.until(lambda: any("skipped" in line for line in h.logs))
    assert len(h.fired) == 1
    assert h.scheduler.running("notes", "slow")
    assert h.logs[0] == "api: action slow skipped: its previous run is still going"
    with pytest.raises(AlreadyRunning):
        await h.scheduler.run_now("notes", "slow")
    h.hold.set()
    await h.until(lambda: len(h.fired) >= 2)
    await h.stop()


async def test_runs_missed_while_asleep_are_not_made_up() -> None:
    clock = FakeClock(START)
    clock.jumps[3] = timedelta(hours=5)  # the laptop sleeps during the third sleep
    h = Harness({"notes": [action("tick", "1 minute"), action("cron", "*/10 * * * *")]}, clock)
    h.start()
    await h.until(lambda: clock.now > START + timedelta(hours=5, minutes=15))
    await h.stop()
    woke = START + timedelta(minutes=2, seconds=30, hours=5)  # 10:10 (the cron's time) + 5 h
    ticks = [f[3] for f in h.fired if f[1] == "tick"]
    # Two runs before, one on waking (not 300), then back on the grid counted from the start.
    assert ticks[:3] == [START + timedelta(minutes=1), START + timedelta(minutes=2), woke]
    assert ticks[3] == woke + timedelta(seconds=30)
    assert all((t - START).total_seconds() % 60 == 0 for t in ticks[3:])
    crons = [f[3] for f in h.fired if f[1] == "cron"]
    assert crons[:2] == [woke, woke + timedelta(minutes=10)]


async def test_replacing_the_list_takes_effect() -> None:
    h = Harness({"notes": [action("old", "1 minute"), action("kept", "5 minutes")]})
    h.start()
    await h.until(lambda: len(h.fired) >= 1)
    before = h.scheduler.next_due("notes", "kept")
    h.scheduler.replace("notes", [action("kept", "5 minutes"), action("new", "1 hour")])
    assert h.scheduler.next_due("notes", "kept") == before  # unchanged: keeps its time
    replaced_at = h.clock.now
    await h.until(lambda: any(f[1] == "new" for f in h.fired))
    await h.stop()
    assert not [f for f in h.fired if f[1] == "old" and f[3] > replaced_at]
    new = next(f[3] for f in h.fired if f[1] == "new")
    assert replaced_at + timedelta(hours=1) <= new < replaced_at + timedelta(hours=1, minutes=1)
    assert [a.id for a in h.scheduler.actions("notes")] == ["kept", "new"]


async def test_a_cron_line_that_never_comes_is_reported_once() -> None:
    h = Harness({"notes": [action("never", "0 0 30 2 *"), action("tick", "1 minute")]})
    h.start()
    await h.until(lambda: len(h.fired) >= 3)
    await h.stop()
    assert {f[1] for f in h.fired} == {"tick"}
    assert len([line for line in h.logs if "never" in line]) == 1


async def test_run_now_without_the_clock() -> None:
    h = Harness({"notes": [action("tidy", "1 day")]})
    record = await h.scheduler.run_now("notes", "tidy")
    assert record.status == 200 and record.trigger == "manual" and record.ok
    assert h.fired == [("notes", "tidy", "manual", START)]
    assert h.scheduler.next_due("notes", "tidy") is None  # the clock is not running
    with pytest.raises(UnknownAction, match="no action"):
        await h.scheduler.run_now("notes", "nope")
    with pytest.raises(UnknownAction, match="no app"):
        await h.scheduler.run_now("other", "tidy")


async def test_a_run_goes_on_when_its_caller_stops_waiting() -> None:
    h = Harness({"notes": [action("tidy", "1 day")]})
    h.hold = asyncio.Event()
    waiting = asyncio.create_task(h.scheduler.run_now("notes", "tidy"))
    await h.until(lambda: bool(h.fired))
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert h.scheduler.running("notes", "tidy")
    h.hold.set()
    await h.until(lambda: not h.scheduler.running("notes", "tidy"))


async def test_stopping_cancels_runs_under_way() -> None:
    h = Harness({"notes": [action("slow", "1 minute")]})
    h.hold = asyncio.Event()
    h.start()
    await h.until(lambda: h.scheduler.running("notes", "slow"))
    await h.stop()
    assert not h.scheduler.running("notes", "slow") and not h.scheduler.active


async def test_the_real_sleep_wakes_for_a_new_list_and_stops_at_once() -> None:
    looked: list[datetime] = []

    def clock() -> datetime:
        looked.append(datetime.now(UTC))
        return looked[-1]

    async def fire(app: str, act: Action, trigger: Trigger) -> RunRecord:
        raise AssertionError("nothing is due")

    scheduler = Scheduler({"notes": [action("daily", "1 day")]}, fire, print, clock=clock)
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(0.05)  # the loop is now in its (up to 60 s) sleep
    asleep = len(looked)
    scheduler.replace("notes", [action("tidy", "1 hour")])
    assert scheduler.next_due("notes", "tidy") is not None  # planned at once
    await asyncio.sleep(0.05)
    assert len(looked) >= asleep + 2  # replace looked once, and the loop woke to look again
    # A stop that comes just as the loop is woken is not lost (asyncio.wait_for could lose it).
    scheduler.replace("notes", [])
    task.cancel()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 2)
    assert task.cancelled() and not scheduler.active
