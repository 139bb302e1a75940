"""The critical-field review cannot be skipped by the stamp an edit says its worker saw: a stamp newer
than the edit itself is refused, and one the master never held queues the edit for review."""
from __future__ import annotations

import pytest
from support.pushes import dump, signed_push, tablet_with_household, wire_op

from wangge.core.errors import SyncError
from wangge.sync.master import exchange as master_exchange

from .test_session import rows


@pytest.fixture
def edited_at_the_office(any_net):
    """Tablet a's household, its address then changed at the office (the tablet has not synced since)."""
    net = any_net
    a, house = tablet_with_household(net)
    with net.master_store.write(actor="office") as rec:
        rec.update("household", house, {"address": "1-1 (office)"})
    return net, a, house


def critical(net) -> list[dict]:
    return [c for c in master_exchange.conflicts(net.master_store) if c["kind"] == "critical"]


def test_a_seen_stamp_newer_than_the_edit_is_refused(edited_at_the_office):
    net, a, house = edited_at_the_office
    op = wire_op(net, a, "household", "update", {"address": "1-1 (forged)"}, entity_id=house)
    op[8] = {"address": [op[3] + 10**9, "master"]}
    before = dump(net.master_store)
    with pytest.raises(SyncError, match=rf"op {op[0]}: seen stamp 'address' \(item 8\) is {op[3] + 10**9}, newer "
                                        rf"than the op's own stamp {op[3]}"):
        net.master.exchange(signed_push(net, a, [op]))
    assert dump(net.master_store) == before and critical(net) == []


def test_a_seen_stamp_the_master_never_held_queues_the_edit_for_review(edited_at_the_office):
    net, a, house = edited_at_the_office
    op = wire_op(net, a, "household", "update", {"address": "1-1 (forged)"}, entity_id=house)
    op[8] = {"address": [op[3] - 1, a.store.device_id]}  # plausible, older than the edit, but no value's
    net.master.exchange(signed_push(net, a, [op]))
    (clash,) = critical(net)
    assert (clash["entity_id"], clash["field"], clash["kept"], clash["lost"]) == (
        house, "address", "1-1 (forged)", "1-1 (office)")


def test_an_edit_made_knowing_the_office_value_merges_without_review(edited_at_the_office):
    net, a, house = edited_at_the_office
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", house, {"address": "1-1 (tablet)"})
    net.sync(a)
    assert critical(net) == [] and rows(net.master_store, "household", "address") == [("1-1 (tablet)",)]


def test_an_edit_after_ones_own_edit_held_for_a_clock_ahead_is_not_refused(net):
    from .test_quarantine import _jump_to_2036

    a, house = tablet_with_household(net)
    _jump_to_2036(a)
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", house, {"address": "2036"})
    reply, summary = net.master.exchange(a.sync.make_push())
    assert "1 quarantined" in summary
    a.sync.accept_reply(reply)  # the reply sets the tablet's clock back; its repair round is still to come
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", house, {"address": "1-1, 2 楼"})
    net.sync(a)  # what the worker saw before the held edit is what the master holds: no refusal, no review
    assert rows(net.master_store, "household", "address") == [("1-1, 2 楼",)] and critical(net) == []
