"""Tiers by rank among peers: the bottom N or X% of those scored by one formula in one period."""
from __future__ import annotations

from wangge import dsl
from wangge.core.scoring import ranked, score
from support.rules import diagnostics

RULES = """ruleset r
level 网格
role 网格员 at 网格
formula 月考 for worker role 网格员 total 100 {
  indicator 结案率 closed / registered weight 100
  tier 合格 60..100
  tier 不合格 0..60
  tier 标兵 top 25%
  tier 末位 bottom 1
  veto 投诉 verified_complaints >= 1 bars 标兵
}
"""
FORMULA = dsl.loads(RULES).formulas[0]


def month(closed, complaints=0):
    return {"registered": 10, "closed": closed, "verified_complaints": complaints}


def test_rank_tiers_pick_the_top_quarter_and_the_last_one():
    scores = ranked(FORMULA, [score(FORMULA, name, month(c)) for name, c in
                              (("王芳", 9), ("李明", 8), ("张丽", 8), ("赵强", 5))])
    assert [(s.subject, s.total, s.rank, s.peers, s.tier) for s in scores] == [
        ("王芳", 90, 1, 4, "标兵"),  # 25% of 4 peers, rounded up: 1
        ("李明", 80, 2, 4, "合格"),
        ("张丽", 80, 2, 4, "合格"),  # a tie shares the rank
        ("赵强", 50, 4, 4, "末位"),  # the bottom one, whatever its range tier (不合格)
    ]
    assert scores[3].trace[-1] == "rank 4 of 4: bottom 1 → tier 末位"


def test_a_veto_bars_a_rank_tier_too():
    scores = ranked(FORMULA, [score(FORMULA, "王芳", month(9, complaints=1)), score(FORMULA, "李明", month(8))])
    assert (scores[0].rank, scores[0].tier) == (1, "合格")


def test_a_rank_tier_that_can_never_hold_is_an_error():
    (found,) = diagnostics(RULES.replace("bottom 1", "bottom 0"))
    assert found.message == "tier 末位 of formula 月考: bottom 0 can never hold"
