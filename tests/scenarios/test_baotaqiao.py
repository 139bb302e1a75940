"""Baotaqiao (seed 001): three grid levels, a small compound merged into its
neighbour's level-2 grid, a monthly 100-point score with satisfaction worth 40,
and the vetoes that keep "优等" from a grid head."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from wangge.app import exports, scores
from wangge.core import casework, meetings, periods, points
from wangge.core.errors import PointsError, UsageError, ValidationFailed
from wangge.core.validators import validators
from wangge.core.ruleset import Sizing
from wangge.core.sizing import Unit, merge_small, split_buildings
from support.scenario import CST, district

OCT = datetime(2026, 10, 12, 9, 0, tzinfo=CST)


@pytest.fixture
def street(tmp_path):
    d = district("baotaqiao", tmp_path / "btq.db")
    d.grid("GL", "区", "鼓楼区")
    d.grid("BTQ", "街道", "宝塔桥街道", "GL")
    d.grid("BTQ.01", "社区", "宝塔桥社区", "BTQ", grade="丙")
    d.grid("BTQ.01.1", "网格", "宝塔新村", "BTQ.01", grade="A")
    d.worker("陈丽", "网格长", "BTQ.01.1")
    d.worker("网格办", "网格办")
    d.worker("市政", "专业部门")
    d.worker("监督员", "监督员")
    yield d
    d.store.close()


def level(d, code):
    return next(lv for lv in d.ruleset.levels if lv.code == code)


def test_eight_buildings_make_two_level_3_grids_of_four(street):
    """"小区中每3-5栋楼 ... 为三级网格"."""
    assert split_buildings([f"{i}幢" for i in range(1, 9)], level(street, "楼组").sizing) == [
        ["1幢", "2幢", "3幢", "4幢"], ["5幢", "6幢", "7幢", "8幢"]]
    with pytest.raises(UsageError, match="2 buildings cannot form a grid of 3..5 buildings"):
        split_buildings(["1幢", "2幢"], level(street, "楼组").sizing)


def test_a_280_household_compound_merges_into_its_neighbours_grid(street):
    groups = merge_small([Unit("宝塔新村", 620), Unit("金川小区", 280), Unit("电厂宿舍", 90), Unit("南苑", 410)],
                         level(street, "网格").sizing)
    assert [[u.name for u in g] for g in groups] == [["宝塔新村"], ["金川小区", "电厂宿舍"], ["南苑"]]
    assert [sum(u.households for u in g) for g in groups] == [620, 370, 410]


def generated_street() -> list[list[tuple[str, int, int, int]]]:
    """Twelve communities of natural compounds: (name, households, buildings, storefronts).

    Eight communities have seven compounds and four have six; the first of
    each is an old compound under 300 households; a building holds about 40
    households; every third compound, counting from the second, has a row of
    6 to 14 storefronts on the street.
    """
    street = []
    for n in range(12):
        compounds = []
        for k in range(7 if n < 8 else 6):
            households = 150 + 10 * n if k == 0 else 320 + 90 * ((n + k) % 6)
            storefronts = 6 + 4 * ((n * k) % 3) if k % 3 == 1 else 0
            compounds.append((f"{n + 1}社区{k + 1}小区", households, (households + 20) // 40, storefronts))
        street.append(compounds)
    return street


def test_the_sizing_rules_divide_a_street_of_12_communities_into_68_and_247_grids(street):
    """"全街道共划分为12个一级网格,68个二级网格,247个三级网格"."""
    l2_sizing, l3_sizing = level(street, "网格").sizing, level(street, "楼组").sizing
    storefront_sizing = Sizing(buildings_per_grid=l3_sizing.storefronts_per_grid)
    level2, level3 = [], []
    for community in generated_street():
        compounds = {name: (buildings, storefronts) for name, _, buildings, storefronts in community}
        for group in merge_small([Unit(name, households) for name, households, _, _ in community], l2_sizing):
            level2.append(group)
            buildings = [f"{u.name}{b + 1}幢" for u in group for b in range(compounds[u.name][0])]
            shops = [f"{u.name}门面{s + 1}" for u in group for s in range(compounds[u.name][1])]
            level3 += split_buildings(buildings, l3_sizing)
            level3 += split_buildings(shops, storefront_sizing) if shops else []
    assert (len(generated_street()), len(level2), len(level3)) == (12, 68, 247)
    assert min(sum(u.households for u in g) for g in level2) >= 300  # no level-2 grid under 300 households
    assert {len(g) for g in level3} <= set(range(3, 11))  # 3-5 buildings or 5-10 storefronts each


def _closed_case(street, at, satisfied):
    case = street.report("陈丽", "BTQ.01.1", "0201", "巡查", at, photos=["sha256:light"])
    steps = [("上报", "网格办", "网格办", []), ("派遣", "网格办", "网格办", []), ("接单", "专业部门", "市政", []),
             ("反馈", "专业部门", "市政", ["photo"]), ("核查", "监督员", "监督员", ["onsite_confirmation"])]
    for i, (move, role, who, evidence) in enumerate(steps):
        street.move(case.case_id, move, role, who, at + timedelta(hours=i + 1), evidence=evidence,
                    satisfied=satisfied if move == "核查" else None)
    return case


def test_a_monthly_100_point_score_where_satisfaction_is_worth_40(street):
    _closed_case(street, OCT, satisfied=True)
    _closed_case(street, OCT + timedelta(days=1), satisfied=False)
    head = street.scores(2026, 10)["陈丽"]
    assert head.score.formula == "月考"
    # Both cases closed on time without rework; one of the two residents satisfied: 20 of 40.
    parts = {p.indicator: p.points for p in head.score.parts}
    assert parts == {"结案率": 30, "按期": 20, "返工率": 10, "满意度": 20.0}
    assert (head.score.total, head.score.tier) == (80, "良好")


def test_a_year_in_the_store_with_three_drops_bars_excellent_in_july(street):
    # Satisfied months score 100 (优等); unsatisfied ones 60 (合格): Jan-Jun
    # alternate, so the head drops a tier in February, April and June.
    for month in range(1, 7):
        _closed_case(street, datetime(2026, month, 10, 9, 0, tzinfo=CST), satisfied=month % 2 == 1)
    assert [street.scores(2026, m)["陈丽"].score.tier for m in (1, 2)] == ["优等", "合格"]
    _closed_case(street, datetime(2026, 7, 10, 9, 0, tzinfo=CST), satisfied=True)
    july = street.scores(2026, 7)["陈丽"]
    assert july.metrics["tier_drops_year"] == 3
    assert july.score.total == 100 and july.score.tier == "良好"  # a perfect month, but not 优等


def test_a_tier_up_pays_more_and_a_tier_down_pays_no_reward(street):
    """"考核成绩达到上一档次奖励上浮,考核成绩降到下一档次则不予奖励": January 优等, February
    down to 合格 (no reward at all, not 合格's), March back up to 优等 (its reward again)."""
    for month, satisfied in ((1, True), (2, False), (3, True)):
        _closed_case(street, datetime(2026, month, 10, 9, 0, tzinfo=CST), satisfied=satisfied)
    months = [street.scores(2026, m)["陈丽"].score for m in (1, 2, 3)]
    assert [(s.tier, s.reward) for s in months] == [("优等", 1000), ("合格", 0), ("优等", 1000)]
    assert months[1].reward_why == "down from 优等 to 合格: no reward"
    assert months[2].reward_why == "up from 合格 to 优等: 1000"
    # The score table `wangge score` prints carries the reward and why, in its last column.
    assert scores.HEADER[-1] == "reward"
    assert scores.row(street.scores(2026, 2)["陈丽"])[-1] == "0 (down from 优等 to 合格: no reward)"
    # The console's table and its CSV and Excel files carry the amount in a column of its own.
    header, rows = exports.score_table([street.scores(2026, m)["陈丽"] for m in (1, 2, 3)])
    assert [row[header.index("reward")] for row in rows] == [1000, 0, 1000]


def test_a_verified_complaint_bars_excellent_at_the_year_end_not_in_its_month(street):
    """"投诉一次被查实,年终考核则不得评为'优等'": the month stays 优等, the year does not."""
    _closed_case(street, OCT, satisfied=True)
    complaint = street.report("陈丽", "BTQ.01.1", "1601", "民情QQ群", OCT + timedelta(days=2),
                              description="居民投诉:噪音扰民", fields={"verified_complaint": True})
    steps = [("上报", "网格办", "网格办", []), ("派遣", "网格办", "网格办", []), ("接单", "专业部门", "市政", []),
             ("反馈", "专业部门", "市政", ["photo"]), ("核查", "监督员", "监督员", ["onsite_confirmation"])]
    for i, (move, role, who, evidence) in enumerate(steps):  # the complaint is dealt with, on time
        street.move(complaint.case_id, move, role, who, OCT + timedelta(days=2, hours=i + 1), evidence=evidence)
    month = street.scores(2026, 10)["陈丽"]
    assert month.metrics["verified_complaints"] == 1 and (month.score.total, month.score.tier) == (100, "优等")
    with street.store.read() as conn:
        (year,) = [s for s in casework.worker_scores(conn, street.ruleset, periods.of("year", date(2026, 1, 1)))
                   if s.worker == "陈丽"]
    assert year.score.formula == "年终" and year.metrics["verified_complaints"] == 1
    assert year.score.barred == ("优等",) and (year.score.total, year.score.tier) == (100, "良好")


def test_a_grade_b_compound_is_assessed_by_its_own_formula(street):
    """"不同的类别和等级设定不同的工作要求、目标任务和考核标准": grade B's on-time target is 90%."""
    street.grid("BTQ.01.2", "网格", "金川小区", "BTQ.01", grade="B")
    street.worker("周强", "网格长", "BTQ.01.2")
    late = street.report("周强", "BTQ.01.2", "1602", "巡查", OCT, photos=["sha256:clutter"])
    steps = [("上报", "网格办", "网格办", []), ("派遣", "网格办", "网格办", []), ("接单", "专业部门", "市政", []),
             ("反馈", "专业部门", "市政", ["photo"]), ("核查", "监督员", "监督员", ["onsite_confirmation"])]
    for i, (move, role, who, evidence) in enumerate(steps):  # closed a week after its 2-working-day limit
        street.move(late.case_id, move, role, who, OCT + timedelta(days=2 * i + 1), evidence=evidence,
                    satisfied=True if move == "核查" else None)
    head = street.scores(2026, 10)["周强"]
    parts = {p.indicator: p.points for p in head.score.parts}
    assert head.score.formula == "月考" and head.metrics["closed_on_time"] == 0
    assert parts == {"结案率": 30, "按期": 0, "返工率": 10, "满意度": 40}
    assert (head.score.total, head.score.tier) == (80, "良好")


def test_volunteer_points_are_exchanged_for_goods(street):
    """"对网格中的注册志愿者,我们则采用'积分换购'的办法": twelve services earn twelve points in the
    store's ledger; goods for ten leave two, and a second exchange is refused."""
    with street.store.write(actor="网格办") as rec:
        home = rec.insert("household", {"grid_id": street.grids["BTQ.01.1"], "head_name": "李大爷"})
        volunteer = rec.insert("resident", {"household_id": home, "grid_id": street.grids["BTQ.01.1"], "name": "李大爷"})
        for n in range(12):
            points.record(rec, points.earn(street.ruleset, [], volunteer, "志愿服务", OCT + timedelta(days=n)))
        goods = points.record_redemption(rec, street.ruleset, volunteer, "日用品", OCT + timedelta(days=13))
        with pytest.raises(PointsError, match="costs 10 points, the balance is 2"):
            points.record_redemption(rec, street.ruleset, volunteer, "日用品", OCT + timedelta(days=14))
    with street.store.read() as conn:
        assert (goods.delta, points.balance(points.ledger(conn, volunteer), volunteer)) == (-10, 2)


def test_the_social_work_log_needs_its_entry(street):
    """"一级网格除了每日填写'社工日志'": a log without its text is refused."""
    log = validators(street.ruleset)["visit"]
    assert log.validate({"household": "h1", "minutes": 30, "日志": "走访低保户3户"})["日志"] == "走访低保户3户"
    with pytest.raises(ValidationFailed) as refused:
        log.validate({"household": "h1", "minutes": 30})
    assert refused.value.problems == ["日志内容(日志):应为必填,实际为 None"]


def test_the_three_meetings_and_one_review_fall_due_at_their_cadence(street):
    """"街道网格领导小组每月召开一次会议;一级网格责任人隔日召开一次二级网格长碰头会,每周召开一次
    社区网格领导小组会议;二级网格长每旬召开一次三级网格负责人会议。每半年组织一次网格管理民主评议"."""
    street.worker("王书记", "一级网格责任人", "BTQ.01")
    street.worker("楼组长小张", "楼组长")
    monday = datetime(2026, 10, 12, 9, 0, tzinfo=CST)
    with street.store.write(actor="网格办") as rec:
        for code, who in (("领导小组会", ["网格办"]), ("碰头会", ["王书记", "陈丽"]), ("社区周会", ["王书记"]),
                          ("旬会", ["陈丽", "楼组长小张"]), ("民主评议", [])):
            meetings.record(rec.conn, street.ruleset, code, monday, who)
        with pytest.raises(UsageError, match=r"meeting 碰头会 is for 一级网格责任人, 网格长; .* \(楼组长\) is not invited"):
            meetings.record(rec.conn, street.ruleset, "碰头会", monday, ["王书记", "楼组长小张"])
    with street.store.read() as conn:
        due = {d.meeting: d.due for d in meetings.due(street.ruleset, meetings.held(conn), monday)}
    assert {code: due[code] for code in ("领导小组会", "碰头会", "社区周会", "旬会", "民主评议")} == {
        "领导小组会": datetime(2026, 11, 11, 9, 0, tzinfo=CST), "碰头会": datetime(2026, 10, 14, 9, 0, tzinfo=CST),
        "社区周会": datetime(2026, 10, 19, 9, 0, tzinfo=CST), "旬会": datetime(2026, 10, 22, 9, 0, tzinfo=CST),
        "民主评议": datetime(2027, 4, 10, 9, 0, tzinfo=CST)}
    assert due["联席会议"] is None  # never held: due now


def test_each_grid_is_held_to_the_targets_of_its_class_and_grade(street):
    """"不同的类别和等级设定不同的工作要求、目标任务和考核标准": the grade-A compound's head against
    two patrols a day, the 丙 community's head (over all its compounds) against 85% satisfied."""
    street.worker("王书记", "一级网格责任人", "BTQ.01")
    _closed_case(street, OCT, satisfied=True)
    _closed_case(street, OCT + timedelta(days=1), satisfied=False)
    with street.store.write(actor="陈丽") as rec:
        home = rec.insert("household", {"grid_id": street.grids["BTQ.01.1"], "head_name": "张家"})
        for day in range(31):  # one patrol visit a day in October
            rec.insert("visit", {"household_id": home, "grid_id": street.grids["BTQ.01.1"], "minutes": 20,
                                 "worker_id": street.workers["陈丽"], "at": datetime(2026, 10, day + 1, 10, tzinfo=CST),
                                 "fields": {"日志": "巡查"}})
    month = street.scores(2026, 10)
    head, community = month["陈丽"], month["王书记"]
    assert [(c.code, c.target, c.actual, c.met) for c in head.targets] == [("巡查", 2, 1.0, False)]
    assert community.score.formula == "社区月考" and community.metrics["closed"] == 2
    assert [(c.code, c.target, c.actual, c.met) for c in community.targets] == [("满意度", 85, 50.0, False)]
