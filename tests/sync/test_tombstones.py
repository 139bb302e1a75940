"""Tombstone collection on the master, and a tablet coming back after a long absence."""
from __future__ import annotations

import itertools

from click.testing import CliRunner
from sqlalchemy import text

from wangge.cli import cli
from wangge.sync import enrollment
from wangge.sync.master import tombstones

DAY_MS = 24 * 3600 * 1000


def one(s, sql, **params):
    with s.read() as conn:
        return conn.execute(text(sql), params).all()


def _household(tablet, address="1-101"):
    with tablet.store.write(actor=tablet.worker) as rec:
        return rec.insert("household", {"grid_id": "g1", "address": address})


def test_a_deleted_row_is_collected_only_once_every_active_tablet_has_seen_the_deletion(net):
    a, b, c = net.add_tablet("a"), net.add_tablet("b"), net.add_tablet("c")
    for t in (a, b, c):
        net.sync(t)
    hid = _household(a)
    net.sync(a), net.sync(b)
    with a.store.write(actor=a.worker) as rec:
        rec.delete("household", hid)
    net.sync(a)
    with net.master_store.write(actor="office") as rec:  # c's cursor is the lowest, but c is revoked
        enrollment.revoke(rec, c.store.device_id)
    net.sync(b)  # b receives the deletion; the master learns so from b's next push
    first = tombstones.collect(net.master_store)
    assert (first.removed, first.kept) == (0, 1)
    assert one(net.master_store, "SELECT deleted IS NOT NULL FROM household") == [(1,)]
    net.sync(a), net.sync(b)  # each acknowledges a cursor past the deletion
    second = tombstones.collect(net.master_store)
    assert (second.removed, second.kept) == (1, 0)
    assert one(net.master_store, "SELECT COUNT(*) FROM household") == [(0,)]
    assert one(net.master_store, "SELECT COUNT(*) FROM op WHERE entity_id = :h", h=hid) == [(0,)]
    assert one(net.master_store, "SELECT entity FROM sync_collected WHERE entity_id = :h", h=hid) == [("household",)]
    net.sync(a), net.sync(b)  # the tablets still agree with the master, tombstone or not


def test_a_tablet_back_from_a_long_absence_sends_its_work_and_downloads_afresh(net):
    a, b = net.add_tablet("a"), net.add_tablet("b")
    net.sync(a), net.sync(b)
    gone, stays = _household(a, "1-101"), _household(a, "1-102")
    net.sync(a), net.sync(b)
    with b.store.write(actor=b.worker) as rec:  # b goes on a long patrol, offline
        rec.update("household", gone, {"pets": 2})
        rec.update("household", stays, {"pets": 3})
        new = rec.insert("household", {"grid_id": "g1", "address": "1-103"})
    with a.store.write(actor=a.worker) as rec:
        rec.delete("household", gone)
    net.clock.ticks = itertools.count(next(net.clock.ticks) + 40 * DAY_MS)  # forty days later
    net.sync(a), net.sync(a)
    done = tombstones.collect(net.master_store, absent_after_days=30)
    assert done.removed == 1 and done.absent == (b.store.device_id,)

    result = net.sync(b)  # checksums must agree at the end, or this raises
    assert result.reset and [reason for _, reason in result.quarantined] == [
        f"household {gone} was deleted and its tombstone collected at the master: the edit is kept here, not applied"]
    master = dict(one(net.master_store, "SELECT id, fields FROM household"))
    assert set(master) == {stays, new}  # the deletion stands; b's other work arrived
    assert '"pets": 3' in master[stays] or '"pets":3' in master[stays]
    assert {r[0] for r in one(b.store, "SELECT id FROM household")} == {stays, new}


def test_the_office_collects_from_the_command_line(net, tmp_path):
    a = net.add_tablet("a")
    net.sync(a)
    hid = _household(a)
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        rec.delete("household", hid)
    net.sync(a), net.sync(a)
    net.master_store.close()
    result = CliRunner().invoke(cli, ["tombstones", "collect", str(tmp_path / "master.db")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("collected 1 deleted rows below log position ")
    refused = CliRunner().invoke(cli, ["tombstones", "collect", str(tmp_path / "a.db")])
    assert refused.exit_code == 2 and "tombstones are collected on the master only" in refused.output
