"""An escalation step to the case's own department: the one its route gave it."""
from __future__ import annotations

from datetime import datetime

from wangge import dsl
from wangge.core.routing import CaseView, Router

RULES = """ruleset d
level 街道
level 社区
level 网格
role 网格员 at 网格
role 指挥中心 at 街道 office
department 电信 "电信公司"
department 城管
class 01 "设施" escalate 设施 {
  item 01 "井盖"
  item 03 "通信交接箱"
}
lifecycle {
  state 发现 initial
  state 结案 final closed
  transition 办结: 发现 -> 结案 by 网格员
}
route item 0103 to department 电信
escalation 设施 ceiling 街道 {
  step 网格 by 网格员 within 2 working_days
  step 街道 by 指挥中心 to own department within 3 working_days
}
"""
ROUTER = Router(dsl.loads(RULES))
GRIDS = (("街道", "S"), ("社区", "S.1"), ("网格", "S.1.1"))


def test_the_step_goes_to_the_department_of_the_cases_route():
    telecom = ROUTER.route(CaseView("c", "0103", GRIDS, "巡查", datetime(2026, 11, 2, 9)))
    assert [(s.level, s.department) for s in telecom.chain] == [("网格", None), ("街道", "电信")]
    assert any("step 街道 goes to the case's own department: 电信" in line for line in telecom.trace)


def test_a_case_whose_route_names_no_department_says_so():
    cover = ROUTER.route(CaseView("c", "0101", GRIDS, "巡查", datetime(2026, 11, 2, 9)))
    assert cover.chain[1].department is None
    assert any("none (its route names no department)" in line for line in cover.trace)


def test_the_chinese_keyword_compiles_the_same():
    ruleset = dsl.loads(RULES.replace("to own department", "to 本部门"))
    assert ruleset.escalations[0].steps[1].own_department
