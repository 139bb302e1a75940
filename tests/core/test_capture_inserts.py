"""Inserts go to the driver as tuples: what they store and log is what the per-row path stored and logged."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_core import PydanticUndefined
from sqlalchemy import select

from wangge.core import capture, codec, store
from wangge.core.errors import StoreError
from wangge.core.ids import uuid7
from wangge.core.models import APPEND_ONLY, ENTITIES, Op


def per_row_insert(rec, entity: str, values: dict) -> str:
    """One row as change capture wrote it before rows went to the driver as tuples: the model's
    defaults filled in, SQLAlchemy's insert, and the op's fields flattened from the row."""
    table, columns = capture.table_of(entity), capture.columns_of(entity)
    plain, custom = capture._split(entity, values, columns)
    plain = {"id": uuid7(), **plain}
    row = {}
    for name, spec in ENTITIES[entity].model_fields.items():
        if name in plain:
            row[name] = plain[name]
        elif spec.default_factory is not None:
            row[name] = spec.default_factory()
        elif spec.default is not PydanticUndefined:
            row[name] = spec.default
    if custom:
        row["fields"] = {**row.get("fields", {}), **custom}
    stamp = rec.stamp()
    rec.conn.execute(table.insert(), [{**row, "hlc": stamp, "origin": rec.device, "stamps": {}, "deleted": None}])
    kind = "append" if entity in APPEND_ONLY else "insert"
    rec._write_ops(entity, kind, [(uuid7(), row["id"], stamp, codec.op(capture._op_fields(row)))])
    return row["id"]


# No NUL (PostgreSQL text cannot hold it) and no lone surrogate (no UTF-8 can; refused in test_capture).
text = st.one_of(
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=8),
    st.text(st.sampled_from("泰丰社区网格王芳低保户自有住房一二三号楼单元'\"\\ "), max_size=8),
)
big = st.integers(-(2**63), 2**63 - 1)
scalar = st.one_of(st.none(), st.booleans(), big, st.floats(allow_nan=False, allow_infinity=False), text)
json_value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                          max_leaves=6)
zones = st.sampled_from([None, timezone.utc, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])
moment = st.datetimes(datetime(1990, 1, 1), datetime(2090, 1, 1), timezones=zones)

#: Per entity, each typed column a row may give and its values. Required ones are always given,
#: and so are moments: a moment left out is the time of the write, which no two writes share.
TYPED = {
    "household": {"address": text, "head_name": text, "members": big},
    "visit": {"at": moment, "minutes": big, "purpose": text, "notes": text},
    "case_event": {"move": text, "from_status": text, "to_status": text, "role": text, "device_id": text,
                   "at": moment, "place": text, "note": text, "stale": st.booleans()},
}
REQUIRED = {"household": {"grid_id"}, "visit": {"household_id", "grid_id", "worker_id", "at"},
            "case_event": {"case_id", "move", "at"}}


def custom_names(entity: str):
    taken = capture.columns_of(entity) | capture.REPLICATION_COLUMNS
    return st.one_of(text, st.sampled_from(["低保", "住房", "备注", "pets", 'say "hi"'])).filter(lambda n: n not in taken)


@st.composite
def new_rows(draw, entity: str) -> list[dict]:
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        values = {name: draw(kind) for name, kind in TYPED[entity].items()
                  if name in REQUIRED[entity] or draw(st.booleans())}
        if ENTITIES[entity].__table__.c.get("fields") is not None:
            values.update(draw(st.dictionaries(custom_names(entity), json_value, max_size=5)))
            if draw(st.booleans()):
                # The JSON column given whole, with custom fields beside it or naming a column.
                names = st.one_of(custom_names(entity), st.sampled_from(sorted(TYPED[entity])))
                values["fields"] = draw(st.dictionaries(names, json_value, max_size=3))
        if draw(st.booleans()):
            values["id"] = uuid7()
        rows.append(values)
    return rows


@pytest.fixture
def opened(store_target):
    with store.init(store_target, "device", device_id="平板'01") as s:
        yield s


def _places(rec) -> dict:
    """A grid, a worker, a household and a case: what new rows refer to."""
    grid = rec.insert("grid_cell", {"code": uuid7(), "level": "网格", "name": "泰丰1网格"})
    worker = rec.insert("worker", {"name": "王芳", "role": "网格员"})
    home = rec.insert("household", {"grid_id": grid})
    case = rec.insert("case", {"item_code": "0101", "grid_id": grid})
    return {"grid_id": grid, "worker_id": worker, "household_id": home, "case_id": case}


def _read(s, entity: str, ids: list[str]) -> tuple[list[dict], list[dict]]:
    """The rows of ``ids`` in that order and their insert ops, as the store reads them."""
    table = capture.table_of(entity)
    with s.read() as conn:
        rows = {r["id"]: dict(r) for r in conn.execute(select(table).where(table.c.id.in_(ids))).mappings()}
        ops = {o["entity_id"]: dict(o) for o in conn.execute(
            select(Op).where(Op.entity == entity, Op.entity_id.in_(ids))).mappings()}
    return [rows[i] for i in ids], [ops[i] for i in ids]


def _comparable(row: dict, op: dict) -> tuple[dict, dict]:
    """A row and its op without what is minted per write (id, op id, stamp, log position)."""
    assert op["hlc"] == row["hlc"] and op["fields"]["id"] == row["id"] and op["entity_id"] == row["id"]
    return ({k: v for k, v in row.items() if k not in ("id", "hlc")},
            {**{k: v for k, v in op.items() if k not in ("seq", "op_id", "entity_id", "hlc")},
             "fields": {k: v for k, v in op["fields"].items() if k != "id"}})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), entity=st.sampled_from(sorted(TYPED)))
def test_inserts_store_and_log_what_the_per_row_path_did(opened, data, entity):
    with opened.write(actor="王芳") as rec:
        places = _places(rec)
    rows = [{**{name: places[name] for name in REQUIRED[entity] if name in places}, **values}
            for values in data.draw(new_rows(entity))]
    with opened.write(actor="王芳") as rec:
        fast = rec.insert_many(entity, rows)
    with opened.write(actor="王芳") as rec:
        # The same rows under other ids: an id a row gives is taken by now.
        old = [per_row_insert(rec, entity, {**values, "id": uuid7()} if "id" in values else values)
               for values in rows]
    assert [i for i, values in zip(fast, rows) if "id" in values] == [v["id"] for v in rows if "id" in v]
    assert len(set(fast)) == len(rows)
    fast_rows, fast_ops = _read(opened, entity, fast)
    old_rows, old_ops = _read(opened, entity, old)
    for fast_pair, old_pair in zip(map(_comparable, fast_rows, fast_ops), map(_comparable, old_rows, old_ops)):
        assert fast_pair == old_pair
    assert [r["hlc"] for r in fast_rows] == sorted(r["hlc"] for r in fast_rows)


def test_a_value_its_column_cannot_hold_is_refused_naming_the_column(opened):
    with pytest.raises(StoreError, match=r"cannot insert case_event: stale = 'yes' does not fit the column"):
        with opened.write() as rec:
            case = _places(rec)["case_id"]
            rec.insert_many("case_event", [{"case_id": case, "move": "派遣"}, {"case_id": case, "move": "x", "stale": "yes"}])
    with opened.read() as conn:
        assert conn.execute(select(Op)).first() is None  # nothing of the batch, nor of its places


def test_a_json_column_given_as_something_else_is_refused(opened):
    with pytest.raises(StoreError, match=r"household.fields: expected a mapping of field names to values, got 3"):
        with opened.write() as rec:
            rec.insert("household", {"grid_id": _places(rec)["grid_id"], "fields": 3})


def test_a_required_column_left_out_is_refused_by_the_database(opened):
    with pytest.raises(StoreError):
        with opened.write() as rec:
            rec.insert("worker", {"role": "网格员"})


def test_rows_stamped_by_a_device_whose_id_holds_quotes_and_percent_signs(store_target):
    with store.init(store_target, "device", device_id="平板'01 100%") as s:
        with s.write() as rec:
            grid = rec.insert("grid_cell", {"code": "01", "level": "网格", "name": "g"})
            homes = rec.insert_many("household", [{"grid_id": grid, "pets": n} for n in range(3)])
        rows, ops = _read(s, "household", homes)
    assert {r["origin"] for r in rows} == {o["device"] for o in ops} == {"平板'01 100%"}
    assert [r["fields"] for r in rows] == [{"pets": n} for n in range(3)]
