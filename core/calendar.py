"""Working calendars: weekends, public holidays, make-up workdays and office hours.

SLAs in the catalogue are written in working hours and working days, so a
deadline depends on the district's calendar. The national calendar ("cn")
takes China's public holidays and the weekend days worked to make up for
them (调休上班) from the `chinese_calendar` library, which transcribes the
State Council General Office notice of each year (国务院办公厅关于部分节假日
安排的通知, published each November for the next year).

A year the library does not have yet is never silently counted as weekends
only: its statutory holidays are estimated from the law's fixed and lunar
dates (`holidays.China`, with its Saturday/Sunday-to-next-workday rule), and
the year is *provisional* — `Router` marks deadlines that cross it and
`wangge rules check` warns about it — until the library is updated or the
rule file gives that year's schedule (``year 2027 { holidays … workdays … }``).

Rule-file days always win: a listed holiday is off even if the notice has it
worked, a listed workday is worked even if the notice gives it off.

Pure: dates in, dates out; nothing reads a clock.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from wangge.core.ruleset import Calendar, Duration, TimeUnit

#: Calendar codes meaning mainland China's national calendar ("cn2026" is the old name).
NATIONAL_CODES = frozenset({"cn", "cn2026"})

NATIONAL = Calendar()


@lru_cache(maxsize=1)
def _library() -> tuple[frozenset[date], frozenset[date], frozenset[int]]:
    """(days off, make-up workdays, years covered) as the installed `chinese_calendar` has them."""
    import chinese_calendar

    off = frozenset(chinese_calendar.holidays)
    worked = frozenset(chinese_calendar.workdays)
    return off, worked, frozenset(day.year for day in off)


def official_years() -> frozenset[int]:
    """Years whose State Council schedule the installed library holds."""
    return _library()[2]


@lru_cache(maxsize=64)
def estimated_holidays(year: int) -> frozenset[date]:
    """Statutory days off of ``year`` as the law fixes them, for a year with no notice yet.

    An estimate: the notice also moves days to make long holidays and names
    weekend days to work, which no rule can foresee.
    """
    import holidays

    return frozenset(holidays.China(years=year))


def is_national(calendar: Calendar) -> bool:
    return calendar.code in NATIONAL_CODES


def year_source(calendar: Calendar, year: int) -> str:
    """Where ``year``'s days off come from: "ruleset", "official", "provisional" or "weekends".

    "weekends" is a calendar of the district's own (not the national one):
    weekends and the days the rule file lists, nothing to announce.
    """
    if year in calendar.years:
        return "ruleset"
    if not is_national(calendar):
        return "weekends"
    return "official" if year in official_years() else "provisional"


def unannounced(calendar: Calendar, first: int, last: int) -> tuple[int, ...]:
    """The years in ``first..last`` whose deadlines are provisional on ``calendar``."""
    return tuple(y for y in range(first, last + 1) if year_source(calendar, y) == "provisional")


def in_zone(moment: datetime, zone: str) -> datetime:
    """``moment`` as an aware time in ``zone``; a naive moment is taken as a wall time there.

    What a person types (``--now "2027-02-03 09:00"``) means the district's
    time, never the zone of the machine that happens to run the command.
    """
    tz = ZoneInfo(zone)
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)


class WorkingTime:
    """Deadline arithmetic over one calendar, in the district's time zone.

    Office hours and holidays are local: a moment given in another zone (the
    store keeps UTC) is converted to ``timezone`` first, and results are
    local times. Naive moments are taken as already local.
    """

    def __init__(self, calendar: Calendar = NATIONAL, timezone: str = "Asia/Shanghai"):
        self.calendar = calendar
        self.zone = ZoneInfo(timezone)
        self._own_off = frozenset(calendar.holidays)
        self._own_worked = frozenset(calendar.workdays)
        self._weekend = frozenset(calendar.weekend)
        self._given = frozenset(calendar.years)
        self._national = is_national(calendar)
        self._holidays: set[date] = set(self._own_off)
        self._workdays: set[date] = set(self._own_worked)
        self._known: set[int] = set()  # years whose national days are merged in
        self.start = time.fromisoformat(calendar.day_start)
        self.end = time.fromisoformat(calendar.day_end)
        self._after: dict[tuple[date, int], date] = {}  # (day, n) → the n-th working day after it

    def _learn(self, year: int) -> None:
        """Merge ``year``'s national days (official or estimated) under the rule file's own."""
        self._known.add(year)
        if not self._national or year in self._given:
            return
        off, worked, covered = _library()
        if year in covered:
            year_off = {d for d in off if d.year == year}
            year_worked = {d for d in worked if d.year == year}
        else:
            year_off, year_worked = set(estimated_holidays(year)), set()
        self._holidays |= year_off - self._own_worked
        self._workdays |= year_worked - self._own_off

    def is_workday(self, day: date) -> bool:
        """True on a working day: a make-up workday, or a weekday that is no holiday."""
        if day.year not in self._known:
            self._learn(day.year)
        if day in self._workdays:
            return True
        return day.weekday() not in self._weekend and day not in self._holidays

    def source(self, year: int) -> str:
        """Where ``year``'s days come from (see `year_source`)."""
        return year_source(self.calendar, year)

    def provisional(self, start: datetime, end: datetime) -> tuple[int, ...]:
        """The years from ``start`` to ``end`` whose holidays are only estimated."""
        first, last = sorted((start.year, end.year))
        return unannounced(self.calendar, first, last)

    def add(self, start: datetime, duration: Duration) -> datetime:
        """The moment ``duration`` after ``start``, counting only working time where the unit says so."""
        unit, amount = duration.unit, duration.amount
        if start.tzinfo is not None:
            start = start.astimezone(self.zone)
        if unit is TimeUnit.working_days:  # the catalogue's usual unit first
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
        fraction = days - whole
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
    return WorkingTime(calendar, timezone)
