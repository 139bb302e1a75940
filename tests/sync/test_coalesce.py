"""A tablet folds each row's edits into one op; per-field last-writer-wins sees no difference."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from wangge.sync.ops import OpError, WireOp, coalesce, from_wire

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


def test_critical_edits_and_other_kinds_stay_as_they_are():
    ops = _ops("a", [("r1", {"pets": 1}), ("r1", {"address": "x"}), ("r1", {"pets": 2})], 10)
    ops.append(WireOp("a-del", "household", "r2", 99, "w", "a", "delete", {}, None, 9))
    folded = coalesce(ops, keep_apart=lambda op: "address" in op.fields)
    assert [(op.op_id, op.fields) for op in folded] == [("a-1", {"address": "x"}), ("a-2", {"pets": 2}),
                                                        ("a-del", {})]


def test_a_patrol_of_edits_travels_as_one_op_per_household_and_lands_everywhere_alike(net):
    a = net.add_tablet("a", grids=("g1",))
    b = net.add_tablet("b", grids=("g1",))
    net.sync(a)
    net.sync(b)
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


@pytest.mark.parametrize("item, message", [
    (["o", "household", "r1", 10, "w", "a", "insert", {"pets": 1}, None, 1, {"pets": 5}],
     "item 10 (field stamps) must be an object, on an update only"),
    (["o", "household", "r1", 10, "w", "a", "update", {"pets": 1}, None, 1, {"income": 5}],
     "field stamp 'income' must name one of its fields and be a stamp in 1..10, got 5"),
    (["o", "household", "r1", 10, "w", "a", "update", {"pets": 1}, None, 1, {"pets": 11}],
     "field stamp 'pets' must name one of its fields and be a stamp in 1..10, got 11"),
    (["o", "household", "r1", 10, "w", "a", "update", {"pets": 1}, None, 1, {"pets": 5}, "extra"],
     "an op must be a list of 10 or 11 items"),
])
def test_a_malformed_folded_op_is_refused_naming_the_problem(item, message):
    with pytest.raises(OpError) as refused:
        from_wire(item, "bundle b op 0")
    assert str(refused.value).startswith("bundle b op 0: ") and message in str(refused.value)
