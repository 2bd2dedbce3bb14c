"""Action intervals as Space took them: `N minutes`, `N hours`, `N days`, or a cron line (UTC)."""

from __future__ import annotations

import re

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
RATE_HINT = ('write "N minutes", "N hours" or "N days" (singular for 1), '
             'or a cron line such as "0 */2 * * *"')


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
