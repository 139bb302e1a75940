"""One test per kind of error: the exact message, its place and its hint."""
from __future__ import annotations

import pytest

from support.rules import BASIC, diagnostics, lines_of, only

BASE_LINES = lines_of(BASIC)


def after_base(snippet: str):
    """The one diagnostic of BASIC + snippet, with its line counted from the snippet."""
    d = only(BASIC + snippet)
    return d.line - BASE_LINES, d.col, d.message, d.hint


# (snippet appended to a valid file, line in snippet, col, message, hint)
CASES = {
    "evidence from the reporter that a person cannot give": (
        "lifecycle {\n  transition 回访结案: 处置 -> 结案 by 网格员 requires callback from reporter\n}\n",
        2, 3, "transition 回访结案 asks for evidence from the reporter, but requires only callback",
        "`from reporter` applies to onsite_confirmation or signature: add one, or drop `from reporter`"),
    "unknown reference": (
        "route class 01 to 网格 by 网格猿\n",
        1, 25, "role '网格猿' is used but not defined", "did you mean 网格员?"),
    "unknown level": (
        "role 社工 at 街区\n",
        1, 12, "unknown level '街区'", "did you mean 社区?"),
    "unknown numeric code lists the defined ones": (
        "route item 0102 to 网格\n",
        1, 12, "unknown item '0102'", "defined items: 0101"),
    "duplicate code": (
        "role 网格员 \"又一个\"\n",
        1, 1, "duplicate role code '网格员'",
        "'网格员' is already defined at t.wg:5:1; choose another code"),
    "role used but not defined": (
        "meeting 例会 every 7 days roles 网格长\n",
        1, 31, "role '网格长' is used but not defined", "did you mean 网格员?"),
    "weights do not add up": (
        "formula f for worker total 100 {\n  indicator a closed / registered weight 60\n"
        "  indicator b satisfaction weight 30\n}\n",
        1, 1, "weights of formula f add up to 90, not 100", "60 + 30 = 90; adjust them to total 100"),
    "tier gap": (
        "formula f for worker { indicator a closed weight 100\n  tier 优 90..100\n  tier 差 0..80\n}\n",
        2, 3, "tiers of formula f leave a gap: 80..90 has no tier",
        "start tier 优 at 80, or add a tier for the gap"),
    "tier overlap": (
        "formula f for worker { indicator a closed weight 100\n  tier 优 85..100\n  tier 差 0..90\n}\n",
        2, 3, "tier 优 of formula f overlaps another tier at 85..90", "start tier 优 at 90"),
    "tiers short of the total": (
        "formula f for worker { indicator a closed weight 100\n  tier 差 0..90\n}\n",
        2, 3, "tiers of formula f leave a gap: 90..100 has no tier",
        "let the top tier reach the total, 100"),
    "unknown tier in a veto": (
        "formula f for worker { indicator a closed weight 100\n  tier 优 0..100\n"
        "  veto v tier_drops_year >= 3 bars 优秀\n}\n",
        3, 36, "unknown tier '优秀'", "did you mean 优?"),
    "unknown metric": (
        "formula f for worker { indicator a closd weight 100 }\n",
        1, 36, "unknown metric 'closd'", "did you mean closed?"),
    "escalation step exceeds its parent": (
        "escalation 小事 {\n  step 网格 by 网格员 within 5 working_days\n  step 社区 within 3 working_days\n}\n",
        2, 3, "step 网格 of escalation 小事 allows 5 working_days, longer than its parent step 社区 "
        "(3 working_days)", "shorten it to at most 3 working_days or lengthen the parent step"),
    "escalation going down": (
        "escalation 小事 {\n  step 社区 within 1 days\n  step 网格 within 2 days\n}\n",
        3, 3, "escalation 小事 goes from 社区 to 网格, not upwards",
        "list steps from the lowest level to the highest"),
    "escalation passes its ceiling": (
        "escalation 小事 ceiling 网格 {\n  step 网格 within 1 days\n  step 社区 within 2 days\n}\n",
        3, 3, "escalation 小事 passes its ceiling 网格 at 社区",
        "stop at 网格, or continue with `then` into a path for bigger matters"),
    "field min above max": (
        "register household { field 人口 integer min 5 max 1 }\n",
        1, 22, "field 人口 of household can never hold: min 5 is above max 1", "swap the bounds"),
    "choice without values": (
        "register household { field 住房 choice required }\n",
        1, 22, "field 住房 of household is choice but lists no values",
        "add the allowed values: of 自有, 租赁"),
    "min on a text field": (
        "register household { field 门牌 text min 1 }\n",
        1, 22, "field 门牌 of household is text: min and max apply to integer and decimal fields",
        "remove min/max or change the type"),
    "invalid pattern": (
        "register household { field 门牌 text pattern \"(\" }\n",
        1, 36, "field 门牌 of household has an invalid pattern: missing ), unterminated subpattern",
        'write a Python regular expression, e.g. "^\\\\d{11}$"'),
    "sizing range that can never hold": (
        "level 单元 { buildings_per_grid 5..3 }\n",
        1, 31, "buildings per grid 5..3 can never hold", "write the smaller number first: 3..5"),
    "project shares": (
        "project p { stage a pays 40% stage b pays 50% }\n",
        1, 1, "stage payments of project p add up to 90%, not 100%",
        "adjust the `pays` shares so they total 1 (or 100%)"),
    "stipend that is not positive": (
        "role 网格长 at 网格 stipend 0 per month\n",
        1, 1, "role 网格长 has a stipend of 0", "give an amount above 0, or leave it out"),
    "headcount that is not a whole number": (
        "role 社工 at 社区 headcount 2.5\n",
        1, 1, "role 社工 has a headcount of 2.5", "give a whole number of workers, 1 or more"),
    "headcount without a level": (
        "role 社工 headcount 6\n",
        1, 1, "role 社工 has a headcount but no level to count it in",
        "say where each group of 6 works: role 社工 at LEVEL headcount 6"),
    "setting given twice": (
        "settings { lease 7 days lease 14 days }\n",
        1, 1, "'lease' is given 2 times in one block", "keep one; the values disagree or repeat"),
    "bad date": (
        "settings { holidays 2026-02-30 }\n",
        1, 21, "'2026-02-30' is not a calendar date", "write dates as YYYY-MM-DD"),
    "unknown time zone": (
        "settings { timezone \"Asia/Beijing\" }\n",
        1, 1, "unknown time zone 'Asia/Beijing'", 'use an IANA name such as "Asia/Shanghai"'),
}


