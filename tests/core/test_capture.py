"""Change capture: every change yields exactly one op, in the same transaction."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from wangge.core import store
from wangge.core.errors import StoreError
from wangge.core.ids import uuid7
from wangge.core.models import Household, Op


@pytest.fixture
def opened(store_target):
    with store.init(store_target, "device") as s:
        yield s


def _grid(rec, code="01"):
    return rec.insert("grid_cell", {"code": code, "level": "community", "name": "泰丰社区"})


def _ops(s):
    with s.read() as conn:
        return conn.execute(select(Op).order_by(Op.seq)).mappings().all()


def test_each_insert_update_and_delete_yields_exactly_one_op(opened):
    with opened.write(actor="王芳") as rec:
        grid = _grid(rec)
        house = rec.insert("household", {"grid_id": grid, "address": "1-101", "pets": 1})
        rec.update("household", house, {"members": 3, "pets": 2})
        rec.delete("household", house)
    ops = _ops(opened)
    assert [(o["entity"], o["kind"]) for o in ops] == [
        ("grid_cell", "insert"),
        ("household", "insert"),
        ("household", "update"),
        ("household", "delete"),
    ]
    assert ops[2]["fields"] == {"members": 3, "pets": 2}
    assert ops[1]["fields"]["pets"] == 1 and ops[1]["fields"]["address"] == "1-101"
    assert {o["actor"] for o in ops} == {"王芳"} and {o["device"] for o in ops} == {opened.device_id}
    assert [o["hlc"] for o in ops] == sorted(o["hlc"] for o in ops)


def test_inserts_carry_one_stamp_and_updates_stamp_only_their_fields(opened):
    with opened.write() as rec:
        grid = _grid(rec)
        house = rec.insert("household", {"grid_id": grid, "pets": 1, "income": 3000})
    with opened.read() as conn:
        row = conn.execute(select(Household)).mappings().one()
    assert row["stamps"] == {} and row["hlc"] > 0 and row["origin"] == opened.device_id
    with opened.write() as rec:
        rec.update("household", house, {"pets": 2})
    with opened.read() as conn:
        row = conn.execute(select(Household)).mappings().one()
    assert set(row["stamps"]) == {"pets"} and row["fields"] == {"pets": 2, "income": 3000}


def test_a_failed_transaction_leaves_neither_the_change_nor_its_op(opened):
    with pytest.raises(RuntimeError):
        with opened.write() as rec:
            _grid(rec)
            raise RuntimeError("power cut")
    with pytest.raises(StoreError):
        with opened.write() as rec:
            _grid(rec, "02")
            rec.insert("household", {"grid_id": "no-such-grid"})  # foreign key fails
    assert _ops(opened) == []
    with opened.read() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM grid_cell")).scalar() == 0


def test_deleted_rows_are_tombstones_that_refuse_later_edits(opened):
    with opened.write() as rec:
        house = rec.insert("household", {"grid_id": _grid(rec)})
        rec.delete("household", house)
    with pytest.raises(StoreError, match="deleted"):
        with opened.write() as rec:
            rec.update("household", house, {"pets": 1})
    with opened.read() as conn:
        assert conn.execute(select(Household.deleted)).scalar() is not None


def test_append_only_entities_refuse_updates_and_deletes(opened):
    with opened.write() as rec:
        grid = _grid(rec)
        house = rec.insert("household", {"grid_id": grid})
        worker = rec.insert("worker", {"name": "王芳", "role": "网格员"})
        visit = rec.insert("visit", {"household_id": house, "grid_id": grid, "worker_id": worker, "minutes": 45})
    for change in (lambda r: r.update("visit", visit, {"minutes": 50}), lambda r: r.delete("visit", visit)):
        with pytest.raises(StoreError, match="append-only"):
            with opened.write() as rec:
                change(rec)
    assert [o["kind"] for o in _ops(opened)][-1] == "append"


def test_bad_changes_name_the_entity_and_field(opened):
    with pytest.raises(StoreError, match="unknown entity 'house'"):
        with opened.write() as rec:
            rec.insert("house", {})
    with pytest.raises(StoreError, match="worker has no field 'pets'"):
        with opened.write() as rec:
            rec.insert("worker", {"name": "x", "role": "y", "pets": 1})
    with pytest.raises(StoreError, match="kept by change capture"):
        with opened.write() as rec:
            rec.insert("grid_cell", {"code": "1", "level": "l", "name": "n", "hlc": 5})


changes = st.lists(
    st.tuples(
        st.sampled_from(["insert", "update", "delete"]),
        st.integers(min_value=0, max_value=4),
        st.dictionaries(st.sampled_from(["pets", "income", "members", "address"]), st.integers(0, 9), max_size=3),
    ),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes)
def test_replaying_the_op_log_rebuilds_every_row(tmp_path_factory, script):
    """The op log is complete: replayed from empty, it gives the stored rows."""
    path = tmp_path_factory.mktemp("replay") / "s.db"
    with store.init(str(path), "device") as s:
        ids: list[str] = []
        with s.write() as rec:
            grid = _grid(rec)
        for kind, index, values in script:
            values = {k: (str(v) if k == "address" else v) for k, v in values.items()}
            try:
                with s.write() as rec:
                    if kind == "insert" or not ids:
                        ids.append(rec.insert("household", {"grid_id": grid, **values}))
                    elif kind == "update":
                        rec.update("household", ids[index % len(ids)], values)
                    else:
                        rec.delete("household", ids[index % len(ids)])
            except StoreError:
                pass  # an edit of a deleted row: refused, and must leave no op
        rebuilt: dict[str, dict] = {}
        for op in _ops(s):
            if op["entity"] != "household":
                continue
            if op["kind"] == "insert":
                rebuilt[op["entity_id"]] = dict(op["fields"], deleted=False)
            elif op["kind"] == "update":
                rebuilt[op["entity_id"]].update(op["fields"])
            else:
                rebuilt[op["entity_id"]]["deleted"] = True
        with s.read() as conn:
            rows = conn.execute(select(Household)).mappings().all()
        stored = {
            r["id"]: {"address": r["address"], "members": r["members"], **r["fields"], "deleted": r["deleted"] is not None}
            for r in rows
        }
        assert {k: {f: v[f] for f in stored[k]} for k, v in rebuilt.items()} == stored


def test_many_changes_to_one_row_merge_in_order_with_one_op_each(opened):
    with opened.write() as rec:
        house = rec.insert("household", {"grid_id": _grid(rec), "pets": 0})
        rec.update_many("household", [(house, {"pets": 1}), (house, {"income": 10}), (house, {"pets": 2, "members": 4})])
    with opened.read() as conn:
        row = conn.execute(select(Household)).mappings().one()
    assert row["fields"] == {"pets": 2, "income": 10} and row["members"] == 4
    assert set(row["stamps"]) == {"pets", "income", "members"}
    assert row["stamps"]["pets"][0] > row["stamps"]["income"][0]
    assert [o["kind"] for o in _ops(opened)][-3:] == ["update"] * 3


@pytest.mark.parametrize("change", ["insert", "update", "update a column"])
def test_a_lone_surrogate_is_refused_naming_it_and_nothing_is_written(opened, change):
    # JSON's "\ud800" decodes to one: a bundle or a request can carry it.
    with opened.write() as rec:
        home = rec.insert("household", {"grid_id": _grid(rec), "address": "1-101"})
    before = _ops(opened)
    with pytest.raises(StoreError, match=r"holds '\\ud800', which is not a Unicode character"):
        with opened.write() as rec:
            if change == "insert":
                rec.insert("household", {"grid_id": rec.conn.execute(text("SELECT id FROM grid_cell")).scalar(),
                                         "note": "a\ud800"})
            else:
                rec.update("household", home, {"address" if change == "update a column" else "note": "\ud800"})
    assert _ops(opened) == before


def test_booleans_and_text_keep_their_json_types(opened):
    with opened.write() as rec:
        house = rec.insert("household", {"grid_id": _grid(rec)})
        rec.update("household", house, {"低保": True, "住房": "自有", "收入": 3200.5, "备注": None})
    with opened.read() as conn:
        assert conn.execute(select(Household.fields)).scalar() == {"低保": True, "住房": "自有", "收入": 3200.5, "备注": None}


batch_values = st.dictionaries(
    st.sampled_from(["pets", "低保", "note", "members", "address"]),
    # No NUL (PostgreSQL text cannot hold it) and no lone surrogate (no UTF-8 can): the store
    # says so in a StoreError (tested below).
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-1e6, 1e6),
              st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=4)),
    min_size=1, max_size=4,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2), batch_values), min_size=1, max_size=12))
def test_a_batch_of_changes_ends_as_the_changes_applied_one_by_one(opened, batch):
    """Batched saves fold each row's changes in order; every field keeps its last value and stamp."""
    with opened.write() as rec:
        grid = rec.insert("grid_cell", {"code": uuid7(), "level": "community", "name": "g"})
        ids = rec.insert_many("household", [{"grid_id": grid} for _ in range(3)])
    typed = {"members", "address"}
    changes, expected = [], {i: {} for i in ids}
    for index, values in batch:
        values = {k: (v if k not in typed else (len(str(v)) if k == "members" else str(v))) for k, v in values.items()}
        changes.append((ids[index], values))
        expected[ids[index]].update(values)
    with opened.write() as rec:
        rec.update_many("household", changes)
    with opened.read() as conn:
        rows = {r["id"]: r for r in conn.execute(select(Household).where(Household.id.in_(ids))).mappings()}
        ops = conn.execute(select(Op).where(Op.kind == "update", Op.entity_id.in_(ids)).order_by(Op.seq)).mappings().all()
    assert [(o["entity_id"], o["fields"]) for o in ops] == changes
    for entity_id, values in expected.items():
        row = rows[entity_id]
        stored = {**row["fields"], "members": row["members"], "address": row["address"]}
        assert {k: stored[k] for k in values} == values
        assert set(row["fields"]) == {k for k in values if k not in typed}
        last = {}
        for op in ops:
            if op["entity_id"] == entity_id:
                last.update(dict.fromkeys(op["fields"], [op["hlc"], op["device"]]))
        assert row["stamps"] == last


