"""Working time on China's national calendar: holidays, make-up workdays, office hours, unannounced years."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from wangge import dsl
from wangge.core.calendar import NATIONAL, WorkingTime, for_calendar, official_years
from wangge.core.routing import CaseView, Router
from wangge.core.ruleset import Calendar, Duration

from support.rules import BASIC

WT = WorkingTime(NATIONAL)


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
    year = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    assert sum(not WT.is_workday(d) and d.weekday() < 5 for d in year) == 33 - 14
    assert sum(WT.is_workday(d) and d.weekday() >= 5 for d in year) == 6
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


# -- years after 2026 ---------------------------------------------------------

DAYS = Duration(amount=3, unit="working_days")


def ruleset_with(settings: str):
    return dsl.loads(BASIC + "\n" + settings + "\n", "cal.wg")


def test_the_official_schedules_come_from_the_library_year_by_year():
    assert {2024, 2025, 2026} <= official_years()
    # 2025's notice: Spring Festival 28 Jan – 4 Feb off, Sun 26 Jan and Sat 8 Feb worked.
    assert not WT.is_workday(date(2025, 2, 4)) and WT.is_workday(date(2025, 1, 26)) and WT.is_workday(date(2025, 2, 8))
    assert WT.source(2026) == "official"


def test_a_make_up_saturday_is_counted_as_a_working_day():
    # Fri 27 Feb 2026 + 1 working day is Sat 28 Feb, worked to make up for Spring Festival.
    assert WT.add(datetime(2026, 2, 27, 10, 0), Duration(amount=1, unit="working_days")) == datetime(2026, 2, 28, 10, 0)


# The 2027 notice is not in the installed library (it ends with 2026), so a district
# that has it types its days into the rule file. The days below are this test's
# schedule in the notice's usual shape: New Year's Eve to the 8th day off, a Sunday
# before and a Saturday after worked.
SCHEDULE_2027 = """settings {
  year 2027 {
    holidays 2027-01-01, 2027-02-05..2027-02-13
    workdays 2027-01-31, 2027-02-20
  }
}"""


def test_2027_deadlines_across_spring_festival_count_the_schedule_the_rule_file_gives():
    ruleset = ruleset_with(SCHEDULE_2027)
    time = for_calendar(ruleset.settings.calendar, ruleset.settings.timezone)
    # Thu 4 Feb 2027 + 3 working days: 5..13 Feb off, Sun 14 off, then Mon 15, Tue 16, Wed 17.
    assert time.add(datetime(2027, 2, 4, 10, 0), DAYS) == datetime(2027, 2, 17, 10, 0)
    # Fri 19 Feb + 1 working day is the make-up Saturday, 20 Feb.
    assert time.add(datetime(2027, 2, 19, 10, 0), Duration(amount=1, unit="working_days")) == datetime(2027, 2, 20, 10, 0)
    # Sat 30 Jan + 1 working day is the make-up Sunday, 31 Jan.
    assert time.add(datetime(2027, 1, 30, 10, 0), Duration(amount=1, unit="working_days")) == datetime(2027, 1, 31, 10, 0)
    assert time.source(2027) == "ruleset" and time.provisional(datetime(2027, 2, 4), datetime(2027, 2, 17)) == ()


def test_an_override_adds_a_holiday_and_removes_one_and_a_make_up_day():
    ruleset = ruleset_with("settings { holidays 2026-11-23, 2026-10-10  workdays 2026-10-07 }")
    time = for_calendar(ruleset.settings.calendar, ruleset.settings.timezone)
    assert not time.is_workday(date(2026, 11, 23))  # a local day off added
    assert time.is_workday(date(2026, 10, 7))  # a National Day holiday the district works
    assert not time.is_workday(date(2026, 10, 10))  # a make-up Saturday the district does not work
    assert not time.is_workday(date(2026, 10, 6))  # the rest of the notice still holds
    # Fri 20 Nov + 1 working day skips the weekend and the added Monday: Tue 24 Nov.
    assert time.add(datetime(2026, 11, 20, 10, 0), Duration(amount=1, unit="working_days")) == datetime(2026, 11, 24, 10, 0)


def test_an_extending_file_moves_a_base_holiday_to_the_workdays():
    base = "settings { holidays 2026-11-23 }"
    ruleset = ruleset_with(base + "\nsettings { workdays 2026-11-23 }")
    assert date(2026, 11, 23) in ruleset.settings.calendar.workdays
    assert date(2026, 11, 23) not in ruleset.settings.calendar.holidays


def test_an_unannounced_year_is_estimated_and_its_deadlines_marked_provisional():
    ruleset = ruleset_with("")
    time = for_calendar(ruleset.settings.calendar, ruleset.settings.timezone)
    assert time.source(2027) == "provisional"
    # Statutory Spring Festival days of 2027 (the eve and the first three days, Sat/Sun moved on) are
    # off even without a notice: never counted as plain weekdays.
    assert not time.is_workday(date(2027, 2, 8)) and not time.is_workday(date(2027, 2, 5))
    item = next(iter(ruleset.items))
    decision = Router(ruleset).route(CaseView("c", item, (), "巡查", datetime(2027, 2, 3, 9, 0, tzinfo=time.zone)))
    assert decision.provisional == (2027,)
    assert any("PROVISIONAL deadline: 2027 has no official holiday schedule" in line for line in decision.trace)
    before = Router(ruleset).route(CaseView("c", item, (), "巡查", datetime(2026, 11, 3, 9, 0, tzinfo=time.zone)))
    assert before.provisional == ()


def test_rules_check_warns_about_an_unannounced_year_within_reach(tmp_path):
    path = tmp_path / "d.wg"
    path.write_text(BASIC, encoding="utf-8")
    (warning,) = dsl.check([path], today=date(2026, 12, 7))
    assert not warning.is_error and "2027 has no official holiday schedule yet" in warning.message
    assert "year 2027 {" in warning.hint
    assert dsl.check([path], today=date(2026, 6, 1)) == []  # a quarter from June stays in 2026
    path.write_text(BASIC + "\n" + SCHEDULE_2027 + "\n", encoding="utf-8")
    assert dsl.check([path], today=date(2026, 12, 7)) == []
