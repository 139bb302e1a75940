"""Assessment: monthly scores from the ruleset's formulas.

Two pure steps. `case_metrics` counts what happened to a subject's cases in
a period (结案率's numerator and denominator, on-time closures, rework, ...);
`score` turns metrics into points per indicator, a total, a tier, and the
vetoes that bar tiers ("three drops to a lower tier in a year, or one
verified complaint, bars excellent"). Each result keeps its trace.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Iterable, Mapping, Optional

from wangge.core.ruleset import Formula, Indicator, Ruleset, metric_parts


@dataclass(frozen=True)
class CaseRecord:
    """One case as scoring sees it."""

    reported_at: datetime
    closed_at: Optional[datetime] = None
    deadline: Optional[datetime] = None
    void: bool = False
    reworks: int = 0
    dispatches: int = 0  # office hand-offs to an owner (派遣, and 返工 sending it back out)
    escalations: int = 0
    callback: bool = False
    satisfied: Optional[bool] = None  # the resident's verdict at the callback or evaluation
    difficulty: float = 1.0  # the item's difficulty coefficient (难度系数)
    spot_check: Optional[float] = None  # a third-party spot-check score, 0..100
    # (state, when the case left it, that stage's deadline or None), for on_time(STATE) and left(STATE)
    stages: tuple[tuple[str, datetime, Optional[datetime]], ...] = ()
    fields: Mapping[str, object] = field(default_factory=dict)  # the case register's fields, for field(F=V)


def formula_metrics(ruleset: Ruleset) -> frozenset[str]:
    """The on_time(…), left(…) and field(…) metrics the ruleset's formulas name (counted 0 when nothing happens)."""
    names = {m for f in ruleset.formulas for i in f.indicators for m in (i.numerator, i.denominator) if m}
    names |= {v.metric for f in ruleset.formulas for v in f.vetoes}
    return frozenset(n for n in names if metric_parts(n)[0] != "plain")


def case_metrics(cases: Iterable[CaseRecord], start: datetime, end: datetime,
                 wanted: Iterable[str] = ()) -> dict[str, float]:
    """Counts over cases reported or closed in ``[start, end)``.

    Also ``left(S)`` and ``on_time(S)`` for every state S a case left in the
    period (within S's stage deadline for on_time), and ``field(F)`` and
    ``field(F=V)`` over the register fields of the cases closed in it;
    ``wanted`` names such metrics to count as 0 when nothing happened.
    """
    m = dict.fromkeys(
        ("reported", "registered", "dispatched", "dispatched_once", "closed", "closed_on_time", "reworked",
         "overdue", "escalated", "callbacks", *wanted), 0.0
    )
    verdicts, checks = [], []
    for case in cases:
        if start <= case.reported_at < end:
            m["reported"] += 1
            if not case.void:
                m["registered"] += 1
            m["dispatched"] += case.dispatches > 0
            m["dispatched_once"] += case.dispatches == 1
        if case.closed_at is not None and start <= case.closed_at < end:
            m["closed"] += 1
            on_time = case.deadline is None or case.closed_at <= case.deadline
            m["closed_on_time"] += on_time
            m["reworked"] += case.reworks > 0
            m["escalated"] += case.escalations > 0
            m["callbacks"] += case.callback
            m["duty_score"] = m.get("duty_score", 0.0) + case.difficulty
            if case.satisfied is not None:
                verdicts.append(case.satisfied)
            if case.spot_check is not None:
                checks.append(case.spot_check)
            for key, value in case.fields.items():
                for one in (value if isinstance(value, list) else [value]):
                    if one is None or one == "":
                        continue
                    m[f"field({key}={one})"] = m.get(f"field({key}={one})", 0.0) + 1
                if value not in (None, "", []):
                    m[f"field({key})"] = m.get(f"field({key})", 0.0) + 1
        for state, left_at, deadline in case.stages:
            if start <= left_at < end:
                m[f"left({state})"] = m.get(f"left({state})", 0.0) + 1
                if deadline is None or left_at <= deadline:
                    m[f"on_time({state})"] = m.get(f"on_time({state})", 0.0) + 1
        # Open at the end of the period (even if closed since) and past its deadline: overdue.
        still_open = case.closed_at is None or case.closed_at >= end
        if still_open and case.deadline is not None and case.deadline < end and not case.void:
            m["overdue"] += 1
    if verdicts:
        m["satisfaction"] = sum(verdicts) / len(verdicts)
    if checks:
        m["spot_check"] = sum(checks) / len(checks)
        m["spot_checks"] = len(checks)
    return m


