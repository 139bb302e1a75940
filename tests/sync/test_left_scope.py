"""What changed at the office while a tablet was away never wedges it: ops for rows that left the
worker's grids meanwhile are held for review, the rest applies, and the tablet hears of the change."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from wangge.core.errors import SyncError
from wangge.sync import enrollment
from wangge.sync.master import exchange as master_exchange

from .test_session import rows


def _synced_household(net):
    """A tablet in g1 whose household there has reached the master."""
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        house = rec.insert("household", {"grid_id": "g1", "address": "1-1"})
    net.sync(a)
    return a, house


def _held(net) -> list[dict]:
    return [c for c in master_exchange.conflicts(net.master_store) if c["kind"] == "quarantine"]


def test_a_household_recorded_after_the_worker_was_reassigned_is_held_and_the_tablet_moves_on(net):
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:  # offline, still in g1 as far as the tablet knows
        kept = rec.insert("household", {"grid_id": "g1", "address": "1-1"})
    with net.master_store.write(actor="office") as rec:
        rec.update("assignment", "a-a-g1", {"active": False})
        rec.insert("assignment", {"id": "a-a-g2", "worker_id": a.worker, "grid_id": "g2"})
    net.sync(a)  # not refused: the insert waits at the office, the eviction reaches the tablet
    (held,) = _held(net)
    assert held["entity_id"] == kept and "left them since the tablet last synced" in held["note"]
    assert rows(net.master_store, "household") == rows(a.store, "household") == []


def test_edits_of_a_household_the_office_moved_away_are_held(net):
    a, house = _synced_household(net)
    with net.master_store.write(actor="office") as rec:  # a boundary change at the office
        rec.update("household", house, {"grid_id": "g2"})
    with a.store.write(actor=a.worker) as rec:  # offline: the tablet does not know yet
        rec.update("household", house, {"pets": 2})
        rec.insert("visit", {"household_id": house, "grid_id": "g1", "worker_id": a.worker, "minutes": 15})
    net.sync(a)
    assert sorted(c["entity"] for c in _held(net)) == ["household", "visit"]
    assert rows(a.store, "household") == rows(a.store, "visit") == []  # evicted with its grid
    with net.master_store.read() as conn:
        assert conn.execute(text("SELECT fields FROM household")).scalar().replace(" ", "") == "{}"


def test_a_forged_op_for_a_grid_the_tablet_never_had_is_still_refused(net):
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g2", "address": "2-1"})
    with pytest.raises(SyncError, match="grid g2 is not among the worker's grids"):
        net.master.exchange(a.sync.make_push())


def test_a_resident_moved_into_a_household_made_after_it_reaches_the_master(net):
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:  # a household splits, offline
        first = rec.insert("household", {"grid_id": "g1", "address": "1-1"})
        person = rec.insert("resident", {"household_id": first, "grid_id": "g1", "name": "王芳"})
        second = rec.insert("household", {"grid_id": "g1", "address": "1-2"})
        rec.update("resident", person, {"household_id": second})
    net.sync(a)
    assert rows(net.master_store, "resident", "id, household_id") == [(person, second)]


def test_a_bundle_resent_after_a_lost_reply_with_a_held_op_is_no_clone(net):
    from .test_quarantine import _jump_to_2036

    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    _jump_to_2036(a)
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "2036"})
    net.master.exchange(a.sync.make_push())  # held; the reply is lost on the way back
    reply, summary = net.master.exchange(a.sync.make_push())  # the same ops in a new bundle
    assert "1 already known" in summary
    a.sync.accept_reply(reply)
    assert len(_held(net)) == 1


def test_an_edit_stamped_below_its_insert_after_the_clock_was_set_back_still_travels(net):
    from .test_quarantine import _jump_to_2036

    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    push = a.sync.make_push()  # on its way to the office by USB stick
    _jump_to_2036(a)
    with a.store.write(actor=a.worker) as rec:
        house = rec.insert("household", {"grid_id": "g1", "address": "2036"})
    a.sync.accept_reply(net.master.exchange(push)[0])  # the reply sets the clock back
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", house, {"pets": 1})  # stamped below the household's own insert
    reply, summary = net.master.exchange(a.sync.make_push())  # well-formed: not folded into the insert
    assert "2 quarantined" in summary
    a.sync.accept_reply(reply)


def test_an_old_bundle_imported_again_after_revocation_is_not_reported_as_new(net):
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "1-1"})
    push = a.sync.make_push()
    a.sync.accept_reply(net.master.exchange(push)[0])
    with net.master_store.write(actor="office") as rec:
        enrollment.revoke(rec, a.store.device_id)
    with pytest.raises(SyncError, match="an old bundle, imported before the revocation: not kept again"):
        net.master.exchange(push)
    assert master_exchange.conflicts(net.master_store) == []


def _exchange(net, tablet):
    reply, summary = net.master.exchange(tablet.sync.make_push())
    return tablet.sync.accept_reply(reply), summary


def test_edits_made_while_the_push_travels_of_a_household_moved_away_are_held(net):
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        house = rec.insert("household", {"grid_id": "g1", "address": "1-1"})
        case = rec.insert("case", {"item_code": "x", "grid_id": "g1", "household_id": house})
    net.sync(a)
    push = a.sync.make_push()
    with net.master_store.write(actor="office") as rec:  # the case goes with its household
        rec.update("household", house, {"grid_id": "g2"})
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", house, {"pets": 3})
        rec.insert("case_event", {"case_id": case, "move": "立案", "role": "网格员"})
    result = a.sync.accept_reply(net.master.exchange(push)[0])
    assert result.evicted == 3 and not result.again  # the household, its case and the move, kept to be pushed
    net.sync(a)
    assert sorted(c["entity"] for c in _held(net)) == ["case_event", "household"]
    assert rows(a.store, "household") == rows(a.store, "cases") == rows(a.store, "case_event") == []


def test_an_edit_after_a_lost_reply_that_carried_the_reassignment_is_held(net):
    a, house = _synced_household(net)
    with net.master_store.write(actor="office") as rec:
        rec.update("assignment", "a-a-g1", {"active": False})
        rec.insert("assignment", {"id": "a-a-g2", "worker_id": a.worker, "grid_id": "g2"})
    net.master.exchange(a.sync.make_push())  # its reply is lost
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", house, {"pets": 3})
    net.sync(a)
    assert [c["entity_id"] for c in _held(net)] == [house]
    assert rows(a.store, "household") == []


def test_an_edit_of_a_row_moved_between_grids_the_tablet_never_had_is_refused(net):
    a, b = net.add_tablet("a", grids=("g1",)), net.add_tablet("b", grids=("g2",))
    net.sync(a), net.sync(b)
    with b.store.write(actor=b.worker) as rec:
        house = rec.insert("household", {"grid_id": "g2", "address": "2-1"})
    net.sync(b)
    with net.master_store.write(actor="office") as rec:
        rec.insert("grid_cell", {"id": "g9", "code": "01.09", "level": "grid", "name": "g9", "upper_id": "root"})
        rec.update("household", house, {"grid_id": "g9"})
    with a.store.write(actor=a.worker) as rec:  # forged: the tablet never held the row
        rec.conn.exec_driver_sql(
            "INSERT INTO op (op_id, entity, entity_id, hlc, actor, device, kind, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ("forged-1", "household", house, rec.stamp(), a.worker, a.store.device_id, "update", '{"pets": 1}'))
    with pytest.raises(SyncError, match="grid g9 is not among the worker's grids"):
        net.master.exchange(a.sync.make_push())


def test_a_household_the_office_moved_into_the_grid_arrives_whole_with_what_the_office_added(net):
    a, b = net.add_tablet("a", grids=("g1",)), net.add_tablet("b", grids=("g2",))
    net.sync(a), net.sync(b)
    with b.store.write(actor=b.worker) as rec:
        house = rec.insert("household", {"grid_id": "g2", "address": "2-1"})
    net.sync(b), net.sync(a)
    with net.master_store.write(actor="office") as rec:
        rec.update("household", house, {"grid_id": "g1"})
        rec.insert("resident", {"household_id": house, "grid_id": "g1", "name": "李明"})
    result, _ = _exchange(net, a)  # one round: no repair needed, and no missing parent
    assert not result.again
    assert rows(a.store, "household", "id, address") == [(house, "2-1")]
    assert rows(a.store, "resident", "name") == [("李明",)]


def test_a_drifted_op_in_another_devices_name_is_refused_not_held(net):
    from wangge.core.hlc import pack
    from wangge.core.ids import uuid7
    from wangge.sync import bundle
    from wangge.sync.log.ops import WireOp

    a, b = net.add_tablet("a", grids=("g1",)), net.add_tablet("b", grids=("g2",))
    net.sync(a), net.sync(b)
    planted = WireOp(uuid7(), "household", uuid7(), pack(net.clock() + 10 * 365 * 86_400_000), b.worker,
                     b.store.device_id, "insert", {"grid_id": "g2", "address": "planted"}, None, 1)
    body = {"ops": [planted.to_wire()], "cursor": 0, "repair": False, "ruleset": net.ruleset.version}
    with a.store.read() as conn:
        seq = int(conn.execute(text("SELECT value FROM store_meta WHERE key = 'sync.seq'")).scalar())
    data = bundle.build("push", uuid7(), a.store.device_id, "master", seq + 1, body, a.keys, net.master_keys.public)
    with pytest.raises(SyncError, match="recorded on device dev-b; a device may only push its own ops"):
        net.master.exchange(data)
    assert _held(net) == []


def test_a_tablet_cannot_fill_the_master_with_held_ops(net, monkeypatch):
    from wangge.sync.master import quarantine

    from .test_quarantine import _jump_to_2036

    monkeypatch.setattr(quarantine, "HOLD_MAX", 2)
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    _jump_to_2036(a)
    with a.store.write(actor=a.worker) as rec:
        rec.insert_many("household", [{"grid_id": "g1", "address": f"2036-{n}"} for n in range(3)])
    with pytest.raises(SyncError, match="wait in quarantine already \\(at most 2 are kept\\)"):
        net.master.exchange(a.sync.make_push())
    assert _held(net) == []
