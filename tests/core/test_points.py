"""The volunteer point ledger: earn, redeem, never negative, every entry with a reason."""
from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wangge.core.errors import PointsError
from wangge.core.points import balance, earn, redeem
from support.district import district

RULES = district()
NOW = datetime(2026, 10, 12, 10, 0)


def test_five_activities_buy_a_toy_set():
    ledger = [earn(RULES, [], "张大妈", "活动", NOW) for _ in range(5)]
    toy = redeem(RULES, ledger, "张大妈", "玩具", NOW)
    ledger.append(toy)
    assert toy.delta == -5 and "玩具套装" in toy.reason and balance(ledger, "张大妈") == 0


def test_redeeming_beyond_the_balance_is_refused():
    ledger = [earn(RULES, [], "李伯", "活动", NOW, times=4)]
    with pytest.raises(PointsError) as raised:
        redeem(RULES, ledger, "李伯", "玩具", NOW)
    assert str(raised.value) == "resident 李伯 cannot redeem 玩具套装: it costs 5 points, the balance is 4"


def test_unknown_rules_and_rewards_name_the_valid_ones():
    with pytest.raises(PointsError, match="expected one of 活动"):
        earn(RULES, [], "x", "跑步", NOW)
    with pytest.raises(PointsError, match="expected one of 玩具"):
        redeem(RULES, [], "x", "电视", NOW)


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 3)), max_size=40))
def test_the_balance_never_goes_negative(actions):
    ledger = []
    for is_earn, times in actions:
        try:
            entry = earn(RULES, ledger, "r", "活动", NOW, times) if is_earn else redeem(RULES, ledger, "r", "玩具", NOW)
        except PointsError:
            continue
        ledger.append(entry)
        assert balance(ledger, "r") >= 0 and entry.reason
