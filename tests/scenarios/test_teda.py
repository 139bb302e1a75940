"""TEDA (seed 000): 400 households per worker; the broken telecom box, photographed
on patrol, repaired the next day, closed only after the reporter confirms on site."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from wangge.core.errors import TransitionError, ValidationFailed
from wangge.core.models import Visit
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


def test_a_forum_post_becomes_a_case(teda):
    post = teda.report("赵巧珍", "TEDA.1.TF.03", "0201", "论坛", PATROL, description="人行绿灯时间过短")
    assert post.decision.department == "城管" and post.decision.deadline > PATROL


def test_eight_visits_totalling_380_minutes(teda):
    with teda.store.write(actor="赵巧珍") as rec:
        home = rec.insert("household", {"grid_id": teda.grids["TEDA.1.TF.03"], "困难": True})
        for minutes in (60, 45, 50, 40, 55, 35, 45, 50):
            rec.insert("visit", {"household_id": home, "grid_id": teda.grids["TEDA.1.TF.03"],
                                 "worker_id": teda.workers["赵巧珍"], "minutes": minutes, "purpose": "走访谈心"})
    with teda.store.read() as conn:
        count, total = conn.execute(select(func.count(), func.sum(Visit.minutes))).one()
    assert (count, total) == (8, 380)
