"""The escalation sweep: move overdue cases up their chain, never past the ceiling.

`escalate(router, cases, now)` is pure and idempotent: a case's next rung
starts when the previous rung's time ran out (not when the sweep ran), so a
second sweep at the same ``now`` finds nothing to do, and sweeps at later
times only ever move cases up (monotone).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Iterable, Optional

from wangge.core.routing import CaseView, Router
from wangge.core.ruleset import Duration
from wangge.core.trace import stamp


@dataclass(frozen=True)
class Escalation:
    """One move up a case's chain: from which rung to which, to whom, since when, and why."""

    case: str
    from_step: int
    to_step: int
    level: str
    owner: str
    since: datetime  # when the time at the previous rung ran out
    from_level: str = ""
    within: Optional[Duration] = None  # the time the previous rung had
    zone: Optional[str] = None  # the ruleset's time zone, for the reason's times

    @property
    def reason(self) -> str:
        """Why, in words (rendered on demand: a sweep over 100k cases records many and reads few)."""
        spent = f"{self.within.amount:g} {self.within.unit.value}" if self.within else "its time"
        return f"overdue at {self.from_level}: {spent} ran out at {stamp(self.since, self.zone)}"


@dataclass(frozen=True)
class Sweep:
    cases: tuple[CaseView, ...]  # every case, moved or not
    escalations: tuple[Escalation, ...]
    at_ceiling: tuple[str, ...]  # overdue cases that can go no higher


def escalate(router: Router, cases: Iterable[CaseView], now: datetime, closed: frozenset[str] = frozenset()) -> Sweep:
    """Move every overdue open case up as far as its time and ceiling allow.

    A case at rung k moves to k+1 once rung k's ``within`` has run out on the
    working calendar, counted from when it reached rung k; it never moves past
    the last rung its severity's ceiling allows (it is listed in
    ``at_ceiling`` instead). ``closed`` lists states in which cases are left
    alone. Unmoved cases come back as the very same objects.
    Raises `RoutingError` if a case names an item or path the ruleset lacks.
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
        if step + 1 >= len(chain):  # overdue at the ceiling: it stays, and the sweep says so
            return (replace(case, step=step, step_since=since) if events else case), events, True
        rung = chain[step + 1]
        owner = f"department {rung.department}" if rung.department else f"{rung.role} at {rung.level} {rung.grid}".strip()
        events.append(Escalation(case.id, step, step + 1, rung.level, owner, due, chain[step].level, within,
                                 router.ruleset.settings.timezone))
        step, since = step + 1, due
    if not events:  # nothing moved: the very same case, no copy
        return case, events, False
    return replace(case, step=step, step_since=since), events, False
