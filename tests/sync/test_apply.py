"""Applying ops to a store: per-field last writer wins, whatever the batches and their order.

On SQLite the merge reads only the stored stamps and lets SQLite patch the
row's fields; on PostgreSQL rows are read, merged and written back. Both must
end exactly where a reference merge of the same ops ends.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from wangge.core import store
from wangge.core.ids import uuid7
from wangge.sync.log import apply
from wangge.sync.log.ops import WireOp

ROWS = ("r1", "r2", "r3")
#: Typed columns and district fields, so both kinds of write are merged.
FIELDS = ("address", "members", "pets", "note", "income", 'say "hi"')
scalars = st.one_of(st.none(), st.integers(-5, 99), st.text("ab'\"中", max_size=3), st.booleans())
#: Objects too, with nulls inside: a field's value is replaced whole, never merged into the one stored.
values = st.one_of(scalars, st.dictionaries(st.sampled_from(("cat", "dog")), scalars, max_size=2))


@st.composite
def ops(draw):
    """Updates and deletes from two devices, with distinct stamps, some folding several edits."""
    out = []
    # Stamps are unique per device, as clocks make them: ops at distinct thousands, and a
    # folded field's own stamp just below its op's.
    bases = draw(st.lists(st.integers(1, 400), min_size=1, max_size=14, unique=True))
    for n, hlc in enumerate(base * 1000 for base in bases):
        row, device = draw(st.sampled_from(ROWS)), draw(st.sampled_from(("a", "b")))
        if draw(st.integers(0, 9)) == 0:
            out.append(WireOp(f"op{n}", "household", row, hlc, "w", device, "delete", {}, None, n + 1))
            continue
        fields = draw(st.dictionaries(st.sampled_from(FIELDS), values, min_size=1, max_size=4))
        if "members" in fields and type(fields["members"]) is not int:
            fields["members"] = 0  # a typed integer column
        if "address" in fields and type(fields["address"]) is not str:
            fields["address"] = ""
        own = {name: hlc - 1 - i for i, name in enumerate(fields) if draw(st.booleans())}
        out.append(WireOp(f"op{n}", "household", row, hlc, "w", device, "update", fields, None, n + 1, own or None))
    return out


def _reference(script: list[WireOp]) -> dict:
    """Each row as a plain per-field LWW merge of its insert (stamp 1, device "m") and the ops."""
    rows = {row: {"values": {"address": "", "members": 0}, "stamps": {}, "deleted": None} for row in ROWS}
    for op in sorted(script, key=lambda op: op.stamp):
        row = rows[op.entity_id]
        if op.kind == "delete":
            row["deleted"] = max(row["deleted"] or 0, op.hlc)
            continue
        for name, value in op.fields.items():
            mine = (op.field_hlc(name), op.device)
            held = tuple(row["stamps"].get(name, (1, "m")))
            if mine > held:
                row["values"][name], row["stamps"][name] = value, list(mine)
    return rows


def _stored(s, tag: str) -> dict:
    with s.read() as conn:
        found = conn.execute(text("SELECT id, address, members, fields, stamps, deleted FROM household "
                                  "WHERE id LIKE :tag"), {"tag": tag + "-%"}).all()
    out = {}
    for entity_id, address, members, fields, stamps, deleted in found:
        entity_id = entity_id.split("-", 1)[1]
        fields = json.loads(fields) if isinstance(fields, str) else fields
        stamps = json.loads(stamps) if isinstance(stamps, str) else stamps
        out[entity_id] = {"values": {"address": address, "members": members, **fields},
                          "stamps": stamps or {}, "deleted": deleted}
    return out


@pytest.fixture
def master(store_target):
    with store.init(store_target, "master", device_id="m") as s:
        with s.write() as rec:
            rec.conn.exec_driver_sql("INSERT INTO grid_cell (id, code, level, name, hlc, origin, stamps, fields) "
                                     "VALUES ('g', '01', 'grid', 'g', 1, 'm', '{}', '{}')")
        yield s


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=ops(), cuts=st.lists(st.integers(0, 14), max_size=3), order=st.randoms(use_true_random=False))
def test_ops_in_any_batches_and_order_end_as_the_reference_merge(master, script, cuts, order):
    # One store for every example: each example works on rows and ops of its own.
    tag = uuid7().replace("-", "")
    sent = [op._replace(op_id=f"{tag}-{op.op_id}", entity_id=f"{tag}-{op.entity_id}") for op in script]
    order.shuffle(sent)
    with master.write() as rec:
        for row in ROWS:
            rec.conn.exec_driver_sql(
                "INSERT INTO household (id, grid_id, address, head_name, members, fields, hlc, origin, stamps) "
                f"VALUES ('{tag}-{row}', 'g', '', '', 0, '{{}}', 1, 'm', '{{}}')")
    edges = sorted({0, len(sent), *(min(c, len(sent)) for c in cuts)})
    for start, end in zip(edges, edges[1:]):
        with master.write() as rec:
            apply.apply_ops(rec.conn, sent[start:end])
        # The same ops again change nothing: idempotent by op id.
        with master.write() as rec:
            again = apply.apply_ops(rec.conn, sent[start:end])
        assert again.applied == [] and again.duplicates == end - start
    assert _stored(master, tag) == _reference(script)


def test_an_insert_folding_later_edits_merges_into_the_row_it_finds_without_setting_its_id(master):
    # Two inserts of one row arrive (a re-send after a lost reply folds a newer edit): the second,
    # newer than the row, merges field by field; its `id` repeats the row's and is no edit.
    fields = {"id": "r1", "grid_id": "g", "address": "1-1", "head_name": "", "members": 0}
    first = WireOp(uuid7(), "household", "r1", 1000, "w", "a", "insert", fields, None, 1)
    again = WireOp(uuid7(), "household", "r1", 2000, "w", "b", "insert", {**fields, "head_name": "王五"}, None, 2,
                   {"head_name": 2500})
    with master.write() as rec:
        apply.apply_ops(rec.conn, [first])
        apply.apply_ops(rec.conn, [again])
    with master.read() as conn:
        assert conn.execute(text("SELECT id, head_name FROM household")).all() == [("r1", "王五")]
