"""Hypothesis: whatever the register holds, an export reads back as the same values, from a workbook
(typed cells) or from CSV (every cell text)."""
from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlalchemy import select

from support.offices import office
from wangge.app import rosters, sheets
from wangge.core import casework, store
from wangge.core.models import GridCell
from wangge.core.ruleset import FieldType

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=12) \
    .filter(lambda s: s == s.strip())


def _values(spec):
    if spec.type is FieldType.integer:
        return st.integers(int(spec.min if spec.min is not None else -10**6), int(spec.max if spec.max is not None
                                                                                  else 10**6))
    if spec.type is FieldType.decimal:
        low, high = spec.min if spec.min is not None else -1e6, spec.max if spec.max is not None else 1e6
        return st.floats(low, high, allow_nan=False).map(lambda x: round(x, 2)).filter(lambda x: low <= x <= high)
    if spec.type is FieldType.boolean:
        return st.booleans()
    if spec.type is FieldType.choice:
        return st.sampled_from(spec.choices)
    if spec.type is FieldType.choices:
        return st.lists(st.sampled_from(spec.choices), min_size=1, unique=True)
    if spec.type is FieldType.date:
        return st.dates().map(lambda d: d.isoformat())
    if spec.type is FieldType.phone:
        return st.text(string.digits, min_size=10, max_size=10).map(lambda s: "1" + s)
    if spec.type is FieldType.id_number:
        return st.text(string.digits, min_size=17, max_size=17).map(lambda s: s + "X")
    return _TEXT


@pytest.fixture(scope="module")
def teda(tmp_path_factory):
    target = office(tmp_path_factory.mktemp("roundtrip") / "office.db")
    with store.open(target) as opened, opened.read() as conn:
        specs = casework.installed_ruleset(conn).register("household")
    return target, specs


@pytest.mark.parametrize("as_csv", [False, True], ids=["xlsx cells", "csv text"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_an_export_reads_back_as_the_same_values(teda, as_csv, data):
    target, specs = teda
    chosen = {s.code: data.draw(_values(s), label=s.code) for s in specs
              if s.required or data.draw(st.booleans(), label=f"has {s.code}")}
    with store.open(target) as opened:
        with opened.write(actor="test") as rec:
            grid = rec.conn.execute(select(GridCell.id).where(GridCell.code == "TF.01")).scalar()
            rec.insert("household", {"grid_id": grid, "address": data.draw(_TEXT, label="address"), **chosen})
        with opened.read() as conn:
            ruleset = casework.installed_ruleset(conn)
            name, header, rows = rosters.export_rows(conn, ruleset, "households")
            rows = list(rows)
            if as_csv:  # what a CSV file gives back: text, blanks as nothing
                rows = [[None if v is None else ("是" if v is True else "否" if v is False else str(v)) for v in row]
                        for row in rows]
            table = sheets.Table(name, iter([(1, tuple(header))] + [(n, tuple(r)) for n, r in enumerate(rows, 2)]))
            plan = rosters.plan_import(conn, ruleset, "households", table)
    assert plan.problems == [] and plan.inserts == []
    assert (plan.updates, plan.unchanged) == ([], len(rows))
