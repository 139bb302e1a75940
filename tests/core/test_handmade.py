"""The engines on rulesets built in Python (support/handmade.py), independent of the rules language."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wangge.core.errors import TransitionError
from wangge.core.escalation import escalate
from wangge.core.lifecycle import Lifecycle
from wangge.core.routing import CaseView, Router
from wangge.core.scoring import CaseRecord, case_metrics, score
from support.handmade import jiading, teda

GRIDS = (("街道", "S1"), ("社区", "S1.C2"), ("网格", "S1.C2.G7"))
OPENED = datetime(2026, 11, 2, 9, 30)  # a Monday
TEDA, JIADING = Lifecycle.of(teda()), Lifecycle.of(jiading())
ROLES = ["网格员", "社工", "社区主任", "指挥中心", "第三方", "居委", "紧急事务小组", "路人"]
ALL_EVIDENCE = ("photo", "onsite_confirmation", "callback")


def case(item="0101", channel="巡查", severity=None):
    return CaseView(id="c1", item=item, grids=GRIDS, channel=channel, opened_at=OPENED, severity=severity)


@pytest.mark.parametrize("machine", [TEDA, JIADING], ids=["teda", "jiading"])
def test_every_state_move_and_role_of_both_lifecycles(machine):
    for state, move, role in itertools.product(machine.states, machine.moves, ROLES):
        rule = machine.moves[move]
        if state in rule.sources and role in rule.roles:
            event = machine.move(state, move, role, evidence=ALL_EVIDENCE)
            assert (event.from_status, event.move, event.to_status, event.role) == (state, move, rule.target, role)
            continue
        with pytest.raises(TransitionError) as raised:
            machine.move(state, move, role, evidence=ALL_EVIDENCE)
        # The message names the state, the move and the role, whichever guard refused.
        assert all(word in str(raised.value) for word in (state, move, role)), str(raised.value)


def test_teda_walks_from_discovery_to_evaluation_one_event_per_move():
    path = [("上报", "网格员", ["photo"]), ("派遣", "指挥中心", []), ("接单", "网格员", []), ("送审", "网格员", []),
            ("结案", "指挥中心", ["onsite_confirmation"]), ("评估", "第三方", [])]
    state, events = TEDA.initial, []
    for move, role, evidence in path:
        events.append(TEDA.move(state, move, role, evidence=evidence))
        state = events[-1].to_status
    assert [e.to_status for e in events] == ["立案", "派遣", "处置", "审核", "结案", "评估"]
    assert TEDA.status_after(events) == "评估"


def test_teda_closure_without_on_site_confirmation_is_refused():
    with pytest.raises(TransitionError, match="needs the reporter's on-site confirmation"):
        TEDA.move("审核", "结案", "指挥中心", evidence=["photo", "callback"])


def test_a_hotline_request_cannot_close_without_its_callback():
    with pytest.raises(TransitionError, match="needs a callback to the resident"):
        JIADING.move("处置", "办结", "社工", closing_requires=("callback",))
    assert JIADING.move("处置", "办结", "社工", evidence=["callback"], closing_requires=("callback",)).to_status == "办结"


ROUTER = Router(teda())


@pytest.mark.parametrize(
    "item, channel, severity, owner, clause",
    [
        ("0102", "论坛", None, "department 电信", "#1 (by item 0102)"),
        ("0101", "热线", None, "网格员 at 网格 S1.C2.G7", "#2 (by class 01)"),  # the class route comes first
        ("0201", "论坛", None, "社工 at 社区 S1.C2", "#3 (by class 02, channel 论坛)"),  # both conditions hold
        ("0201", "热线", None, "社工 at 社区 S1.C2", "#4 (by channel 热线)"),
        ("0201", "巡查", "重大", "指挥中心 at 街道 S1", "#5 (by severity 重大)"),
        ("0201", "巡查", None, "网格员 at 网格 S1.C2.G7", "#6 (by any case)"),  # a rule with no condition
    ],
)
def test_the_first_route_in_order_whose_every_condition_holds_wins(item, channel, severity, owner, clause):
    decision = ROUTER.route(case(item, channel, severity))
    assert decision.owner == owner
    assert any(clause in line for line in decision.trace), decision.trace


def test_staged_deadlines_and_the_chain_are_traced():
    decision = ROUTER.route(case("0102"))
    assert decision.stages == (("立案", datetime(2026, 11, 2, 11, 30)), ("处置", datetime(2026, 11, 5, 11, 30)))
    assert [s.level for s in decision.chain] == ["网格", "社区"] and decision.ceiling == "社区"
    assert any("SLA 立案 2 working_hours, 处置 3 working_days" in line for line in decision.trace)


def test_jiading_hotline_scores_98_6_percent_closure():
    """501 requests, 494 closed (the seed's figures); 470 of the 494 callbacks found the resident satisfied."""
    start = datetime(2026, 10, 1)
    cases = [CaseRecord(reported_at=start + timedelta(hours=i), closed_at=start + timedelta(hours=i + 3),
                        callback=True, satisfied=i < 470) for i in range(494)]
    cases += [CaseRecord(reported_at=start + timedelta(hours=600 + i)) for i in range(7)]
    metrics = case_metrics(cases, start, datetime(2026, 11, 1))
    result = score(jiading().formulas[0], "热线组", metrics)
    closure, satisfaction = result.parts
    assert round(closure.value * 100, 1) == 98.6 and round(satisfaction.value * 100, 1) == 95.1
    # 50 × 494/501 = 49.30; 50 × 470/494 = 47.57; total 96.87 falls in 奖励 (95..100).
    assert (closure.points, satisfaction.points, result.total, result.tier) == (49.3, 47.57, 96.87, "奖励")


YEAR = datetime(2026, 1, 1, tzinfo=timezone.utc)
RANK = {"街道": 0, "社区": 1, "网格": 2}


@settings(max_examples=80, deadline=None)
@given(
    opened=st.lists(st.tuples(st.integers(0, 60 * 24 * 365), st.sampled_from(["0101", "0201", "0202"]),
                              st.sampled_from([None, "一般", "重大"])), min_size=1, max_size=5),
    first=st.integers(0, 60 * 24 * 60), later=st.integers(0, 60 * 24 * 60),
)
def test_sweeps_over_the_whole_year_are_idempotent_monotone_and_capped(opened, first, later):
    views = [CaseView(id=f"c{i}", item=item, grids=GRIDS, channel="巡查", opened_at=YEAR + timedelta(minutes=m),
                      severity=severity) for i, (m, item, severity) in enumerate(opened)]
    start = min(v.opened_at for v in views)
    early, late = start + timedelta(minutes=first), start + timedelta(minutes=first + later)
    swept = escalate(ROUTER, views, early)
    assert escalate(ROUTER, swept.cases, early).escalations == ()  # idempotent at the same now
    for before, after, fresh in zip(swept.cases, escalate(ROUTER, swept.cases, late).cases,
                                    escalate(ROUTER, views, late).cases):
        assert before.step <= after.step == fresh.step  # monotone, and the path of sweeps does not matter
        chain = ROUTER.chain(after)
        assert RANK[chain[after.step].level] >= RANK[ROUTER.route(after).ceiling]  # never past the ceiling
    assert all(e.reason.startswith("overdue at ") and e.since <= late for e in swept.escalations)
