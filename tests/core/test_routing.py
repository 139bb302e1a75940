"""Routing and the escalation sweep on the sample district."""
from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from wangge.core.escalation import escalate
from wangge.core.routing import CaseView, Router
from support.district import district

ROUTER = Router(district())
GRIDS = (("街道", "S1"), ("社区", "S1.C2"), ("网格", "S1.C2.G7"))
OPENED = datetime(2026, 11, 2, 9, 30)  # a Monday


def case(item="0201", channel="巡查", severity=None, **kw):
    return CaseView(id="c1", item=item, grids=GRIDS, channel=channel, opened_at=OPENED, severity=severity, **kw)


def test_the_most_specific_route_wins_and_says_why():
    telecom = ROUTER.route(case(item="0102"))
    assert telecom.department == "电信" and telecom.owner == "department 电信"
    assert any("by item 0102" in line for line in telecom.trace)
    cover = ROUTER.route(case(item="0101"))
    assert (cover.role, cover.level, cover.grid) == ("网格员", "网格", "S1.C2.G7")
    hotline = ROUTER.route(case(item="0201", channel="热线"))
    assert (hotline.role, hotline.level, hotline.grid) == ("社工", "社区", "S1.C2")


def test_staged_deadlines_use_the_working_calendar():
    decision = ROUTER.route(case(item="0102"))
    # 2 working hours to register, then 3 working days to handle.
    assert decision.stages == (("立案", datetime(2026, 11, 2, 11, 30)), ("处置", datetime(2026, 11, 5, 11, 30)))
    assert decision.deadline == datetime(2026, 11, 5, 11, 30)


def test_small_matters_stay_in_the_community_and_big_ones_reach_the_street():
    small = ROUTER.route(case(item="0201", severity="一般"))
    assert [s.level for s in small.chain] == ["网格", "社区"] and small.ceiling == "社区"
    big = ROUTER.route(case(item="0201", severity="重大"))
    assert [s.level for s in big.chain] == ["网格", "社区", "街道"] and big.ceiling == "街道"
    trifle = ROUTER.route(case(item="0201", severity="琐事"))
    assert [s.level for s in trifle.chain] == ["网格"]


def test_an_overdue_case_moves_up_with_a_reason():
    sweep = escalate(ROUTER, [case(severity="重大")], OPENED + timedelta(days=4))
    (moved,) = sweep.escalations
    assert (moved.from_step, moved.to_step, moved.level) == (0, 1, "社区")
    assert "overdue at 网格: 2 working_days ran out at 2026-11-04 09:30 +08:00" == moved.reason


RANK = {"街道": 0, "社区": 1, "网格": 2}


@settings(max_examples=60, deadline=None)
@given(
    severity=st.sampled_from(["一般", "重大", "琐事"]),
    hours=st.lists(st.integers(min_value=0, max_value=24 * 60), min_size=1, max_size=5),
)
def test_the_sweep_is_idempotent_monotone_and_never_passes_the_ceiling(severity, hours):
    cases = [case(severity=severity)]
    ceiling = ROUTER.route(cases[0]).ceiling
    last_step = 0
    for now in sorted(OPENED + timedelta(hours=h) for h in hours):
        sweep = escalate(ROUTER, cases, now)
        again = escalate(ROUTER, sweep.cases, now)
        assert again.escalations == () and again.cases == sweep.cases
        step = sweep.cases[0].step
        assert step >= last_step
        level = ROUTER.route(sweep.cases[0]).chain[step].level
        assert RANK[level] >= RANK[ceiling]
        cases, last_step = list(sweep.cases), step


def test_closed_cases_are_left_alone():
    sweep = escalate(ROUTER, [case(status="结案")], OPENED + timedelta(days=30), closed=frozenset({"结案"}))
    assert sweep.escalations == () and sweep.cases[0].step == 0
