"""Routes: the first match in file order decides; a route that can never fire is a warning."""
from __future__ import annotations

from datetime import datetime

from wangge import dsl
from wangge.core.routing import CaseView, Router

HEAD = """ruleset r
level 街道
level 社区
level 网格
role 网格员 at 网格
role 社工 at 社区
role 值班长 at 街道
department 电信
channel 巡查
channel 热线
severity 一般 rank 0
severity 重大 rank 2
class 01 "设施" {
  item 01 "井盖"
  item 03 "通信交接箱"
}
class 02 "事务" {
  item 01 "纠纷"
}
lifecycle {
  state 发现 initial
  state 结案 final closed
  transition 办结: 发现 -> 结案 by 网格员
}
"""


def owner(ruleset, item, channel="巡查", severity=None):
    case = CaseView("c", item, (("街道", "S"), ("社区", "S.1"), ("网格", "S.1.1")), channel, datetime(2026, 11, 2, 9),
                    severity=severity)
    return Router(ruleset).route(case).owner


def test_an_earlier_severity_route_beats_a_later_channel_route():
    ruleset = dsl.loads(HEAD + "route severity 重大 to 街道 by 值班长\nroute channel 热线 to 社区 by 社工\n")
    assert owner(ruleset, "0201", "热线", "重大") == "值班长 at 街道 S"
    assert owner(ruleset, "0201", "热线", "一般") == "社工 at 社区 S.1"
    swapped = dsl.loads(HEAD + "route channel 热线 to 社区 by 社工\nroute severity 重大 to 街道 by 值班长\n")
    assert owner(swapped, "0201", "热线", "重大") == "社工 at 社区 S.1"


def test_the_trace_names_the_route_that_decided_by_its_place_in_the_file():
    ruleset = dsl.loads(HEAD + "route item 0103 to department 电信\nroute class 01 to 网格 by 网格员\n")
    case = CaseView("c", "0103", (("网格", "G"),), "巡查", datetime(2026, 11, 2, 9))
    decision = Router(ruleset).route(case)
    assert decision.owner == "department 电信"
    assert any(line.startswith("route #1 (by item 0103)") for line in decision.trace)
    assert owner(ruleset, "0101") == "网格员 at 网格 S.1.1"


def test_a_route_shadowed_by_an_earlier_one_is_a_warning_at_its_place(tmp_path):
    path = tmp_path / "r.wg"
    path.write_text(HEAD + "route class 01 to 网格 by 网格员\nroute item 0103 to department 电信\n"
                    "route channel 热线 to 社区 by 社工\nroute channel 热线 severity 重大 to 街道 by 值班长\n",
                    encoding="utf-8")
    lines = HEAD.count("\n")
    found = dsl.check([path])
    assert [(d.line, d.col, d.severity) for d in found] == [(lines + 2, 1, "warning"), (lines + 4, 1, "warning")]
    assert found[0].message == (f"this route can never fire: the earlier route at {path}:{lines + 1}:1 (class 01) "
                                "takes every case it matches")
    assert "first match wins: move this one above it" in found[0].hint
    assert f"{path}:{lines + 3}:1 (channel 热线)" in found[1].message
    dsl.load(path)  # warnings do not stop the rules from compiling


def test_a_route_whose_item_is_in_another_class_never_fires(tmp_path):
    path = tmp_path / "r.wg"
    path.write_text(HEAD + "route class 02 item 0103 to department 电信\n", encoding="utf-8")
    (found,) = dsl.check([path])
    assert found.message == "this route can never fire: item 0103 is in class 01, not 02"


def test_a_route_of_an_extending_file_overrides_the_base_without_a_warning(tmp_path):
    (tmp_path / "base.wg").write_text(HEAD + "route item 0103 to department 电信\n", encoding="utf-8")
    (tmp_path / "top.wg").write_text("ruleset top\nimport base\nextends r\nroute class 01 to 网格 by 网格员\n",
                                     encoding="utf-8")
    assert dsl.check([tmp_path / "top.wg"]) == []
    assert owner(dsl.load(tmp_path / "top.wg"), "0103") == "网格员 at 网格 S.1.1"
