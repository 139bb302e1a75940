"""Semantic checks over merged `Definitions`.

Each check is a pure function ``(defs) -> iterator of Diagnostic``; `run`
applies them all so every problem of a file is reported in one run. Every
reference is resolved with one dictionary lookup in the definitions' tables.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wangge.core.ruleset import METRICS, metric_parts
from wangge.dsl.definitions import Definitions, Table, single, where
from wangge.dsl.diagnostics import Diagnostic, at, did_you_mean
from wangge.dsl.route_check import check_routes
from wangge.dsl.units import duration, nominal_hours, number, span_dates, text

__all__ = ["run"]

Found = Iterator[Diagnostic]


def run(defs: Definitions) -> list[Diagnostic]:
    """Every problem the checks find in ``defs``; empty when the rules are sound."""
    found: list[Diagnostic] = []
    for check in CHECKS:
        found.extend(check(defs))
    return found


# -- references ---------------------------------------------------------------

_PLURAL = {"role": "roles", "level": "levels", "department": "departments", "channel": "channels",
           "severity": "severities", "class": "classes", "item": "items", "state": "states",
           "escalation": "escalation paths", "tier": "tiers", "metric": "metrics",
           "grade": "classes and grades"}


def resolve(ref, table: Table | dict, kind: str) -> Found:
    """Nothing if ``ref`` names an entry of ``table``, else one diagnostic with a hint."""
    if ref is None or ref.code in table:
        return
    codes = table.codes() if isinstance(table, Table) else list(table)
    hint = did_you_mean(ref.code, codes, _PLURAL.get(kind, kind))
    if kind == "role":
        yield at(ref, f"role '{ref.code}' is used but not defined", hint or "define it with `role`")
    elif kind == "state":
        declare = f"or declare it inside lifecycle {{ … }}: state {ref.code} \"{ref.code}\""
        yield at(ref, f"unknown state '{ref.code}'", f"{hint}; {declare}" if hint else declare)
    else:
        yield at(ref, f"unknown {kind} '{ref.code}'", hint)


def resolve_all(refs, table, kind: str) -> Found:
    for ref in refs or ():
        yield from resolve(ref, table, kind)


def check_references(defs: Definitions) -> Found:
    for role in defs.roles.values():
        yield from resolve(role.level, defs.levels, "level")
    for severity in defs.severities.values():
        yield from resolve(severity.ceiling, defs.levels, "level")
    for cls in defs.classes.values():
        yield from resolve(cls.escalation, defs.escalations, "escalation")
    for item in defs.items.values():
        yield from resolve(single(item.severity), defs.severities, "severity")
        yield from resolve_all([stage.state for stage in item.sla], defs.states, "state")
        yield from resolve_all([stage.origin for stage in item.sla if stage.origin], defs.states, "state")
        for variant in item.variants:
            yield from resolve(single(variant.channel), defs.channels, "channel")
            yield from resolve(single(variant.severity), defs.severities, "severity")
            yield from resolve_all([stage.state for stage in variant.sla], defs.states, "state")
            yield from resolve_all([stage.origin for stage in variant.sla if stage.origin], defs.states, "state")
        yield from resolve_all(item.channels, defs.channels, "channel")
        yield from resolve(single(item.escalation), defs.escalations, "escalation")
    for transition in defs.transitions.values():
        yield from resolve_all(transition.sources + [transition.target], defs.states, "state")
        yield from resolve_all(transition.roles, defs.roles, "role")
        yield from resolve_all(transition.evidence_by, defs.roles, "role")
    for route in defs.routes:
        yield from resolve_all(route.match_class, defs.classes, "class")
        yield from resolve_all(route.match_item, defs.items, "item")
        yield from resolve_all(route.match_channel, defs.channels, "channel")
        yield from resolve_all(route.match_severity, defs.severities, "severity")
        yield from resolve(route.department, defs.departments, "department")
        yield from resolve(route.level, defs.levels, "level")
        yield from resolve(route.role, defs.roles, "role")
    for path in defs.escalations.values():
        yield from resolve(path.ceiling, defs.levels, "level")
        yield from resolve(path.next, defs.escalations, "escalation")
        for step in path.steps:
            yield from resolve(step.level, defs.levels, "level")
            yield from resolve(step.role, defs.roles, "role")
            yield from resolve(step.department, defs.departments, "department")
    for meeting in defs.meetings.values():
        yield from resolve_all(meeting.roles, defs.roles, "role")


# -- repeated settings ----------------------------------------------------------

def given_twice(obj, attrs: tuple[str, ...]) -> Found:
    """An attribute written twice in one block: the second would silently win."""
    for attr in attrs:
        value = getattr(obj, attr, None)
        if isinstance(value, list) and len(value) > 1:
            yield at(obj, f"'{attr}' is given {len(value)} times in one block",
                     "keep one; the values disagree or repeat")


def check_settings(defs: Definitions) -> Found:
    for block in defs.settings:
        yield from given_twice(block, ("timezone", "duplicate_window", "lease", "clock_drift",
                                       "calendar", "day_start", "day_end"))
        zone = single(block.timezone)
        if zone is not None and not _valid_zone(zone):
            yield at(block, f"unknown time zone '{zone}'", 'use an IANA name such as "Asia/Shanghai"')
        yield from check_days(block)
        for day in block.weekend:
            if not 0 <= day <= 6:
                yield at(block, f"weekend day {day} is out of range",
                         "days count from Monday = 0 to Sunday = 6")
        start, end = single(block.day_start), single(block.day_end)
        if start and end and not ("00:00" <= start < end <= "24:00"):
            yield at(block, f"office hours {start}-{end} can never hold",
                     "the start must come before the end, both between 00:00 and 24:00")


def check_days(block) -> Found:
    """Dates that exist, spans that run forward, year schedules within their year, no day both off and worked."""
    listed: dict = {}
    seen_years: set[int] = set()
    lists = [(None, "holidays", block.holidays), (None, "workdays", block.workdays)]
    for year in block.years:
        if year.year in seen_years:
            yield at(year, f"the schedule of {year.year} is given twice", "merge the two `year` blocks into one")
        seen_years.add(year.year)
        lists += [(year, "holidays", year.holidays), (year, "workdays", year.workdays)]
    for year, kind, spans in lists:
        for span in spans:
            first, last = _date(span.first), _date(span.last) if span.last else _date(span.first)
            bad = span.first if first is None else (span.last if last is None else None)
            if bad is not None:
                yield at(span, f"'{bad}' is not a calendar date", "write dates as YYYY-MM-DD")
                continue
            if last < first:
                yield at(span, f"the span {span.first}..{span.last} runs backwards", "write the earlier date first")
                continue
            if year is not None and not (first.year == last.year == year.year):
                yield at(span, f"{span.first} is listed in the schedule of {year.year}",
                         f"move it to the `year {first.year}` block or out of `year {year.year}`")
            for day in span_dates(span):
                other = listed.setdefault(day, kind)
                if other != kind:
                    yield at(span, f"{day} is listed both as a holiday and as a workday",
                             "keep it in one list: `holidays` for a day off, `workdays` for a day worked")


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError, OSError):  # odd keys raise all three
        return False


def _date(value: str):
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# -- grid levels ------------------------------------------------------------------

def check_levels(defs: Definitions) -> Found:
    for level in defs.levels.values():
        for grid_class in level.classes:
            for target in grid_class.targets:
                yield from check_metric(defs, target.metric)
        yield from given_twice(level, ("households_per_grid", "merge_below", "buildings",
                                       "storefronts", "grids_per_upper"))
        for rng, what in ((single(level.buildings), "buildings"), (single(level.storefronts), "storefronts")):
            if rng is not None and rng.low > rng.high:
                yield at(rng, f"{what} per grid {rng.low}..{rng.high} can never hold",
                         f"write the smaller number first: {rng.high}..{rng.low}")
        per_grid, merge = single(level.households_per_grid), single(level.merge_below)
        if per_grid is not None and merge is not None and merge > per_grid:
            yield at(level, f"merge_below {merge} is above households_per_grid {per_grid}",
                     "a unit is merged only when it is smaller than one grid")
        yield from duplicates(level.classes, "class or grade")
        for grid_class in level.classes:
            yield from duplicates(grid_class.targets, "target")


def duplicates(objs, kind: str) -> Found:
    """Codes repeated within one list (tiers of a formula, stages of a project, …)."""
    seen = {}
    for obj in objs:
        if obj.code in seen:
            yield at(obj, f"duplicate {kind} code '{obj.code}'",
                     f"'{obj.code}' is already defined at {where(seen[obj.code])}; choose another code")
        else:
            seen[obj.code] = obj


# -- catalogue --------------------------------------------------------------------

def check_catalogue(defs: Definitions) -> Found:
    for code, item in defs.items.items():
        yield from given_twice(item, ("severity", "difficulty", "escalation"))
        difficulty = single(item.difficulty)
        if difficulty is not None and number(difficulty) <= 0:
            yield at(item, f"difficulty {difficulty} of item {code} must be above 0",
                     "1 is an ordinary task; harder tasks weigh more")
        yield from _check_sla(code, item.sla)
        for variant in item.variants:
            yield from given_twice(variant, ("channel", "severity"))
            yield from _check_sla(code, variant.sla)
            if variant.no_evidence and variant.evidence:
                yield at(variant, f"a variant of item {code} says both `evidence none` and names evidence",
                         "keep one")
            if not variant.sla and not variant.evidence and not variant.no_evidence:
                yield at(variant, f"this variant of item {code} changes nothing", "give it an `sla` or `evidence`")
            allowed = {ch.code for ch in item.channels}
            channel = single(variant.channel)
            if channel is not None and allowed and channel.code not in allowed:
                yield at(channel, f"item {code} is not reported on channel {channel.code}: this variant never applies",
                         f"its channels are {', '.join(sorted(allowed))}")


def _check_sla(code: str, stages) -> Found:
    seen = set()
    for stage in stages:
        if number(stage.within.amount) <= 0:
            yield at(stage, f"SLA of item {code} in state {stage.state.code} must be above 0")
        if stage.state.code in seen:
            yield at(stage, f"item {code} has two SLAs for state {stage.state.code}",
                     "keep one SLA per state")
        seen.add(stage.state.code)


def check_metric(defs: Definitions, metric) -> Found:
    """A metric names a known measure, a state (on_time, left) or a case register field (field)."""
    if metric is None:
        return
    kind, name, value = metric_parts(metric.code)
    if kind == "plain":
        if name not in METRICS:
            hint = did_you_mean(name, METRICS, "metrics")
            if not hint.startswith("did you mean"):
                hint += "; or on_time(STATE), left(STATE), field(FIELD=VALUE)"
            yield at(metric, f"unknown metric '{name}'", hint)
    elif kind in ("on_time", "left"):
        if name not in defs.states:
            yield at(metric, f"unknown state '{name}' in {kind}({name})", did_you_mean(name, defs.states.codes(), "states"))
    else:
        fields = defs.register_fields("case")
        spec = fields.get(name)
        if spec is None:
            yield at(metric, f"field({name}) names no field of the case register",
                     did_you_mean(name, fields.codes(), "case fields") or "declare it: register case { field … }")
            return
        choices = [str(c) for o in spec.options for c in o.choices]
        if value is not None and choices and value not in choices:
            yield at(metric, f"'{value}' is not a value of case field {name}", did_you_mean(value, choices, "values"))


# -- lifecycle ----------------------------------------------------------------------

def check_lifecycle(defs: Definitions) -> Found:
    for code, t in defs.transitions.items():
        # Only a confirmation on site or a signature is given by a person; a callback is made to one.
        if t.from_reporter and not {"onsite_confirmation", "现场确认", "signature", "签字"} & set(t.requires):
            yield at(t, f"transition {code} asks for evidence from the reporter, but requires only "
                        f"{', '.join(t.requires)}",
                     "`from reporter` applies to onsite_confirmation or signature: add one, or drop `from reporter`")
    if not defs.states:
        return
    block = defs.lifecycles[-1]
    initial = [code for code, s in defs.states.items() if "initial" in s.flags]
    final = {code for code, s in defs.states.items() if "final" in s.flags}
    if len(initial) != 1:
        yield at(block, f"the lifecycle needs exactly one initial state, found {len(initial)}",
                 "mark the state where a case starts with `initial`"
                 if not initial else f"initial states: {', '.join(initial)}; keep one")
    if not final:
        yield at(block, "the lifecycle has no final state", "mark the closing state(s) with `final`")
    forward, backward = _edges(defs)
    if len(initial) == 1:
        reached = _reach(initial[0], forward)
        for code, state in defs.states.items():
            if code not in reached:
                yield at(state, f"state {code} is unreachable from the initial state {initial[0]}",
                         f"add a transition into {code}, or remove it")
    if final:
        closing = set().union(*(_reach(code, backward) for code in final))
        for code, state in defs.states.items():
            if code not in closing:
                yield at(state, f"state {code} has no way to close: no path leads to a final state",
                         f"add a transition from {code} towards {', '.join(sorted(final))}")


def _edges(defs: Definitions):
    forward: dict[str, set[str]] = {}
    backward: dict[str, set[str]] = {}
    for t in defs.transitions.values():
        for source in t.sources:
            forward.setdefault(source.code, set()).add(t.target.code)
            backward.setdefault(t.target.code, set()).add(source.code)
    return forward, backward


def _reach(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


# -- escalation -------------------------------------------------------------------

def check_escalation(defs: Definitions) -> Found:
    rank = {code: i for i, code in enumerate(defs.levels.codes())}
    for code, path in defs.escalations.items():
        if not path.steps:
            yield at(path, f"escalation {code} has no steps", "add `step LEVEL by ROLE within DURATION`")
        yield from _step_order(code, path, rank)
        yield from _step_sla(code, path)
    yield from _then_cycles(defs)


def _step_order(code: str, path, rank: dict[str, int]) -> Found:
    ceiling = path.ceiling.code if path.ceiling is not None else None
    previous = None
    for step in path.steps:
        here = rank.get(step.level.code)
        if here is None:
            continue  # an unknown level is reported by the reference check
        if previous is not None and here >= rank[previous]:
            yield at(step, f"escalation {code} goes from {previous} to {step.level.code}, not upwards",
                     "list steps from the lowest level to the highest")
        if ceiling in rank and here < rank[ceiling]:
            yield at(step, f"escalation {code} passes its ceiling {ceiling} at {step.level.code}",
                     f"stop at {ceiling}, or continue with `then` into a path for bigger matters")
        previous = step.level.code


def _step_sla(code: str, path) -> Found:
    # Deadlines nest: a level answers for the time its lower levels take, so a
    # step may not allow more time than the step above it (its parent).
    for child, parent_step in zip(path.steps, path.steps[1:]):
        mine, theirs = duration(child.within), duration(parent_step.within)
        if nominal_hours(mine) > nominal_hours(theirs):
            yield at(child, f"step {child.level.code} of escalation {code} allows {text(mine)}, "
                            f"longer than its parent step {parent_step.level.code} ({text(theirs)})",
                     f"shorten it to at most {text(theirs)} or lengthen the parent step")


def _then_cycles(defs: Definitions) -> Found:
    reported = set()
    for start, path in defs.escalations.items():
        chain, code = [start], single(path.next)
        while code is not None and code.code in defs.escalations and code.code not in chain:
            chain.append(code.code)
            code = defs.escalations.get(code.code).next
        if code is not None and code.code in chain:
            cycle = chain[chain.index(code.code):] + [code.code]
            key = frozenset(cycle)
            if key not in reported and start == cycle[0]:
                reported.add(key)
                yield at(path, f"escalation cycle: {' -> '.join(cycle)}",
                         "a `then` chain must end at a path without `then`")


# -- registers --------------------------------------------------------------------

_NUMERIC = {"integer", "decimal"}
_PATTERNED = {"text", "phone", "id_number"}


def check_registers(defs: Definitions) -> Found:
    for entity, fields in defs.fields.items():
        for code, spec in fields.items():
            yield from _field(entity, code, spec)


def _field(entity: str, code: str, spec) -> Found:
    name = f"field {code} of {entity}"
    low = [o for o in spec.options if o.min is not None]
    high = [o for o in spec.options if o.max is not None]
    choices = [c for o in spec.options for c in o.choices]
    patterns = [o for o in spec.options if o.pattern]
    if (low or high) and spec.type not in _NUMERIC:
        yield at(spec, f"{name} is {spec.type}: min and max apply to integer and decimal fields",
                 "remove min/max or change the type")
    if low and high and number(low[-1].min) > number(high[-1].max):
        yield at(spec, f"{name} can never hold: min {low[-1].min} is above max {high[-1].max}",
                 "swap the bounds")
    if spec.type == "integer":
        for bound in [o.min for o in low] + [o.max for o in high]:
            if not float(bound).is_integer():
                yield at(spec, f"{name} is integer but has the bound {bound}", "use whole numbers")
    if spec.type in ("choice", "choices") and not choices:
        yield at(spec, f"{name} is {spec.type} but lists no values",
                 "add the allowed values: of 自有, 租赁")
    if choices and spec.type not in ("choice", "choices"):
        yield at(spec, f"{name} is {spec.type}: allowed values need type choice or choices",
                 "change the type to choice")
    if len(set(choices)) != len(choices):
        yield at(spec, f"{name} lists a value twice", "remove the repeated value")
    for option in patterns:
        if spec.type not in _PATTERNED:
            yield at(spec, f"{name} is {spec.type}: pattern applies to text, phone and id_number")
        try:
            re.compile(option.pattern)
        except re.error as error:
            yield at(option, f"{name} has an invalid pattern: {error.msg}",
                     "write a Python regular expression, e.g. \"^\\\\d{11}$\"")


# -- assessment -------------------------------------------------------------------

def check_formulas(defs: Definitions) -> Found:
    for code, formula in defs.formulas.items():
        yield from given_twice(formula, ("role", "level", "grade", "period", "total"))
        yield from resolve(single(formula.role), defs.roles, "role")
        yield from resolve(single(formula.level), defs.levels, "level")
        yield from _grade(defs, formula)
        for kind, objs in (("indicator", formula.indicators), ("tier", formula.tiers),
                           ("veto", formula.vetoes)):
            yield from duplicates(objs, kind)
        for indicator in formula.indicators:
            yield from check_metric(defs, indicator.numerator)
            yield from check_metric(defs, indicator.denominator)
        tiers = {tier.code: tier for tier in formula.tiers}
        for veto in formula.vetoes:
            yield from check_metric(defs, veto.metric)
            yield from resolve_all(veto.bars, tiers, "tier")
        total = number(single(formula.total) or 100)
        yield from _weights(code, formula, total)
        yield from _tiers(code, formula, total)


def _grade(defs: Definitions, formula) -> Found:
    grade, level = single(formula.grade), single(formula.level)
    levels = [defs.levels.get(level.code)] if level is not None and level.code in defs.levels \
        else defs.levels.values()
    grades = {c.code: c for lv in levels for c in lv.classes}
    if grade is not None:
        yield from resolve(grade, grades, "grade")
        if formula.grades:
            yield at(grade, "a formula names either one `grade` or a list of `grades`, not both",
                     "keep `grades A, B, C` and give per-grade targets")
    yield from resolve_all(formula.grades, grades, "grade")
    listed = [g.code for g in formula.grades]
    for indicator in formula.indicators:
        given = [t.grade.code for t in indicator.grade_targets]
        if given and not listed:
            yield at(indicator, f"indicator {indicator.code} gives a target per grade, but the formula lists no grades",
                     "add `grades " + ", ".join(given) + "` after `for …`")
            continue
        for target in indicator.grade_targets:
            if target.grade.code not in listed:
                yield at(target.grade, f"grade {target.grade.code} is not among the formula's grades "
                                       f"({', '.join(listed)})", did_you_mean(target.grade.code, listed, "grades"))
        missing = [g for g in listed if g not in given]
        if given and missing:
            yield at(indicator, f"indicator {indicator.code} has no target for grade {', '.join(missing)}",
                     "give every grade of the formula a target, or one target for all")


def _weights(code: str, formula, total: float) -> Found:
    if not formula.indicators:
        yield at(formula, f"formula {code} has no indicators", "add `indicator CODE METRIC weight N`")
        return
    weights = [number(i.weight) for i in formula.indicators]
    if abs(sum(weights) - total) > 1e-9:
        shown = " + ".join(f"{w:g}" for w in weights)
        yield at(formula, f"weights of formula {code} add up to {sum(weights):g}, not {total:g}",
                 f"{shown} = {sum(weights):g}; adjust them to total {total:g}")


def _tiers(code: str, formula, total: float) -> Found:
    for tier in formula.tiers:
        if tier.rank:
            count = number(tier.count)
            if count <= 0 or (tier.percent and count > 100) or (not tier.percent and not float(count).is_integer()):
                yield at(tier, f"tier {tier.code} of formula {code}: {tier.rank} {tier.count}"
                               f"{'%' if tier.percent else ''} can never hold",
                         "a whole number of subjects of 1 or more, or a percentage from 1% to 100%")
    tiers = sorted((t for t in formula.tiers if not t.rank), key=lambda t: (number(t.low), number(t.high)))
    for tier in tiers:
        if number(tier.low) >= number(tier.high):
            yield at(tier, f"tier {tier.code} of formula {code} is empty: {tier.low}..{tier.high}",
                     "write the lower bound first")
    if not tiers:
        return
    expected = 0.0
    for tier in tiers:
        low, high = number(tier.low), number(tier.high)
        if low > expected:
            yield at(tier, f"tiers of formula {code} leave a gap: {expected:g}..{low:g} has no tier",
                     f"start tier {tier.code} at {expected:g}, or add a tier for the gap")
        elif low < expected:
            yield at(tier, f"tier {tier.code} of formula {code} overlaps another tier at {low:g}..{expected:g}",
                     f"start tier {tier.code} at {expected:g}")
        expected = max(expected, high)
    if expected < total:
        yield at(tiers[-1], f"tiers of formula {code} leave a gap: {expected:g}..{total:g} has no tier",
                 f"let the top tier reach the total, {total:g}")
    elif expected > total:
        yield at(tiers[-1], f"tiers of formula {code} reach {expected:g}, above the total {total:g}",
                 f"end the top tier at {total:g}")


# -- points, projects, meetings ---------------------------------------------------

def check_points(defs: Definitions) -> Found:
    for code, rule in defs.earn.items():
        if rule.points <= 0:
            yield at(rule, f"earning rule {code} gives {rule.points} points", "give at least 1 point")
    for code, reward in defs.rewards.items():
        if reward.cost <= 0:
            yield at(reward, f"reward {code} costs {reward.cost} points", "cost at least 1 point")


def check_projects(defs: Definitions) -> Found:
    for code, project in defs.projects.items():
        yield from given_twice(project, ("hours", "budget", "activities"))
        yield from duplicates(project.stages, "stage")
        shares = [number(s.share) / (100 if s.percent else 1) for s in project.stages]
        if project.stages and abs(sum(shares) - 1) > 1e-9:
            yield at(project, f"stage payments of project {code} add up to {sum(shares):.0%}, not 100%",
                     "adjust the `pays` shares so they total 1 (or 100%)")
        for stage in project.stages:
            if stage.min_score is not None and not 0 <= number(stage.min_score) <= 100:
                yield at(stage, f"min_score {stage.min_score} of stage {stage.code} can never hold",
                         "scores run from 0 to 100")


def check_roles(defs: Definitions) -> Found:
    for code, role in defs.roles.items():
        if role.stipend and number(role.stipend) <= 0:
            yield at(role, f"role {code} has a stipend of {role.stipend}", "give an amount above 0, or leave it out")
        if role.headcount and not (float(role.headcount) >= 1 and float(role.headcount).is_integer()):
            yield at(role, f"role {code} has a headcount of {role.headcount}", "give a whole number of workers, 1 or more")
        elif role.headcount and role.level is None:
            yield at(role, f"role {code} has a headcount but no level to count it in",
                     f"say where each group of {role.headcount} works: role {code} at LEVEL headcount {role.headcount}")


def check_meetings(defs: Definitions) -> Found:
    for code, meeting in defs.meetings.items():
        if number(meeting.every.amount) <= 0:
            yield at(meeting, f"meeting {code} must recur after more than 0", "e.g. every 7 days")


CHECKS = (
    check_references, check_settings, check_levels, check_catalogue, check_lifecycle,
    check_escalation, check_registers, check_formulas, check_points, check_projects,
    check_meetings, check_roles, check_routes,
)
