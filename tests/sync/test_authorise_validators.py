"""The master checks the district's own fields of what tablets send, against the rule file."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from wangge.core.ruleset import FieldSpec, FieldType, Label, Register
from wangge.sync.master.authorise import Unauthorised

from .conftest import Net, small_ruleset


def _ruleset():
    household = Register(entity="household", fields=(
        FieldSpec(code="户主", label=Label(zh="户主"), type=FieldType.text, required=True),
        FieldSpec(code="人口", label=Label(zh="人口"), type=FieldType.integer, required=True, min=1, max=30),
        FieldSpec(code="电话", label=Label(zh="电话"), type=FieldType.phone),
    ))
    base = small_ruleset()
    return base.model_copy(update={"registers": (household,), "label": Label(zh="测试")})


@pytest.fixture
def checked(tmp_path):
    n = Net(tmp_path, _ruleset())
    yield n
    n.close()


def count(s, sql):
    with s.read() as conn:
        return conn.execute(text(sql)).scalar()


def test_a_household_with_bad_district_fields_refuses_the_bundle_and_changes_nothing(checked):
    a = checked.add_tablet("a")
    checked.sync(a)  # the tablet now holds the master's rules
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "1-1", "户主": "王芳", "人口": 3})
        rec.insert("household", {"grid_id": "g1", "address": "1-2", "人口": 0, "电话": "12"})
    before = count(checked.master_store, "SELECT COUNT(*) FROM op")
    with pytest.raises(Unauthorised) as refused:
        checked.master.exchange(a.sync.make_push())
    message = str(refused.value)
    assert message.startswith("bundle refused: op ") and "(insert household " in message
    assert "户主:应为必填,实际为 None" in message and "人口:应为不小于 1,实际为 0" in message
    assert "电话:应为11位手机号或带区号的电话,实际为 '12'" in message
    assert count(checked.master_store, "SELECT COUNT(*) FROM household") == 0
    assert count(checked.master_store, "SELECT COUNT(*) FROM op") == before


def test_valid_records_apply_and_an_edit_is_checked_on_the_fields_it_sets(checked):
    a = checked.add_tablet("a")
    checked.sync(a)
    with a.store.write(actor=a.worker) as rec:
        hid = rec.insert("household", {"grid_id": "g1", "address": "1-1", "户主": "王芳", "人口": 3})
    checked.sync(a)
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", hid, {"人口": 4})  # 户主 is not re-sent, and need not be
    checked.sync(a)
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", hid, {"人口": "many"})
    with pytest.raises(Unauthorised, match="人口:应为整数,实际为 'many'"):
        checked.master.exchange(a.sync.make_push())
    with checked.master_store.read() as conn:
        assert conn.execute(text("SELECT fields FROM household")).scalar().count("4") == 1


def test_a_tablet_still_on_older_rules_is_not_refused_and_gets_the_new_ones(checked):
    a = checked.add_tablet("a")
    checked.sync(a)
    stricter = _ruleset().model_copy(update={"name": "t2"})
    checked.master.ruleset = stricter  # the office installed new rules after the tablet last synced
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "1-1", "人口": 3})  # recorded without 户主
    checked.sync(a)
    assert count(checked.master_store, "SELECT COUNT(*) FROM household") == 1
    assert a.sync.ruleset.version == stricter.version


def test_a_district_number_past_a_floats_range_is_refused_not_an_internal_error(checked):
    from support.pushes import signed_push, wire_op

    a = checked.add_tablet("a")
    checked.sync(a)
    op = wire_op(checked, a, "household", "insert", {"grid_id": "g1", "户主": "王芳", "人口": 10**400})
    with pytest.raises(Unauthorised, match=f"op {op[0]} .*人口:应为整数"):
        checked.master.exchange(signed_push(checked, a, [op]))
    assert count(checked.master_store, "SELECT COUNT(*) FROM household") == 0
