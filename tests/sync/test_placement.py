"""A row lives in the grid of the row it belongs to: when the office redraws a boundary, what
belongs to a moved household or building goes with it to the tablets of its new grid and leaves
those of the old one, and no tablet is left with a row whose household it cannot have."""
from __future__ import annotations

import pytest

from wangge.core.errors import StoreError
from wangge.sync.log import scope

from .test_session import rows


def _household_with_belongings(tablet, grid="g1", building=None):
    """A household with a resident, a visit with a photo, a point entry and a case with a move."""
    with tablet.store.write(actor=tablet.worker) as rec:
        house = rec.insert("household", {"grid_id": grid, "address": "1-1", "building_id": building})
        person = rec.insert("resident", {"household_id": house, "grid_id": grid, "name": "王芳"})
        visit = rec.insert("visit", {"household_id": house, "grid_id": grid, "worker_id": tablet.worker,
                                     "minutes": 10})
        rec.insert("attachment", {"sha256": "ab" * 32, "size": 3, "media_type": "image/jpeg",
                                  "visit_id": visit, "grid_id": grid})
        rec.insert("point_entry", {"resident_id": person, "grid_id": grid, "delta": 5, "reason": "巡逻"})
        case = rec.insert("case", {"number": "C-1", "item_code": "环境", "grid_id": grid, "household_id": house})
        rec.insert("case_event", {"case_id": case, "move": "立案", "role": "网格员"})
    return house


BELONGINGS = ("household", "resident", "visit", "attachment", "point_entry", "cases", "case_event")


def moved_household(net, to="g2"):
    """Tablets of g1 and g2, a household of g1 with all its belongings synced, then moved ``to``
    at the office: (the g1 tablet, the g2 tablet, the household)."""
    a, b = net.add_tablet("a", grids=("g1",)), net.add_tablet("b", grids=("g2",))
    net.sync(a), net.sync(b)
    house = _household_with_belongings(a)
    net.sync(a)
    with net.master_store.write(actor="office") as rec:  # a boundary change
        rec.update("household", house, {"grid_id": to})
    return a, b, house


def _held(store) -> dict[str, int]:
    return {table: len(rows(store, table)) for table in BELONGINGS}


def test_a_household_moved_to_another_grid_takes_everything_of_it_along(any_net):
    net = any_net
    a, b, house = moved_household(net)
    # In one exchange each: the old grid's tablet evicts it all, the new one's gets it all.
    left, came = (tablet.sync.accept_reply(net.master.exchange(tablet.sync.make_push())[0]) for tablet in (a, b))
    assert not (left.again or left.reset or came.again or came.reset)
    assert left.evicted == 7
    assert came.applied == 7 + 3  # every insert, and the moves of the household, its resident and its case
    assert _held(a.store) == dict.fromkeys(BELONGINGS, 0)
    assert _held(b.store) == _held(net.master_store) == dict.fromkeys(BELONGINGS, 1)
    # The resident and the case moved in the master's own ops; the visit and the point entry
    # keep the grid they were recorded in, which the old grid's scores count.
    assert rows(b.store, "resident", "grid_id") == rows(b.store, "cases", "grid_id") == [("g2",)]
    assert rows(b.store, "visit", "grid_id") == rows(b.store, "point_entry", "grid_id") == [("g1",)]
    with net.master_store.read() as conn:
        assert scope.checksums(conn, ["g2"]) == _checksums(b.store)


def test_a_household_moved_back_returns_whole(net):
    a, b = net.add_tablet("a", grids=("g1",)), net.add_tablet("b", grids=("g2",))
    net.sync(a), net.sync(b)
    house = _household_with_belongings(a)
    net.sync(a)
    for grid in ("g2", "g1"):
        with net.master_store.write(actor="office") as rec:
            rec.update("household", house, {"grid_id": grid})
        net.sync(a), net.sync(b)
    assert _held(a.store) == dict.fromkeys(BELONGINGS, 1)
    assert _held(b.store) == dict.fromkeys(BELONGINGS, 0)


