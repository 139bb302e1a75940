"""Placement at its edges: photos of old visits, rows given an owner in another grid, cases
naming two owners, tombstones, moves across reassignments, and what a sync costs the master."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from wangge.core.errors import StoreError
from wangge.sync.master import exchange as master_exchange
from wangge.sync.log import scope

from .test_placement import BELONGINGS, _held, _household_with_belongings, moved_household
from .test_session import rows


def _tablets(net):
    """A synced tablet of g1 and one of g2."""
    a, b = net.add_tablet("a", grids=("g1",)), net.add_tablet("b", grids=("g2",))
    net.sync(a), net.sync(b)
    return a, b


def _checksums_agree(net, tablet):
    with tablet.store.read() as conn:
        mine = scope.checksums(conn, None)
    with net.master_store.read() as conn:
        theirs = scope.checksums(conn, scope.worker_grids(conn, tablet.worker))
    return sorted(e for e in mine if mine[e] != theirs[e]) == []


def _once(net, tablet):
    """One exchange, no repair round."""
    return tablet.sync.accept_reply(net.master.exchange(tablet.sync.make_push())[0])


def _quarantined(net):
    return [c for c in master_exchange.conflicts(net.master_store) if c.get("kind") == "quarantine"]


# -- moves across absences -------------------------------------------------------------------------


def test_a_tablet_offline_across_a_move_has_its_new_records_held_and_is_not_wedged(any_net):
    """The office moves a household out of the worker's only grid; the tablet, not yet told, records a
    visit (with a photo), a point entry, a case move, a new resident and an edit. All are held for
    the office, the household and everything of it leave the tablet, and the next sync is clean."""
    net = any_net
    a, b, house = moved_household(net)
    (person,), (case,) = rows(a.store, "resident")[0], rows(a.store, "cases")[0]
    with a.store.write(actor=a.worker) as rec:
        visit = rec.insert("visit", {"household_id": house, "grid_id": "g1", "worker_id": a.worker, "minutes": 5})
        rec.insert("attachment", {"sha256": "cd" * 32, "size": 3, "media_type": "image/jpeg",
                                  "visit_id": visit, "grid_id": "g1"})
        rec.insert("point_entry", {"resident_id": person, "grid_id": "g1", "delta": 5, "reason": "巡逻"})
        rec.insert("case_event", {"case_id": case, "move": "处置", "role": "网格员"})
        rec.update("resident", person, {"phone": "123"})
        rec.insert("resident", {"household_id": house, "grid_id": "g1", "name": "李明"})
    result = _once(net, a)
    assert not (result.again or result.reset)
    assert len(result.quarantined) == 6
    assert _held(a.store) == dict.fromkeys(BELONGINGS, 0)
    assert not _once(net, a).again
    net.sync(b)
    assert _held(b.store) == _held(net.master_store) == dict.fromkeys(BELONGINGS, 1)
    assert _checksums_agree(net, a) and _checksums_agree(net, b)


def test_a_household_moved_twice_before_anyone_syncs_ends_whole_in_the_last_grid(any_net):
    net = any_net
    a, b, c = (net.add_tablet(n, grids=(g,)) for n, g in (("a", "g1"), ("b", "g2"), ("c", "g3")))
    for t in (a, b, c):
        net.sync(t)
    house = _household_with_belongings(a)
    net.sync(a)
    for grid in ("g2", "g3"):
        with net.master_store.write(actor="office") as rec:
            rec.update("household", house, {"grid_id": grid})
    left, passed, came = (_once(net, t) for t in (a, b, c))
    assert not any(r.again or r.reset for r in (left, passed, came))
    assert _held(a.store) == _held(b.store) == dict.fromkeys(BELONGINGS, 0)
    assert _held(c.store) == dict.fromkeys(BELONGINGS, 1)
    assert rows(c.store, "resident", "grid_id") == rows(c.store, "cases", "grid_id") == [("g3",)]


def test_a_worker_reassigned_while_the_household_moves_elsewhere_loses_it_and_its_visit_is_held(any_net):
    net = any_net
    a, b = net.add_tablet("a", grids=("g1",)), net.add_tablet("b", grids=("g3",))
    net.sync(a), net.sync(b)
    house = _household_with_belongings(a)
    net.sync(a)
    with net.master_store.write(actor="office") as rec:
        rec.update("assignment", "a-a-g1", {"active": False})
        rec.insert("assignment", {"id": "a-a-g2", "worker_id": a.worker, "grid_id": "g2"})
        rec.update("household", house, {"grid_id": "g3"})
    with a.store.write(actor=a.worker) as rec:
        rec.insert("visit", {"household_id": house, "grid_id": "g1", "worker_id": a.worker, "minutes": 5})
    result = net.sync(a)
    assert not result.reset and len(result.quarantined) == 1
    net.sync(b)
    assert _held(a.store) == dict.fromkeys(BELONGINGS, 0)
    assert _held(b.store) == dict.fromkeys(BELONGINGS, 1)


# -- moves at the edges ----------------------------------------------------------------------------


def test_a_photo_added_offline_to_an_old_visit_of_a_moved_household_is_held_not_refused(net):
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    house = _household_with_belongings(a)
    net.sync(a)
    with net.master_store.write(actor="office") as rec:
        rec.update("household", house, {"grid_id": "g2"})
    (visit,) = rows(a.store, "visit")[0]
    with a.store.write(actor=a.worker) as rec:
        rec.insert("attachment", {"sha256": "ef" * 32, "size": 3, "media_type": "image/jpeg",
                                  "visit_id": visit, "grid_id": "g1"})
    result = net.sync(a)  # today: Unauthorised, at this sync and every one after
    assert len(result.quarantined) == 1
    assert _held(a.store) == dict.fromkeys(BELONGINGS, 0)


def test_a_resident_moved_by_the_office_into_a_household_of_another_grid_reaches_that_grid(net):
    a, b = _tablets(net)
    house = _household_with_belongings(a)
    with net.master_store.write(actor="office") as rec:
        other = rec.insert("household", {"grid_id": "g2", "address": "2-1"})
    net.sync(a), net.sync(b)
    (person,) = rows(a.store, "resident")[0]
    with net.master_store.write(actor="office") as rec:
        rec.update("resident", person, {"household_id": other})
    assert rows(net.master_store, "resident", "grid_id") == [("g2",)]  # settle moved it
    net.sync(a)
    assert rows(a.store, "resident") == [] and rows(a.store, "point_entry") == []
    net.sync(b)  # today: FOREIGN KEY constraint failed on b, every time
    assert rows(b.store, "resident", "household_id") == [(other,)]
    assert len(rows(b.store, "point_entry")) == 1
    assert house  # the old household stays with a


def test_a_case_moved_on_a_tablet_to_a_household_of_its_other_grid_reaches_that_grid(net):
    a, b, c = (net.add_tablet(n, grids=g) for n, g in (("a", ("g1", "g2")), ("b", ("g2",)), ("c", ("g1",))))
    for t in (a, b, c):
        net.sync(t)
    _household_with_belongings(a)
    with a.store.write(actor=a.worker) as rec:
        other = rec.insert("household", {"grid_id": "g2", "address": "2-1"})
    for t in (a, b, c):
        net.sync(t)
    (case,) = rows(a.store, "cases")[0]
    with a.store.write(actor=a.worker) as rec:
        rec.update("case", case, {"household_id": other})
    assert rows(a.store, "cases", "grid_id") == [("g2",)]
    net.sync(a), net.sync(c)
    assert rows(c.store, "cases") == [] and rows(c.store, "case_event") == []
    net.sync(b)  # today: FOREIGN KEY constraint failed on b, every time
    assert rows(b.store, "cases", "household_id") == [(other,)]
    assert len(rows(b.store, "case_event")) == 1


def test_a_case_naming_a_household_and_a_building_of_different_grids_is_refused_at_the_office(net):
    a, b = _tablets(net)
    with net.master_store.write(actor="office") as rec:
        building = rec.insert("building", {"grid_id": "g2", "code": "B3", "name": "3号楼"})
        house = rec.insert("household", {"grid_id": "g1", "address": "1-1"})
    with pytest.raises(StoreError, match=f"names household {house} in grid g1 and building {building} in grid g2"):
        with net.master_store.write(actor="office") as rec:
            rec.insert("case", {"number": "C-1", "item_code": "环境", "grid_id": "g1", "household_id": house,
                                "building_id": building})
    net.sync(a), net.sync(b)
    assert rows(net.master_store, "cases") == rows(a.store, "cases") == []


def test_moving_a_building_that_a_case_names_besides_its_household_is_refused_at_the_office(net):
    a, b = _tablets(net)
    with net.master_store.write(actor="office") as rec:
        building = rec.insert("building", {"grid_id": "g1", "code": "B3", "name": "3号楼"})
        house = rec.insert("household", {"grid_id": "g1", "address": "1-1"})
        rec.insert("case", {"number": "C-1", "item_code": "环境", "grid_id": "g1", "household_id": house,
                            "building_id": building})
    net.sync(a), net.sync(b)
    with pytest.raises(StoreError, match=f"case .* names household {house} in grid g1 and building {building} "
                                         f"in grid g2"):
        with net.master_store.write(actor="office") as rec:
            rec.update("building", building, {"grid_id": "g2"})
    net.sync(a), net.sync(b)  # the move is refused at the office: nothing changed for the tablets
    assert rows(a.store, "building", "grid_id") == [("g1",)] and len(rows(a.store, "cases")) == 1
    assert rows(b.store, "building") == []


def test_the_tombstone_of_a_deleted_household_moves_with_its_building(any_net):
    net = any_net
    a, b = _tablets(net)
    with net.master_store.write(actor="office") as rec:
        building = rec.insert("building", {"grid_id": "g1", "code": "B3", "name": "3号楼"})
        house = rec.insert("household", {"grid_id": "g1", "address": "1-1", "building_id": building})
    net.sync(a)
    with net.master_store.write(actor="office") as rec:
        rec.delete("household", house)
    net.sync(a)
    with net.master_store.write(actor="office") as rec:
        rec.update("building", building, {"grid_id": "g2"})
    net.sync(a), net.sync(b)  # the tombstone goes with its building, and stays a tombstone
    assert rows(a.store, "building") == rows(a.store, "household") == []
    assert rows(b.store, "building", "grid_id") == [("g2",)]
    assert [(i, g, d is not None) for i, g, d in rows(b.store, "household", "id, grid_id, deleted")] == [
        (house, "g2", True)]


def test_moving_the_household_of_a_visit_whose_photo_is_of_another_grids_case_is_refused(net):
    a, b = _tablets(net)
    with a.store.write(actor=a.worker) as rec:
        house = rec.insert("household", {"grid_id": "g1", "address": "1-1"})
        visit = rec.insert("visit", {"household_id": house, "grid_id": "g1", "worker_id": a.worker, "minutes": 10})
        case = rec.insert("case", {"number": "C-1", "item_code": "环境", "grid_id": "g1"})
        rec.insert("attachment", {"sha256": "ab" * 32, "size": 3, "media_type": "image/jpeg",
                                  "visit_id": visit, "case_id": case, "grid_id": "g1"})
    net.sync(a)
    with pytest.raises(StoreError, match=f"belongs to case {case} in grid g1 and to a visit of household {house} "
                                         f"in grid g2: a photo lives in one grid"):
        with net.master_store.write(actor="office") as rec:
            rec.update("household", house, {"grid_id": "g2"})
    with net.master_store.write(actor="office") as rec:  # the way out: the case is about the household
        rec.update("case", case, {"household_id": house})
        rec.update("household", house, {"grid_id": "g2"})
    net.sync(b), net.sync(a)
    assert rows(b.store, "visit") == [(visit,)] and len(rows(b.store, "attachment")) == 1
    assert rows(a.store, "visit") == rows(a.store, "attachment") == []


def _statements(net, tablet) -> int:
    count = [0]

    def seen(*_args, **_kwargs):
        count[0] += 1

    event.listen(net.master_store.engine, "before_cursor_execute", seen)
    try:
        net.sync(tablet)
    finally:
        event.remove(net.master_store.engine, "before_cursor_execute", seen)
    return count[0]


def test_a_sync_costs_no_query_per_row_moved_between_other_grids(net):
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    costs = []
    for n in (5, 105):
        with net.master_store.write(actor="office") as rec:
            ids = rec.insert_many("household", [{"grid_id": "g2", "address": f"{n}-{i}"} for i in range(n)])
        net.sync(a)
        with net.master_store.write(actor="office") as rec:
            rec.update_many("household", [(i, {"grid_id": "g3"}) for i in ids])
        costs.append(_statements(net, a))
    assert costs[1] - costs[0] < 20, costs
