"""The compiler: checked `Definitions` in, a frozen `Ruleset` out.

Pure and total over checked definitions: `compile_definitions` assumes
`checks.run` found nothing (references resolve, ranges hold) and raises
nothing for such input.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from wangge.core import ruleset as rs
from wangge.dsl.definitions import Definitions, single
from wangge.dsl.units import duration, number, span_dates

__all__ = ["compile_definitions"]

_KIND = {"部件": "component", "事件": "event", "服务": "service"}
_EVIDENCE = {"照片": "photo", "现场确认": "onsite_confirmation", "回访": "callback", "签字": "signature"}


# A big catalogue repeats the same labels ("受理" / "Accept"), durations and SLA
# stages thousands of times. The compiled values are frozen, so equal ones are
# built once and shared: a 5 MB file's ruleset takes a fraction of the memory
# and of pydantic's validation time. Keys are the source strings, so a shared
# value is exactly the one its text would have compiled to.
_SHARED = 8192


def label(node) -> rs.Label:
    if node is None:
        return _label("", "")
    return _label(node.zh, node.en or "")


@lru_cache(maxsize=_SHARED)
def _label(zh: str, en: str) -> rs.Label:
    return rs.Label(zh=zh, en=en)


def code_of(ref):
    ref = single(ref)
    return ref.code if ref is not None else None


def evidence(words) -> tuple[str, ...]:
    return tuple(_EVIDENCE.get(w, w) for w in words)


def compile_definitions(defs: Definitions) -> rs.Ruleset:
    """The `Ruleset` that ``defs`` describe. Raises nothing for checked definitions."""
    header = defs.header
    return rs.Ruleset(
        name=header.code,
        label=label(header.label),
        base=defs.base,
        settings=settings(defs.settings),
        roles=tuple(rs.Role(code=c, label=label(r.label), level=code_of(r.level), office=r.office,
                            stipend=number(r.stipend) if r.stipend else None, stipend_period=r.stipend_period or None,
                            headcount=int(number(r.headcount)) if r.headcount else None)
                    for c, r in defs.roles.items()),
        levels=tuple(level(c, lv, rank) for rank, (c, lv) in enumerate(defs.levels.items())),
        departments=tuple(rs.Department(code=c, label=label(d.label)) for c, d in defs.departments.items()),
        channels=tuple(rs.Channel(code=c, label=label(ch.label), callback=ch.callback, hours=ch.hours or "")
                       for c, ch in defs.channels.items()),
        severities=tuple(rs.Severity(code=c, label=label(s.label), rank=s.rank or 0,
                                     ceiling=code_of(s.ceiling)) for c, s in defs.severities.items()),
        catalogue=catalogue(defs),
        lifecycle=lifecycle(defs),
        routes=tuple(route(r) for r in defs.routes),
        escalations=tuple(escalation(c, p) for c, p in defs.escalations.items()),
        registers=tuple(register(defs, entity) for entity in defs.registers.codes()),
        formulas=tuple(f for c, node in defs.formulas.items() for f in formulas(c, node)),
        points=rs.Points(
            earn=tuple(rs.EarnRule(code=c, label=label(e.label), points=e.points) for c, e in defs.earn.items()),
            rewards=tuple(rs.Reward(code=c, label=label(r.label), cost=r.cost) for c, r in defs.rewards.items()),
        ),
        services=tuple(rs.Service(code=c, label=label(s.label), points=s.points or 0)
                       for c, s in defs.services.items()),
        projects=tuple(project(c, p) for c, p in defs.projects.items()),
        meetings=tuple(rs.Meeting(code=c, label=label(m.label), every=duration(m.every),
                                  roles=tuple(r.code for r in m.roles)) for c, m in defs.meetings.items()),
    )


def settings(blocks) -> rs.Settings:
    values: dict = {}
    calendar: dict = {}
    for block in blocks:  # later blocks (the extending file) win
        if single(block.timezone) is not None:
            values["timezone"] = single(block.timezone)
        for attr, unit, key in (("duplicate_window", "hours", "duplicate_window_hours"),
                                ("lease", "days", "lease_days"),
                                ("clock_drift", "minutes", "clock_drift_minutes")):
            node = single(getattr(block, attr))
            if node is not None:
                values[key] = _in_unit(node, unit)
        if single(block.calendar) is not None:
            calendar["code"] = single(block.calendar)
        if block.weekend:
            calendar["weekend"] = tuple(block.weekend)
        # Days accumulate over the base's and the extending file's blocks; a day
        # the later file lists the other way round moves from one list to the other.
        for year in block.years:
            calendar.setdefault("years", set()).add(year.year)
        for kind, other, spans in _day_lists(block):
            days = {day for span in spans for day in span_dates(span)}
            calendar[kind] = (calendar.get(kind, set()) | days)
            calendar[other] = calendar.get(other, set()) - days
        if single(block.day_start) is not None:
            calendar["day_start"], calendar["day_end"] = single(block.day_start), single(block.day_end)
    lease = values.get("lease_days")
    if lease is not None:
        values["lease_days"] = int(lease)
    if "clock_drift_minutes" in values:
        values["clock_drift_minutes"] = int(values["clock_drift_minutes"])
    for key in ("holidays", "workdays", "years"):
        if key in calendar:
            calendar[key] = tuple(sorted(calendar[key]))
    return rs.Settings(calendar=rs.Calendar(**calendar), **values)


def _day_lists(block):
    """(list, opposite list, spans) for the block's plain lists and its year schedules."""
    yield "holidays", "workdays", block.holidays
    yield "workdays", "holidays", block.workdays
    for year in block.years:
        yield "holidays", "workdays", year.holidays
        yield "workdays", "holidays", year.workdays


