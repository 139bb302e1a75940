"""Casework on a real SQLite store: report, move, escalate, explain, score."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from wangge.core import casework, store
from wangge.core.errors import TransitionError, ValidationFailed
from wangge.core.models import Case, CaseEvent, Op
from support.district import district

RULES = district()
T0 = datetime(2026, 10, 12, 9, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture
def street(tmp_path):
    s = store.init(str(tmp_path / "m.db"), "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, RULES)
        top = rec.insert("grid_cell", {"code": "S1", "level": "街道", "name": "泰达街道"})
        mid = rec.insert("grid_cell", {"code": "S1.01", "level": "社区", "name": "泰丰社区", "upper_id": top})
        grid = rec.insert("grid_cell", {"code": "S1.01.03", "level": "网格", "name": "泰丰3网格", "upper_id": mid, "grade": "A"})
        worker = rec.insert("worker", {"name": "王芳", "role": "网格员"})
        rec.insert("assignment", {"worker_id": worker, "grid_id": grid})
    yield s, grid, worker
    s.close()


def _report(s, grid, worker, **kw):
    with s.write(actor=worker) as rec:
        return casework.report_case(rec, RULES, item=kw.pop("item", "0101"), grid_id=grid, channel=kw.pop("channel", "巡查"),
                                    reporter_id=worker, at=kw.pop("at", T0), photos=kw.pop("photos", ["sha256:ab"]), **kw)


def test_a_case_is_routed_recorded_and_versioned(street):
    s, grid, worker = street
    reported = _report(s, grid, worker, description="井盖缺失")
    with s.read() as conn:
        row = conn.execute(select(Case.__table__)).one()
    assert (row.status, row.owner, row.ruleset_version) == ("发现", "网格员 at 网格 S1.01.03", RULES.version)
    assert reported.number == "C20261012001" and reported.decision.deadline is not None


def test_a_report_missing_its_photo_is_refused_and_nothing_is_written(street):
    s, grid, worker = street
    with pytest.raises(ValidationFailed, match="照片"):
        _report(s, grid, worker, photos=[])
    with s.read() as conn:
        assert conn.execute(select(Case)).first() is None


def test_a_second_report_lists_the_first_as_a_likely_duplicate(street):
    s, grid, worker = street
    _report(s, grid, worker)
    second = _report(s, grid, worker, at=T0 + timedelta(hours=3))
    assert second.duplicates == (("C20261012001", "same grid, same item 0101, 3.0 h apart"),)


def test_moves_append_events_and_illegal_ones_change_nothing(street):
    s, grid, worker = street
    case_id = _report(s, grid, worker).case_id
    with s.write(actor=worker) as rec:
        assert casework.move_case(rec, RULES, case_id, "上报", role="网格员", actor_id=worker, at=T0, evidence=["photo"]) == "立案"
    with pytest.raises(TransitionError):
        with s.write(actor=worker) as rec:
            casework.move_case(rec, RULES, case_id, "办结", role="网格员", actor_id=worker, at=T0)
    with s.read() as conn:
        assert conn.execute(select(Case.status)).scalar() == "立案"
        assert [e.move for e in conn.execute(select(CaseEvent.__table__))] == ["上报"]
        assert [o.kind for o in conn.execute(select(Op.__table__).where(Op.entity == "case_event"))] == ["append"]


def test_the_sweep_escalates_once_and_explain_says_why(street):
    s, grid, worker = street
    number = _report(s, grid, worker, item="0201", channel="热线", severity="重大").number
    later = T0 + timedelta(days=4)
    with s.write() as rec:
        moved, _ = casework.sweep(rec, RULES, later)
    with s.write() as rec:
        again, _ = casework.sweep(rec, RULES, later)
    assert [(m.level) for m in moved] == ["社区"] and again == []
    with s.read() as conn:
        text = casework.explain(conn, RULES, number)
    assert "escalated to 社区: overdue at 网格" in text and "by channel 热线" in text


def test_month_scores_come_from_the_workers_grids(street):
    s, grid, worker = street
    case_id = _report(s, grid, worker).case_id
    steps = [("上报", "网格员", ["photo"]), ("派遣", "指挥中心", []), ("接单", "网格员", []),
             ("送审", "网格员", ["photo"]), ("办结", "网格员", ["onsite_confirmation", "callback"])]
    with s.write(actor=worker) as rec:
        for i, (move, role, evidence) in enumerate(steps):
            casework.move_case(rec, RULES, case_id, move, role=role, actor_id=worker,
                               at=T0 + timedelta(hours=i), evidence=evidence, satisfied=True if move == "办结" else None)
    with s.read() as conn:
        (result,) = casework.month_scores(conn, RULES, 2026, 10)
    assert result.worker == "王芳" and result.metrics["closed"] == 1 and result.metrics["callbacks"] == 1
    assert result.score.total == 100 and result.score.tier == "优秀"


def _close_one(s, grid, worker, at):
    case_id = _report(s, grid, worker, at=at).case_id
    steps = [("上报", "网格员", ["photo"]), ("派遣", "指挥中心", []), ("接单", "网格员", []),
             ("送审", "网格员", ["photo"]), ("办结", "网格员", ["onsite_confirmation", "callback"])]
    with s.write(actor=worker) as rec:
        for i, (move, role, evidence) in enumerate(steps):
            casework.move_case(rec, RULES, case_id, move, role=role, actor_id=worker, at=at + timedelta(minutes=i),
                               evidence=evidence, satisfied=True if move == "办结" else None)


def test_months_are_cut_at_midnight_in_the_districts_zone(street):
    s, grid, worker = street
    # 31 Oct 20:00 UTC is 1 Nov 04:00 in Shanghai: a November case, wherever the office's server runs.
    _close_one(s, grid, worker, datetime(2026, 10, 31, 20, 0, tzinfo=timezone.utc))
    with s.read() as conn:
        (october,) = casework.month_scores(conn, RULES, 2026, 10)
        (november,) = casework.month_scores(conn, RULES, 2026, 11)
    assert (october.metrics["reported"], november.metrics["reported"]) == (0, 1)


def test_grids_are_scored_by_the_formula_for_their_level_over_their_subtree(street):
    from wangge.core.ruleset import Formula, Indicator, Tier

    s, grid, worker = street
    _close_one(s, grid, worker, T0)
    _report(s, grid, worker, at=T0 + timedelta(days=1), item="0102")  # reported, still open
    community = Formula(code="社区月考", subject="grid", level="社区", indicators=(
        Indicator(code="结案率", numerator="closed", denominator="registered", weight=100),),
        tiers=(Tier(code="好", min=60, max=100), Tier(code="差", min=0, max=60)))
    rules = RULES.model_copy(update={"formulas": RULES.formulas + (community,)})
    with s.read() as conn:
        (result,) = casework.grid_scores(conn, rules, 2026, 10)
    # Only the community has a grid formula; it answers for its grid's two cases, one closed.
    assert (result.subject, result.worker, result.role, result.grids) == ("grid", "S1.01", "社区", 2)
    assert (result.metrics["registered"], result.metrics["closed"], result.score.total, result.score.tier) == (2, 1, 50, "差")


def test_an_explanation_under_a_newer_ruleset_says_which_versions(street):
    s, grid, worker = street
    number = _report(s, grid, worker).number
    # Not model_copy: it would carry the cached version hash over to the copy.
    newer = type(RULES).model_validate({**RULES.model_dump(), "name": "泰达2027"})
    with s.read() as conn:
        same, other = casework.explain(conn, RULES, number), casework.explain(conn, newer, number)
    assert "routed under ruleset" not in same
    assert f"routed under ruleset {RULES.version[:12]}; explained by ruleset {newer.version[:12]}" in other
