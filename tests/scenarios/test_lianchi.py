"""Lianchi (seed 004): a resident orders from the volunteer menu, a social worker
sends a volunteer, the volunteer earns points, 5 points buy a toy set; a project
is paid in stages by third-party evaluation; trifles stay in the building unit."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from wangge.core import casework, meetings, periods, points, projects
from wangge.core.errors import PointsError, TransitionError, UsageError, ValidationFailed
from wangge.core.validators import validators
from support.scenario import CST, district

T = datetime(2026, 10, 19, 9, 0, tzinfo=CST)


@pytest.fixture
def lianchi(tmp_path):
    d = district("lianchi", tmp_path / "lc.db")
    d.grid("LC", "区", "莲池区")
    d.grid("LC.WY", "街道", "五尧乡", "LC")
    d.grid("LC.WY.XH", "社区", "兴华苑社区", "LC.WY")
    d.grid("LC.WY.XH.1", "网格", "兴华苑1网格", "LC.WY.XH")
    d.grid("LC.WY.XH.1.3", "单元", "3号楼2单元", "LC.WY.XH.1")
    d.worker("社工小李", "社工", "LC.WY.XH")
    d.worker("志愿者老王", "志愿者", "LC.WY.XH.1")
    with d.store.write(actor="office") as rec:
        home = rec.insert("household", {"grid_id": d.grids["LC.WY.XH.1"], "head_name": "王奶奶"})
        d.volunteer = rec.insert("resident", {"household_id": home, "grid_id": d.grids["LC.WY.XH.1"], "name": "老王"})
    yield d
    d.store.close()


def test_a_menu_order_is_served_by_a_volunteer_who_earns_points_for_a_toy_set(lianchi):
    """点单式: "社区居民根据菜单进行点单,由社工组织联系居民服务的志愿者"; 自助式: "每参与一次公益活动
    或志愿服务积一分 ... 兑换一套玩具仅需5个积分". Five errands closed earn five points."""
    for day in range(5):
        at = T + timedelta(days=day)
        order = lianchi.report("社工小李", "LC.WY.XH.1", "3202", "点单", at, description="独居老人买菜",
                               fields={"service": "买菜", "volunteer": lianchi.volunteer})
        assert order.decision.role == "社工"
        lianchi.move(order.case_id, "上报", "社工", "社工小李", at + timedelta(minutes=10))
        lianchi.move(order.case_id, "派遣", "社工", "社工小李", at + timedelta(minutes=20))
        lianchi.move(order.case_id, "接单", "志愿者", "志愿者老王", at + timedelta(hours=1))
        lianchi.move(order.case_id, "反馈", "志愿者", "志愿者老王", at + timedelta(hours=2))
        with pytest.raises(TransitionError, match="signature"):  # the record is signed before it is filed
            lianchi.move(order.case_id, "核查", "社工", "社工小李", at + timedelta(hours=3))
        assert lianchi.move(order.case_id, "核查", "社工", "社工小李", at + timedelta(hours=3),
                            evidence=["signature"]) == "结案"
    with lianchi.store.read() as conn:
        assert points.balance(points.ledger(conn, lianchi.volunteer), lianchi.volunteer) == 5
    with lianchi.store.write(actor="社工小李") as rec:
        toy = points.record_redemption(rec, lianchi.ruleset, lianchi.volunteer, "玩具", T + timedelta(days=6))
        assert toy.delta == -5
        with pytest.raises(PointsError, match="costs 5 points, the balance is 0"):
            points.record_redemption(rec, lianchi.ruleset, lianchi.volunteer, "玩具", T + timedelta(days=7))
    with lianchi.store.read() as conn:
        ledger = points.ledger(conn, lianchi.volunteer)
    assert [(e.delta, e.rule) for e in ledger] == [(1, "买菜")] * 5 + [(-5, "玩具")]


def test_a_project_is_paid_in_stages_by_third_party_evaluation(lianchi):
    (project,) = lianchi.ruleset.projects
    paid = projects.payments(project, {"中期": 82})
    assert [(p.stage, p.amount, p.paid) for p in paid] == [("中期", 250000.0, True), ("终期", 0.0, False)]
    failed = projects.payments(project, {"中期": 82, "终期": 55})
    assert failed[1].paid is False and "below the 60 required" in failed[1].why