@dataclass(frozen=True)
class Part:
    indicator: str
    value: Optional[float]
    points: float  # after rescaling, so the parts add up to the total
    weight: float
    why: str
    empty: Optional[str] = None  # the rule applied to an empty period: "full", "zero" or "not_counted"

    @property
    def counted(self) -> bool:
        return self.empty != "not_counted"


@dataclass(frozen=True)
class Score:
    subject: str
    formula: str
    total: float
    tier: Optional[str]
    parts: tuple[Part, ...]
    barred: tuple[str, ...] = ()
    trace: tuple[str, ...] = field(default_factory=tuple)
    scored: bool = True  # False when every indicator was empty and not counted: nothing to score
    rank: Optional[int] = None  # among the peers scored by the same formula in the same period (see `ranked`)
    peers: Optional[int] = None
    reward: Optional[float] = None  # what the tier pays this period, where the formula's tiers carry rewards
    reward_why: str = ""

    @property
    def empty_note(self) -> str:
        """What the empty-period rules did, for a score table ("满意度 not counted ×1.67", "" if nothing)."""
        notes = [f"{p.indicator} {p.empty.replace('_', ' ')}" for p in self.parts if p.empty]
        rescaled = [line for line in self.trace if line.startswith("rescaled")]
        return ", ".join(notes) + (f" ({rescaled[0].split(': ')[0].removeprefix('rescaled ')})" if rescaled else "")


NOT_MEASURED = "not measured"
NOTHING_TO_JUDGE = "nothing to judge"
EMPTY_RULES = ("full", "zero", "not_counted")


def indicator_value(ind: Indicator, metrics: Mapping[str, float]) -> float | str:
    """The indicator's value; `NOT_MEASURED` if its metric is missing, `NOTHING_TO_JUDGE` for a zero denominator."""
    top = metrics.get(ind.numerator)
    if top is None:
        return NOT_MEASURED
    if ind.denominator is None:
        return top
    bottom = metrics.get(ind.denominator, 0)
    return top / bottom if bottom else NOTHING_TO_JUDGE


def indicator_points(ind: Indicator, value: float | str) -> tuple[float, str]:
    """Points earned before rescaling: a share of the weight by the value's attainment.

    An empty period (a ratio over nothing, a metric nobody measured) follows
    the indicator's ``if_empty``: the full weight, nothing, or not counted
    (0 here; `score` leaves it out and rescales the rest).
    """
    if value in (NOTHING_TO_JUDGE, NOT_MEASURED):
        what = (f"no {ind.denominator} this period" if value == NOTHING_TO_JUDGE
                else f"{ind.numerator} not measured this period")
        if ind.if_empty == "full":
            return ind.weight, f"{what}: full weight by rule"
        if ind.if_empty == "zero":
            return 0.0, f"{what}: 0 by rule"
        return 0.0, f"{what}: not counted"
    if ind.lower_is_better:
        attained = max(0.0, 1 - value / ind.target) if ind.target else max(0.0, 1 - value)
    elif ind.target:
        attained = min(1.0, value / ind.target)
    else:
        attained = max(0.0, min(1.0, value))
    return ind.weight * attained, f"{value:.4g} → {attained:.1%} of {ind.weight:g}"


