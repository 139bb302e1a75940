"""A sync session end to end through bytes: push, apply, reply, ack."""
from __future__ import annotations

from sqlalchemy import select, text


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
        assert conn.execute(text("SELECT fields FROM household")).scalar() == '{"pets": 3}'