@pytest.mark.parametrize("snippet, line, col, message, hint", CASES.values(), ids=CASES.keys())
def test_error_kind(snippet, line, col, message, hint):
    assert after_base(snippet) == (line, col, message, hint)


def test_escalation_cycle_prints_the_path():
    d = only(BASIC + "escalation 甲 then 乙 { step 网格 within 1 days }\n"
                     "escalation 乙 then 甲 { step 社区 within 1 days }\n")
    assert (d.message, d.hint) == ("escalation cycle: 甲 -> 乙 -> 甲",
                                   "a `then` chain must end at a path without `then`")


def test_unreachable_state_and_state_that_cannot_close():
    text = BASIC.replace("lifecycle {", "lifecycle {\n  state 孤岛 \"孤岛\"")
    found = {(d.line, d.message, d.hint) for d in diagnostics(text)}
    assert found == {
        (15, "state 孤岛 is unreachable from the initial state 发现", "add a transition into 孤岛, or remove it"),
        (15, "state 孤岛 has no way to close: no path leads to a final state",
         "add a transition from 孤岛 towards 结案"),
    }


def test_lifecycle_needs_one_initial_state():
    d = diagnostics(BASIC.replace("state 处置 \"处置\" / \"Handling\"", "state 处置 \"处置\" initial"))
    assert d[0].message == "the lifecycle needs exactly one initial state, found 2"
    assert d[0].hint == "initial states: 发现, 处置; keep one"


def test_extends_names_an_import():
    d = only("ruleset a\nimport national\nextends nationl\n")
    assert (d.line, d.col, d.message, d.hint) == (
        3, 9, "`extends nationl` names a ruleset that is not imported", "did you mean national?")


def test_redefining_an_import_without_extends():
    d = only("ruleset a\nimport national\nrole 网格员\n")
    assert d.message == "role '网格员' is already defined at national.wg:20:1"
    assert d.hint == "to replace it, write `extends` with the ruleset that defines it"


def test_missing_import():
    d = only("ruleset a\nimport nowhere\n")
    assert d.message == "cannot find the imported rule file 'nowhere.wg'"
    assert d.hint.startswith("looked in ") and d.hint.endswith("and the package wangge.rulesets")


def test_import_cycle(tmp_path):
    (tmp_path / "a.wg").write_text("ruleset a\nimport b\n", encoding="utf-8")
    (tmp_path / "b.wg").write_text("ruleset b\nimport a\n", encoding="utf-8")
    from wangge import dsl

    (d,) = dsl.check([tmp_path / "a.wg"])
    assert d.message == "import cycle: a.wg -> b.wg -> a.wg"
    assert d.file.endswith("b.wg") and (d.line, d.col) == (2, 1)


def test_all_errors_of_a_file_at_once():
    text = BASIC + "role 社工 at 街区\nroute class 09 to 网格 by 网格猿\nregister household { field a integer min 5 max 1 }\n"
    assert len(diagnostics(text)) == 4


def test_full_format_with_caret_under_wide_characters():
    d = only(BASIC + "role 社工 at 街区\n")
    assert d.format() == (
        f"t.wg:{BASE_LINES + 1}:12: unknown level '街区'\n"
        "    role 社工 at 街区\n"
        "                 ^\n"
        "  hint: did you mean 社区?"
    )
