"""A guided tour of one shipped model: what `wangge demo --model NAME` prints.

Everything here is driven by the rule file alone: the district is built from
its grid levels, its workers from its roles, a case walks its lifecycle from
the initial state to closure by the shortest legal path (with the evidence
each move requires), a second case is left overdue for the escalation sweep,
and the month is scored by its formulas. No model is special-cased.
"""
from __future__ import annotations

import tempfile
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

from wangge import dsl, rulesets
from wangge.core import casework, store
from wangge.core.lifecycle import Lifecycle
from wangge.core.report import table
from wangge.core.ruleset import Ruleset

CST = timezone(timedelta(hours=8))
START = datetime(2026, 10, 12, 9, 0, tzinfo=CST)


def run(name: str, workdir: Optional[Path] = None) -> str:
    """Tour the shipped model ``name``; raises `UsageError` for an unknown name."""
    ruleset = rulesets.load(name)
    folder = workdir or Path(tempfile.mkdtemp(prefix=f"wangge-{name}-"))
    path = folder / f"{name}.db"
    if path.exists():
        path.unlink()
    with store.init(str(path), "master") as s:
        with s.write(actor="office") as rec:
            casework.install_ruleset(rec.conn, ruleset)
            grids, workers = _district(rec, ruleset)
        lines = [f"wangge demo --model {name}: {ruleset.label.text()} ({ruleset.label.en})",
                 f"store {path}; ruleset version {ruleset.version[:12]}", "", dsl.summary(ruleset, "zh")]
        lines += ["", _walk(s, ruleset, grids, workers), "", _escalation(s, ruleset, grids, workers),
                  "", _scores(s, ruleset)]
    return "\n".join(lines)


def _district(rec, ruleset: Ruleset):
    """One grid per level, top to bottom, and one worker per role at its level."""
    grids: dict[str, str] = {}
    upper, code = None, "D"
    for level in sorted(ruleset.levels, key=lambda lv: lv.rank):
        grade = level.classes[0].code if level.classes else None
        upper = grids[level.code] = rec.insert(
            "grid_cell", {"code": code, "level": level.code, "name": f"{level.label.text()}示例", "grade": grade,
                          "upper_id": upper})
        code += ".1"
    workers: dict[str, str] = {}
    for role in ruleset.roles:
        workers[role.code] = rec.insert("worker", {"name": f"{role.label.text()}甲", "role": role.code})
        if role.level in grids:
            rec.insert("assignment", {"worker_id": workers[role.code], "grid_id": grids[role.level]})
    return grids, workers


def _pick_case(ruleset: Ruleset):
    """The model's own first item, new or overriding the baseline's, else the first item."""
    inherited = rulesets.load(ruleset.base).items if ruleset.base in rulesets.names() else {}
    own = [item for code, item in ruleset.items.items() if inherited.get(code) != item]
    return (own or list(ruleset.items.values()))[0]


def _bottom(ruleset: Ruleset) -> str:
    return max(ruleset.levels, key=lambda lv: lv.rank).code


def _reporter(ruleset: Ruleset, workers: dict[str, str]) -> str:
    bottom = _bottom(ruleset)
    return next((workers[r.code] for r in ruleset.roles if r.level == bottom), next(iter(workers.values())))


def _path(lifecycle: Lifecycle) -> list:
    """The shortest sequence of moves from the initial state into a closed state."""
    queue, seen = deque([(lifecycle.initial, [])]), {lifecycle.initial}
    while queue:
        state, moves = queue.popleft()
        if state in lifecycle.closed and moves:
            return moves
        for (source, _move), rule in lifecycle.table.items():
            if source == state and rule.target not in seen:
                seen.add(rule.target)
                queue.append((rule.target, moves + [rule]))
    return []


def _walk(s, ruleset: Ruleset, grids, workers) -> str:
    item = _pick_case(ruleset)
    channel = item.channels[0] if item.channels else (ruleset.channels[0].code if ruleset.channels else "巡查")
    reporter = _reporter(ruleset, workers)
    with s.write(actor=reporter) as rec:
        case = casework.report_case(rec, ruleset, item=item.code, grid_id=grids[_bottom(ruleset)], channel=channel,
                                    reporter_id=reporter, at=START, description=item.label.text(),
                                    photos=["sha256:demo"] if "photo" in item.evidence else [])
    rows = [["report", "-", "-", Lifecycle.of(ruleset).initial, f"{item.code} {item.label.text()} via {channel}"]]
    callback = any(c.code == channel and c.callback for c in ruleset.channels)
    lifecycle = Lifecycle.of(ruleset)
    at = START
    for rule in _path(lifecycle):
        at += timedelta(hours=2)
        role = rule.roles[0]
        closing = callback and rule.target in lifecycle.closed
        evidence = set(rule.requires) | ({"callback"} if closing else set())
        actor = reporter if rule.from_reporter else workers[role]  # e.g. TEDA: the reporter confirms on site
        with s.write(actor=actor) as rec:
            status = casework.move_case(rec, ruleset, case.case_id, rule.code, role=role, actor_id=actor,
                                        at=at, evidence=evidence, satisfied=True)
        rows.append([rule.code, role, ", ".join(sorted(evidence)) or "-", status, f"{at:%m-%d %H:%M}"])
    title = f"Case {case.number}: routed to {case.decision.owner}, due {case.decision.deadline:%Y-%m-%d %H:%M}" \
        if case.decision.deadline else f"Case {case.number}: routed to {case.decision.owner}"
    return table(["move", "role", "evidence", "status", "when"], rows, title=title)


def _escalation(s, ruleset: Ruleset, grids, workers) -> str:
    serious = max(ruleset.severities, key=lambda sv: sv.rank).code if ruleset.severities else None
    item = _pick_case(ruleset)
    reporter = _reporter(ruleset, workers)
    with s.write(actor=reporter) as rec:
        channel = item.channels[0] if item.channels else ruleset.channels[0].code
        casework.report_case(rec, ruleset, item=item.code, grid_id=grids[_bottom(ruleset)], channel=channel,
                             reporter_id=reporter, at=START, severity=serious, photos=["sha256:demo"],
                             description="逾期案件")
    with s.write(actor="escalation") as rec:
        moved, stuck = casework.sweep(rec, ruleset, START + timedelta(days=60))
    rows = [[m.level, m.owner, m.reason] for m in moved]
    note = f" ({len(stuck)} at the ceiling)" if stuck else ""
    return table(["to level", "owner", "why"], rows, title=f"Escalation of an overdue {serious} case after 60 days{note}")


def _scores(s, ruleset: Ruleset) -> str:
    with s.read() as conn:
        results = casework.month_scores(conn, ruleset, START.year, START.month)
    rows = [[r.worker, r.role, r.score.formula, r.score.total, r.score.tier or "-"] for r in results]
    return table(["worker", "role", "formula", "total", "tier"], rows, title=f"Scores for {START:%Y-%m}")