@pytest.mark.parametrize("actor", ["O'Brien", "王'芳''", "'; DROP TABLE op; --", "nul\x00inside"])
def test_any_actor_name_is_recorded_exactly_on_every_op(store_target, actor):
    # A batch's actor and device go into the op log's SQL as literals on SQLite.
    with store.init(store_target, "device", device_id="平板'01") as s:
        if "\x00" in actor and store_target.startswith("postgresql"):
            with pytest.raises(StoreError, match="NUL"), s.write(actor=actor) as rec:
                _grid(rec)
            assert _ops(s) == []  # PostgreSQL text cannot hold NUL: refused, nothing written
            return
        with s.write(actor=actor) as rec:
            house = rec.insert("household", {"grid_id": _grid(rec), "pets": 1})
            rec.update_many("household", [(house, {"pets": n}) for n in range(3)])
            rec.delete("household", house)
        ops = _ops(s)
    assert len(ops) == 6
    assert {(o["actor"], o["device"]) for o in ops} == {(actor, "平板'01")}
    assert [o["fields"].get("pets") for o in ops[2:5]] == [0, 1, 2]


def test_a_field_named_with_a_double_quote_can_be_set_to_null(opened):
    name = 'say "hi"'
    with opened.write() as rec:
        house = rec.insert("household", {"grid_id": _grid(rec), name: "hello"})
    with opened.write() as rec:
        rec.update_many("household", [(house, {name: None, "pets": 1})])
    with opened.read() as conn:
        row = conn.execute(select(Household)).mappings().one()
    assert row["fields"] == {name: None, "pets": 1} and set(row["stamps"]) == {name, "pets"}