def test_the_projects_delivery_log_counts_its_hours_and_activities_against_the_contract(lianchi):
    """"设计推出15000个工时的社区基础服务项目 ... 合同明确至少完成40个社区文化活动和社区心理健康矫治案例":
    by the mid-term, 160 days of a six-person team's 8-hour days and 22 activities."""
    with lianchi.store.write(actor="office") as rec:
        for day in range(160):
            projects.log(rec.conn, lianchi.ruleset, "基础服务项目", "hours", T + timedelta(days=day), hours=48)
        for n in range(22):
            projects.log(rec.conn, lianchi.ruleset, "基础服务项目", "activity", T + timedelta(days=7 * n))
        with pytest.raises(UsageError, match="work hours must be above 0"):
            projects.log(rec.conn, lianchi.ruleset, "基础服务项目", "hours", T, hours=0)
    with lianchi.store.read() as conn:
        progress = projects.progress(conn, lianchi.ruleset, "基础服务项目")
    assert progress.lines()[:2] == ["work hours: 7680 of 15000 (51%)", "activities: 22 of 40 (55%)"]


def test_the_final_stage_pays_only_once_the_contracts_40_activities_are_held_within_the_year(lianchi):
    """"合同资金50万元,一年内完成 ... 至少完成40个社区文化活动和社区心理健康矫治案例 ... 根据评估结果
    拨付项目资金": the year runs from the first work logged; the final evaluation passes, yet the last
    half of the contract waits for the 40th activity."""
    (project,) = lianchi.ruleset.projects
    with lianchi.store.write(actor="office") as rec:
        for month in range(10):
            projects.log(rec.conn, lianchi.ruleset, "基础服务项目", "hours", T + timedelta(days=30 * month), hours=1500)
        for week in range(39):
            projects.log(rec.conn, lianchi.ruleset, "基础服务项目", "activity", T + timedelta(days=7 * week, hours=1))
    with lianchi.store.read() as conn:
        mid_year = projects.progress(conn, lianchi.ruleset, "基础服务项目", now=T + timedelta(days=300))
        past_the_year = projects.progress(conn, lianchi.ruleset, "基础服务项目", now=T + timedelta(days=400))
    assert mid_year.due == datetime(2027, 10, 19, 9, 0, tzinfo=CST)
    assert mid_year.lines()[-1] == "time limit: from 2026-10-19 to 2027-10-19 09:00 CST, within the limit"
    assert past_the_year.late and past_the_year.lines()[-1].endswith("late: the limit passed before everything was delivered")
    withheld = projects.payments(project, {"中期": 82, "终期": 75}, delivered=mid_year)
    assert [(p.stage, p.amount, p.paid) for p in withheld] == [("中期", 250000.0, True), ("终期", 0.0, False)]
    assert "39 of the 40 activities the contract requires were held" in withheld[1].why
    with lianchi.store.write(actor="office") as rec:
        projects.log(rec.conn, lianchi.ruleset, "基础服务项目", "activity", T + timedelta(days=350))
    with lianchi.store.read() as conn:
        settled = projects.progress(conn, lianchi.ruleset, "基础服务项目", now=T + timedelta(days=400))
    assert not settled.late and settled.lines()[-1].endswith("delivered in time")
    paid = projects.payments(project, {"中期": 82, "终期": 75}, delivered=settled)
    assert [(p.stage, p.amount, p.paid) for p in paid] == [("中期", 250000.0, True), ("终期", 250000.0, True)]


def test_trifles_stay_in_the_building_unit(lianchi):
    dispute = lianchi.report("社工小李", "LC.WY.XH.1.3", "3101", "巡查", T, description="楼上漏水邻里纠纷")
    assert [s.level for s in dispute.decision.chain] == ["单元"] and dispute.decision.ceiling == "单元"


