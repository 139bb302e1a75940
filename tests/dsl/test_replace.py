"""`lifecycle replace`: a district with its own workflow on top of a baseline."""
from __future__ import annotations

from wangge import dsl
from support.rules import FIXTURES, only

OWN = """ruleset 区 "区"
import national
extends national
lifecycle replace {
  state 发现 initial
  state 立案
  state 处置
  state 审核
  state 结案 final closed
  transition 上报: 发现 -> 立案 by 网格员 requires photo
  transition 派遣: 立案 -> 处置 by 指挥中心 office
  transition 送审: 处置 -> 审核 by 网格员
  transition 办结: 审核 -> 结案 by 网格员 requires onsite_confirmation
}
"""


def test_replace_drops_the_base_states_and_keeps_the_catalogue():
    ruleset = dsl.loads(OWN, "own.wg", FIXTURES)
    assert [s.code for s in ruleset.lifecycle.states] == ["发现", "立案", "处置", "审核", "结案"]
    assert "作废" not in {t.code for t in ruleset.lifecycle.transitions}
    assert "0101" in ruleset.items


def test_replace_without_extends_is_an_error():
    text = "ruleset x\nlevel 网格\nrole 网格员 at 网格\nlifecycle replace {\n  state a initial final closed\n}\n"
    found = only(text)
    assert (found.line, found.col) == (4, 1)
    assert found.message == "`lifecycle replace` replaces the extended ruleset's lifecycle, but this file extends none"
