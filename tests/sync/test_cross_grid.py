"""A tablet writes only into its own grids: not by reusing the id of another grid's row, not through a
folded insert, not through a row that belongs to one elsewhere. Each attempt is refused whole, the
master is unchanged, and the other grid's tablet goes on syncing as before. On an SQLite and a
PostgreSQL master."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from support.pushes import dump, signed_push, wire_op

from wangge.core.errors import SyncError

from .test_session import rows


@pytest.fixture
def two(any_net):
    """Tablet a in grid g1, tablet b in grid g2 with one row of every entity a tablet writes."""
    net = any_net
    a, b = net.add_tablet("a", grids=("g1",)), net.add_tablet("b", grids=("g2",))
    net.sync(a)
    net.sync(b)
    theirs = {}
    with b.store.write(actor=b.worker) as rec:
        theirs["building"] = rec.insert("building", {"grid_id": "g2", "code": "B2"})
        theirs["household"] = rec.insert("household", {"grid_id": "g2", "building_id": theirs["building"],
                                                       "address": "2-201", "head_name": "李四"})
        theirs["resident"] = rec.insert("resident", {"household_id": theirs["household"], "grid_id": "g2",
                                                     "name": "李小四"})
        theirs["case"] = rec.insert("case", {"item_code": "x", "grid_id": "g2", "household_id": theirs["household"]})
        theirs["case_event"] = rec.insert("case_event", {"case_id": theirs["case"], "move": "立案", "role": "网格员"})
        theirs["visit"] = rec.insert("visit", {"household_id": theirs["household"], "grid_id": "g2",
                                               "worker_id": b.worker, "minutes": 5})
        theirs["attachment"] = rec.insert("attachment", {"sha256": "0" * 64, "size": 1, "media_type": "image/jpeg",
                                                         "case_id": theirs["case"], "grid_id": "g2"})
        theirs["point_entry"] = rec.insert("point_entry", {"resident_id": theirs["resident"], "grid_id": "g2",
                                                           "delta": 5, "reason": "义务巡逻"})
    net.sync(b)
    return net, a, b, theirs


def refused(net, push: bytes, reason: str) -> None:
    before = dump(net.master_store)
    with pytest.raises(SyncError, match=reason):
        net.master.exchange(push)
    assert dump(net.master_store) == before


def household_of(tablet_or_store, house: str) -> list[tuple]:
    store = getattr(tablet_or_store, "store", tablet_or_store)
    with store.read() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT grid_id, address, head_name, deleted FROM household WHERE id = :id"), {"id": house})]


def test_recording_another_grids_household_id_and_editing_it_is_refused(two):
    net, a, b, theirs = two
    house = theirs["household"]
    with a.store.write(actor=a.worker) as rec:  # a's store lacks b's row: nothing stops it there
        rec.insert("household", {"id": house, "grid_id": "g1", "address": "1-101", "head_name": "张三"})
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", house, {"head_name": "王五"})
    refused(net, a.sync.make_push(), f"household {house} .*exists at the master, in grid g2")
    net.sync(b)
    assert household_of(net.master_store, house) == household_of(b, house) == [("g2", "2-201", "李四", None)]


def test_recording_another_grids_household_id_and_deleting_it_is_refused(two):
    net, a, b, theirs = two
    house = theirs["household"]
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"id": house, "grid_id": "g1", "address": "1-101"})
    with a.store.write(actor=a.worker) as rec:
        rec.delete("household", house)
    refused(net, a.sync.make_push(), f"household {house} .*exists at the master, in grid g2")
    net.sync(b)
    assert household_of(b, house) == [("g2", "2-201", "李四", None)]


def test_a_folded_insert_with_another_grids_id_and_no_id_field_is_refused(two):
    net, a, b, theirs = two
    house = theirs["household"]
    op = wire_op(net, a, "household", "insert", {"grid_id": "g1", "address": "1-999", "head_name": "王五"},
                 entity_id=house)
    later = op[3] + 1
    op.append({"grid_id": later, "address": later, "head_name": later})
    refused(net, signed_push(net, a, [op]), f"household {house} .*exists at the master, in grid g2")
    net.sync(b)
    assert household_of(b, house) == [("g2", "2-201", "李四", None)]
    assert rows(net.master_store, "resident", "grid_id") == [("g2",)]


def test_a_plain_insert_with_an_existing_id_is_refused_not_logged_as_if_applied(two):
    net, a, _, theirs = two
    house = theirs["household"]
    op = wire_op(net, a, "household", "insert", {"grid_id": "g1", "address": "1-1"}, entity_id=house)
    refused(net, signed_push(net, a, [op]), f"op {op[0]} \\(insert household {house}\\).*exists at the master")


@pytest.mark.parametrize("entity", ["building", "household", "resident", "case", "case_event", "visit",
                                    "attachment", "point_entry"])
def test_every_entity_refuses_a_new_row_under_an_id_another_grid_holds(two, entity):
    net, a, _, theirs = two
    mine = {"building": None}
    with a.store.write(actor=a.worker) as rec:
        mine["household"] = rec.insert("household", {"grid_id": "g1", "address": "1-1"})
        mine["resident"] = rec.insert("resident", {"household_id": mine["household"], "grid_id": "g1", "name": "甲"})
        mine["case"] = rec.insert("case", {"item_code": "x", "grid_id": "g1", "household_id": mine["household"]})
    net.sync(a)
    fields = {
        "building": {"grid_id": "g1", "code": "A1"},
        "household": {"grid_id": "g1", "address": "1-2"},
        "resident": {"household_id": mine["household"], "grid_id": "g1", "name": "乙"},
        "case": {"item_code": "x", "grid_id": "g1", "household_id": mine["household"]},
        "case_event": {"case_id": mine["case"], "move": "立案", "role": "网格员"},
        "visit": {"household_id": mine["household"], "grid_id": "g1", "worker_id": a.worker, "minutes": 3},
        "attachment": {"sha256": "1" * 64, "size": 2, "media_type": "image/png", "case_id": mine["case"],
                       "grid_id": "g1"},
        "point_entry": {"resident_id": mine["resident"], "grid_id": "g1", "delta": 1, "reason": "帮扶"},
    }[entity]
    kind = "append" if entity in ("case_event", "visit", "attachment", "point_entry") else "insert"
    op = wire_op(net, a, entity, kind, fields, entity_id=theirs[entity], seq=50)
    refused(net, signed_push(net, a, [op], seq=50), f"{entity} {theirs[entity]} .*exists at the master, in grid g2")


def test_an_edit_that_puts_ones_own_resident_into_another_grids_household_is_refused(two):
    net, a, _, theirs = two
    with a.store.write(actor=a.worker) as rec:
        house = rec.insert("household", {"grid_id": "g1", "address": "1-1"})
        resident = rec.insert("resident", {"household_id": house, "grid_id": "g1", "name": "甲"})
    net.sync(a)
    op = wire_op(net, a, "resident", "update", {"household_id": theirs["household"]}, entity_id=resident, seq=60)
    refused(net, signed_push(net, a, [op], seq=60),
            f"its household_id names household {theirs['household']} in grid g2, outside the worker's grids")


def test_a_new_row_moved_into_another_grid_within_the_same_bundle_is_refused(two):
    net, a, _, _ = two
    insert = wire_op(net, a, "household", "insert", {"grid_id": "g1", "address": "1-1"}, seq=70)
    move = wire_op(net, a, "household", "update", {"grid_id": "g2"}, entity_id=insert[2], seq=71)
    refused(net, signed_push(net, a, [insert, move], seq=71), "moves the row to grid g2, outside the worker's grids")


def test_a_new_row_then_edits_of_it_in_one_bundle_still_apply(two):
    net, a, _, _ = two
    insert = wire_op(net, a, "household", "insert", {"id": "h-new", "grid_id": "g1", "address": "1-1"},
                     entity_id="h-new", seq=80)
    edit = wire_op(net, a, "household", "update", {"head_name": "赵六"}, entity_id="h-new", seq=81)
    net.master.exchange(signed_push(net, a, [insert, edit], seq=81))
    assert household_of(net.master_store, "h-new") == [("g1", "1-1", "赵六", None)]


def test_a_re_sent_insert_folding_a_newer_edit_of_ones_own_row_still_merges(two):
    # A lost reply: the tablet sends its insert again with an edit folded in, under a new op id.
    net, a, _, _ = two
    insert = wire_op(net, a, "household", "insert", {"id": "h-own", "grid_id": "g1", "address": "1-1"},
                     entity_id="h-own", seq=90)
    net.master.exchange(signed_push(net, a, [insert], seq=90))
    folded = [wire_op(net, a, "household", "insert", {}, seq=91)[0]] + insert[1:9] + [91]
    folded[7] = {**insert[7], "head_name": "钱七"}
    folded.append({"head_name": insert[3] + 5})
    net.master.exchange(signed_push(net, a, [folded], seq=91))
    assert household_of(net.master_store, "h-own") == [("g1", "1-1", "钱七", None)]


def test_an_op_that_gives_a_row_another_id_is_refused(two):
    net, a, _, theirs = two
    insert = wire_op(net, a, "household", "insert", {"id": theirs["household"], "grid_id": "g1"}, seq=95)
    refused(net, signed_push(net, a, [insert], seq=95),
            f"it sets id '{theirs['household']}': an insert's id repeats the op's entity id")
    with a.store.write(actor=a.worker) as rec:
        house = rec.insert("household", {"grid_id": "g1", "address": "1-1"})
    net.sync(a)
    edit = wire_op(net, a, "household", "update", {"id": theirs["household"]}, entity_id=house, seq=96)
    refused(net, signed_push(net, a, [edit], seq=96), "a row's id never changes")