def score(formula: Formula, subject: str, metrics: Mapping[str, float]) -> Score:
    """Score ``subject`` by ``formula`` from its metrics (a pure function).

    Indicators not counted for an empty period are left out and the weights
    of the others are scaled up to the formula's total; if none is counted,
    the score is not given (``scored`` False, no tier).
    """
    raw, trace = [], []
    for ind in formula.indicators:
        value = indicator_value(ind, metrics)
        points, why = indicator_points(ind, value)
        empty = ind.if_empty if isinstance(value, str) else None
        raw.append((ind, value if isinstance(value, (int, float)) else None, points, why, empty))
    counted = sum(ind.weight for ind, _, _, _, empty in raw if empty != "not_counted")
    whole = sum(ind.weight for ind in formula.indicators)
    scale = whole / counted if counted else 0.0
    parts = []
    for ind, value, points, why, empty in raw:
        kept = points * scale if empty != "not_counted" else 0.0
        parts.append(Part(ind.code, value, round(kept, 2), ind.weight, why, empty))
        trace.append(f"{ind.code}: {why} = {points:.2f}")
    if counted and scale != 1:
        left_out = ", ".join(p.indicator for p in parts if not p.counted)
        trace.append(f"rescaled ×{scale:.3g}: {left_out} not counted, the other weights fill {whole:g}")
    total = round(sum(p.points for p in parts), 2)
    barred = tuple(
        tier for veto in formula.vetoes if metrics.get(veto.metric, 0) >= veto.at_least for tier in veto.bars
    )
    for veto in formula.vetoes:
        if metrics.get(veto.metric, 0) >= veto.at_least:
            trace.append(f"veto {veto.code}: {veto.metric} = {metrics.get(veto.metric, 0):g} ≥ {veto.at_least:g} bars {', '.join(veto.bars)}")
    if not counted and formula.indicators:
        trace.append("nothing to score this period: every indicator is empty and not counted")
        return Score(subject, formula.code, 0.0, None, tuple(parts), barred, tuple(trace), scored=False)
    tier = tier_of(formula, total, barred)
    trace.append(f"total {total:g} of {formula.total:g} → tier {tier}")
    return Score(subject, formula.code, total, tier, tuple(parts), barred, tuple(trace))


def tier_of(formula: Formula, total: float, barred: tuple[str, ...] = ()) -> Optional[str]:
    """The range tier ``total`` falls in; a barred tier gives way to the best lower one (rank tiers aside)."""
    ordered = sorted((t for t in formula.tiers if t.rank is None), key=lambda t: t.min, reverse=True)
    top = ordered[0].max if ordered else None
    for index, tier in enumerate(ordered):
        if tier.min <= total < tier.max or (total == top and tier.max == top):
            for lower in ordered[index:]:
                if lower.code not in barred:
                    return lower.code
            return None
    return None


def ranked(formula: Formula, scores: list[Score]) -> list[Score]:
    """``scores`` of peers (one formula, one period) with their rank, and the formula's rank tiers applied.

    Rank 1 is the highest total; equal totals share a rank (1, 2, 2, 4). A
    subject is in the bottom N when fewer than N peers scored below it, in the
    top N when fewer than N scored above it; N is a count, or a percentage of
    the peers rounded up. A rank tier replaces the range tier unless a veto
    bars it. Subjects not scored this period take no rank. Order is kept.
    """
    totals = [s.total for s in scores if s.scored]
    rank_tiers = [t for t in formula.tiers if t.rank is not None]
    out = []
    for s in scores:
        if not s.scored:
            out.append(s)
            continue
        above = sum(1 for t in totals if t > s.total)
        below = sum(1 for t in totals if t < s.total)
        tier, trace = s.tier, list(s.trace)
        for rule in rank_tiers:
            n = math.ceil(rule.count * len(totals) / 100) if rule.percent else int(rule.count)
            beyond = below if rule.rank == "bottom" else above
            if beyond < n and rule.code not in s.barred:
                tier = rule.code
                trace.append(f"rank {above + 1} of {len(totals)}: {rule.rank} {rule.count:g}"
                             f"{'%' if rule.percent else ''} → tier {rule.code}")
        out.append(replace(s, rank=above + 1, peers=len(totals), tier=tier, trace=tuple(trace)))
    return out


