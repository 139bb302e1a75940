"""A period with nothing to measure follows the indicator's stated rule, and the score says so."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from click.testing import CliRunner

from wangge import dsl
from wangge.cli import cli
from wangge.core import casework, store

HOTLINE = """ruleset h
level 社区
role 社工 at 社区
channel 热线 callback
class 17 "热线" {
  item 01 "求助" { sla 受理 1 working_days }
}
lifecycle {
  state 受理 initial
  state 办结 final closed
  transition 办结: 受理 -> 办结 by 社工 requires callback
}
formula 热线考核 for worker role 社工 total 100 {
  indicator 办结率 closed / registered weight 50 target 0.95 无数据 满分
  indicator 满意率 satisfaction weight 50
  tier 奖励 90..100
  tier 合格 60..90
  tier 处罚 0..60
}
"""
SH = timezone(timedelta(hours=8))


def test_the_rule_compiles_from_english_and_chinese_words():
    ruleset = dsl.loads(HOTLINE)
    assert [i.if_empty for i in ruleset.formulas[0].indicators] == ["full", "not_counted"]
    again = dsl.loads(HOTLINE.replace("无数据 满分", "if_empty zero"))
    assert again.formulas[0].indicators[0].if_empty == "zero"


def test_a_month_without_calls_is_no_penalty_and_the_table_says_why(tmp_path):
    ruleset = dsl.loads(HOTLINE)
    s = store.init(str(tmp_path / "o.db"), "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        grid = rec.insert("grid_cell", {"code": "BY", "level": "社区", "name": "白银社区"})
        busy = rec.insert("worker", {"name": "李明", "role": "社工"})
        rec.insert("assignment", {"worker_id": busy, "grid_id": grid})
        quiet = rec.insert("worker", {"name": "张丽", "role": "社工"})
        rec.insert("assignment", {"worker_id": quiet, "grid_id": rec.insert(
            "grid_cell", {"code": "JD", "level": "社区", "name": "嘉定社区"})})
    with s.write(actor=busy) as rec:
        case = casework.report_case(rec, ruleset, item="1701", grid_id=grid, channel="热线", reporter_id=busy,
                                    at=datetime(2026, 10, 12, 10, tzinfo=SH)).case_id
        casework.move_case(rec, ruleset, case, "办结", role="社工", actor_id=busy, evidence=["callback"],
                           at=datetime(2026, 10, 12, 15, tzinfo=SH))
    with s.read() as conn:
        by_name = {r.worker: r.score for r in casework.month_scores(conn, ruleset, 2026, 10)}
    s.close()
    # 李明: one call closed, no verdict recorded: 办结率 1/1 earns 50 of the 50 counted, rescaled ×2.
    assert (by_name["李明"].total, by_name["李明"].tier) == (100, "奖励")
    # 张丽: no calls: 办结率 full by rule (50), 满意率 not counted, rescaled ×2: no penalty tier.
    assert (by_name["张丽"].total, by_name["张丽"].tier) == (100, "奖励")
    out = CliRunner().invoke(cli, ["score", str(tmp_path / "o.db"), "--month", "2026-10"]).output
    assert "办结率 full, 满意率 not counted (×2)" in out and "满意率 not counted (×2)" in out


def test_without_a_rule_a_month_with_nothing_is_not_scored(tmp_path):
    ruleset = dsl.loads(HOTLINE.replace(" 无数据 满分", ""))
    s = store.init(str(tmp_path / "o.db"), "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        grid = rec.insert("grid_cell", {"code": "BY", "level": "社区", "name": "白银社区"})
        worker = rec.insert("worker", {"name": "张丽", "role": "社工"})
        rec.insert("assignment", {"worker_id": worker, "grid_id": grid})
    s.close()
    out = CliRunner().invoke(cli, ["score", str(tmp_path / "o.db"), "--month", "2026-10"]).output
    row = next(line for line in out.splitlines() if "张丽" in line).split()
    # total, rank and tier are "-", then what the empty rules did; no targets, no reward
    assert row[5:] == ["-", "-", "-", "办结率", "not", "counted,", "满意率", "not", "counted", "-", "-"]
