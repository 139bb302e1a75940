"""Shushan (seed 002): "小事不出社区、大事不出街道" — a big matter climbs to the
street office and no further; resident grid leaders own 400+ households."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from wangge.core import casework, meetings, periods, roster
from wangge.core.errors import TransitionError, UsageError
from wangge.core.validators import field_problems, validators

from wangge.core.sizing import Unit, merge_small
from support.scenario import CST, district

MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=CST)


@pytest.fixture
def shushan(tmp_path):
    d = district("shushan", tmp_path / "ss.db")
    d.grid("SS", "区", "蜀山区")
    d.grid("SS.SL", "街道", "笔架山街道", "SS")
    d.grid("SS.SL.JJ", "社区", "家家景园社区", "SS.SL")
    d.grid("SS.SL.JJ.2", "网格", "二片区", "SS.SL.JJ")
    d.grid("SS.SL.JJ.2.07", "小网格", "7号小网格", "SS.SL.JJ.2")
    d.worker("刘大姐", "网格长", "SS.SL.JJ.2.07")
    yield d
    d.store.close()


def _settle(d, at):
    """A stairwell cleared by the leader: reported, dispatched, handled, verified, the resident satisfied."""
    for name in ("受理员", "派遣员", "监督员"):
        if name not in d.workers:
            d.worker(name, name)
    case = d.report("刘大姐", "SS.SL.JJ.2.07", "1602", "巡查", at, photos=["sha256:stairs"])
    for n, (move, role, who, evidence) in enumerate([
            ("上报", "受理员", "受理员", []), ("派遣", "派遣员", "派遣员", []), ("接单", "网格长", "刘大姐", []),
            ("反馈", "网格长", "刘大姐", ["photo"]), ("核查", "监督员", "监督员", ["onsite_confirmation"])]):
        d.move(case.case_id, move, role, who, at + timedelta(hours=n + 1), evidence=evidence,
               satisfied=True if move == "核查" else None)


def _sweep(d, now):
    from wangge.core import casework

    with d.store.write(actor="sweep") as rec:
        return casework.sweep(rec, d.ruleset, now)


def test_a_big_matter_reaches_the_street_office_and_no_further(shushan):
    case = shushan.report("刘大姐", "SS.SL.JJ.2.07", "1101", "巡查", MONDAY, severity="重大", photos=["sha256:x"])
    assert [s.level for s in case.decision.chain] == ["小网格", "网格", "社区", "街道"]
    levels = []
    for days in (2, 5, 9, 20, 60, 365):
        moved, stuck = _sweep(shushan, MONDAY + timedelta(days=days))
        levels += [m.level for m in moved]
    assert levels == ["网格", "社区", "街道"]  # 区 is never reached
    moved, stuck = _sweep(shushan, MONDAY + timedelta(days=400))
    assert moved == [] and stuck == [case.case_id]


def test_a_small_matter_stays_in_the_community(shushan):
    case = shushan.report("刘大姐", "SS.SL.JJ.2.07", "1602", "巡查", MONDAY, severity="一般", photos=["sha256:y"])
    assert case.decision.role == "网格长" and case.decision.ceiling == "社区"
    moved, _ = _sweep(shushan, MONDAY + timedelta(days=90))
    assert [m.level for m in moved] == ["网格", "社区"]


def test_375_buildings_of_jiajiajingyuan_make_31_small_grids_of_400_or_more_households(shushan):
    """"确定了三级网络、四片责任区和31个小网格 ... 每位工作人员认领400余户的网格'责任田'",
    "在辖区375个楼栋口安装网格责任公示牌": 375 buildings of 28, 34 or 40 households."""
    small = next(lv for lv in shushan.ruleset.levels if lv.code == "小网格")
    buildings = [Unit(f"{n + 1}栋", 28 + 6 * (n % 3)) for n in range(375)]
    grids = merge_small(buildings, small.sizing)
    sizes = [sum(b.households for b in grid) for grid in grids]
    assert (len(grids), min(sizes), max(sizes)) == (31, 408, 510)
    assert sum(len(grid) for grid in grids) == 375  # every building in one grid


def test_fifty_communities_divided_at_400_households_or_more_make_the_districts_998_grids(shushan):
    """"每个社区网格数控制在20个左右" and "目前全区划分998个网格", each grid with its resident
    leader: 50 generated communities of 226 to 266 buildings (28, 34 or 40 households each)."""
    small = next(lv for lv in shushan.ruleset.levels if lv.code == "小网格")
    per_community = []
    for c in range(50):
        buildings = [Unit(f"{c + 1}社区{n + 1}栋", 28 + 6 * (n % 3)) for n in range(226 + (7 * c) % 41)]
        per_community.append(len(merge_small(buildings, small.sizing)))
    assert (sum(per_community), min(per_community), max(per_community)) == (998, 18, 22)


def test_one_leader_answers_for_the_grid_and_the_team_works_its_cases(shushan):
    """"一人负责、多人协同": the leader owns the case, the building leader handles it."""
    shushan.worker("王楼长", "楼栋长", "SS.SL.JJ.2.07")
    shushan.worker("张警官", "社区民警", "SS.SL.JJ")
    shushan.worker("受理员", "受理员")
    shushan.worker("派遣员", "派遣员")
    shushan.worker("居委会", "社居委", "SS.SL.JJ")
    case = shushan.report("刘大姐", "SS.SL.JJ.2.07", "1602", "巡查", MONDAY, photos=["sha256:stairs"])
    assert (case.decision.level, case.decision.role) == ("小网格", "网格长")
    shushan.move(case.case_id, "上报", "受理员", "受理员", MONDAY + timedelta(hours=1))
    shushan.move(case.case_id, "派遣", "派遣员", "派遣员", MONDAY + timedelta(hours=2))
    with pytest.raises(TransitionError, match="社居委"):  # the committee assesses; it is not in the grid team
        shushan.move(case.case_id, "接单", "社居委", "居委会", MONDAY + timedelta(hours=3))
    assert shushan.move(case.case_id, "接单", "楼栋长", "王楼长", MONDAY + timedelta(hours=3)) == "处置"
    assert shushan.move(case.case_id, "反馈", "社区民警", "张警官", MONDAY + timedelta(hours=5),
                        evidence=["photo"]) == "反馈"


def test_one_register_per_building_needs_its_plaque_and_one_card_per_household(shushan):
    """"'一栋一册'、'一户一卡'的登记方式", and "375个楼栋口安装网格责任公示牌"."""
    assert field_problems(shushan.ruleset, "building", {"楼栋长": "李师傅", "楼栋长电话": "13905510000"}, new=True) == [
        "网格责任公示牌(公示牌):应为必填,实际为 None"]
    assert field_problems(shushan.ruleset, "building", {"公示牌": True, "楼栋长电话": "0551"}, new=True) == [
        "楼栋长手机(楼栋长电话):应为11位手机号或带区号的电话,实际为 '0551'"]
    card = validators(shushan.ruleset)["household"]
    kept = card.validate({"户主": "陈阿姨", "人口": 2, "民生": ["养老", "医疗"], "特殊人群": ["独居老人"]})
    assert kept["特殊人群"] == ["独居老人"]


def test_a_grid_leader_who_visits_24_households_and_settles_a_problem_is_rated_excellent(shushan):
    """"经常走家串户" and "网格内简单问题的协调和处置": the monthly assessment counts households
    visited (30 is the illustrative target) and simple problems settled to the residents' verdict."""
    with shushan.store.write(actor="刘大姐") as rec:
        for n in range(24):
            home = rec.insert("household", {"grid_id": shushan.grids["SS.SL.JJ.2.07"], "head_name": f"住户{n}"})
            rec.insert("visit", {"household_id": home, "grid_id": shushan.grids["SS.SL.JJ.2.07"],
                                 "worker_id": shushan.workers["刘大姐"], "minutes": 20,
                                 "at": MONDAY + timedelta(hours=n)})
    _settle(shushan, MONDAY)
    leader = shushan.scores(2026, 11)["刘大姐"]
    parts = {p.indicator: (p.value, p.points) for p in leader.score.parts}
    assert leader.score.formula == "网格长日常"
    assert parts == {"走访": (24, 32.0), "结案率": (1.0, 30.0), "满意度": (1.0, 30.0)}
    assert (leader.score.total, leader.score.tier) == (92.0, "优秀")