@dataclass(frozen=True)
class TargetCheck:
    """A class or grade target against what was measured in the period."""

    code: str
    target: float
    actual: Optional[float]  # None: nothing measured
    unit: str

    @property
    def met(self) -> Optional[bool]:
        return None if self.actual is None else self.actual >= self.target

    def __str__(self) -> str:
        shown = "not measured" if self.actual is None else f"{self.actual:.3g}"
        mark = {True: "met", False: "NOT met", None: ""}[self.met]
        return f"{self.code} {shown} of {self.target:g}{self.unit} {mark}".strip()


_PER = {"日": 1, "天": 1, "day": 1, "周": 7, "week": 7, "月": 30.4375, "month": 30.4375}


def against_targets(targets, metrics: Mapping[str, float], days: float) -> tuple[TargetCheck, ...]:
    """Each target that names a metric, with the period's actual in the target's unit.

    A unit "%" reads the metric as a share (0.92 is 92); a unit per day,
    week or month ("次/日") divides the period's count by its length.
    """
    out = []
    for target in targets:
        if not target.metric:
            continue
        actual = metrics.get(target.metric)
        if actual is not None:
            per = target.unit.rsplit("/", 1)[-1] if "/" in target.unit else ""
            if target.unit.endswith("%"):
                actual = actual * 100
            elif per in _PER:
                actual = actual / (days / _PER[per])
        out.append(TargetCheck(target.code, target.value, actual, target.unit))
    return tuple(out)


def rewarded(formula: Formula, result: Score, previous: Optional[str]) -> Score:
    """``result`` with the reward its tier pays, given the subject's tier of the period before.

    "考核成绩达到上一档次奖励上浮,考核成绩降到下一档次则不予奖励": a better tier pays
    its own (higher) reward; under ``no_reward_on_drop`` a tier lower than the
    previous period's pays nothing. Tiers are ordered by their lower bound, as
    for `tier_drops`. Formulas whose tiers carry no reward are left as they are.
    """
    rewards = {t.code: t.reward for t in formula.tiers if t.reward is not None}
    if not rewards:
        return result
    if not result.scored or result.tier is None:
        return replace(result, reward=0.0, reward_why="no tier this period: no reward")
    amount = rewards.get(result.tier, 0.0)
    order = {t.code: t.min for t in formula.tiers}
    before, now = order.get(previous), order.get(result.tier)
    if before is not None and now is not None and now < before and formula.no_reward_on_drop:
        return replace(result, reward=0.0, reward_why=f"down from {previous} to {result.tier}: no reward")
    if before is not None and now is not None and now > before:
        return replace(result, reward=amount, reward_why=f"up from {previous} to {result.tier}: {amount:g}")
    return replace(result, reward=amount, reward_why=f"{result.tier}: {amount:g}")


def tier_drops(history: Iterable[Optional[str]], formula: Formula) -> int:
    """How many times a subject's tier fell from one month to the next (for the yearly veto)."""
    rank = {t.code: t.min for t in formula.tiers}
    months = [rank.get(t) for t in history if t in rank]
    return sum(1 for before, after in zip(months, months[1:]) if after < before)


def formulas_for(ruleset: Ruleset, subject: str, role: Optional[str] = None, grade: Optional[str] = None,
                 period: str = "month", level: Optional[str] = None) -> list[Formula]:
    """Formulas that apply: matching subject kind ("worker" or "grid"), role, grid level, grade and period.

    Most specific first: a formula naming the grade beats a general one,
    then one naming the role, then one naming the level.
    """
    found = [
        f for f in ruleset.formulas
        if f.subject == subject and f.period == period and (f.role is None or f.role == role)
        and (f.grade is None or f.grade == grade) and (f.level is None or f.level == level)
    ]
    return sorted(found, key=lambda f: (f.grade is None, f.role is None, f.level is None))
