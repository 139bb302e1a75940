"""A tablet whose clock ran into the future: its ops wait in quarantine, its later work still merges,
and the office releases or discards what waits."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from wangge.cli import cli
from wangge.core.hlc import pack, wall_of
from wangge.sync.master import exchange as master_exchange
from wangge.sync.master import review

from .test_session import rows

YEAR_2036_MS = 2_100_000_000_000


def _jump_to_2036(tablet) -> None:
    with tablet.store.engine.begin() as conn:
        conn.execute(text("UPDATE store_meta SET value = :v WHERE key = 'hlc'"), {"v": str(pack(YEAR_2036_MS))})


def _quarantined(net) -> list[dict]:
    return [c for c in master_exchange.conflicts(net.master_store) if c["kind"] == "quarantine"]


def _clock_2036_patrol(net):
    """A tablet records a household, its clock jumps to 2036, it records another and syncs once
    (the reply asks for a repair round, which comes with the next sync)."""
    a = net.add_tablet("a")
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        ok = rec.insert("household", {"grid_id": "g1", "address": "ok"})
    net.sync(a)
    _jump_to_2036(a)
    with a.store.write(actor=a.worker) as rec:
        future = rec.insert("household", {"grid_id": "g1", "address": "2036"})
    reply, summary = net.master.exchange(a.sync.make_push())
    assert "1 quarantined" in summary
    return a, ok, future, a.sync.accept_reply(reply)


def _clock(tablet) -> int:
    with tablet.store.read() as conn:
        return int(conn.execute(text("SELECT value FROM store_meta WHERE key = 'hlc'")).scalar())


def test_the_tablet_sets_its_clock_back_and_its_later_edits_merge(net):
    a, ok, future, result = _clock_2036_patrol(net)
    (reason,) = [reason for _, reason in result.quarantined]
    assert re.fullmatch(r"stamped 2036-07-18 \d\d:\d\d:\d\d UTC, 3,[45]\d\d days ahead of the master's clock "
                        r"\(the bound is 5 min\): the device's clock is wrong", reason), reason
    assert wall_of(_clock(a)) < YEAR_2036_MS and result.clock_ahead_ms == 0
    assert rows(net.master_store, "household", "address") == [("ok",)]
    with a.store.write(actor=a.worker) as rec:  # before the repair round: the 2036 household is still here
        rec.update("household", ok, {"address": "ok, edited"})
        rec.update("household", future, {"pets": 2})
        rec.insert("visit", {"household_id": future, "grid_id": "g1", "worker_id": a.worker, "minutes": 30})
    net.sync(a)  # no refusal: the honest edit applies; what needs the held insert waits with it
    assert rows(net.master_store, "household", "address") == [("ok, edited",)]
    waiting = _quarantined(net)
    (insert,) = [c for c in waiting if c["note"].startswith("stamped ")]
    needing = [c for c in waiting if c is not insert]
    assert insert["entity_id"] == future and insert["lost"]["address"] == "2036"
    assert sorted((c["entity"], c["entity_id"] == future or c["lost"]["household_id"] == future) for c in needing) == [
        ("household", True), ("visit", True)]
    assert {c["note"] for c in needing} == {
        f"needs household {future}, whose insert (op {insert['op_id']}) waits in quarantine: release that first, "
        f"then this"}
    assert rows(a.store, "household", "address") == [("ok, edited",)]  # the repair: the tablet equals the master


def test_a_tablet_whose_own_clock_is_still_wrong_is_told_so(net):
    a, *_ = _clock_2036_patrol(net)
    a.store.now_ms = iter(range(YEAR_2036_MS, YEAR_2036_MS + 10**6)).__next__  # its wall clock says 2036 too
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "still 2036"})
    reply, summary = net.master.exchange(a.sync.make_push())
    assert "1 quarantined" in summary
    result = a.sync.accept_reply(reply)
    assert result.clock_ahead_ms > 0
    assert "clock runs" in result.summary() and "set its date and time right" in result.summary()


def test_released_ops_apply_at_the_office_in_order_and_reach_the_tablet(net, tmp_path):
    a, ok, future, _ = _clock_2036_patrol(net)
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", future, {"pets": 2})
    net.sync(a)
    edit, insert = _quarantined(net)  # oldest stamp first: the insert's says 2036
    net.master_store.close()
    runner = CliRunner()
    listed = runner.invoke(cli, ["conflicts", str(tmp_path / "master.db")])
    assert listed.exit_code == 0 and f"#{edit['id']}" in listed.output and "release|discard" in listed.output
    refused = runner.invoke(cli, ["resolve", str(tmp_path / "master.db"), str(edit["id"]), "release"])
    assert refused.exit_code == 2, refused.output
    assert f"cannot be released yet: needs household {future}, whose insert (op {insert['op_id']})" in refused.output
    said = runner.invoke(cli, ["resolve", str(tmp_path / "master.db"), str(insert["id"]), "release", "--by", "系统中心"])
    assert said.exit_code == 0 and said.output.startswith(f"conflict #{insert['id']}: insert household {future} released")
    net.reopen_master()
    review.answer(net.master_store, edit["id"], "release", by="系统中心", note="clock fixed")
    assert _quarantined(net) == []
    with net.master_store.read() as conn:
        stored = conn.execute(text("SELECT address, fields, hlc FROM household WHERE id = :i"), {"i": future}).one()
    assert stored[0] == "2036" and stored[1].replace(" ", "") == '{"pets":2}'
    assert wall_of(stored[2]) < YEAR_2036_MS  # stamped when released, not in 2036
    net.sync(a)
    assert rows(a.store, "household", "address") == [("2036",), ("ok",)]
    notes = {c["id"]: c["note"] for c in master_exchange.conflicts(net.master_store, include_resolved=True)}
    assert "release by 系统中心" in notes[insert["id"]] and "release by 系统中心" in notes[edit["id"]]
    assert notes[edit["id"]].endswith(": clock fixed")


def test_a_released_edit_leaves_the_fields_changed_since_it_was_held(net):
    a = net.add_tablet("a")
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        home = rec.insert("household", {"grid_id": "g1", "address": "1号", "head_name": "王"})
    net.sync(a)
    _jump_to_2036(a)
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", home, {"address": "2号", "pets": 3})
    net.sync(a)  # held; the reply sets the tablet's clock back
    with net.master_store.write(actor="office") as rec:  # corrected at the office while the edit waits
        rec.update("household", home, {"address": "3号"})
    (held,) = _quarantined(net)
    said = review.answer(net.master_store, held["id"], "release", by="系统中心")
    assert said.endswith("which syncs; address kept as changed since it was held"), said
    net.sync(a)
    for store in (net.master_store, a.store):
        assert rows(store, "household", "address, json_extract(fields, '$.pets')") == [("3号", 3)]
    _jump_to_2036(a)
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", home, {"pets": 5})
    net.sync(a)  # held again, and the clock set back again
    with a.store.write(actor=a.worker) as rec:  # the worker, clock fixed, records the count again
        rec.update("household", home, {"pets": 4})
    net.sync(a)
    (held,) = _quarantined(net)
    assert review.answer(net.master_store, held["id"], "release", by="系统中心").endswith(
        "released: nothing to apply; pets kept as changed since it was held")
    net.sync(a)
    assert _quarantined(net) == []
    for store in (net.master_store, a.store):
        assert rows(store, "household", "json_extract(fields, '$.pets')") == [(4,)]


def test_a_discarded_op_is_kept_on_record_and_applies_nowhere(net):
    a, ok, future, _ = _clock_2036_patrol(net)
    net.sync(a)
    (insert,) = _quarantined(net)
    said = review.answer(net.master_store, insert["id"], "discard", by="系统中心", note="duplicate")
    assert said == f"conflict #{insert['id']}: insert household {future} discarded; kept on record only"
    assert _quarantined(net) == []
    with pytest.raises(review.ReviewError, match="settled already"):
        review.answer(net.master_store, insert["id"], "release", by="系统中心")
    net.sync(a)
    assert rows(net.master_store, "household", "address") == rows(a.store, "household", "address") == [("ok",)]
    (record,) = [c for c in master_exchange.conflicts(net.master_store, include_resolved=True) if c["kind"] == "quarantine"]
    assert record["resolved"] and record["lost"]["address"] == "2036" and "discard by 系统中心" in record["note"]


def test_ops_held_before_they_were_answerable_are_listed_for_review_after_the_upgrade(tmp_path):
    from wangge.core import store
    from wangge.sync.log import tables

    path = str(tmp_path / "old.db")
    with store.init(path, "master", extra_migrations=tables.MIGRATIONS) as s, s.write() as rec:
        op = ["op-1", "household", "h-1", pack(YEAR_2036_MS), "w", "dev-a", "insert", {"address": "2036"}, None, 4]
        rec.conn.execute(tables.quarantine.insert().values(op_id="op-1", device="dev-a", op=op, reason="ahead", at=1))
        rec.conn.execute(text("DELETE FROM schema_migration WHERE name = 'sync_0003_quarantine_for_review'"))
    with store.open(path, extra_migrations=tables.MIGRATIONS) as s:
        (listed,) = master_exchange.conflicts(s)
    assert (listed["kind"], listed["entity_id"], listed["lost"], listed["note"]) == (
        "quarantine", "h-1", {"address": "2036"}, "ahead")


def test_edits_of_a_discarded_insert_are_held_too_and_the_tablet_keeps_syncing(net):
    a, ok, future, _ = _clock_2036_patrol(net)
    (insert,) = _quarantined(net)
    review.answer(net.master_store, insert["id"], "discard", by="系统中心")
    with a.store.write(actor=a.worker) as rec:  # the worker edits it before the next sync
        rec.update("household", future, {"pets": 2})
    net.sync(a)  # not refused: the edit needs an insert that will never apply
    (edit,) = _quarantined(net)
    assert edit["entity_id"] == future and f"(op {insert['op_id']}) waits in quarantine" in edit["note"]
    assert rows(net.master_store, "household", "address") == rows(a.store, "household", "address") == [("ok",)]
    review.answer(net.master_store, edit["id"], "discard", by="系统中心")
    with pytest.raises(review.ReviewError, match="settled already"):
        review.answer(net.master_store, edit["id"], "release", by="系统中心")
