"""A head scored over the grids under them; one formula with a target per grade."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from wangge import dsl
from wangge.core import casework, store
from support.rules import diagnostics

SH = timezone(timedelta(hours=8))
HEAD = """ruleset s
level 社区
level 网格 { grade A "示范" grade B "标准" }
role 社区主任 at 社区
role 网格员 at 网格
channel 巡查
class 01 "市容" { item 01 "乱堆物料" { sla 发现 3 working_days } }
lifecycle {
  state 发现 initial
  state 结案 final closed
  transition 办结: 发现 -> 结案 by 网格员, 社区主任
}
"""
HEAD_FORMULA = """formula 主任考核 for worker role 社区主任 over subtree {
  indicator 结案率 closed / registered weight 100
  tier 合格 0..100
}
"""
GRADED = """formula 网格考核 for grid at 网格 grades A, B {
  indicator 结案率 closed / registered weight 100 target A 1.0, B 0.5
  tier 合格 0..100
}
"""


def street(tmp_path, text):
    ruleset = dsl.loads(text)
    s = store.init(str(tmp_path / "o.db"), "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        top = rec.insert("grid_cell", {"code": "C", "level": "社区", "name": "泰丰社区"})
        grids = [rec.insert("grid_cell", {"code": f"C.{g}", "level": "网格", "name": g, "upper_id": top, "grade": g})
                 for g in ("A", "B")]
        head = rec.insert("worker", {"name": "陈主任", "role": "社区主任"})
        rec.insert("assignment", {"worker_id": head, "grid_id": top})
    # In each grid two cases in October, one of them closed.
    for grid in grids:
        for closes in (True, False):
            with s.write(actor=head) as rec:
                case = casework.report_case(rec, ruleset, item="0101", grid_id=grid, channel="巡查", reporter_id=head,
                                            at=datetime(2026, 10, 12, 10, tzinfo=SH)).case_id
                if closes:
                    casework.move_case(rec, ruleset, case, "办结", role="社区主任", actor_id=head,
                                       at=datetime(2026, 10, 13, 10, tzinfo=SH))
    return s, ruleset


def test_a_community_head_is_scored_on_every_case_of_the_grids_under_them(tmp_path):
    s, ruleset = street(tmp_path, HEAD + HEAD_FORMULA)
    with s.read() as conn:
        (head,) = casework.month_scores(conn, ruleset, 2026, 10)
    s.close()
    # 4 cases registered in the two grids under the community, 2 closed: 50 of 100.
    assert (head.worker, head.grids, head.metrics["registered"], head.metrics["closed"], head.score.total) == (
        "陈主任", 3, 4, 2, 50)


def test_without_over_subtree_the_head_has_no_cases_of_their_own(tmp_path):
    s, ruleset = street(tmp_path, HEAD + HEAD_FORMULA.replace(" over subtree", ""))
    with s.read() as conn:
        (head,) = casework.month_scores(conn, ruleset, 2026, 10)
    s.close()
    assert head.metrics["registered"] == 0 and not head.score.scored


def test_one_formula_with_a_target_per_grade(tmp_path):
    s, ruleset = street(tmp_path, HEAD + GRADED)
    assert [(f.grade, f.indicators[0].target) for f in ruleset.formulas] == [("A", 1.0), ("B", 0.5)]
    with s.read() as conn:
        by_grid = {r.worker: r.score.total for r in casework.grid_scores(conn, ruleset, 2026, 10)}
    s.close()
    # Both grids closed 1 of 2: grade A's target 1.0 gives half the weight, grade B's target 0.5 all of it.
    assert by_grid == {"C.A": 50, "C.B": 100}


def test_grade_targets_must_match_the_formulas_grades():
    found = {d.message for d in diagnostics(HEAD + GRADED.replace("target A 1.0, B 0.5", "target A 1.0, C 0.5"))}
    assert "grade C is not among the formula's grades (A, B)" in found
    assert "indicator 结案率 has no target for grade B" in found


def test_grade_targets_are_shown_against_the_actual(tmp_path):
    text = (HEAD + GRADED).replace('grade A "示范" grade B "标准"',
                                   'grade A "示范" { target 结案 "月结案" 2 "件" of closed } '
                                   'grade B "标准" { target 结案 "月结案" 1 "件" of closed }')
    s, ruleset = street(tmp_path, text)
    with s.read() as conn:
        by_grid = {r.worker: [str(t) for t in r.targets] for r in casework.grid_scores(conn, ruleset, 2026, 10)}
    s.close()
    # Each grid closed one case in October: grade A asks 2, grade B 1.
    assert by_grid == {"C.A": ["结案 1 of 2件 NOT met"], "C.B": ["结案 1 of 1件 met"]}


def test_a_share_reads_as_a_percentage_and_a_count_per_day_divides_by_the_days():
    from wangge.core.ruleset import Target
    from wangge.core.scoring import against_targets

    targets = [Target(code="满意度", value=90, unit="%", metric="satisfaction"),
               Target(code="巡查", value=2, unit="次/日", metric="visits"),
               Target(code="说明", value=1)]  # no metric: shown in the rule file only
    checks = against_targets(targets, {"satisfaction": 0.92, "visits": 31}, days=31)
    assert [(c.code, round(c.actual, 2), c.met) for c in checks] == [("满意度", 92.0, True), ("巡查", 1.0, False)]
