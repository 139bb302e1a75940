"""The escalation sweep: move overdue cases up their chain, never past the ceiling.

`escalate(router, cases, now)` is pure and idempotent: a case's next rung
starts when the previous rung's time ran out (not when the sweep ran), so a
second sweep at the same ``now`` finds nothing to do, and sweeps at later
times only ever move cases up (monotone).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Iterable

from wangge.core.routing import CaseView, Router


@dataclass(frozen=True)
class Escalation:
    case: str
    from_step: int
    to_step: int
    level: str
    owner: str
    since: datetime
    reason: str


@dataclass(frozen=True)
class Sweep:
    cases: tuple[CaseView, ...]  # every case, moved or not
    escalations: tuple[Escalation, ...]
    at_ceiling: tuple[str, ...]  # overdue cases that can go no higher


def escalate(router: Router, cases: Iterable[CaseView], now: datetime, closed: frozenset[str] = frozenset()) -> Sweep:
    """Move every overdue open case up as far as its time and ceiling allow.

    ``closed`` lists states in which cases are left alone.
    """
    out, moved, stuck = [], [], []
    for case in cases:
        if case.status in closed:
            out.append(case)
            continue
        new, events, blocked = _escalate_one(router, case, now)
        out.append(new)
        moved.extend(events)
        if blocked:
            stuck.append(case.id)
    return Sweep(tuple(out), tuple(moved), tuple(stuck))


def _escalate_one(router: Router, case: CaseView, now: datetime):
    chain = router.chain(case)
    step, since = case.step, case.step_since or case.opened_at
    events = []
    while step < len(chain):
        within = chain[step].within
        if within is None:
            break
        due = router.time.add(since, within)
        if now <= due:
            break
        if step + 1 >= len(chain):
            return replace(case, step=step, step_since=since), events, True
        rung = chain[step + 1]
        owner = f"department {rung.department}" if rung.department else f"{rung.role} at {rung.level} {rung.grid}".strip()
        events.append(
            Escalation(
                case.id, step, step + 1, rung.level, owner, due,
                f"overdue at {chain[step].level}: {within.amount:g} {within.unit.value} ran out at {due:%Y-%m-%d %H:%M}",
            )
        )
        step, since = step + 1, due
    return replace(case, step=step, step_since=since), events, False
