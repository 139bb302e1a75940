"""The office answers what sync queued for review, and the answers reach the tablets."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from wangge.cli import cli
from wangge.core import casework
from wangge.sync.master import exchange as master_exchange
from wangge.sync.master import review

from .conftest import small_ruleset


def value(s, sql, **params):
    with s.read() as conn:
        return conn.execute(text(sql), params).scalar()


def _pending(net, kind):
    return next(c for c in master_exchange.conflicts(net.master_store) if c["kind"] == kind and not c["resolved"])


def test_an_accepted_proposal_moves_the_case_at_the_office_and_on_the_tablets(net):
    worker, head = net.add_tablet("w"), net.add_tablet("h", role="主任")
    net.sync(worker), net.sync(head)
    with worker.store.write(actor=worker.worker) as rec:
        case = rec.insert("case", {"item_code": "x", "grid_id": "g1"})
        for move in ("立案", "处置"):
            rec.insert("case_event", {"case_id": case, "move": move, "role": "网格员"})
    net.sync(worker), net.sync(head)
    with head.store.write(actor=head.worker) as rec:  # closing is the office's: from a tablet, a proposal
        rec.insert("case_event", {"case_id": case, "move": "结案", "role": "主任", "actor_id": head.worker})
    net.sync(head)
    assert value(net.master_store, "SELECT status FROM cases") == "处置"
    proposal = _pending(net, "proposal")
    said = review.answer(net.master_store, proposal["id"], "accept", by="主任王", ruleset=small_ruleset())
    assert said == f"conflict #{proposal['id']}: case {case}: 结案 accepted at the office, now 结案"
    assert value(net.master_store, "SELECT status FROM cases") == "结案"
    net.sync(worker), net.sync(head)
    assert value(worker.store, "SELECT status FROM cases") == value(head.store, "SELECT status FROM cases") == "结案"
    settled = next(c for c in master_exchange.conflicts(net.master_store, include_resolved=True) if c["id"] == proposal["id"])
    assert settled["resolved"] and "accept by 主任王 at " in settled["note"]


def test_a_proposal_overtaken_by_events_cannot_be_accepted(net):
    head = net.add_tablet("h", role="主任")
    net.sync(head)
    with head.store.write(actor=head.worker) as rec:
        case = rec.insert("case", {"item_code": "x", "grid_id": "g1"})
        for move in ("立案", "处置", "结案"):  # the last is the office's: a proposal
            rec.insert("case_event", {"case_id": case, "move": move, "role": "主任"})
    net.sync(head)
    proposal = _pending(net, "proposal")
    with net.master_store.write(actor="office") as rec:  # meanwhile the office closed it itself
        casework.move_case(rec, small_ruleset(), case, "结案", role="主任", actor_id=None,
                           at=datetime.now(timezone.utc))
    with pytest.raises(review.ReviewError, match=rf"conflict #{proposal['id']}: the case is 结案 now, so 结案 can no "
                                                 "longer be accepted: reject the proposal"):
        review.answer(net.master_store, proposal["id"], "accept", by="office", ruleset=small_ruleset())
    assert review.answer(net.master_store, proposal["id"], "reject", by="office").endswith("the case stays as it is")


def test_taking_the_queued_value_is_a_new_edit_that_reaches_every_tablet(net):
    a, b = net.add_tablet("a"), net.add_tablet("b")
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        hid = rec.insert("household", {"grid_id": "g1", "address": "1-101"})
    net.sync(a), net.sync(b)
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", hid, {"address": "A"})
    with b.store.write(actor=b.worker) as rec:
        rec.update("household", hid, {"address": "B"})
    net.sync(a), net.sync(b), net.sync(a)
    clash = _pending(net, "critical")
    assert (clash["kept"], clash["lost"]) == ("B", "A")
    assert review.answer(net.master_store, clash["id"], "take", by="office") == \
        f"conflict #{clash['id']}: household {hid}: address is now 'A'"
    net.sync(a), net.sync(b)
    for s in (net.master_store, a.store, b.store):
        assert value(s, "SELECT address FROM household") == "A"


def test_answers_that_do_not_fit_are_refused_and_change_nothing(net, tmp_path):
    a = net.add_tablet("a")
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        case = rec.insert("case", {"item_code": "x", "grid_id": "g1"})
        rec.insert("case_event", {"case_id": case, "move": "处置", "role": "网格员"})  # not legal from 发现
    net.sync(a)
    stale = _pending(net, "stale")
    with pytest.raises(review.ReviewError, match=rf"conflict #{stale['id']} is a stale one: answer it with ack, not take"):
        review.answer(net.master_store, stale["id"], "take", by="office")
    with pytest.raises(review.ReviewError, match="no conflict #999: `wangge conflicts` lists them"):
        review.answer(net.master_store, 999, "ack", by="office")
    net.master_store.close()
    runner, master = CliRunner(), str(tmp_path / "master.db")
    listed = runner.invoke(cli, ["conflicts", master])
    assert f"#{stale['id']}" in listed.output and "wangge resolve MASTER_STORE NUMBER" in listed.output
    done = runner.invoke(cli, ["resolve", master, str(stale["id"]), "ack", "--by", "王主任"])
    assert done.exit_code == 0 and "stale move acknowledged" in done.output
    again = runner.invoke(cli, ["resolve", master, str(stale["id"]), "ack"])
    assert again.exit_code == 2 and f"conflict #{stale['id']} is settled already" in again.output
    assert runner.invoke(cli, ["conflicts", master]).output.strip() == "no conflicts"
