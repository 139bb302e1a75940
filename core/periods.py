"""Assessment periods: a day, week, month, quarter, half year or year, as the formulas name them.

A formula says ``period quarter``; `wangge score --quarter 2026-Q4` names the
one to score. A `Period` is a pair of calendar dates; `window` turns it into
times at midnight in the ruleset's zone (a month in Shanghai starts at 16:00
UTC the day before). Pure: nothing reads a clock.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from wangge.core.errors import UsageError

#: Period kinds in the order of the language's `period` keyword.
KINDS = ("day", "week", "month", "quarter", "half_year", "year")


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in calendar dates, of one kind."""

    kind: str
    start: date
    end: date

    @property
    def label(self) -> str:
        """How people write it: 2026-10-12, 2026-W42, 2026-10, 2026-Q4, 2026-H2, 2026."""
        s = self.start
        if self.kind == "day":
            return s.isoformat()
        if self.kind == "week":
            year, week, _ = s.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "month":
            return f"{s:%Y-%m}"
        if self.kind == "quarter":
            return f"{s.year}-Q{(s.month - 1) // 3 + 1}"
        if self.kind == "half_year":
            return f"{s.year}-H{1 if s.month < 7 else 2}"
        return str(s.year)

    def window(self, zone: str) -> tuple[datetime, datetime]:
        """The period as aware times at midnight in ``zone``, end exclusive."""
        tz = ZoneInfo(zone)
        return (datetime(self.start.year, self.start.month, self.start.day, tzinfo=tz),
                datetime(self.end.year, self.end.month, self.end.day, tzinfo=tz))

    def so_far_this_year(self) -> list["Period"]:
        """Every period of this kind from the first of its year up to and including this one."""
        if self.kind == "week":  # ISO weeks belong to the ISO year; week 1 may start in December
            current = of(self.kind, date.fromisocalendar(self.start.isocalendar()[0], 1, 1))
        else:
            current = of(self.kind, date(self.start.year, 1, 1))
        found = []
        while current.start <= self.start:
            found.append(current)
            current = of(self.kind, current.end)
        return found


def of(kind: str, day: date) -> Period:
    """The period of ``kind`` that holds ``day``."""
    if kind == "day":
        return Period(kind, day, day + timedelta(days=1))
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        return Period(kind, start, start + timedelta(days=7))
    months = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}.get(kind)
    if months is None:
        raise UsageError(f"unknown period kind {kind!r}: expected one of {', '.join(KINDS)}")
    first = (day.month - 1) // months * months + 1
    start = date(day.year, first, 1)
    after = first - 1 + months
    return Period(kind, start, date(day.year + after // 12, after % 12 + 1, 1))


_SEP = r"\s*[-/.年]?\s*"
_PATTERNS = {
    "day": (re.compile(r"(\d{4})" + _SEP + r"(\d{1,2})" + _SEP + r"(\d{1,2})日?"), "2026-10-12"),
    "week": (re.compile(r"(\d{4})" + _SEP + r"[Ww](\d{1,2})"), "2026-W42"),
    "month": (re.compile(r"(\d{4})" + _SEP + r"(\d{1,2})月?"), "2026-10 or 2026/10"),
    "quarter": (re.compile(r"(\d{4})" + _SEP + r"(?:[Qq]|第)?([1-4])(?:季度)?"), "2026-Q4 or 2026/4"),
    "half_year": (re.compile(r"(\d{4})" + _SEP + r"[Hh]?([12])"), "2026-H2"),
    "year": (re.compile(r"(\d{4})年?"), "2026"),
}


def parse(kind: str, text: str) -> Period:
    """The period of ``kind`` written as ``text`` (see `_PATTERNS` for the forms).

    Raises `UsageError` naming the form expected and what was given.
    """
    if kind not in _PATTERNS:
        raise UsageError(f"unknown period kind {kind!r}: expected one of {', '.join(KINDS)}")
    pattern, example = _PATTERNS[kind]
    match = pattern.fullmatch(text.strip())
    try:
        if match is None:
            raise ValueError
        numbers = [int(g) for g in match.groups()]
        return _from_numbers(kind, numbers)
    except ValueError:
        raise UsageError(f"expected a {kind.replace('_', ' ')} like {example}, got {text!r}") from None


def _from_numbers(kind: str, numbers: list[int]) -> Period:
    year = numbers[0]
    if kind == "day":
        return of(kind, date(year, numbers[1], numbers[2]))
    if kind == "week":
        return of(kind, date.fromisocalendar(year, numbers[1], 1))
    if kind == "month":
        return of(kind, date(year, numbers[1], 1))
    if kind == "quarter":
        return of(kind, date(year, numbers[1] * 3 - 2, 1))
    if kind == "half_year":
        return of(kind, date(year, numbers[1] * 6 - 5, 1))
    return of(kind, date(year, 1, 1))