def test_the_year_end_assessment_decides_renewal(shushan):
    """"实行日常考核与年终考核相结合 ... 作为奖惩及辞退、续聘的依据": a leader who visited 180
    different households in the year and settled a problem to the residents' verdict is renewed."""
    with shushan.store.write(actor="刘大姐") as rec:
        for n in range(180):
            home = rec.insert("household", {"grid_id": shushan.grids["SS.SL.JJ.2.07"], "head_name": f"住户{n}"})
            rec.insert("visit", {"household_id": home, "grid_id": shushan.grids["SS.SL.JJ.2.07"],
                                 "worker_id": shushan.workers["刘大姐"], "minutes": 20,
                                 "at": datetime(2026, 1 + n % 10, 10, 9, 0, tzinfo=CST)})
    _settle(shushan, MONDAY)
    with shushan.store.read() as conn:
        (year,) = [s for s in casework.worker_scores(conn, shushan.ruleset, periods.of("year", date(2026, 1, 1)))
                   if s.worker == "刘大姐"]
    parts = {p.indicator: (p.value, p.points) for p in year.score.parts}
    assert year.score.formula == "网格长年终"
    assert parts == {"走访": (180, 15.0), "结案率": (1.0, 30.0), "满意度": (1.0, 40.0)}
    assert (year.score.total, year.score.tier) == (85.0, "称职")


