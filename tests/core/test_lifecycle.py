"""The lifecycle, exhaustively: every state by every move by every role."""
from __future__ import annotations

import itertools

import pytest

from wangge.core.errors import TransitionError
from wangge.core.lifecycle import Lifecycle, machine
from support.district import district

RULES = district()
MACHINE = Lifecycle.of(RULES)
ROLES = [r.code for r in RULES.roles] + ["陌生人"]
EVERYTHING = ("photo", "onsite_confirmation", "callback")


@pytest.mark.parametrize(
    "state, move, role",
    list(itertools.product(MACHINE.states, MACHINE.moves, ROLES)),
)
def test_every_state_move_and_role(state, move, role):
    rule = MACHINE.moves[move]
    legal = state in rule.sources and role in rule.roles
    if legal:
        event = MACHINE.move(state, move, role, evidence=EVERYTHING)
        assert (event.from_status, event.to_status, event.role) == (state, rule.target, role)
    else:
        with pytest.raises(TransitionError) as raised:
            MACHINE.move(state, move, role, evidence=EVERYTHING)
        message = str(raised.value)
        assert state in message and move in message and role in message
        refused = raised.value  # the same facts, for code that acts on a refusal
        assert (refused.state, refused.move, refused.role) == (state, move, role)
        assert refused.reason == ("not_from_state" if state not in rule.sources else "wrong_role")


def test_a_closure_needing_on_site_confirmation_cannot_skip_it():
    with pytest.raises(TransitionError) as raised:
        MACHINE.move("审核", "办结", "网格员", evidence=["callback"])
    assert str(raised.value) == (
        "move 办结 from state 审核 by 网格员 needs the reporter's on-site confirmation; it was not given"
    )
    assert (raised.value.reason, raised.value.missing) == ("missing_evidence", ("onsite_confirmation",))
    assert MACHINE.move("审核", "办结", "网格员", evidence=["callback", "onsite_confirmation"]).to_status == "结案"


def test_an_office_move_made_on_a_tablet_is_a_proposal():
    assert MACHINE.move("立案", "派遣", "指挥中心", on_device=True).proposal
    assert not MACHINE.move("立案", "派遣", "指挥中心").proposal


def test_unknown_states_and_moves_are_refused_by_name():
    with pytest.raises(TransitionError, match="role 网格员 cannot make move 上报 from unknown state '归档'") as state:
        MACHINE.move("归档", "上报", "网格员")
    with pytest.raises(TransitionError, match="role 网格员 cannot make unknown move '撤销' from state 发现") as move:
        MACHINE.move("发现", "撤销", "网格员")
    assert (state.value.reason, move.value.reason) == ("unknown_state", "unknown_move")


def test_a_final_state_offers_no_moves():
    with pytest.raises(TransitionError, match="moves from 评估: none"):
        MACHINE.move("评估", "上报", "网格员")
    assert MACHINE.allowed("评估", "网格员") == {}


def test_replay_skips_stale_and_proposed_moves():
    report = MACHINE.move("发现", "上报", "网格员", evidence=["photo"])
    dispatch_proposal = MACHINE.move("立案", "派遣", "指挥中心", on_device=True)
    assert MACHINE.status_after([report, dispatch_proposal]) == "立案"
    assert MACHINE.status_after([report, MACHINE.move("立案", "派遣", "指挥中心")]) == "派遣"
    assert MACHINE.status_after([report, report]) == "立案"  # the second is stale


def test_every_state_is_reachable_in_the_sample_district():
    assert MACHINE.reachable() == set(MACHINE.states)


@pytest.mark.parametrize("state, move", list(itertools.product(MACHINE.states, MACHINE.moves)))
def test_the_table_answers_merge_replays_without_raising(state, move):
    # sync/merge.replay asks this question for every recorded move.
    legal = state in MACHINE.moves[move].sources
    assert (machine(RULES.lifecycle).transition(state, move) is not None) == legal


def test_one_machine_per_lifecycle():
    assert machine(RULES.lifecycle) is machine(RULES.lifecycle)
