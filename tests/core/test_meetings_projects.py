"""Meetings due and recorded with attendance (a metric for formulas); project delivery counted from its log."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from wangge import dsl
from wangge.cli import cli
from wangge.core import casework, meetings, projects, roster, store
from wangge.core.errors import UsageError

SH = timezone(timedelta(hours=8))
RULES = """ruleset m
level 社区
level 网格
role 网格长 at 网格
role 社工 at 社区
lifecycle {
  state 发现 initial
  state 结案 final closed
  transition 办结: 发现 -> 结案 by 网格长
}
meeting 旬会 "每旬例会" every 10 days roles 网格长
project 三社 hours 15000 budget 500000 activities 40 { stage 结项 pays 100% }
formula 出勤 for worker role 网格长 total 100 {
  indicator 例会 meetings_attended weight 100 target 3
  tier 合格 0..100
}
"""


@pytest.fixture
def office(tmp_path):
    ruleset = dsl.loads(RULES)
    path = str(tmp_path / "o.db")
    s = store.init(path, "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        roster.add_grid(rec, "BT", "社区", "宝塔桥")
        roster.add_grid(rec, "BT.1", "网格", "一网格", upper="BT")
        roster.add_worker(rec, "王芳", "网格长", ["BT.1"])
        roster.add_worker(rec, "李明", "网格长", ["BT.1"])
        roster.add_worker(rec, "赵社工", "社工", ["BT"])
    yield s, ruleset, path
    s.close()


def test_a_meeting_is_due_ten_days_after_the_last_and_attendance_scores(office):
    s, ruleset, path = office
    with s.read() as conn:
        (never,) = meetings.due(ruleset, meetings.held(conn), datetime(2026, 10, 1, tzinfo=SH))
    assert never.last is None and never.overdue
    with s.write(actor="office") as rec:
        for day in (1, 11, 21):
            meetings.record(rec.conn, ruleset, "旬会", datetime(2026, 10, day, 9, tzinfo=SH),
                            ["王芳"] + (["李明"] if day == 1 else []))
    with s.read() as conn:
        (after,) = meetings.due(ruleset, meetings.held(conn), datetime(2026, 10, 30, tzinfo=SH))
        scores = {r.worker: r for r in casework.month_scores(conn, ruleset, 2026, 10)}
    assert after.due == datetime(2026, 10, 31, 9, tzinfo=SH) and not after.overdue
    # 王芳 attended all three (target 3): 100; 李明 one of three: 33.33.
    assert scores["王芳"].metrics["meetings_attended"] == 3 and scores["王芳"].score.total == 100
    assert scores["李明"].metrics["meetings_attended"] == 1 and scores["李明"].score.total == 33.33
    out = CliRunner().invoke(cli, ["meeting", "due", path, "--now", "2026-11-01"]).output
    assert "旬会" in out and "2026-10-21 09:00 +08:00" in out and "DUE" in out


def test_a_meeting_for_other_roles_or_unknown_people_is_refused(office):
    s, ruleset, _ = office
    with s.write(actor="office") as rec:
        with pytest.raises(UsageError, match=r"meeting 旬会 is for 网格长; .*\(社工\) is not invited"):
            meetings.record(rec.conn, ruleset, "旬会", datetime(2026, 10, 1, tzinfo=SH), ["赵社工"])
        with pytest.raises(UsageError, match="no worker 钱七 on the roster"):
            meetings.record(rec.conn, ruleset, "旬会", datetime(2026, 10, 1, tzinfo=SH), ["钱七"])
        with pytest.raises(UsageError, match="unknown meeting '月会'"):
            meetings.record(rec.conn, ruleset, "月会", datetime(2026, 10, 1, tzinfo=SH), [])


def test_project_hours_and_activities_are_counted_from_the_log(office):
    s, ruleset, path = office
    with s.write(actor="office") as rec:
        for day in range(1, 4):
            projects.log(rec.conn, ruleset, "三社", "hours", datetime(2026, 10, day, tzinfo=SH), hours=7.5)
        projects.log(rec.conn, ruleset, "三社", "activity", datetime(2026, 10, 9, tzinfo=SH), note="重阳节")
        with pytest.raises(UsageError, match="work hours must be above 0"):
            projects.log(rec.conn, ruleset, "三社", "hours", datetime(2026, 10, 9, tzinfo=SH), hours=0)
    with s.read() as conn:
        done = projects.progress(conn, ruleset, "三社")
    assert (done.hours, done.activities) == (22.5, 1)
    assert CliRunner().invoke(cli, ["project", "log", path, "三社", "--activity", "--at", "2026-10-10"]).exit_code == 0
    out = CliRunner().invoke(cli, ["project", "progress", path, "三社"]).output
    assert "work hours: 22.5 of 15000 (0%)" in out and "activities: 2 of 40 (5%)" in out


def test_project_pay_holds_the_last_stage_until_the_contracts_activities_are_logged(office):
    _, _, path = office
    assert CliRunner().invoke(cli, ["project", "log", path, "三社", "--activity", "--at", "2026-10-10"]).exit_code == 0
    # 三社 is settled in one stage: passed, yet held for want of activities, it pays nothing.
    held = CliRunner().invoke(cli, ["project", "pay", path, "三社", "--score", "结项=90"])
    assert held.exit_code == 0, held.output
    assert "held  三社: 1 of the 40 activities the contract requires were held" in held.output
    assert held.output.splitlines()[-1] == "total paid: 0.00"
    bad = CliRunner().invoke(cli, ["project", "pay", path, "三社", "--score", "中期"])
    assert bad.exit_code == 2 and "bad --score '中期': expected STAGE=SCORE" in bad.output
    assert "Traceback" not in bad.output