def test_a_building_moved_takes_its_households_and_their_cases(net):
    a, b = net.add_tablet("a", grids=("g1",)), net.add_tablet("b", grids=("g2",))
    net.sync(a), net.sync(b)
    with net.master_store.write(actor="office") as rec:
        building = rec.insert("building", {"grid_id": "g1", "code": "B3", "name": "3号楼"})
    net.sync(a)
    _household_with_belongings(a, building=building)
    net.sync(a)
    with net.master_store.write(actor="office") as rec:
        rec.update("building", building, {"grid_id": "g2"})
    assert rows(net.master_store, "household", "grid_id") == rows(net.master_store, "cases", "grid_id") == [("g2",)]
    net.sync(a), net.sync(b)
    assert rows(a.store, "building") == [] and _held(a.store) == dict.fromkeys(BELONGINGS, 0)
    assert rows(b.store, "building", "grid_id") == [("g2",)] and _held(b.store) == dict.fromkeys(BELONGINGS, 1)


def test_a_worker_moving_a_household_between_their_grids_moves_its_residents_too(net):
    a, b = net.add_tablet("a", grids=("g1", "g2")), net.add_tablet("b", grids=("g2",))
    net.sync(a), net.sync(b)
    house = _household_with_belongings(a)
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", house, {"grid_id": "g2"})
    assert rows(a.store, "resident", "grid_id") == rows(a.store, "cases", "grid_id") == [("g2",)]
    net.sync(a), net.sync(b)
    assert _held(b.store) == dict.fromkeys(BELONGINGS, 1)
    assert rows(b.store, "resident", "grid_id") == [("g2",)]


def test_a_resident_added_while_the_office_moved_its_household_follows_it(net):
    a = net.add_tablet("a", grids=("g1", "g2"))
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        house = rec.insert("household", {"grid_id": "g1", "address": "1-1"})
    net.sync(a)
    with net.master_store.write(actor="office") as rec:
        rec.update("household", house, {"grid_id": "g2"})
    with a.store.write(actor=a.worker) as rec:  # offline: the tablet still has the household in g1
        rec.insert("resident", {"household_id": house, "grid_id": "g1", "name": "李明"})
    net.sync(a)
    assert rows(net.master_store, "resident", "grid_id") == rows(a.store, "resident", "grid_id") == [("g2",)]


def test_a_row_put_in_another_grid_than_its_owner_is_refused_and_nothing_written(net):
    with net.master_store.write(actor="office") as rec:
        building = rec.insert("building", {"grid_id": "g1", "code": "B3", "name": "3号楼"})
        house = rec.insert("household", {"grid_id": "g1", "address": "1-1", "building_id": building})
    before = rows(net.master_store, "op", "op_id")
    with pytest.raises(StoreError, match=f"household {house} is put in another grid than its building {building}, "
                                         f"which is in grid g1: .*expected grid_id g1, or move the building"):
        with net.master_store.write(actor="office") as rec:
            rec.update("household", house, {"grid_id": "g2"})
    with pytest.raises(StoreError, match="a resident lives in its household's grid; expected grid_id g1"):
        with net.master_store.write(actor="office") as rec:
            rec.insert("resident", {"household_id": house, "grid_id": "g2", "name": "王芳"})
    assert rows(net.master_store, "op", "op_id") == before
    assert rows(net.master_store, "household", "grid_id") == [("g1",)]


def test_a_household_moved_with_its_building_named_anew_is_no_mistake(net):
    with net.master_store.write(actor="office") as rec:
        old = rec.insert("building", {"grid_id": "g1", "code": "B3", "name": "3号楼"})
        new = rec.insert("building", {"grid_id": "g2", "code": "B5", "name": "5号楼"})
        house = rec.insert("household", {"grid_id": "g1", "address": "1-1", "building_id": old})
    with net.master_store.write(actor="office") as rec:
        rec.update("household", house, {"grid_id": "g2", "building_id": new})
    with net.master_store.write(actor="office") as rec:  # out of any building: its grid is its own
        rec.update("household", house, {"grid_id": "g3", "building_id": None})
    assert rows(net.master_store, "household", "grid_id, building_id") == [("g3", None)]


def _checksums(store):
    with store.read() as conn:
        return scope.checksums(conn, None)
