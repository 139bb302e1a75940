"""Routing: a case, its grid and the time → owner, deadlines and escalation chain.

Pure: `route` reads only its arguments. Every decision carries a trace that
says which rule and clause decided and with which values, for `wangge explain`.
The route table is indexed once per ruleset (`Router`), so a decision costs a
handful of dictionary lookups whatever the catalogue's size.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Optional

from wangge.core.calendar import WorkingTime, for_calendar
from wangge.core.errors import RoutingError
from wangge.core.ruleset import Duration, EscalationStep, RouteRule, Ruleset
from wangge.core.trace import stamp


@dataclass(frozen=True)
class CaseView:
    """What routing and escalation need to know about a case."""

    id: str
    item: str
    grids: tuple[tuple[str, str], ...]  # (level, grid code) from the top level down to the case's grid
    channel: str
    opened_at: datetime
    status: str = ""
    severity: Optional[str] = None  # the item's own severity when empty
    step: int = 0  # index in the escalation chain
    step_since: Optional[datetime] = None  # when the case reached that step
    reached: tuple[tuple[str, datetime], ...] = ()  # (state, when the case entered it), for `from STATE` SLAs


@dataclass(frozen=True)
class Step:
    """One rung of a case's escalation chain."""

    level: str
    grid: str
    role: Optional[str]
    department: Optional[str]
    within: Optional[Duration]
    path: str


class Decision(NamedTuple):
    """A routing decision. A named tuple: routing makes one per case, so it must be cheap."""

    case: str
    level: Optional[str]
    grid: Optional[str]
    role: Optional[str]
    department: Optional[str]
    deadline: Optional[datetime]
    stages: tuple[tuple[str, datetime], ...]  # (state, deadline) per staged SLA
    chain: tuple[Step, ...]
    ceiling: Optional[str]
    plan: "Plan"
    opened_at: datetime
    provisional: tuple[int, ...] = ()  # years the deadline crosses whose holidays are only estimated

    @property
    def trace(self) -> tuple[str, ...]:
        """Why: the rule and clause that decided, and the values they saw (rendered on demand)."""
        lines = list(self.plan.why)
        if self.deadline is not None:
            sla = ", ".join(f"{s.state} {s.within.amount:g} {s.within.unit.value}"
                            + (f" from {s.origin}" if s.origin else "") for s in self.plan.sla)
            zone = self.plan.zone
            lines.insert(2, f"SLA {sla} from {stamp(self.opened_at, zone)} on calendar "
                            f"{self.plan.calendar} → {stamp(self.deadline, zone)}")
            if self.provisional:
                lines.insert(3, provisional_note(self.provisional))
        return tuple(lines)

    @property
    def owner(self) -> str:
        if self.department:
            return f"department {self.department}"
        return f"{self.role or '?'} at {self.level or '?'} {self.grid or ''}".strip()


@dataclass(frozen=True)
class Plan:
    """Everything about a decision that depends on the item, channel and severity only."""

    level: Optional[str]
    role: Optional[str]
    department: Optional[str]
    sla: tuple
    steps: tuple[tuple[EscalationStep, str], ...]  # (step, path code), grid filled in per case
    ceiling: Optional[str]
    why: tuple[str, ...]
    calendar: str
    zone: str = "Asia/Shanghai"


