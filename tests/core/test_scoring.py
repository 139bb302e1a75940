"""Scoring against hand-computed examples."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from wangge.core.ruleset import Formula, Indicator, Tier, Veto
from wangge.core.scoring import CaseRecord, case_metrics, score, tier_drops

MONTH = (datetime(2026, 10, 1), datetime(2026, 11, 1))


def hotline_month():
    """Jiading's hotline: 501 requests, 494 closed, every closed one called back."""
    start = MONTH[0]
    cases = [
        CaseRecord(reported_at=start + timedelta(hours=i), closed_at=start + timedelta(hours=i + 5),
                   deadline=start + timedelta(hours=i + 24), callback=True, satisfied=i % 50 != 0)
        for i in range(494)
    ]
    cases += [CaseRecord(reported_at=start + timedelta(hours=600 + i)) for i in range(7)]
    return cases


def test_jiading_hotline_closure_rate_is_98_6_percent():
    m = case_metrics(hotline_month(), *MONTH)
    assert (m["reported"], m["registered"], m["closed"], m["callbacks"]) == (501, 501, 494, 494)
    assert round(m["closed"] / m["registered"] * 100, 1) == 98.6


FORMULA = Formula(
    code="月考",
    total=100,
    indicators=(
        Indicator(code="结案率", numerator="closed", denominator="registered", weight=40, target=0.95),
        Indicator(code="按期", numerator="closed_on_time", denominator="closed", weight=20),
        Indicator(code="满意度", numerator="satisfaction", weight=40),
    ),
    tiers=(
        Tier(code="优秀", min=90, max=100),
        Tier(code="良好", min=80, max=90),
        Tier(code="合格", min=60, max=80),
        Tier(code="不合格", min=0, max=60),
    ),
    vetoes=(
        Veto(code="降档", metric="tier_drops_year", at_least=3, bars=("优秀",)),
        Veto(code="投诉", metric="verified_complaints", at_least=1, bars=("优秀",)),
    ),
)


def test_a_hand_computed_score():
    metrics = {"registered": 20, "closed": 18, "closed_on_time": 9, "satisfaction": 0.9}
    result = score(FORMULA, "王芳", metrics)
    # 结案率 0.9 / 0.95 of 40 = 37.89; 按期 0.5 of 20 = 10; 满意度 0.9 of 40 = 36.
    assert [p.points for p in result.parts] == [37.89, 10.0, 36.0]
    assert result.total == 83.89 and result.tier == "良好"


def test_satisfaction_is_worth_its_weight():
    perfect = {"registered": 10, "closed": 10, "closed_on_time": 10, "satisfaction": 1.0}
    assert score(FORMULA, "w", perfect).total == 100
    assert score(FORMULA, "w", {**perfect, "satisfaction": 0.5}).total == 80


@pytest.mark.parametrize("metric, value", [("tier_drops_year", 3), ("verified_complaints", 1)])
def test_a_veto_bars_excellent(metric, value):
    perfect = {"registered": 10, "closed": 10, "closed_on_time": 10, "satisfaction": 1.0}
    assert score(FORMULA, "w", perfect).tier == "优秀"
    barred = score(FORMULA, "w", {**perfect, metric: value})
    assert barred.tier == "良好" and barred.barred == ("优秀",)
    assert any(line.startswith(f"veto") for line in barred.trace)


def test_three_drops_in_a_year_are_counted():
    assert tier_drops(["优秀", "良好", "优秀", "合格", "合格", "不合格"], FORMULA) == 3


def _with_empty(rule: str):
    return FORMULA.model_copy(update={"indicators": tuple(
        i.model_copy(update={"if_empty": rule}) for i in FORMULA.indicators)})


NO_VERDICTS = {"registered": 10, "closed": 10, "closed_on_time": 10}  # no callback this month: satisfaction empty


def test_an_empty_indicator_not_counted_leaves_the_rest_rescaled_to_the_total():
    result = score(FORMULA, "w", NO_VERDICTS)  # not_counted is the rule when the formula says nothing
    # 结案率 1.0/0.95 caps at 40, 按期 20: 60 of the 60 counted, rescaled ×100/60 to 100.
    assert [p.points for p in result.parts] == [66.67, 33.33, 0.0]
    assert result.total == 100 and result.tier == "优秀" and result.scored
    assert result.parts[2].why == "satisfaction not measured this period: not counted"
    assert result.empty_note == "满意度 not counted (×1.67)"


def test_an_empty_indicator_can_earn_its_full_weight_or_nothing_by_rule():
    assert score(_with_empty("full"), "w", NO_VERDICTS).total == 100
    zero = score(_with_empty("zero"), "w", NO_VERDICTS)
    assert zero.total == 60 and zero.tier == "合格" and zero.parts[2].why == "satisfaction not measured this period: 0 by rule"
    assert zero.empty_note == "满意度 zero"


def test_a_period_with_nothing_at_all_is_not_scored_rather_than_given_a_tier():
    result = score(FORMULA, "w", {"registered": 0, "closed": 0, "closed_on_time": 0})
    assert not result.scored and result.tier is None
    assert result.trace[-1] == "nothing to score this period: every indicator is empty and not counted"
    assert score(_with_empty("full"), "w", {"registered": 0, "closed": 0, "closed_on_time": 0}).total == 100


def test_a_case_still_open_at_the_end_of_the_month_was_overdue_then_even_if_closed_since():
    late = CaseRecord(reported_at=datetime(2026, 10, 20), deadline=datetime(2026, 10, 25), closed_at=datetime(2026, 11, 3))
    assert case_metrics([late], *MONTH)["overdue"] == 1
    assert case_metrics([late], datetime(2026, 11, 1), datetime(2026, 12, 1))["overdue"] == 0  # closed in November
    assert case_metrics([late], datetime(2026, 11, 1), datetime(2026, 12, 1))["closed_on_time"] == 0


def test_grid_formulas_are_chosen_by_level_and_grade():
    from wangge.core.ruleset import Ruleset
    from wangge.core.scoring import formulas_for

    general = FORMULA.model_copy(update={"code": "网格", "subject": "grid"})
    by_level = general.model_copy(update={"code": "社区级", "level": "社区"})
    by_grade = general.model_copy(update={"code": "A级", "level": "社区", "grade": "A"})
    rules = Ruleset(name="r", formulas=(FORMULA, general, by_level, by_grade))
    assert [f.code for f in formulas_for(rules, "grid", level="社区", grade="A")] == ["A级", "社区级", "网格"]
    assert [f.code for f in formulas_for(rules, "grid", level="网格", grade="A")] == ["网格"]
    assert [f.code for f in formulas_for(rules, "worker")] == ["月考"]
