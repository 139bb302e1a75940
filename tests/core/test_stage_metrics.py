"""Formulas over one stage's timeliness (on_time/left) and over case register fields (field)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from wangge import dsl
from wangge.core import casework, store
from support.rules import diagnostics

SH = timezone(timedelta(hours=8))
RULES = """ruleset h
level 社区
role 社工 at 社区
channel 热线 callback
register case { field 回访结果 "回访结果" choice of 满意, 不满意 }
class 17 "热线" {
  item 01 "求助" { sla 受理 2 working_hours, 处置 3 working_days }
}
lifecycle {
  state 受理 initial
  state 处置
  state 办结 final closed
  transition 联系: 受理 -> 处置 by 社工
  transition 办结: 处置 -> 办结 by 社工 requires callback
}
formula 热线 for worker role 社工 total 100 {
  indicator 及时联系 "及时联系" on_time(受理) / left(受理) weight 50
  indicator 满意率 "回访满意率" field(回访结果=满意) / field(回访结果) weight 50
  tier 合格 0..100
}
"""


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=SH)


def test_contacted_within_the_respond_deadline_and_the_callers_verdict_score(tmp_path):
    ruleset = dsl.loads(RULES)
    s = store.init(str(tmp_path / "o.db"), "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        grid = rec.insert("grid_cell", {"code": "BY", "level": "社区", "name": "白银社区"})
        worker = rec.insert("worker", {"name": "李明", "role": "社工"})
        rec.insert("assignment", {"worker_id": worker, "grid_id": grid})
    # (reported, contacted, closed, verdict): the respond stage allows 2 working hours from the report.
    calls = [(at(12, 9), at(12, 10), at(13, 10), "满意"),  # contacted in 1 h: on time
             (at(12, 9), at(12, 16), at(14, 10), "不满意"),  # contacted after 11:00: late
             (at(13, 9), at(13, 10, 30), at(14, 11), None)]  # on time; no verdict recorded
    for reported, contacted, closed, verdict in calls:
        with s.write(actor=worker) as rec:
            case = casework.report_case(rec, ruleset, item="1701", grid_id=grid, channel="热线", reporter_id=worker,
                                        at=reported).case_id
            casework.move_case(rec, ruleset, case, "联系", role="社工", actor_id=worker, at=contacted)
            casework.move_case(rec, ruleset, case, "办结", role="社工", actor_id=worker, at=closed,
                               evidence=["callback"])
            if verdict:
                rec.update("case", case, {"回访结果": verdict})
    with s.read() as conn:
        (result,) = casework.month_scores(conn, ruleset, 2026, 10)
    s.close()
    metrics = result.metrics
    assert (metrics["on_time(受理)"], metrics["left(受理)"]) == (2, 3)
    assert (metrics["field(回访结果=满意)"], metrics["field(回访结果)"]) == (1, 2)
    # 2 of 3 contacted on time × 50 = 33.33; 1 of 2 verdicts satisfied × 50 = 25.
    assert [p.points for p in result.score.parts] == [33.33, 25.0] and result.score.total == 58.33


def test_metric_mistakes_name_the_state_field_or_value():
    text = (RULES.replace("on_time(受理)", "on_time(受里)").replace("field(回访结果=满意)", "field(回访结果=很满意)")
            .replace("field(回访结果) weight", "field(回访) weight"))
    found = {(d.message, d.hint) for d in diagnostics(text)}
    assert ("unknown state '受里' in on_time(受里)", "did you mean 受理?") in found
    assert ("'很满意' is not a value of case field 回访结果", "did you mean 满意?") in found
    assert ("field(回访) names no field of the case register", "did you mean 回访结果?") in found
