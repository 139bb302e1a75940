"""One run reports syntax errors and the semantic errors of the statements that parse, with hints."""
from __future__ import annotations

from support.rules import BASIC, diagnostics, only


def test_a_syntax_error_and_a_semantic_error_are_reported_together():
    text = BASIC + "role 社工 at 社区 headcount many\nrole 巡查员 at 街区\n"
    found = diagnostics(text)
    lines = BASIC.count("\n")
    assert [(d.line, d.message.split(":")[0]) for d in found] == [
        (lines + 1, "syntax error"),
        (lines + 2, "unknown level '街区'"),
    ]
    assert found[1].hint == "did you mean 社区?"


def test_references_to_what_a_broken_statement_defines_are_not_reported_twice():
    # The broken role would have defined 社工: its use below is not a second error.
    text = BASIC + "role 社工 at 社区 headcount many\nmeeting 周会 every 7 days roles 社工\n"
    (found,) = diagnostics(text)
    assert found.message.startswith("syntax error")


def test_full_width_punctuation_gets_a_hint():
    text = BASIC.replace("transition 办结: 处置 -> 结案", "transition 办结： 处置 -> 结案")
    found = only(text)
    assert found.message.startswith("syntax error") and found.col == found.source_line.index("：") + 1
    assert found.hint.startswith("'：' is full-width punctuation: type the ASCII ':' instead")


def test_a_full_width_comma_in_a_list():
    text = BASIC.replace("evidence photo", "evidence photo，onsite_confirmation")
    assert "'，' is full-width punctuation: type the ASCII ','" in only(text).hint


def test_an_unknown_state_offers_the_nearest_name_and_to_declare_it():
    text = BASIC.replace("sla 处置 1 working_days", "sla 处理 1 working_days")
    found = only(text)
    assert found.message == "unknown state '处理'"
    assert found.hint == 'did you mean 处置?; or declare it inside lifecycle { … }: state 处理 "处理"'