_TO_HOURS = {"minutes": 1 / 60, "hours": 1, "days": 24, "working_hours": 1, "working_days": 8}


def _in_unit(node, unit: str) -> float:
    # Settings are plain numbers in one unit; working time counts as clock time here.
    compiled = duration(node)
    hours = compiled.amount * _TO_HOURS[compiled.unit.value]
    return hours / _TO_HOURS[unit]


def level(code: str, node, rank: int) -> rs.GridLevel:
    buildings, storefronts = single(node.buildings), single(node.storefronts)
    return rs.GridLevel(
        code=code, label=label(node.label), rank=rank,
        sizing=rs.Sizing(
            households_per_grid=single(node.households_per_grid),
            merge_below=single(node.merge_below),
            buildings_per_grid=(buildings.low, buildings.high) if buildings else None,
            storefronts_per_grid=(storefronts.low, storefronts.high) if storefronts else None,
            grids_per_upper=single(node.grids_per_upper),
        ),
        classes=tuple(
            rs.GridClass(code=c.code, label=label(c.label), targets=tuple(
                rs.Target(code=t.code, label=label(t.label), value=number(t.value), unit=t.unit or "",
                          metric=_metric(t.metric))
                for t in c.targets))
            for c in node.classes),
    )


def catalogue(defs: Definitions) -> tuple[rs.CaseClass, ...]:
    items: dict[str, list] = {code: [] for code in defs.classes.codes()}
    for full, node in defs.items.items():
        items[defs.item_class[full]].append(item(full, node))
    return tuple(
        rs.CaseClass(code=c, label=label(node.label), kind=_KIND.get(node.kind, node.kind or "event"),
                     items=tuple(items[c]), escalation=code_of(node.escalation))
        for c, node in defs.classes.items())


def item(full: str, node) -> rs.CaseItem:
    difficulty = single(node.difficulty)
    return rs.CaseItem(
        code=full, label=label(node.label), severity=code_of(node.severity),
        sla=sla(node.sla),
        evidence=evidence(node.evidence),
        variants=tuple(rs.ItemVariant(
            channel=code_of(v.channel), severity=code_of(v.severity), sla=sla(v.sla) if v.sla else None,
            evidence=() if v.no_evidence else (evidence(v.evidence) if v.evidence else None))
            for v in node.variants),
        steps=tuple(label(step) for step in node.steps),
        channels=tuple(ch.code for ch in node.channels),
        difficulty=number(difficulty) if difficulty is not None else 1.0,
        escalation=code_of(node.escalation),
    )


def sla(stages) -> tuple[rs.SlaStage, ...]:
    return tuple(_sla_stage(s.state.code, s.within.amount, s.within.unit,
                            "report" if s.from_report else code_of(s.origin)) for s in stages)


@lru_cache(maxsize=_SHARED)
def _sla_stage(state: str, amount: str, unit: str, origin) -> rs.SlaStage:
    return rs.SlaStage(state=state, within=duration(_Within(amount, unit)), origin=origin)


class _Within(NamedTuple):
    """A `Duration` node's two strings, as `units.duration` reads them."""

    amount: str
    unit: str


_STATE_FLAGS = ("void", "suspended", "rework", "closed")


def lifecycle(defs: Definitions):
    if not defs.states:
        return None
    return rs.Lifecycle(
        states=tuple(rs.State(code=c, label=label(s.label), initial="initial" in s.flags,
                              final="final" in s.flags,
                              flags=tuple(f for f in _STATE_FLAGS if f in s.flags))
                     for c, s in defs.states.items()),
        transitions=tuple(rs.Transition(code=c, label=label(t.label),
                                        sources=tuple(s.code for s in t.sources), target=t.target.code,
                                        roles=tuple(r.code for r in t.roles), office=t.office,
                                        requires=evidence(t.requires), from_reporter=bool(t.from_reporter),
                                        evidence_by=tuple(r.code for r in t.evidence_by))
                          for c, t in defs.transitions.items()),
    )


def _target(indicator, grade):
    if indicator.target is not None:
        return number(indicator.target)
    by_grade = {t.grade.code: number(t.value) for t in indicator.grade_targets}
    return by_grade.get(grade)


