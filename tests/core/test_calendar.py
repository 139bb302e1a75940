"""Working time on China's 2026 calendar: holidays, make-up workdays, office hours."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from wangge.core.calendar import CN_2026, WorkingTime, for_calendar
from wangge.core.ruleset import Calendar, Duration

WT = WorkingTime(CN_2026)


@pytest.mark.parametrize(
    "day, working",
    [
        (date(2026, 10, 1), False),  # National Day
        (date(2026, 10, 7), False),
        (date(2026, 10, 8), True),
        (date(2026, 10, 10), True),  # Saturday worked to make up
        (date(2026, 9, 20), True),  # Sunday worked to make up
        (date(2026, 2, 14), True),
        (date(2026, 2, 16), False),  # Spring Festival
        (date(2026, 1, 4), True),
        (date(2026, 11, 21), False),  # an ordinary Saturday
        (date(2026, 11, 23), True),
    ],
)
def test_working_days_of_2026(day, working):
    assert WT.is_workday(day) is working


def test_working_hours_jump_over_national_day():
    start = datetime(2026, 9, 30, 16, 0)
    assert WT.add(start, Duration(amount=2, unit="working_hours")) == datetime(2026, 10, 8, 10, 0)


def test_working_days_keep_the_clock_time_and_skip_weekends():
    assert WT.add(datetime(2026, 11, 20, 10, 0), Duration(amount=1, unit="working_days")) == datetime(2026, 11, 23, 10, 0)
    assert WT.add(datetime(2026, 10, 9, 15, 0), Duration(amount=1, unit="working_days")) == datetime(2026, 10, 10, 15, 0)


def test_a_report_after_hours_starts_counting_next_morning():
    assert WT.add(datetime(2026, 11, 23, 20, 0), Duration(amount=1, unit="working_hours")) == datetime(2026, 11, 24, 10, 0)
    assert WT.working_minutes_between(datetime(2026, 11, 20, 16, 0), datetime(2026, 11, 23, 10, 0)) == 120


def test_calendar_hours_ignore_holidays():
    assert WT.add(datetime(2026, 10, 1, 9, 0), Duration(amount=24, unit="hours")) == datetime(2026, 10, 2, 9, 0)


def test_a_district_adds_its_own_holiday_to_the_national_ones():
    local = for_calendar(Calendar(holidays=(date(2026, 11, 23),)))
    assert not local.is_workday(date(2026, 11, 23)) and not local.is_workday(date(2026, 10, 1))


# The State Council notice of 2025-11-04, item by item: (first day off, days off, make-up workdays).
NOTICE_2026 = [
    (date(2026, 1, 1), 3, [date(2026, 1, 4)]),  # 元旦
    (date(2026, 2, 15), 9, [date(2026, 2, 14), date(2026, 2, 28)]),  # 春节
    (date(2026, 4, 4), 3, []),  # 清明节
    (date(2026, 5, 1), 5, [date(2026, 5, 9)]),  # 劳动节
    (date(2026, 6, 19), 3, []),  # 端午节
    (date(2026, 9, 25), 3, []),  # 中秋节
    (date(2026, 10, 1), 7, [date(2026, 9, 20), date(2026, 10, 10)]),  # 国庆节
]


@pytest.mark.parametrize("first, days, workdays", NOTICE_2026)
def test_each_holiday_of_the_notice_and_its_make_up_days(first, days, workdays):
    off = [first + timedelta(days=i) for i in range(days)]
    assert not any(WT.is_workday(d) for d in off)
    assert all(WT.is_workday(d) and d.weekday() >= 5 for d in workdays)  # each make-up day is a weekend day
    # The day after the holiday is worked unless it is an ordinary weekend day.
    after = off[-1] + timedelta(days=1)
    assert WT.is_workday(after) is (after.weekday() < 5 or after in workdays)


def test_the_2026_calendar_has_33_days_off_and_6_make_up_days():
    assert len(CN_2026.holidays) == 33 and len(CN_2026.workdays) == 6
    worked = [d for d in (date(2026, 1, 1) + timedelta(days=i) for i in range(365)) if WT.is_workday(d)]
    # 365 days, 104 weekend days, 33 days off of which 14 fall on weekends, 6 weekend days worked:
    # 19 weekdays off less 6 made up is the 13 statutory days of the 2025 revision.
    assert len(worked) == 365 - 104 - (33 - 14) + 6 == 248


def test_five_working_days_over_spring_festival_count_the_saturdays_worked():
    # Fri 13 Feb + 5 working days: Sat 14 (worked), then 24, 25, 26, 27 Feb.
    assert WT.add(datetime(2026, 2, 13, 10, 0), Duration(amount=5, unit="working_days")) == datetime(2026, 2, 27, 10, 0)
    # Labour Day: Thu 30 Apr + 1 working day is Wed 6 May, + 3 is Sat 9 May (worked).
    assert WT.add(datetime(2026, 4, 30, 10, 0), Duration(amount=1, unit="working_days")) == datetime(2026, 5, 6, 10, 0)
    assert WT.add(datetime(2026, 4, 30, 10, 0), Duration(amount=3, unit="working_days")) == datetime(2026, 5, 8, 10, 0)
    assert WT.add(datetime(2026, 4, 30, 10, 0), Duration(amount=4, unit="working_days")) == datetime(2026, 5, 9, 10, 0)


def test_half_a_working_day_counts_office_hours():
    # 09:00–17:00 is 8 hours: half a day from Wed 30 Sep 15:00 is 2 h that day and 2 h on Thu 8 Oct.
    assert WT.add(datetime(2026, 9, 30, 15, 0), Duration(amount=0.5, unit="working_days")) == datetime(2026, 10, 8, 11, 0)


def test_a_utc_moment_is_counted_in_the_districts_zone():
    # 2026-09-30 08:00 UTC is 16:00 in Shanghai: one working hour runs to 17:00 local.
    start = datetime(2026, 9, 30, 8, 0, tzinfo=timezone.utc)
    assert WT.add(start, Duration(amount=1, unit="working_hours")) == datetime(2026, 9, 30, 17, 0, tzinfo=WT.zone)
