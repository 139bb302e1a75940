"""Compiling the sample district: imports, extends with override by code, every construct."""
from __future__ import annotations

from datetime import date

import pytest

from wangge import dsl
from wangge.core.ruleset import Duration, Ruleset, TimeUnit
from support.rules import FIXTURES


@pytest.fixture(scope="module")
def district() -> Ruleset:
    return dsl.load(FIXTURES / "district.wg")


def test_basic_file_compiles():
    r = dsl.load(FIXTURES / "basic.wg")
    assert r.name == "小区" and r.label.en == "Small compound"
    assert [lv.code for lv in r.levels] == ["社区", "网格"]
    assert r.items["0101"].evidence == ("photo",)
    assert r.lifecycle.states[0].initial and r.lifecycle.states[-1].final


def test_extends_overrides_by_code_and_keeps_the_rest(district):
    assert district.base == "national"
    assert district.items["0102"].label.zh == "通信交接箱损坏"  # overridden
    assert district.items["0101"].label.zh == "上水井盖"  # inherited
    assert [lv.code for lv in district.levels] == ["街道", "社区", "网格"]
    assert district.levels[2].sizing.households_per_grid == 400  # overridden level
    assert [c.code for c in district.levels[1].classes] == ["甲", "乙", "丙"]


def test_plain_import_adds_definitions(district):
    assert {"论坛", "信访", "微信"} <= {c.code for c in district.channels}


def test_settings_merge_field_by_field(district):
    s = district.settings
    assert s.duplicate_window_hours == 48 and s.lease_days == 14 and s.clock_drift_minutes == 5
    assert s.calendar.holidays == (date(2026, 1, 1), date(2026, 10, 1))
    assert s.calendar.workdays == (date(2026, 1, 4),)


def test_catalogue_item(district):
    item = district.items["0102"]
    assert item.sla[1].within == Duration(amount=3, unit=TimeUnit.working_days)
    assert item.evidence == ("photo", "onsite_confirmation")
    assert [s.en for s in item.steps] == ["Photograph and report", "Dispatch repair", "Confirm on site"]
    assert item.channels == ("巡查", "论坛") and item.difficulty == 1.5 and item.escalation == "小事"
    assert district.item_class["0201"].kind == "event"


def test_lifecycle_merges_states_and_transitions(district):
    lc = district.lifecycle
    codes = [s.code for s in lc.states]
    assert codes[:5] == ["发现", "立案", "处置", "结案", "作废"] and "评估" in codes
    close = next(t for t in lc.transitions if t.code == "办结")
    assert close.sources == ("审核",) and close.requires == ("onsite_confirmation", "callback")
    assert next(s for s in lc.states if s.code == "缓办").flags == ("suspended",)


def test_routes_local_first(district):
    assert district.routes[0].match_item == "0102" and district.routes[0].department == "电信"
    assert district.routes[1].match_class == "01" and district.routes[1].role == "网格员"


def test_escalation_steps_carry_within_and_after(district):
    small = district.escalations[0]
    assert small.ceiling == "社区" and small.next == "大事"
    assert [s.after.amount for s in small.steps] == [0, 2]
    assert small.steps[1].within == Duration(amount=3, unit=TimeUnit.working_days)


def test_formula_override_and_vetoes(district):
    (f,) = district.formulas
    assert (f.role, f.level, f.grade, f.total) == ("网格员", "网格", "A", 100)
    assert sum(i.weight for i in f.indicators) == 100
    assert [t.code for t in f.tiers][0] == "优秀"
    assert f.vetoes[0].bars == ("优秀",) and f.vetoes[0].at_least == 3


def test_registers_points_projects_meetings(district):
    household = {f.code: f for f in district.register("household")}
    assert household["住房"].choices == ("自有", "租赁", "单位宿舍") and household["住房"].required
    assert household["电话"].critical and household["人口"].max == 30
    assert district.points.rewards[0].cost == 5
    stages = district.projects[0].stages
    assert [s.share for s in stages] == [0.4, 0.6]
    assert district.meetings[0].every == Duration(amount=10, unit=TimeUnit.days)


def test_version_is_stable_and_content_addressed(district):
    again = dsl.load(FIXTURES / "district.wg")
    assert again.version == district.version
    assert dsl.load(FIXTURES / "basic.wg").version != district.version


def test_import_from_the_shipped_package(tmp_path):
    (tmp_path / "d.wg").write_text("ruleset d\nimport national\nextends national\n", encoding="utf-8")
    r = dsl.load(tmp_path / "d.wg")
    assert r.base == "national" and r.items["0103"].label.zh == "通信交接箱"
    assert [s.code for s in r.lifecycle.states][:3] == ["发现", "立案", "派遣"]


def test_summary_names_the_main_parts(district):
    text = dsl.summary(district, "en")
    for part in ("levels:", "catalogue: 2 classes, 3 items", "lifecycle:", "escalation:", "scoring:"):
        assert part in text


def test_a_role_can_carry_a_stipend(tmp_path):
    (tmp_path / "d.wg").write_text("ruleset d\nimport national\nextends national\n"
                                   "role 网格长 \"网格长\" at 网格 stipend 400 per month\n", encoding="utf-8")
    role = next(r for r in dsl.load(tmp_path / "d.wg").roles if r.code == "网格长")
    assert (role.stipend, role.stipend_period) == (400, "month")
    assert next(r for r in dsl.load(tmp_path / "d.wg").roles if r.code == "网格员").stipend is None


def test_a_role_can_carry_a_headcount_per_grid_cell(tmp_path):
    (tmp_path / "d.wg").write_text("ruleset d\nimport national\nextends national\n"
                                   "role 社工 \"社区工作者\" at 社区 headcount 6 stipend 400 per month\n", encoding="utf-8")
    roles = {r.code: r for r in dsl.load(tmp_path / "d.wg").roles}
    assert (roles["社工"].headcount, roles["社工"].stipend) == (6, 400)
    assert roles["网格员"].headcount is None


def test_a_modified_copy_has_its_own_version():
    from wangge.core.ruleset import Ruleset

    original = Ruleset(name="a")
    assert original.version  # cached on the original
    copy = original.model_copy(update={"name": "b"})
    assert copy.version != original.version
    assert copy.version == Ruleset.from_json(copy.canonical_json()).version
