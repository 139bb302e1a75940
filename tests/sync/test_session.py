"""A sync session end to end through bytes: push, apply, reply, ack."""
from __future__ import annotations

import json

from sqlalchemy import text


def rows(s, table, columns="id"):
    with s.read() as conn:
        return sorted(conn.execute(text(f"SELECT {columns} FROM {table}")).all())


def test_first_sync_brings_the_grid_tree_and_round_trips_edits(net):
    a = net.add_tablet("a", grids=("g1",))
    b = net.add_tablet("b", grids=("g1", "g2"))
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        hid = rec.insert("household", {"grid_id": "g1", "address": "1-101", "pets": 2})
    net.sync(a)
    net.sync(b)
    assert rows(b.store, "household", "id, address") == [(hid, "1-101")]
    with b.store.write(actor=b.worker) as rec:
        rec.update("household", hid, {"pets": 3})
    net.sync(b)
    net.sync(a)
    with a.store.read() as conn:
        assert json.loads(conn.execute(text("SELECT fields FROM household")).scalar()) == {"pets": 3}


def test_a_tablet_that_downloaded_afresh_keeps_syncing_its_new_edits(net):
    """After a full download the tablet's log is shorter, but its next edit is not taken for a clone's."""
    a = net.add_tablet("a", grids=("g1", "g2"))
    b = net.add_tablet("b", grids=("g2",))
    net.sync(a)
    net.sync(b)
    with b.store.write(actor=b.worker) as rec:
        rec.insert_many("household", [{"grid_id": "g2", "address": f"2-{n}"} for n in range(30)])
    net.sync(b)
    net.sync(a)  # a's log now holds b's 30 inserts
    with net.master_store.write(actor="office") as rec:
        rec.update("assignment", "a-a-g2", {"active": False})
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "1-1"})
    assert net.sync(a).evicted == 30
    with a.store.write() as rec:  # as after a checksum mismatch: the next sync downloads afresh
        rec.conn.execute(text("UPDATE store_meta SET value = '1' WHERE key = 'sync.repair'"))
    assert net.sync(a).reset
    with a.store.write(actor=a.worker) as rec:
        hid = rec.insert("household", {"grid_id": "g1", "address": "1-2"})
    result = net.sync(a)
    assert result.acked == 1 and not result.again  # only the new edit: nothing downloaded goes back up
    with net.master_store.read() as conn:
        assert conn.execute(text("SELECT address FROM household WHERE id = :i"), {"i": hid}).scalar() == "1-2"
    assert net.sync(a).acked == 0  # and a sync with nothing new sends nothing back up
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", hid, {"address": "1-3"})
    assert net.sync(a).acked == 1
