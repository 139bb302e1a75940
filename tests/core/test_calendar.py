"""Working time on China's 2026 calendar: holidays, make-up workdays, office hours."""
from __future__ import annotations

from datetime import date, datetime

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
