"""SLA and evidence by channel and severity; deadlines counted from the report or from a state's entry."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wangge import dsl
from wangge.core import casework, store
from wangge.core.errors import ValidationFailed
from wangge.core.routing import CaseView, Router
from support.rules import diagnostics

SH = timezone(timedelta(hours=8))
MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=SH)

RULES = """ruleset v
level 社区
level 网格
role 网格员 at 网格
channel 巡查
channel 热线 callback
severity 一般
severity 紧急 rank 2
class 17 "求助" {
  item 01 "求助" {
    severity 一般
    channels 巡查, 热线
    sla 受理 2 working_hours, 处置 3 working_days
    evidence photo
    when channel 热线 { evidence none }
    when severity 紧急 { sla 处置 4 hours }
  }
  item 02 "回访" {
    sla 受理 2 working_hours, 处置 3 working_days, 回访 1 working_days from 处置
  }
  item 03 "自受理" {
    sla 受理 2 working_hours, 处置 3 working_days from report
  }
}
lifecycle {
  state 受理 initial
  state 处置
  state 回访
  state 办结 final closed
  transition 派单: 受理 -> 处置 by 网格员
  transition 回访: 处置 -> 回访 by 网格员
  transition 办结: 回访 -> 办结 by 网格员
}
"""
RULESET = dsl.loads(RULES)
ROUTER = Router(RULESET)


def decide(item, channel="巡查", severity=None, reached=()):
    return ROUTER.route(CaseView("c", item, (("网格", "G"),), channel, MONDAY, severity=severity, reached=reached))


def test_an_urgent_case_has_hours_not_days():
    assert decide("1701").deadline == datetime(2026, 11, 5, 11, 0, tzinfo=SH)  # 2 working hours, then 3 working days
    urgent = decide("1701", severity="紧急")
    assert urgent.deadline == datetime(2026, 11, 2, 13, 0, tzinfo=SH)  # 受理 ends 11:00, then 4 hours
    assert any("SLA of the variant when severity 紧急" in line for line in urgent.trace)


def test_a_hotline_case_needs_no_photo_at_report_but_a_patrol_case_does(tmp_path):
    s = store.init(str(tmp_path / "o.db"), "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, RULESET)
        grid = rec.insert("grid_cell", {"code": "G", "level": "网格", "name": "一网格"})
        worker = rec.insert("worker", {"name": "王芳", "role": "网格员"})
    with s.write(actor=worker) as rec:
        casework.report_case(rec, RULESET, item="1701", grid_id=grid, channel="热线", reporter_id=worker, at=MONDAY)
    with pytest.raises(ValidationFailed, match="照片"):
        with s.write(actor=worker) as rec:
            casework.report_case(rec, RULESET, item="1701", grid_id=grid, channel="巡查", reporter_id=worker,
                                 at=MONDAY)
    s.close()


def test_a_stage_counted_from_the_report_does_not_add_up():
    # 处置 3 working days from Monday 09:00: Thursday 09:00, whatever 受理 took.
    assert decide("1703").stages == (("受理", datetime(2026, 11, 2, 11, 0, tzinfo=SH)),
                                      ("处置", datetime(2026, 11, 5, 9, 0, tzinfo=SH)))


def test_a_stage_counted_from_a_states_entry_uses_when_the_case_got_there():
    planned = decide("1702")
    # 处置 is due to start when 受理 ends (Mon 11:00): the callback is due one working day later.
    assert planned.stages[2] == ("回访", datetime(2026, 11, 3, 11, 0, tzinfo=SH))
    actual = decide("1702", reached=(("处置", datetime(2026, 11, 4, 14, 0, tzinfo=SH)),))
    assert actual.stages[2] == ("回访", datetime(2026, 11, 5, 14, 0, tzinfo=SH))
    assert any("回访 1 working_days from 处置" in line for line in actual.trace)


def test_variant_and_origin_mistakes_are_reported_together():
    text = RULES.replace("when channel 热线 { evidence none }", "when channel 论坛 { evidence none }\n"
                         "    when severity 紧急 { }").replace("from 处置", "from 处理")
    found = {d.message for d in diagnostics(text)}
    assert "unknown channel '论坛'" in found
    assert "this variant of item 1701 changes nothing" in found
    assert "unknown state '处理'" in found
