"""Forms made from the rule file: widgets, sections, reading a submission, messages beside fields."""
from __future__ import annotations

from hypothesis import given, strategies as st

from wangge import rulesets
from wangge.app.fieldforms import SECTION_SIZE, form_for, place_problems, read_form, shown
from wangge.core.ruleset import FieldSpec, FieldType, Label, Register
from wangge.core.validators import field_problems, validators


TEDA = rulesets.load("teda")


class Submitted(dict):
    """A browser's form: a value per name, several for checkboxes."""

    def getlist(self, name):
        value = self.get(name)
        return value if isinstance(value, list) else ([] if value is None else [value])


def _wide(count: int = 77):
    """TEDA's rule file with a household card of ``count`` fields, as the seed's resident database has."""
    teda = TEDA
    extra = tuple(FieldSpec(code=f"项{n:02d}", label=Label(zh=f"第{n}项", en=f"Item {n}"),
                            type=FieldType.integer if n % 3 else FieldType.text, min=0 if n % 3 else None)
                  for n in range(count - len(teda.register("household"))))
    registers = tuple(Register(entity=r.entity, fields=r.fields + extra) if r.entity == "household" else r
                      for r in teda.registers)
    return teda.model_copy(update={"registers": registers})


def test_every_field_type_of_the_household_card_gets_its_widget_and_marks():
    form = form_for(TEDA, "household")
    widgets = {f.code: f.widget for f in form.fields}
    assert widgets["户主"] == "text" and widgets["身份证"] == "idnumber" and widgets["人口"] == "number"
    assert widgets["电话"] == "tel" and widgets["住房"] == "select" and widgets["车辆"] == "checks"
    assert widgets["低保"] == "yesno"
    fields = {f.code: f for f in form.fields}
    assert fields["户主"].required and fields["户主"].critical and (fields["人口"].min, fields["人口"].max) == (1, 30)
    assert len(form.sections) == 1  # a short card is one page


def test_a_77_field_card_is_split_into_sections_in_rule_file_order():
    ruleset = _wide()
    form = form_for(ruleset, "household")
    assert len(form.fields) == 77
    assert [f.code for f in form.fields] == [s.code for s in ruleset.register("household")]
    assert all(len(s.fields) <= SECTION_SIZE for s in form.sections) and len(form.sections) == 7
    assert form.sections[0].title.zh.startswith("第 1 部分")


def test_a_submission_is_read_into_typed_values_and_unreadable_inputs_are_named():
    form = form_for(TEDA, "household")
    reading = read_form(form, Submitted({"户主": " 王芳 ", "人口": "3", "建筑面积": "85.5", "低保": "no",
                                         "车辆": ["汽车", "电动车"], "老人": "两个", "电话": ""}))
    assert reading.values == {"户主": "王芳", "人口": 3, "建筑面积": 85.5, "低保": False, "车辆": ["汽车", "电动车"]}
    assert reading.errors == {"老人": "请填整数"}
    assert reading.raw["老人"] == "两个"  # what the worker typed comes back


def test_the_validators_messages_land_beside_their_fields():
    teda = TEDA
    problems = field_problems(teda, "household", {"人口": 99, "电话": "123"}, new=True)
    placed, loose = place_problems(problems, validators(teda)["household"].names)
    assert set(placed) == {"人口", "电话", "户主"} and not loose
    assert placed["户主"] == "应为必填"  # the field's name is beside it already; an empty 'got' says nothing
    assert placed["人口"].startswith("应为不大于 30")


@given(st.integers(min_value=-10**6, max_value=10**6))
def test_an_integer_shown_in_its_input_reads_back_the_same(number):
    form = form_for(TEDA, "household")
    field = next(f for f in form.fields if f.code == "人口")
    assert read_form(form, Submitted({"人口": shown(field, number)})).values["人口"] == number