def test_form_saves_of_edited_and_unedited_rows_keep_every_stamp(opened):
    # A row never edited since its insert takes a save's stamps as they come; an edited one merges them.
    with opened.write() as rec:
        grid = _grid(rec)
        homes = rec.insert_many("household", [{"grid_id": grid, "pets": 0} for _ in range(3)])
        rec.update("household", homes[0], {"income": 1, "pets": 1})
    save = {"pets": 5, "低保": True, "note": "自有住房", "收入": 3200.5}
    with opened.write() as rec:
        rec.update_many("household", [(home, save) for home in homes])
    ops = [o for o in _ops(opened) if o["kind"] == "update"]
    with opened.read() as conn:
        rows = {r["id"]: r for r in conn.execute(select(Household)).mappings()}
    assert [(o["entity_id"], o["fields"]) for o in ops] == [(homes[0], {"income": 1, "pets": 1})] + [
        (home, save) for home in homes]
    first, saves = ops[0], {o["entity_id"]: o for o in ops[1:]}
    for home in homes:
        row, stamp = rows[home], [saves[home]["hlc"], opened.device_id]
        earlier = {"income": 1} if home == homes[0] else {}
        assert row["fields"] == {**earlier, **save}
        assert row["stamps"] == {**({"income": [first["hlc"], opened.device_id]} if earlier else {}),
                                 **dict.fromkeys(save, stamp)}
