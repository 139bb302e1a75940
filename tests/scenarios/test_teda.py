"""TEDA (seed 000): 400 households per worker; the broken telecom box, photographed
on patrol, repaired the next day, closed only after the reporter confirms on site."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from wangge.core import casework
from wangge.core.errors import TransitionError, ValidationFailed
from wangge.core.validators import validators
from wangge.core.sizing import grids_needed
from support.scenario import CST, district

PATROL = datetime(2026, 10, 13, 10, 0, tzinfo=CST)  # a Tuesday


@pytest.fixture
def teda(tmp_path):
    d = district("teda", tmp_path / "teda.db")
    d.grid("TEDA", "区", "泰达开发区")
    d.grid("TEDA.1", "街道", "泰达街道", "TEDA")
    d.grid("TEDA.1.TF", "社区", "泰丰社区", "TEDA.1")
    d.grid("TEDA.1.TF.03", "网格", "泰丰3网格", "TEDA.1.TF")
    d.worker("赵巧珍", "网格员", "TEDA.1.TF.03")
    d.worker("李明", "网格员", "TEDA.1.TF.03")
    d.worker("系统中心", "指挥中心")
    d.worker("电信维修", "专业部门")
    d.worker("评估公司", "第三方")
    yield d
    d.store.close()


def test_taifeng_needs_ten_grids_at_400_households_each(teda):
    grid = next(level for level in teda.ruleset.levels if level.code == "网格")
    assert grid.sizing.households_per_grid == 400
    assert grids_needed(3902, grid.sizing) == 10  # 泰丰社区: 3902 households, 10 grids


def test_the_telecom_box_needs_a_photo_dispatch_repair_and_on_site_confirmation(teda):
    with pytest.raises(ValidationFailed, match="照片"):
        teda.report("赵巧珍", "TEDA.1.TF.03", "0103", "巡查", PATROL, description="电信通讯箱破损,电线裸露")
    case = teda.report("赵巧珍", "TEDA.1.TF.03", "0103", "巡查", PATROL,
                       description="电信通讯箱破损,电线裸露", photos=["sha256:box"])
    assert case.decision.department == "电信"
    station = PATROL + timedelta(hours=2)
    assert teda.move(case.case_id, "上报", "网格员", "赵巧珍", station, evidence=["photo"]) == "立案"
    assert teda.move(case.case_id, "派遣", "指挥中心", "系统中心", station + timedelta(minutes=20)) == "派遣"
    assert teda.move(case.case_id, "接单", "专业部门", "电信维修", station + timedelta(hours=1)) == "处置"
    next_noon = datetime(2026, 10, 14, 12, 0, tzinfo=CST)
    assert teda.move(case.case_id, "修复", "专业部门", "电信维修", next_noon) == "审核"
    with pytest.raises(TransitionError, match="on-site confirmation"):
        teda.move(case.case_id, "结案", "网格员", "赵巧珍", next_noon + timedelta(hours=1))
    with pytest.raises(TransitionError) as other:  # the confirmation is the reporter's, not another worker's
        teda.move(case.case_id, "结案", "网格员", "李明", next_noon + timedelta(hours=1),
                  evidence=["onsite_confirmation"])
    assert other.value.reason == "not_reporter" and str(other.value) == (
        f"move 结案 from state 审核 by 网格员 needs the confirmation of the worker who reported the case "
        f"({teda.workers['赵巧珍']}), not {teda.workers['李明']}")
    closed = teda.move(case.case_id, "结案", "网格员", "赵巧珍", next_noon + timedelta(hours=1),
                       evidence=["onsite_confirmation"], satisfied=True)
    assert closed == "结案"
    assert teda.move(case.case_id, "评估", "第三方", "评估公司", next_noon + timedelta(days=3), spot_check=95) == "评估"
    worker = teda.scores(2026, 10)["赵巧珍"]
    assert worker.metrics["closed"] == 1 and worker.metrics["closed_on_time"] == 1
    assert worker.metrics["duty_score"] == 1.5 and worker.metrics["spot_check"] == 95


def test_a_forum_post_becomes_a_case_fixed_within_five_working_days(teda):
    post = teda.report("赵巧珍", "TEDA.1.TF.03", "0201", "论坛", PATROL, description="人行绿灯时间过短")
    assert post.decision.department == "城管"
    # "几天后" read as 5 working days of 处置, after a working day to find it and an hour to register it.
    assert dict(post.decision.stages) == {"发现": datetime(2026, 10, 14, 10, 0, tzinfo=CST),
                                          "立案": datetime(2026, 10, 14, 11, 0, tzinfo=CST),
                                          "处置": datetime(2026, 10, 21, 11, 0, tzinfo=CST)}
    assert post.decision.deadline == datetime(2026, 10, 21, 11, 0, tzinfo=CST)


def test_eight_visits_to_one_family_total_380_minutes(teda):
    """"社工站站长刘红霞和社工高翔先后进行了8次总计380分钟的走访谈心"."""
    teda.worker("刘红霞", "社工站站长", "TEDA.1.TF")
    teda.worker("高翔", "网格员", "TEDA.1.TF.03")
    form = validators(teda.ruleset)["visit"]
    with pytest.raises(ValidationFailed) as refused:
        form.validate({"household": "h", "minutes": 0})
    assert refused.value.problems == ["时长(分钟)(minutes):应为不小于 1,实际为 0", "走访方式(方式):应为必填,实际为 None"]
    with teda.store.write(actor="高翔") as rec:
        home = rec.insert("household", {"grid_id": teda.grids["TEDA.1.TF.03"], "困难": True})
        for n, minutes in enumerate((60, 45, 50, 40, 55, 35, 45, 50)):
            visit = form.validate({"household": home, "minutes": minutes, "方式": "走访谈心"})
            rec.insert("visit", {"household_id": visit["household"], "grid_id": teda.grids["TEDA.1.TF.03"],
                                 "worker_id": teda.workers["刘红霞" if n % 2 else "高翔"], "minutes": visit["minutes"],
                                 "at": PATROL + timedelta(days=n), "fields": {"方式": visit["方式"]}})
    start, end = casework.month_window(teda.ruleset, 2026, 10)
    with teda.store.read() as conn:
        family = casework.grid_metrics(conn, teda.ruleset, [teda.grids["TEDA.1.TF.03"]], start, end)
    assert (family["visits"], family["visit_minutes"], family["households_visited"]) == (8, 380, 1)
