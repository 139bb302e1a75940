"""Durations as written in rule files, and their compiled form.

Units may be written in English or Chinese. Weeks and months (used by
meeting cadences) compile to days: a week is 7 days, a month 30 days.
"""
from __future__ import annotations

from datetime import date, timedelta

from wangge.core.ruleset import Duration, TimeUnit

__all__ = ["UNIT", "duration", "nominal_hours", "number", "span_dates", "text"]

#: Unit word -> (compiled unit, factor applied to the amount).
UNIT = {
    "minutes": (TimeUnit.minutes, 1), "分钟": (TimeUnit.minutes, 1),
    "hours": (TimeUnit.hours, 1), "小时": (TimeUnit.hours, 1),
    "days": (TimeUnit.days, 1), "天": (TimeUnit.days, 1),
    "weeks": (TimeUnit.days, 7), "周": (TimeUnit.days, 7),
    "months": (TimeUnit.days, 30), "月": (TimeUnit.days, 30),
    "working_hours": (TimeUnit.working_hours, 1), "工作小时": (TimeUnit.working_hours, 1),
    "working_days": (TimeUnit.working_days, 1), "工作日": (TimeUnit.working_days, 1),
}

# Calendar hours a unit stands for, to compare durations written in different
# units. A working day spans about 1.4 calendar days (5 of 7), a working hour
# an eighth of that: good enough to order SLAs, not to schedule them.
_HOURS = {
    TimeUnit.minutes: 1 / 60, TimeUnit.hours: 1.0, TimeUnit.days: 24.0,
    TimeUnit.working_days: 24 * 7 / 5, TimeUnit.working_hours: 24 * 7 / 5 / 8,
}


def number(value) -> float:
    """A `Number` token (a string in the model) as a float; ints stay ints."""
    as_float = float(value)
    return int(as_float) if as_float.is_integer() and "." not in str(value) else as_float


def duration(node) -> Duration:
    """The compiled `Duration` of a textX ``Duration`` node."""
    unit, factor = UNIT[node.unit]
    return Duration(amount=number(node.amount) * factor, unit=unit)


def nominal_hours(value: Duration) -> float:
    """Approximate calendar hours of ``value``, for ordering durations only."""
    return value.amount * _HOURS[value.unit]


def text(value: Duration) -> str:
    """``3 working_days``: a duration as a person would write it."""
    amount = int(value.amount) if float(value.amount).is_integer() else value.amount
    return f"{amount} {value.unit.value}"


def span_dates(span) -> list[date]:
    """The days of a ``DateSpan`` node (``2027-02-05..2027-02-11`` or one date).

    Raises ValueError for a date that does not exist (the checks report it first).
    """
    first = date.fromisoformat(span.first)
    last = date.fromisoformat(span.last) if span.last else first
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
