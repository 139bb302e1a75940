"""The escalation sweep over random clocks: the path of sweeps does not matter, only `now`."""
from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from wangge.core.escalation import escalate
from wangge.core.routing import CaseView, Router
from support.district import district

ROUTER = Router(district())
GRIDS = (("街道", "S1"), ("社区", "S1.C2"), ("网格", "S1.C2.G7"))
OPENED = datetime(2026, 9, 28, 9, 30)  # the Monday before National Day: holidays inside the clock
RANK = {"街道": 0, "社区": 1, "网格": 2}


def cases(severities):
    return [CaseView(id=f"c{i}", item="0201", grids=GRIDS, channel="巡查", opened_at=OPENED, severity=s)
            for i, s in enumerate(severities)]


@settings(max_examples=60, deadline=None)
@given(
    severities=st.lists(st.sampled_from(["一般", "重大", "琐事"]), min_size=1, max_size=4),
    minutes=st.lists(st.integers(min_value=0, max_value=60 * 24 * 40), min_size=1, max_size=6),
)
def test_many_sweeps_end_where_one_sweep_at_the_last_clock_ends(severities, minutes):
    clocks = sorted(OPENED + timedelta(minutes=m) for m in minutes)
    stepwise, reasons = cases(severities), []
    for now in clocks:
        sweep = escalate(ROUTER, stepwise, now)
        stepwise, reasons = list(sweep.cases), reasons + list(sweep.escalations)
    once = escalate(ROUTER, cases(severities), clocks[-1])
    assert stepwise == list(once.cases)
    # Every move is recorded once with its reason, whether it took one sweep or several.
    assert sorted((e.case, e.to_step) for e in reasons) == sorted((e.case, e.to_step) for e in once.escalations)
    assert all(e.reason.startswith("overdue at ") for e in reasons)
    for view in once.cases:
        decision = ROUTER.route(view)
        assert RANK[decision.chain[view.step].level] >= RANK[decision.ceiling]


def test_nothing_moves_before_the_first_deadline_even_across_a_holiday():
    # 2 working days from Mon 28 Sep 09:30 ends Wed 30 Sep 09:30; National Day does not stretch it.
    before = escalate(ROUTER, cases(["重大"]), datetime(2026, 9, 30, 9, 30))
    assert before.escalations == ()
    after = escalate(ROUTER, cases(["重大"]), datetime(2026, 9, 30, 9, 31))
    assert [e.level for e in after.escalations] == ["社区"]
