"""Merge semantics through real sessions: conflicts, stale moves, drift, reassignment, files."""
from __future__ import annotations

import re

from click.testing import CliRunner
from sqlalchemy import text

from wangge.cli import cli
from wangge.core.hlc import pack
from wangge.sync.device import exchange as device_exchange
from wangge.sync.master import exchange as master_exchange

from .test_session import rows


def test_concurrent_critical_edits_are_queued_and_stale_moves_kept(net):
    a, b = net.add_tablet("a"), net.add_tablet("b")
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        hid = rec.insert("household", {"grid_id": "g1", "address": "1-101"})
        case = rec.insert("case", {"item_code": "x", "grid_id": "g1"})
    net.sync(a), net.sync(b)
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", hid, {"address": "A"})
        rec.insert("case_event", {"case_id": case, "move": "处置", "role": "网格员"})  # not legal from 发现
    with b.store.write(actor=b.worker) as rec:
        rec.update("household", hid, {"address": "B"})
    net.sync(a), net.sync(b), net.sync(a)
    found = master_exchange.conflicts(net.master_store)
    kinds = {(c["kind"], c["field"]) for c in found}
    assert ("critical", "address") in kinds and ("stale", "status") in kinds
    note = next(c["note"] for c in found if c["kind"] == "critical")
    assert re.search(r"the value the worker saw was written at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", note), note
    assert rows(a.store, "household", "address") == rows(net.master_store, "household", "address") == [("B",)]
    assert rows(a.store, "cases", "status") == [("发现",)]


def test_a_drifted_op_is_quarantined_and_the_rest_applies(net):
    a = net.add_tablet("a")
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "ok"})
    with a.store.engine.begin() as conn:  # the tablet's clock jumps to 2036
        conn.execute(text("UPDATE store_meta SET value = :v WHERE key = 'hlc'"), {"v": str(pack(2_100_000_000_000))})
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "2036"})
    reply, summary = net.master.exchange(a.sync.make_push())
    assert "1 quarantined" in summary
    assert rows(net.master_store, "household", "address") == [("ok",)]
    assert [c["kind"] for c in master_exchange.conflicts(net.master_store)] == ["quarantine"]


def test_reassignment_evicts_the_old_grid_and_backfills_the_new(net):
    a, b = net.add_tablet("a", grids=("g1",)), net.add_tablet("b", grids=("g2",))
    net.sync(b)
    with b.store.write(actor=b.worker) as rec:
        rec.insert("household", {"grid_id": "g2", "address": "2-1"})
    net.sync(b), net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "1-1"})
    net.sync(a)
    with net.master_store.write(actor="office") as rec:
        rec.update("assignment", "a-a-g1", {"grid_id": "g2"})
    net.sync(a)
    assert rows(a.store, "household", "address") == [("2-1",)]


def test_bundle_files_round_trip_through_the_command_line(net, tmp_path):
    a = net.add_tablet("a")
    net.sync(a)
    device_exchange.trust_master(a.store, a.sync.master)
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "usb"})
    (tmp_path / "a.keys").write_bytes(a.keys.to_bytes())
    (tmp_path / "m.keys").write_bytes(net.master_keys.to_bytes())
    a_path, m_path = a.store.engine.url.database, net.master_store.engine.url.database
    push = str(tmp_path / "push.wgb")
    runner = CliRunner()
    out = runner.invoke(cli, ["bundle", "export", a_path, "--keys", str(tmp_path / "a.keys"), "--out", push])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["bundle", "import", m_path, push, "--keys", str(tmp_path / "m.keys")])
    assert out.exit_code == 0 and "1 ops applied" in out.output, out.output
    out = runner.invoke(cli, ["bundle", "import", a_path, push + ".reply", "--keys", str(tmp_path / "a.keys")])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["bundle", "import", m_path, push + ".reply", "--keys", str(tmp_path / "m.keys")])
    assert out.exit_code != 0 and "Traceback" not in out.output and "expected a push" in out.output
    assert runner.invoke(cli, ["conflicts", m_path]).output.strip() == "no conflicts"
