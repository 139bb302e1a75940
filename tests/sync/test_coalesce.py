"""A tablet folds each row's edits into one op; per-field last-writer-wins sees no difference."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from wangge.sync.log.ops import OpError, WireOp, coalesce, from_wire

ROWS, FIELDS = ("r1", "r2", "r3"), ("pets", "income", "note", "address")


def _ops(device: str, script, start: int) -> list[WireOp]:
    return [WireOp(f"{device}-{n}", "household", row, start + 2 * n, "w", device, "update", dict(fields), None, n + 1)
            for n, (row, fields) in enumerate(script)]


def _merge(ops) -> dict:
    """Reference per-field LWW: each (row, field) keeps the value with the greatest (stamp, device)."""
    state: dict = {}
    for op in ops:
        for name, value in op.fields.items():
            stamp = (op.field_hlc(name), op.device)
            key = (op.entity_id, name)
            if key not in state or stamp > state[key][0]:
                state[key] = (stamp, value)
    return state


script = st.lists(st.tuples(st.sampled_from(ROWS),
                            st.dictionaries(st.sampled_from(FIELDS), st.integers(0, 9), min_size=1, max_size=3)),
                  max_size=20)


@settings(max_examples=200, deadline=None)
@given(script, script, st.randoms(use_true_random=False))
def test_folded_edits_merge_to_the_same_state_as_the_edits_one_by_one(mine, theirs, rng):
    own, other = _ops("a", mine, 1000), _ops("b", theirs, 1001)
    folded = coalesce(own)
    assert len(folded) == len({op.entity_id for op in own})
    assert [op.seq for op in folded] == sorted(op.seq for op in folded)
    both = folded + other
    rng.shuffle(both)
    assert _merge(both) == _merge(own + other)
    for op in folded:  # the wire form round-trips
        assert from_wire(op.to_wire(), "test") == op


def _with_inserts(device: str, script, start: int) -> list[WireOp]:
    """Each row's first edit made as its insert (a household recorded, then edited, offline)."""
    ops, made = [], set()
    for n, (row, fields) in enumerate(script):
        kind = "update" if row in made else "insert"
        made.add(row)
        ops.append(WireOp(f"{device}-{n:03d}", "household", row, start + 2 * n, "w", device, kind, dict(fields),
                          None, n + 1))
    return ops


@settings(max_examples=200, deadline=None)
@given(script, script, st.randoms(use_true_random=False))
def test_edits_folded_into_their_rows_insert_merge_like_the_edits_one_by_one(mine, theirs, rng):
    own, other = _with_inserts("a", mine, 1000), _ops("b", theirs, 1001)
    folded = coalesce(own)
    assert [op.kind for op in folded] == ["insert"] * len({op.entity_id for op in own})
    for op in folded:  # in the insert's place, with the last edit's id and position
        last = max((o for o in own if o.entity_id == op.entity_id), key=lambda o: o.seq)
        assert (op.op_id, op.seq) == (last.op_id, last.seq)
        assert from_wire(op.to_wire(), "test") == op
    both = folded + other
    rng.shuffle(both)
    assert _merge(both) == _merge(own + other)


def test_an_insert_keeps_its_place_before_what_refers_to_it():
    ops = _with_inserts("a", [("r1", {"pets": 1}), ("r2", {"pets": 2}), ("r1", {"pets": 3})], 10)
    ops.insert(1, WireOp("a-visit", "visit", "v1", 11, "w", "a", "append", {"household_id": "r1"}, None, 2))
    folded = coalesce(ops)
    assert [(op.entity_id, op.kind, op.op_id) for op in folded] == [
        ("r1", "insert", "a-002"), ("v1", "append", "a-visit"), ("r2", "insert", "a-001")]
    assert folded[0].fields == {"pets": 3} and folded[0].stamps == {"pets": 14}


def test_critical_edits_and_other_kinds_stay_as_they_are():
    ops = _ops("a", [("r1", {"pets": 1}), ("r1", {"address": "x"}), ("r1", {"pets": 2})], 10)
    ops.append(WireOp("a-del", "household", "r2", 99, "w", "a", "delete", {}, None, 9))
    folded = coalesce(ops, keep_apart=lambda op: "address" in op.fields)
    assert [(op.op_id, op.fields) for op in folded] == [("a-1", {"address": "x"}), ("a-2", {"pets": 2}),
                                                        ("a-del", {})]


def _two_tablets_in_g1(net):
    a, b = net.add_tablet("a", grids=("g1",)), net.add_tablet("b", grids=("g1",))
    net.sync(a)
    net.sync(b)
    return a, b