def test_each_matter_stops_at_its_level_and_big_ones_at_the_street(lianchi):
    """"琐事不出单元、小事不出社区、大事不出街道": one path, capped by severity."""
    unit = "LC.WY.XH.1.3"
    cases = {severity: lianchi.report("社工小李", unit, "3101", "巡查", T, severity=severity)
             for severity in ("琐事", "一般", "重大")}
    assert {s: c.decision.ceiling for s, c in cases.items()} == {"琐事": "单元", "一般": "社区", "重大": "街道"}
    assert [s.level for s in cases["重大"].decision.chain] == ["单元", "网格", "社区", "街道"]
    with lianchi.store.write(actor="sweep") as rec:
        moved, _ = casework.sweep(rec, lianchi.ruleset, T + timedelta(days=400))
    reached = {s: [m.level for m in moved if m.case == c.case_id] for s, c in cases.items()}
    assert reached == {"琐事": [], "一般": ["网格", "社区"], "重大": ["网格", "社区", "街道"]}
    with lianchi.store.write(actor="sweep") as rec:
        moved, stuck = casework.sweep(rec, lianchi.ruleset, T + timedelta(days=800))
    assert moved == [] and len(stuck) == 3  # each at its own ceiling, none at the district


def test_58_activities_with_more_than_95_percent_satisfied_earn_full_marks_for_the_year(lianchi):
    """"两个社区共组织各类活动58场次,社区居民的满意度达到95%以上": 58 activities and cases held
    and filed over the year; a menu order served the same year is not one of the contract's
    activities; 57 of the 59 residents asked were satisfied (96.6%)."""
    worker = lianchi.workers["社工小李"]
    with lianchi.store.write(actor=worker) as rec:
        for n in range(59):
            at = datetime(2026, 1, 5, 9, 0, tzinfo=CST) + timedelta(days=6 * n)
            item, kind = ("3202", None) if n == 58 else ("3301", "社区文化活动") if n % 4 else ("3302", "心理健康矫治案例")
            case = casework.report_case(rec, lianchi.ruleset, item=item, grid_id=lianchi.grids["LC.WY.XH"],
                                        channel="点单" if kind is None else "巡查", reporter_id=worker, at=at,
                                        fields={"合同服务": kind} if kind else None)
            for move in ("上报", "派遣", "接单", "反馈", "核查"):
                casework.move_case(rec, lianchi.ruleset, case.case_id, move, role="社工", actor_id=worker, at=at,
                                   evidence=["signature"], satisfied=n not in (10, 40) if move == "核查" else None)
    with lianchi.store.read() as conn:
        (year,) = [s for s in casework.worker_scores(conn, lianchi.ruleset, periods.of("year", date(2026, 1, 1)))
                   if s.worker == "社工小李"]
    parts = {p.indicator: (round(p.value, 4), p.points) for p in year.score.parts}
    assert year.score.formula == "社工年度"
    assert year.metrics["closed"] == 59
    assert parts == {"活动": (58, 40.0), "满意度": (0.9661, 60.0)}
    assert (year.score.total, year.score.tier) == (100.0, "优秀")


def test_the_household_card_says_who_may_earn_at_the_charity_supermarket(lianchi):
    """"针对具备一定劳动能力的特困群体,创办了慈善超市"."""
    card = validators(lianchi.ruleset)["household"]
    assert card.validate({"户主": "王奶奶", "人口": 1, "特困": True})["特困"] is True
    with pytest.raises(ValidationFailed) as refused:
        card.validate({"户主": "王奶奶", "人口": 1, "特困": "是的"})
    assert refused.value.problems == ["特困群众(特困):应为是/否,实际为 '是的'"]


def test_the_joint_meeting_and_the_information_exchange_fall_due(lianchi):
    """"建立联席会议制度" and "建立信息沟通制度 ... 定期沟通" (how often is illustrative)."""
    lianchi.worker("民政局王科长", "民政局")
    lianchi.worker("至真中心", "社会组织")
    with lianchi.store.write(actor="office") as rec:
        meetings.record(rec.conn, lianchi.ruleset, "联席会议", T, ["民政局王科长", "社工小李"])
        with pytest.raises(UsageError, match=r"\(社会组织\) is not invited"):
            meetings.record(rec.conn, lianchi.ruleset, "联席会议", T, ["至真中心"])
        meetings.record(rec.conn, lianchi.ruleset, "信息沟通", T, ["社工小李", "至真中心"])
    with lianchi.store.read() as conn:
        due = {d.meeting: d.due for d in meetings.due(lianchi.ruleset, meetings.held(conn), T)}
    assert due == {"联席会议": datetime(2027, 1, 17, 9, 0, tzinfo=CST), "信息沟通": datetime(2026, 11, 18, 9, 0, tzinfo=CST)}