def test_the_leaders_stipends_for_a_month_and_a_year(shushan):
    """"区财政给予工作津贴每人每月400元"; "仅网格长工作津贴区财政每年支出近400万元". 家家景园's
    31 small grids, each with its leader, cost 12,400 a month and 148,800 a year. (At the
    district's 998 grids the same rule would pay 4,790,400 a year, more than the article's
    "近400万": its leaders may not all have been paid a full year.)"""
    with shushan.store.write(actor="office") as rec:
        for n in range(2, 32):  # 刘大姐 leads the 7号 grid; thirty more grids and leaders
            roster.add_grid(rec, f"SS.SL.JJ.2.{n + 7:02d}", "小网格", f"{n + 7}号小网格", "SS.SL.JJ.2")
            roster.add_worker(rec, f"网格长{n}", "网格长", [f"SS.SL.JJ.2.{n + 7:02d}"])
    with shushan.store.read() as conn:
        month = roster.stipends(conn, shushan.ruleset, periods.of("month", date(2026, 11, 1)))
        year = roster.stipends(conn, shushan.ruleset, periods.of("year", date(2026, 1, 1)))
        unled = [s.grid for s in roster.staffing(conn, shushan.ruleset) if s.short]
    assert (len(month), sum(s.amount for s in month), sum(s.amount for s in year)) == (31, 12400, 148800)
    assert {s.amount for s in year} == {4800} and unled == []


def test_the_building_council_meets_every_month(shushan):
    """"甄选出每个楼栋的党员代表成立'楼栋自治议事会',每月组织开展一次楼栋文娱活动"."""
    shushan.worker("王楼长", "楼栋长", "SS.SL.JJ.2.07")
    with shushan.store.write(actor="王楼长") as rec:
        meetings.record(rec.conn, shushan.ruleset, "楼栋文娱活动", MONDAY, ["王楼长"])
    with shushan.store.read() as conn:
        held = meetings.held(conn)
        due = {d.meeting: d for d in meetings.due(shushan.ruleset, held, MONDAY + timedelta(days=31))}
    assert due["楼栋文娱活动"].due == datetime(2026, 12, 2, 9, 0, tzinfo=CST) and due["楼栋文娱活动"].overdue


def test_the_committee_calls_the_representatives_and_the_property_coordination_meeting(shushan):
    """"由社居委召集和主持社区居民代表会议讨论、决定"; "定期召开由社居委、社区工作站、业主委员会、
    物业服务企业等参加的协调会" (how often is illustrative)."""
    shushan.worker("居委会主任", "社居委", "SS.SL.JJ")
    shushan.worker("工作站站长", "工作站", "SS.SL.JJ")
    with shushan.store.write(actor="居委会主任") as rec:
        meetings.record(rec.conn, shushan.ruleset, "居民代表会议", MONDAY, ["居委会主任"])
        meetings.record(rec.conn, shushan.ruleset, "协调会", MONDAY, ["居委会主任", "工作站站长"])
        with pytest.raises(UsageError, match=r"\(网格长\) is not invited"):
            meetings.record(rec.conn, shushan.ruleset, "居民代表会议", MONDAY, ["刘大姐"])
    with shushan.store.read() as conn:
        due = {d.meeting: d.due for d in meetings.due(shushan.ruleset, meetings.held(conn), MONDAY)}
    assert (due["居民代表会议"], due["协调会"]) == (datetime(2027, 1, 31, 9, 0, tzinfo=CST),
                                                 datetime(2026, 12, 2, 9, 0, tzinfo=CST))
