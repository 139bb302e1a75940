"""Routing: a case, its grid and the time → owner, deadlines and escalation chain.

Pure: `route` reads only its arguments. Every decision carries a trace that
says which rule and clause decided and with which values, for `wangge explain`.
The route table is indexed once per ruleset (`Router`), so a decision costs a
handful of dictionary lookups whatever the catalogue's size.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from wangge.core.calendar import WorkingTime, for_calendar
from wangge.core.errors import RoutingError
from wangge.core.ruleset import Duration, EscalationStep, RouteRule, Ruleset


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


@dataclass(frozen=True)
class Step:
    """One rung of a case's escalation chain."""

    level: str
    grid: str
    role: Optional[str]
    department: Optional[str]
    within: Optional[Duration]
    path: str


@dataclass(frozen=True)
class Decision:
    case: str
    level: Optional[str]
    grid: Optional[str]
    role: Optional[str]
    department: Optional[str]
    deadline: Optional[datetime]
    stages: tuple[tuple[str, datetime], ...]  # (state, deadline) per staged SLA
    chain: tuple[Step, ...]
    ceiling: Optional[str]
    trace: tuple[str, ...]

    @property
    def owner(self) -> str:
        if self.department:
            return f"department {self.department}"
        return f"{self.role or '?'} at {self.level or '?'} {self.grid or ''}".strip()


class Router:
    """The routing tables of one ruleset, indexed once."""

    def __init__(self, ruleset: Ruleset):
        self.ruleset = ruleset
        self.rank = ruleset.level_rank
        self.time: WorkingTime = for_calendar(ruleset.settings.calendar)
        self.severities = {s.code: s for s in ruleset.severities}
        self.paths = {p.code: p for p in ruleset.escalations}
        # Most specific first: item, class, channel, severity; file order breaks ties.
        self.by_item: dict[str, tuple[int, RouteRule]] = {}
        self.by_class: dict[str, tuple[int, RouteRule]] = {}
        self.by_channel: dict[str, tuple[int, RouteRule]] = {}
        self.by_severity: dict[str, tuple[int, RouteRule]] = {}
        for index, rule in enumerate(ruleset.routes):
            for key, table in (
                (rule.match_item, self.by_item),
                (rule.match_class, self.by_class),
                (rule.match_channel, self.by_channel),
                (rule.match_severity, self.by_severity),
            ):
                if key is not None:
                    table.setdefault(key, (index, rule))
                    break
        bottom = max(ruleset.levels, key=lambda level: level.rank).code if ruleset.levels else None
        self.default_level = bottom
        self.default_role = next((r.code for r in ruleset.roles if r.level == bottom), None)

    def route(self, case: CaseView) -> Decision:
        """Owner, deadlines and escalation chain of ``case``; raises `RoutingError` for an unknown item."""
        item = self.ruleset.items.get(case.item)
        if item is None:
            raise RoutingError(f"case {case.id}: unknown catalogue item {case.item!r}; check the code against the rule file")
        klass = self.ruleset.item_class[case.item]
        severity = case.severity or item.severity
        trace = [f"item {item.code} {item.label.text()} in class {klass.code}; severity {severity or 'none'}"]
        rule, clause = self._rule(item.code, klass.code, case.channel, severity)
        if rule is None:
            level, role, department = self.default_level, self.default_role, None
            trace.append(f"no route matches: default owner {role} at the lowest level {level}")
        else:
            level, role, department = rule.level, rule.role, rule.department
            trace.append(f"route {clause} → {('department ' + department) if department else f'{role} at {level}'}")
        grid = self._grid_at(case, level)
        stages, deadline = self._stages(item.sla, case.opened_at)
        if deadline is not None:
            trace.append(
                "SLA " + ", ".join(f"{s} {d.amount:g} {d.unit.value}" for s, d in ((x.state, x.within) for x in item.sla))
                + f" from {case.opened_at:%Y-%m-%d %H:%M} on calendar {self.ruleset.settings.calendar.code} → {deadline:%Y-%m-%d %H:%M}"
            )
        chain, ceiling, why = self._chain(case, item.escalation or klass.escalation, severity)
        trace.extend(why)
        return Decision(case.id, level, grid, role, department, deadline, stages, chain, ceiling, tuple(trace))

    def _rule(self, item: str, klass: str, channel: str, severity: Optional[str]):
        for key, table, name in (
            (item, self.by_item, "item"),
            (klass, self.by_class, "class"),
            (channel, self.by_channel, "channel"),
            (severity, self.by_severity, "severity"),
        ):
            found = table.get(key) if key is not None else None
            if found is not None:
                return found[1], f"#{found[0] + 1} (by {name} {key})"
        return None, ""

    def _grid_at(self, case: CaseView, level: Optional[str]) -> Optional[str]:
        for grid_level, code in case.grids:
            if grid_level == level:
                return code
        return case.grids[-1][1] if case.grids and level is None else None

    def _stages(self, sla, opened_at: datetime):
        moment, stages = opened_at, []
        for stage in sla:
            moment = self.time.add(moment, stage.within)
            stages.append((stage.state, moment))
        return tuple(stages), (moment if stages else None)

    def _chain(self, case: CaseView, path_code: Optional[str], severity: Optional[str]):
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
                steps.append(self._step(case, step, path.code))
            why.append(f"path {path.code} {path.label.text()}: " + " → ".join(x.level for x in path.steps))
            if allowed is None:
                return tuple(steps), path.ceiling, why
            if path.ceiling is None or not self._above(allowed, path.ceiling):
                return tuple(steps), allowed, why
            code = path.next
        return tuple(steps), allowed, why

    def _above(self, level: str, ceiling: str) -> bool:
        """True if ``level`` lies above ``ceiling`` (a smaller rank is higher)."""
        return self.rank.get(level, 0) < self.rank.get(ceiling, 0)

    def _step(self, case: CaseView, step: EscalationStep, path: str) -> Step:
        return Step(step.level, self._grid_at(case, step.level) or "", step.role, step.department, step.within, path)


def route(ruleset: Ruleset, case: CaseView) -> Decision:
    """Route one case (builds the indexes; use `Router` for many)."""
    return Router(ruleset).route(case)