def test_a_patrol_of_edits_travels_as_one_op_per_household_and_lands_everywhere_alike(net):
    a, b = _two_tablets_in_g1(net)
    with a.store.write(actor=a.worker) as rec:
        houses = rec.insert_many("household", [{"grid_id": "g1", "address": f"1-{n}"} for n in range(3)])
    net.sync(a)
    net.sync(b)
    with a.store.write(actor=a.worker) as rec:
        for round_ in range(5):
            rec.update_many("household", [(h, {"pets": round_, f"q{round_}": h[-4:]}) for h in houses])
    with b.store.write(actor=b.worker) as rec:  # a concurrent edit of one field, stamped between a's edits
        rec.update("household", houses[0], {"q0": "from b"})
    push = a.sync.make_push()
    assert a.sync.pushed == 15
    reply, summary = net.master.exchange(push)
    assert summary.startswith("3 ops applied")
    a.sync.accept_reply(reply)
    net.sync(b)
    net.sync(a)  # checksums of every tablet equal the master's within its grid, or sync raises

    def fields(s):
        with s.read() as conn:
            return sorted((r[0], json.loads(r[1]), json.loads(r[2]))
                          for r in conn.execute(text("SELECT id, fields, stamps FROM household")))

    held = fields(net.master_store)
    assert fields(a.store) == held == fields(b.store)
    first = next(r for r in held if r[0] == houses[0])
    assert first[1]["q0"] == "from b" and first[1]["pets"] == 4  # b's later edit of q0 wins; a's pets stays
    assert first[2]["q0"][1] == "dev-b" and first[2]["q1"][0] < first[2]["pets"][0]  # own stamps kept


def test_households_made_and_edited_offline_travel_as_one_insert_each_even_after_a_lost_reply(net):
    a, b = _two_tablets_in_g1(net)
    with a.store.write(actor=a.worker) as rec:
        houses = rec.insert_many("household", [{"grid_id": "g1", "address": f"1-{n}"} for n in range(3)])
        rec.insert("visit", {"household_id": houses[0], "grid_id": "g1", "worker_id": a.worker, "minutes": 20})
        for round_ in range(3):
            rec.update_many("household", [(h, {"pets": round_}) for h in houses])
    reply, summary = net.master.exchange(a.sync.make_push())  # the reply is lost on the way back
    assert a.sync.pushed == 13 and summary.startswith("4 ops applied")  # 3 folded inserts and the visit
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", houses[1], {"pets": 9, "note": "later"})
    reply, summary = net.master.exchange(a.sync.make_push())  # all again, houses[1] folded under a new id
    assert summary.startswith("1 ops applied from dev-a (3 already known")
    a.sync.accept_reply(reply)
    net.sync(b)
    net.sync(a)  # checksums agree, or this raises

    def households(s):
        with s.read() as conn:
            return sorted((r[0], json.loads(r[1])) for r in conn.execute(text("SELECT id, fields FROM household")))

    assert households(a.store) == households(net.master_store) == households(b.store)
    assert dict(households(b.store))[houses[1]] == {"pets": 9, "note": "later"}


@pytest.mark.parametrize("item, message", [
    (["o", "household", "r1", 10, "w", "a", "insert", {"pets": 1}, None, 1, {"pets": 5}],
     "field stamp 'pets' of a folded insert must name one of its fields and be a later stamp than the insert's 10"),
    (["o", "visit", "v1", 10, "w", "a", "append", {"minutes": 1}, None, 1, {"minutes": 15}],
     "item 10 (field stamps) must be an object, on an update or insert only"),
    (["o", "household", "r1", 10, "w", "a", "update", {"pets": 1}, None, 1, {"income": 5}],
     "field stamp 'income' must name one of its fields and be a stamp in 1..10, got 5"),
    (["o", "household", "r1", 10, "w", "a", "update", {"pets": 1}, None, 1, {"pets": 11}],
     "field stamp 'pets' must name one of its fields and be a stamp in 1..10, got 11"),
    (["o", "household", "r1", 10, "w", "a", "update", {"pets": 1, "note": ""}, None, 1, {"pets": 5, "note": True}],
     "field stamp 'note' must name one of its fields and be a stamp in 1..10, got True"),
    (["o", "household", "r1", 10, "w", "a", "update", {"pets": 1}, None, 1, {"pets": 0}],
     "field stamp 'pets' must name one of its fields and be a stamp in 1..10, got 0"),
    (["o", "household", "r1", 10, "w", "a", "update", {"pets": 1}, None, 1, {"pets": 5}, "extra"],
     "an op must be a list of 10 or 11 items"),
])
def test_a_malformed_folded_op_is_refused_naming_the_problem(item, message):
    with pytest.raises(OpError) as refused:
        from_wire(item, "bundle b op 0")
    assert str(refused.value).startswith("bundle b op 0: ") and message in str(refused.value)