_RANK = {"末位": "bottom", "前列": "top"}
_EMPTY = {"满分": "full", "零分": "zero", "不计": "not_counted"}


def _metric(node):
    return node.code.replace(" ", "") if node is not None else None


def _empty_rule(word) -> str:
    """An indicator's rule for an empty period; unstated, it is not counted."""
    word = word or "not_counted"
    return _EMPTY.get(word, word)


def route(node) -> rs.RouteRule:
    return rs.RouteRule(
        match_class=code_of(node.match_class), match_item=code_of(node.match_item),
        match_channel=code_of(node.match_channel), match_severity=code_of(node.match_severity),
        level=code_of(node.level), role=code_of(node.role), department=code_of(node.department),
    )


def escalation(code: str, node) -> rs.EscalationPath:
    steps, previous = [], None
    for step in node.steps:
        within = duration(step.within)
        # `after` is the time the previous step had; the first step takes over at once.
        after = previous if previous is not None else rs.Duration(amount=0, unit=within.unit)
        steps.append(rs.EscalationStep(level=step.level.code, role=code_of(step.role),
                                       department=code_of(step.department), after=after, within=within,
                                       own_department=bool(step.own_department)))
        previous = within
    return rs.EscalationPath(code=code, label=label(node.label), steps=tuple(steps),
                             ceiling=code_of(node.ceiling), next=code_of(node.next))


def register(defs: Definitions, entity: str) -> rs.Register:
    return rs.Register(entity=entity, fields=tuple(
        field_spec(c, f) for c, f in defs.register_fields(entity).items()))


def field_spec(code: str, node) -> rs.FieldSpec:
    opts = node.options
    flags = {o.flag for o in opts if o.flag}
    mins = [number(o.min) for o in opts if o.min is not None]
    maxs = [number(o.max) for o in opts if o.max is not None]
    patterns = [o.pattern for o in opts if o.pattern]
    return rs.FieldSpec(
        code=code, label=label(node.label), type=rs.FieldType(node.type),
        required="required" in flags, critical="critical" in flags,
        choices=tuple(c for o in opts for c in o.choices),
        min=mins[-1] if mins else None, max=maxs[-1] if maxs else None,
        pattern=patterns[-1] if patterns else None,
    )


def formulas(code: str, node) -> tuple[rs.Formula, ...]:
    """The formula, or one per grade for a formula written `grades A, B, C` (targets per grade)."""
    grades = [g.code for g in node.grades]
    if not grades:
        return (formula(code, node, code_of(node.grade)),)
    return tuple(formula(code, node, grade) for grade in grades)


def formula(code: str, node, grade) -> rs.Formula:
    role, level_ref = single(node.role), single(node.level)
    total = single(node.total)
    return rs.Formula(
        code=code, label=label(node.label), subject=node.subject,
        role=code_of(role), level=code_of(level_ref), grade=grade,
        period=single(node.period) or "month", total=number(total) if total is not None else 100,
        subtree=bool(node.subtree),
        indicators=tuple(rs.Indicator(code=i.code, label=label(i.label), numerator=_metric(i.numerator),
                                      denominator=_metric(i.denominator), weight=number(i.weight),
                                      target=_target(i, grade), lower_is_better=i.lower_is_better,
                                      if_empty=_empty_rule(i.if_empty))
                        for i in node.indicators),
        tiers=tuple(rs.Tier(code=t.code, label=label(t.label), min=number(t.low), max=number(t.high),
                            reward=_reward(t))
                    for t in sorted((t for t in node.tiers if not t.rank), key=lambda t: -number(t.low)))
              + tuple(rs.Tier(code=t.code, label=label(t.label), rank=_RANK.get(t.rank, t.rank),
                              count=number(t.count), percent=bool(t.percent), reward=_reward(t))
                      for t in node.tiers if t.rank),
        no_reward_on_drop=bool(single(node.no_reward_on_drop)),
        vetoes=tuple(rs.Veto(code=v.code, label=label(v.label), metric=_metric(v.metric),
                             at_least=number(v.at_least), bars=tuple(b.code for b in v.bars))
                     for v in node.vetoes),
    )


def _reward(tier) -> float | None:
    return number(tier.reward) if tier.reward is not None else None


def project(code: str, node) -> rs.ProjectTemplate:
    hours, budget, activities = single(node.hours), single(node.budget), single(node.activities)
    within = single(node.within)
    return rs.ProjectTemplate(
        code=code, label=label(node.label), within=duration(within) if within is not None else None,
        hours=number(hours) if hours is not None else None,
        budget=number(budget) if budget is not None else None,
        min_activities=activities,
        stages=tuple(rs.ProjectStage(code=s.code, label=label(s.label),
                                     share=number(s.share) / (100 if s.percent else 1),
                                     evaluator=s.evaluator or "third_party",
                                     min_score=number(s.min_score) if s.min_score is not None else None)
                     for s in node.stages),
    )
