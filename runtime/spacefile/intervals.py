"""Action intervals as Space took them: `N minutes`, `N hours`, `N days`, or a cron line (UTC)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Space handed intervals to a rate scheduler that wants the singular exactly when N is 1.
_RATE = re.compile(r"(\d+) (minute|hour|day)(s?)")
_RATE_LIKE = re.compile(r"\s*(\d+)\s*([A-Za-z]+)\s*")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# name, lowest, highest, names counted from `lowest`, whether `?` ("no particular day") may stand
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...], bool], ...] = (
    ("minute", 0, 59, (), False),
    ("hour", 0, 23, (), False),
    ("day of month", 1, 31, (), True),
    ("month", 1, 12, _MONTHS, False),
    ("day of week", 0, 7, _DAYS, True),  # 0 and 7 are both Sunday
)
_ITEM = re.compile(r"(\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/([0-9]+))?")

CRON_HINT = 'a cron line is "minute hour day-of-month month day-of-week" in UTC, e.g. "0 */2 * * *"'
RATE_HINT = (
    'write "N minutes", "N hours" or "N days" (singular for 1), '
    'or a cron line such as "0 */2 * * *"'
)


def rate_seconds(text: str) -> int | None:
    """Seconds between runs for a valid `N minutes|hours|days` interval, else None."""
    match = _RATE.fullmatch(text)
    return int(match[1]) * _SECONDS[match[2]] if match else None


def problem(text: str) -> tuple[str, str] | None:
    """What is wrong with an interval, as (message, hint); None when it is valid."""
    rate = _RATE_LIKE.fullmatch(text)
    if rate:
        return _rate_problem(text, int(rate[1]), rate[2])
    fields = text.split()
    if len(fields) != 5:
        if fields and all(re.search(r"[0-9*?]", f) for f in fields):
            return f"a cron line has 5 fields, this one has {len(fields)}", CRON_HINT
        return "it is neither a rate nor a cron line", RATE_HINT
    for value, (name, low, high, names, question) in zip(fields, _FIELDS, strict=True):
        wrong = _field_problem(value, name, low, high, names, question)
        if wrong:
            return wrong, CRON_HINT
    return None


def _rate_problem(text: str, count: int, unit: str) -> tuple[str, str] | None:
    base = unit.lower().removesuffix("s")
    if base not in _SECONDS:
        return f'"{unit}" is not a unit of time here', RATE_HINT
    if count < 1:
        return "the interval must be at least 1", RATE_HINT
    right = f"{count} {base}" if count == 1 else f"{count} {base}s"
    if text == right:
        return None
    if unit != unit.lower():
        why = "the unit must be lowercase"
    elif count == 1:
        why = "the unit must be singular when the count is 1"
    elif unit == base:
        why = "the unit must be plural when the count is not 1"
    else:
        why = "one space goes between the count and the unit, and nothing else"
    return why, f'write "{right}"'


def _value(text: str, low: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        return int(text)
    upper = text.upper()
    return names.index(upper) + low if upper in names else None


def _field_problem(
    text: str, name: str, low: int, high: int, names: tuple[str, ...], question: bool
) -> str | None:
    if text == "?":
        return None if question else f'"?" may only stand for a day, not the {name}'
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if not match:
            return f'{name} "{item}" is not a number, a range, "*" or a step like "*/5"'
        if match[2] is not None and int(match[2]) < 1:
            return f'{name} step "/{match[2]}" must be at least 1'
        if match[1] == "*":
            continue
        bounds = []
        for part in match[1].split("-"):
            number = _value(part, low, names)
            if number is None:
                return f'{name} "{part}" is not a number'
            if not low <= number <= high:
                return f"{name} {number} is out of range {low}-{high}"
            bounds.append(number)
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            return f'{name} range "{match[1]}" runs backwards'
    return None


@dataclass(frozen=True)
class CronLine:
    """A valid 5-field cron line as the sets of values each field allows (UTC)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    any_day: bool  # the day-of-month field does not restrict the day
    any_weekday: bool

    def day_matches(self, day: int, weekday: int) -> bool:
        """Whether a date passes the two day fields (weekday: 0 is Sunday)."""
        in_days, in_weekdays = day in self.days, weekday in self.weekdays
        if self.any_day or self.any_weekday:
            return in_days and in_weekdays
        return in_days or in_weekdays


def parse_cron(text: str) -> CronLine:
    """The allowed values of a valid cron line; ValueError for anything else (rates too)."""
    wrong = problem(text)
    fields = text.split()
    if wrong or len(fields) != 5:
        raise ValueError(f'"{text}" is not a cron line: {wrong[0] if wrong else "a rate"}')
    minutes, hours, days, months, weekdays = (
        _field_values(value, low, high, names)
        for value, (_, low, high, names, _) in zip(fields, _FIELDS, strict=True)
    )
    # As in Vixie cron, a day field that starts with "*" (or is "?") does not restrict the day;
    # when both do, a date matching either passes (the POSIX rule), else it must match both.
    return CronLine(
        minutes,
        hours,
        days,
        months,
        frozenset(d % 7 for d in weekdays),
        any_day=fields[2][0] in "*?",
        any_weekday=fields[4][0] in "*?",
    )


def _field_values(text: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    """The values one (valid) field allows: lists, ranges, steps and names."""
    # "*" in the day of week is each day once (0-6); 7 only ever stands for Sunday when written.
    star_high = 6 if high == 7 else high
    allowed: set[int] = set()
    for item in ("*" if text == "?" else text).split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            raise ValueError(f'"{item}" is not a cron item')
        step = int(match[2]) if match[2] else 1
        if match[1] == "*":
            first, last = low, star_high
        else:
            bounds = [_value(part, low, names) for part in match[1].split("-")]
            if None in bounds:
                raise ValueError(f'"{item}" is not a cron item')
            first = last = bounds[0] or 0
            if len(bounds) == 2:
                last = bounds[1] or 0
            elif match[2] is not None:
                last = high  # "5/15" is Quartz's "from 5, every 15" (Spacefiles write "0/5")
        allowed.update(range(first, last + 1, step))
    return frozenset(allowed)
