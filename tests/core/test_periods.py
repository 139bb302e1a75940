"""Scoring by day, week, month, quarter, half year and year: each formula scores in its own period."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from wangge import dsl
from wangge.cli import cli
from wangge.core import casework, periods, store
from wangge.core.errors import UsageError

HEAD = """ruleset p
level 网格
role 网格员 at 网格
channel 巡查
class 01 "市容" {
  item 01 "乱堆物料" { sla 发现 3 working_days }
}
lifecycle {
  state 发现 initial
  state 结案 final closed
  transition 办结: 发现 -> 结案 by 网格员
}
"""


def formula(code: str, period: str) -> str:
    return (f"formula {code} for worker role 网格员 period {period} total 100 {{\n"
            f"  indicator 结案率 closed / registered weight 100\n  tier 合格 0..100\n}}\n")


EVERY_PERIOD = HEAD + "".join(formula(c, p) for c, p in (("日考", "day"), ("周考", "week"), ("月考", "month"),
                                                         ("季考", "quarter"), ("半年考", "half_year"), ("年考", "year")))
SH = timezone(timedelta(hours=8))


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=SH)


# (reported, closed or None): A closes the day it is reported, B closes the next month, C stays open,
# D is a spring case.
CASES = [("2026-10-12", "2026-10-12"), ("2026-10-13", "2026-11-02"), ("2026-11-03", None), ("2026-03-10", "2026-03-11")]


def make_store(path, text: str) -> str:
    ruleset = dsl.loads(text)
    s = store.init(str(path), "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        grid = rec.insert("grid_cell", {"code": "G1", "level": "网格", "name": "一网格"})
        worker = rec.insert("worker", {"name": "王芳", "role": "网格员"})
        rec.insert("assignment", {"worker_id": worker, "grid_id": grid})
    for reported, closed in CASES:
        with s.write(actor=worker) as rec:
            case = casework.report_case(rec, ruleset, item="0101", grid_id=grid, channel="巡查", reporter_id=worker,
                                        at=at(reported)).case_id
            if closed:
                casework.move_case(rec, ruleset, case, "办结", role="网格员", actor_id=worker, at=at(closed))
    s.close()
    return str(path)


# closed / registered × 100 in each period, counted from CASES by the rule
# "registered: reported in the period; closed: closed in the period".
EXPECTED = [
    ("day", "2026-10-12", 1, 1, 100),  # A
    ("week", "2026-W42", 1, 2, 50),  # A, B reported 12 and 13 Oct; A closed
    ("month", "2026-10", 1, 2, 50),
    ("month", "2026/11", 1, 1, 100),  # C reported, B closed
    ("quarter", "2026-Q4", 2, 3, 66.67),  # A, B, C reported; A, B closed
    ("half_year", "2026-H2", 2, 3, 66.67),
    ("quarter", "2026-Q1", 1, 1, 100),  # D
    ("year", "2026", 3, 4, 75),
]


@pytest.mark.parametrize("kind, text, closed, registered, total", EXPECTED)
def test_each_period_kind_scores_its_own_formula_over_its_own_window(tmp_path, kind, text, closed, registered, total):
    path = make_store(tmp_path / "o.db", EVERY_PERIOD)
    s = store.open(path)
    with s.read() as conn:
        ruleset = casework.installed_ruleset(conn)
        (result,) = casework.period_scores(conn, ruleset, periods.parse(kind, text))
    s.close()
    assert result.score.formula == {"day": "日考", "week": "周考", "month": "月考", "quarter": "季考",
                                    "half_year": "半年考", "year": "年考"}[kind]
    assert (result.metrics["closed"], result.metrics["registered"], result.score.total) == (closed, registered, total)


def test_a_model_whose_only_formula_is_yearly_scores_by_year(tmp_path):
    path = make_store(tmp_path / "o.db", HEAD + formula("年考", "year"))
    out = CliRunner().invoke(cli, ["score", path, "--year", "2026"])
    assert out.exit_code == 0, out.output
    assert " 1/1 " in out.output  # the rank among the peers of the formula
    assert "Scores for 2026 (year)" in out.output and "王芳" in out.output and " 3/4 " in out.output and " 75.00 " in out.output
    monthly = CliRunner().invoke(cli, ["score", path, "--month", "2026/10"])
    assert monthly.exit_code == 0
    assert "no formula scores by month: this ruleset's formulas score by year" in monthly.output


def test_month_accepts_a_slash_and_a_bad_month_says_what_it_expects(tmp_path):
    path = make_store(tmp_path / "o.db", HEAD + formula("月考", "month"))
    assert "Scores for 2026-10 (month)" in CliRunner().invoke(cli, ["score", path, "--month", "2026/10"]).output
    bad = CliRunner().invoke(cli, ["score", path, "--month", "2026-13"])
    assert bad.exit_code != 0
    assert "--month: expected a month like 2026-10 or 2026/10, got '2026-13'" in bad.output and "%" not in bad.output
    none = CliRunner().invoke(cli, ["score", path])
    assert none.exit_code != 0 and "give exactly one of --day, --week, --month" in none.output


@pytest.mark.parametrize("kind, text, label, start, end", [
    ("month", "2026-10", "2026-10", date(2026, 10, 1), date(2026, 11, 1)),
    ("month", "2026年10月", "2026-10", date(2026, 10, 1), date(2026, 11, 1)),
    ("month", "2026/12", "2026-12", date(2026, 12, 1), date(2027, 1, 1)),
    ("quarter", "2026Q4", "2026-Q4", date(2026, 10, 1), date(2027, 1, 1)),
    ("quarter", "2026/2", "2026-Q2", date(2026, 4, 1), date(2026, 7, 1)),
    ("half_year", "2026-H1", "2026-H1", date(2026, 1, 1), date(2026, 7, 1)),
    ("year", "2027", "2027", date(2027, 1, 1), date(2028, 1, 1)),
    ("week", "2026-W01", "2026-W01", date(2025, 12, 29), date(2026, 1, 5)),
    ("day", "2026-02-28", "2026-02-28", date(2026, 2, 28), date(2026, 3, 1)),
])
def test_periods_are_read_in_the_forms_people_write(kind, text, label, start, end):
    period = periods.parse(kind, text)
    assert (period.label, period.start, period.end) == (label, start, end)


def test_a_period_is_cut_at_midnight_in_the_rulesets_zone():
    start, end = periods.parse("quarter", "2026-Q4").window("Asia/Shanghai")
    assert start.astimezone(timezone.utc) == datetime(2026, 9, 30, 16, 0, tzinfo=timezone.utc)
    assert end.astimezone(timezone.utc) == datetime(2026, 12, 31, 16, 0, tzinfo=timezone.utc)


def test_the_quarters_so_far_this_year_feed_the_tier_drop_veto():
    assert [p.label for p in periods.parse("quarter", "2026-Q3").so_far_this_year()] == ["2026-Q1", "2026-Q2", "2026-Q3"]
    assert [p.label for p in periods.parse("week", "2026-W02").so_far_this_year()] == ["2026-W01", "2026-W02"]


@pytest.mark.parametrize("kind, text", [("quarter", "2026-Q5"), ("week", "2026-W54"), ("day", "2026-02-30"),
                                        ("year", "twenty"), ("half_year", "2026-H3")])
def test_a_period_that_does_not_exist_is_refused(kind, text):
    with pytest.raises(UsageError, match=f"got '{text}'"):
        periods.parse(kind, text)