class Router:
    """The routing tables of one ruleset, indexed once."""

    def __init__(self, ruleset: Ruleset):
        self.ruleset = ruleset
        self.rank = ruleset.level_rank
        self.time: WorkingTime = for_calendar(ruleset.settings.calendar, ruleset.settings.timezone)
        self.severities = {s.code: s for s in ruleset.severities}
        self.paths = {p.code: p for p in ruleset.escalations}
        # One rule: the first route in file order whose every condition holds
        # (an extending file's routes come before its base's). `rules check`
        # warns about a route an earlier one shadows. Plans are cached, so the
        # scan is paid once per (item, channel, severity).
        self.rules = list(enumerate(ruleset.routes))
        bottom = max(ruleset.levels, key=lambda level: level.rank).code if ruleset.levels else None
        self.default_level = bottom
        self.default_role = next((r.code for r in ruleset.roles if r.level == bottom), None)
        self._plans: dict[tuple, Plan] = {}
        self._provisional: dict[tuple[int, int], tuple[int, ...]] = {}
        self._placed: dict[tuple, tuple[Plan, Optional[str], tuple[Step, ...]]] = {}  # (item, channel, severity, grids)

    def route(self, case: CaseView) -> Decision:
        """Owner, deadlines and escalation chain of ``case``; raises `RoutingError` for an unknown item.

        The parts that depend only on item, channel and severity are planned
        once and cached; per case only grids and deadlines are worked out.
        """
        # One lookup per case on the hot path: plan and placement together.
        placed = self._placed.get((case.item, case.channel, case.severity, case.grids))
        if placed is None:
            placed = self._placement(case)
        plan, grid, chain = placed
        moment = opened = case.opened_at
        add = self.time.add
        if len(plan.sla) == 1 and plan.sla[0].origin is None:  # the usual item: one stage, no list to build
            (stage,) = plan.sla
            moment = add(moment, stage.within)
            stages: tuple = ((stage.state, moment),)
        else:
            stages = self._stages(plan.sla, case)
            moment = stages[-1][1] if stages else moment
        years = (opened.year, moment.year)
        provisional = self._provisional.get(years)
        if provisional is None:
            provisional = self._provisional[years] = self.time.provisional(opened, moment)
        return Decision(case.id, plan.level, grid, plan.role, plan.department, moment if stages else None,
                        stages, chain, plan.ceiling, plan, opened, provisional if stages else ())

    def _stages(self, sla, case: CaseView) -> tuple[tuple[str, datetime], ...]:
        """(state, deadline) per stage: each counted from the previous deadline, the report or a state's entry.

        A stage counted ``from STATE`` starts when the case entered STATE if it
        has (``case.reached``), else when it is due to enter it: the deadline of
        the stage before STATE in the list, or the report if STATE is first.
        """
        reached = dict(case.reached)
        entry = {}  # state -> when the case is due to enter it
        previous = case.opened_at
        staged = []
        for stage in sla:
            entry.setdefault(stage.state, previous)
            if stage.origin is None:
                start = previous
            elif stage.origin == "report":
                start = case.opened_at
            else:
                start = reached.get(stage.origin) or entry.get(stage.origin, case.opened_at)
            previous = self.time.add(start, stage.within)
            staged.append((stage.state, previous))
        return tuple(staged)

    def chain(self, case: CaseView) -> tuple[Step, ...]:
        """The escalation rungs of ``case`` without its deadlines (what the sweep needs); raises `RoutingError`."""
        placed = self._placed.get((case.item, case.channel, case.severity, case.grids))
        return (placed or self._placement(case))[2]

    def _placement(self, case: CaseView) -> tuple["Plan", Optional[str], tuple[Step, ...]]:
        key = (case.item, case.channel, case.severity)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(case)
        placed = self._placed[key + (case.grids,)] = (plan, *self._place(plan, case.grids))
        return placed

    @staticmethod
    def _place(plan: "Plan", cells: tuple[tuple[str, str], ...]) -> tuple[Optional[str], tuple[Step, ...]]:
        """The owner's grid and the escalation rungs for a case in ``cells`` (cached per grid path)."""
        grids = dict(cells)
        grid = grids.get(plan.level) if plan.level else (cells[-1][1] if cells else None)
        chain = tuple(Step(st.level, grids.get(st.level, ""), st.role,
                           plan.department if st.own_department else st.department, st.within, path)
                      for st, path in plan.steps)
        return grid, chain

    def _plan(self, case: CaseView) -> Plan:
        item = self.ruleset.items.get(case.item)
        if item is None:
            raise RoutingError(f"case {case.id}: unknown catalogue item {case.item!r}; check the code against the rule file")
        klass = self.ruleset.item_class[case.item]
        severity = case.severity or item.severity
        why = [f"item {item.code} {item.label.text()} in class {klass.code}; severity {severity or 'none'}"]
        rule, clause = self._rule(item.code, klass.code, case.channel, severity)
        if rule is None:
            level, role, department = self.default_level, self.default_role, None
            why.append(f"no route matches: default owner {role} at the lowest level {level}")
        else:
            level, role, department = rule.level, rule.role, rule.department
            why.append(f"route {clause} → {('department ' + department) if department else f'{role} at {level}'}")
        steps, ceiling, chain_why = self._chain(case, item.escalation or klass.escalation, severity, department)
        sla = item.sla_for(case.channel, severity)
        if sla is not item.sla:
            variant = next(v for v in item.variants if v.sla is sla)
            said = ", ".join(f"{k} {v}" for k, v in (("channel", variant.channel), ("severity", variant.severity)) if v)
            why.append(f"SLA of the variant when {said}")
        return Plan(level, role, department, sla, steps, ceiling, tuple(why + chain_why),
                    self.ruleset.settings.calendar.code, self.ruleset.settings.timezone)

    def _rule(self, item: str, klass: str, channel: str, severity: Optional[str]):
        """The first route whose every condition holds, and the clause that says so."""
        facts = (item, klass, channel, severity)
        for index, rule in self.rules:
            conditions = _conditions(rule)
            if all(facts[position] == value for position, _, value in conditions):
                said = ", ".join(f"{name} {value}" for _, name, value in conditions) or "any case"
                return rule, f"#{index + 1} (by {said})"
        return None, ""

    def _chain(self, case: CaseView, path_code: Optional[str], severity: Optional[str],
               department: Optional[str] = None):
        """The escalation rungs from the case's grid up to its ceiling, and why.

        The severity's ceiling wins ("大事不出街道"); without one, the path's
        own ceiling holds. A path whose ceiling is below what the severity
        allows hands over to its ``next`` path.
        """
        if path_code is None:
            return (), None, ["no escalation path: the case stays with its owner"]
        allowed = self.severities[severity].ceiling if severity in self.severities else None
        why, steps, seen = [], [], set()
        code: Optional[str] = path_code
        while code is not None and code not in seen:
            seen.add(code)
            path = self.paths.get(code)
            if path is None:
                raise RoutingError(f"case {case.id}: unknown escalation path {code!r}")
            for step in path.steps:
                if allowed is not None and self._above(step.level, allowed):
                    why.append(f"stop below {step.level}: severity {severity} may go no higher than {allowed}")
                    return tuple(steps), allowed, why
                steps.append((step, path.code))
            why.append(f"path {path.code} {path.label.text()}: " + " → ".join(x.level for x in path.steps))
            for step in path.steps:
                if step.own_department:
                    why.append(f"step {step.level} goes to the case's own department: "
                               f"{department or 'none (its route names no department)'}")
            if allowed is None:
                return tuple(steps), path.ceiling, why
            if path.ceiling is None or not self._above(allowed, path.ceiling):
                return tuple(steps), allowed, why
            code = path.next
        return tuple(steps), allowed, why

    def _above(self, level: str, ceiling: str) -> bool:
        """True if ``level`` lies above ``ceiling`` (a smaller rank is higher)."""
        return self.rank.get(level, 0) < self.rank.get(ceiling, 0)

_MATCHES = (("match_item", "item"), ("match_class", "class"), ("match_channel", "channel"),
            ("match_severity", "severity"))


def _conditions(rule: RouteRule) -> tuple[tuple[int, str, str], ...]:
    """(position in the facts, name, value) of each condition the rule sets."""
    return tuple((position, name, getattr(rule, field)) for position, (field, name) in enumerate(_MATCHES)
                 if getattr(rule, field) is not None)



def provisional_note(years: tuple[int, ...]) -> str:
    """What a deadline that crosses years with no official holiday schedule says about itself."""
    listed = ", ".join(str(y) for y in years)
    return (f"PROVISIONAL deadline: {listed} has no official holiday schedule yet; statutory holidays are "
            f"estimated and make-up workdays unknown until the rule file gives `year {years[0]} {{ holidays … "
            f"workdays … }}` or the holiday library is updated")


def route(ruleset: Ruleset, case: CaseView) -> Decision:
    """Route one case (builds the indexes; use `Router` for many)."""
    return Router(ruleset).route(case)
