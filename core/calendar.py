"""Working calendars: weekends, public holidays, make-up workdays and office hours.

SLAs in the catalogue are written in working hours and working days, so a
deadline depends on the district's calendar. The default is mainland China's
2026 calendar from the State Council General Office notice on the 2026
holiday arrangements (国务院办公厅关于2026年部分节假日安排的通知, dated
2025-11-04, published by Xinhua; e.g. https://politics.gmw.cn/2025-11/04/content_38391083.htm),
including the weekend days worked to make up for long holidays (调休上班).
Later years need their own notice (published each November): until a
ruleset lists them, days outside 2026 follow weekends only.

Pure: dates in, dates out; nothing reads a clock.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from wangge.core.ruleset import Calendar, Duration, TimeUnit


def _span(first: date, days: int) -> tuple[date, ...]:
    return tuple(first + timedelta(days=i) for i in range(days))


#: Public holidays of 2026 (mainland China), item by item as the notice numbers them.
CN_2026_HOLIDAYS: tuple[date, ...] = (
    *_span(date(2026, 1, 1), 3),  # 元旦 New Year
    *_span(date(2026, 2, 15), 9),  # 春节 Spring Festival
    *_span(date(2026, 4, 4), 3),  # 清明节 Qingming
    *_span(date(2026, 5, 1), 5),  # 劳动节 Labour Day
    *_span(date(2026, 6, 19), 3),  # 端午节 Dragon Boat
    *_span(date(2026, 9, 25), 3),  # 中秋节 Mid-Autumn
    *_span(date(2026, 10, 1), 7),  # 国庆节 National Day
)
#: Weekend days worked in 2026 to make up for the long holidays.
CN_2026_WORKDAYS: tuple[date, ...] = (
    date(2026, 1, 4),
    date(2026, 2, 14),
    date(2026, 2, 28),
    date(2026, 5, 9),
    date(2026, 9, 20),
    date(2026, 10, 10),
)

CN_2026 = Calendar(code="cn2026", holidays=CN_2026_HOLIDAYS, workdays=CN_2026_WORKDAYS)


def effective(calendar: Calendar) -> Calendar:
    """The calendar a ruleset means: its own dates on top of the 2026 default.

    A ruleset that lists a few holidays of its own (a district's local day)
    still keeps the national ones; it only adds to them.
    """
    holidays = tuple(sorted(set(CN_2026_HOLIDAYS) | set(calendar.holidays)))
    workdays = tuple(sorted(set(CN_2026_WORKDAYS) | set(calendar.workdays)))
    return calendar.model_copy(update={"holidays": holidays, "workdays": workdays})


class WorkingTime:
    """Deadline arithmetic over one calendar, in the district's time zone.

    Office hours and holidays are local: a moment given in another zone (the
    store keeps UTC) is converted to ``timezone`` first, and results are
    local times. Naive moments are taken as already local.
    """

    def __init__(self, calendar: Calendar = CN_2026, timezone: str = "Asia/Shanghai"):
        self.calendar = calendar
        self.zone = ZoneInfo(timezone)
        self._holidays = frozenset(calendar.holidays)
        self._workdays = frozenset(calendar.workdays)
        self._weekend = frozenset(calendar.weekend)
        self.start = time.fromisoformat(calendar.day_start)
        self.end = time.fromisoformat(calendar.day_end)
        self._after: dict[tuple[date, int], date] = {}  # (day, n) → the n-th working day after it

    def is_workday(self, day: date) -> bool:
        """True on a working day: a make-up workday, or a weekday that is no holiday."""
        if day in self._workdays:
            return True
        return day.weekday() not in self._weekend and day not in self._holidays

    def add(self, start: datetime, duration: Duration) -> datetime:
        """The moment ``duration`` after ``start``, counting only working time where the unit says so."""
        unit, amount = duration.unit, duration.amount
        if start.tzinfo is not None:
            start = start.astimezone(self.zone)
        if unit is TimeUnit.working_days:  # the catalogue's usual unit first
            whole = int(amount)
            if whole == amount:  # whole days: one memoised jump (see add_working_days)
                day = start.date()
                target = self._after.get((day, whole))
                if target is None:
                    target = self._after[(day, whole)] = self._count_workdays(day, whole)
                return start + timedelta(days=(target - day).days)
            return self.add_working_days(start, amount)
        if unit is TimeUnit.minutes:
            return start + timedelta(minutes=amount)
        if unit is TimeUnit.hours:
            return start + timedelta(hours=amount)
        if unit is TimeUnit.days:
            return start + timedelta(days=amount)
        return self.add_working_minutes(start, amount * 60)

    def add_working_days(self, start: datetime, days: float) -> datetime:
        """Whole working days move to the same clock time; a fraction counts office hours."""
        whole = int(days)
        moment = start
        if whole:
            # Aware datetimes add days on the wall clock, so one jump equals
            # stepping a day at a time; the day count is memoised because
            # routing asks the same (day, n) question for many cases.
            day = start.date()
            key = (day, whole)
            target = self._after.get(key)
            if target is None:
                target = self._after[key] = self._count_workdays(day, whole)
            moment = start + timedelta(days=(target - day).days)
        fraction = days - int(days)
        if fraction:
            moment = self.add_working_minutes(moment, fraction * self._day_minutes())
        return moment

    def _count_workdays(self, day: date, whole: int) -> date:
        while whole:
            day += timedelta(days=1)
            if self.is_workday(day):
                whole -= 1
        return day

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime:
        """Count ``minutes`` of office time (day_start to day_end on working days) from ``start``."""
        moment = self._next_open(start)
        left = minutes
        while True:
            closing = datetime.combine(moment.date(), self.end, moment.tzinfo)
            available = (closing - moment).total_seconds() / 60
            if left <= available:
                return moment + timedelta(minutes=left)
            left -= available
            moment = self._next_open(closing + timedelta(microseconds=1))

    def working_minutes_between(self, start: datetime, end: datetime) -> float:
        """Office minutes from ``start`` to ``end`` (0 if ``end`` is earlier)."""
        if start.tzinfo is not None:
            start, end = start.astimezone(self.zone), end.astimezone(self.zone)
        total = 0.0
        moment = self._next_open(start)
        while moment < end:
            closing = datetime.combine(moment.date(), self.end, moment.tzinfo)
            total += (min(closing, end) - moment).total_seconds() / 60
            moment = self._next_open(closing + timedelta(microseconds=1))
        return total

    def _day_minutes(self) -> float:
        return (datetime.combine(date.min, self.end) - datetime.combine(date.min, self.start)).total_seconds() / 60

    def _next_open(self, moment: datetime) -> datetime:
        """``moment`` if the office is open then, else the next opening time."""
        day = moment.date()
        opening = datetime.combine(day, self.start, moment.tzinfo)
        closing = datetime.combine(day, self.end, moment.tzinfo)
        if self.is_workday(day) and moment < closing:
            return max(moment, opening)
        day += timedelta(days=1)
        while not self.is_workday(day):
            day += timedelta(days=1)
        return datetime.combine(day, self.start, moment.tzinfo)


@lru_cache(maxsize=32)
def for_calendar(calendar: Calendar, timezone: str = "Asia/Shanghai") -> WorkingTime:
    """A cached `WorkingTime` for a ruleset's calendar and zone (rulesets are frozen, so hashable)."""
    return WorkingTime(effective(calendar), timezone)
