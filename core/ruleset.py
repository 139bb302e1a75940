"""The compiled ruleset: plain, frozen data that every engine executes.

`dsl` compiles a rule file into a `Ruleset`; `core` executes it; `sync`
carries its canonical JSON to tablets. The SHA-256 of the canonical JSON is
the ruleset's version, recorded on every case it routes.

Everything here is data: no behaviour beyond lookups and (de)serialisation.
Codes are the rule file's identifiers (Chinese allowed); every item shown to
people carries a bilingual `Label`.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date
from enum import Enum
from functools import cached_property
from typing import Optional

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Label(Frozen):
    zh: str = ""
    en: str = ""

    def text(self, lang: str = "zh") -> str:
        """The label in ``lang``, falling back to the other language."""
        return (self.en or self.zh) if lang == "en" else (self.zh or self.en)


class TimeUnit(str, Enum):
    minutes = "minutes"
    hours = "hours"
    days = "days"
    working_hours = "working_hours"
    working_days = "working_days"


class Duration(Frozen):
    amount: float
    unit: TimeUnit


class Calendar(Frozen):
    """A working calendar: weekends, public holidays and make-up workdays.

    ``code`` "cn" is mainland China's national calendar, year by year from the
    State Council notices (core/calendar.py); any other code is weekends plus
    the days listed here. ``holidays`` and ``workdays`` are the rule file's own
    days and win over the national ones (a day listed as a workday is worked
    even if the notice gives it off, and the other way round). ``years`` are
    years whose whole schedule the rule file gives (a notice newer than the
    library): for them the listed days replace the national ones.
    """

    code: str = "cn"
    weekend: tuple[int, ...] = (5, 6)  # Monday is 0
    holidays: tuple[date, ...] = ()
    workdays: tuple[date, ...] = ()  # weekend days worked to make up a holiday
    years: tuple[int, ...] = ()  # years whose official schedule the rule file gives whole
    day_start: str = "09:00"
    day_end: str = "17:00"


class Settings(Frozen):
    timezone: str = "Asia/Shanghai"
    calendar: Calendar = Calendar()
    duplicate_window_hours: float = 72
    lease_days: int = 14
    clock_drift_minutes: int = 5


class Role(Frozen):
    code: str
    label: Label = Label()
    level: Optional[str] = None  # the grid level the role works at, if any
    office: bool = False  # an office role: its moves made on a tablet are proposals
    stipend: Optional[float] = None  # an allowance in CNY per `stipend_period` (Shushan's 网格长: 400/month)
    stipend_period: Optional[str] = None  # day, week, month, quarter, half_year or year
    headcount: Optional[int] = None  # workers of this role in each grid cell at `level` (Jiading's hotline: 6)


class Target(Frozen):
    code: str
    label: Label = Label()
    value: float
    unit: str = ""
    metric: Optional[str] = None  # what the target is measured by; scores show the actual against it


class GridClass(Frozen):
    """A class or grade of grids at one level (甲/乙/丙, A/B/C) and its targets."""

    code: str
    label: Label = Label()
    targets: tuple[Target, ...] = ()


class Sizing(Frozen):
    households_per_grid: Optional[int] = None
    merge_below: Optional[int] = None  # a unit under this many households merges with a neighbour
    buildings_per_grid: Optional[tuple[int, int]] = None
    storefronts_per_grid: Optional[tuple[int, int]] = None
    grids_per_upper: Optional[int] = None


class GridLevel(Frozen):
    code: str
    label: Label = Label()
    rank: int  # 0 is the top level; deeper levels count up
    sizing: Sizing = Sizing()
    classes: tuple[GridClass, ...] = ()


class Department(Frozen):
    code: str
    label: Label = Label()


class Channel(Frozen):
    code: str
    label: Label = Label()
    callback: bool = False  # every request on this channel needs a callback (回访) before closure
    hours: str = ""  # e.g. "24h"


class Severity(Frozen):
    code: str
    label: Label = Label()
    rank: int = 0  # higher is more serious
    ceiling: Optional[str] = None  # the highest grid level a case of this severity may reach


class SlaStage(Frozen):
    state: str  # the lifecycle state the clock runs in
    within: Duration
    # Where the clock starts: None after the previous stage's deadline (stages add
    # up), "report" at the report, or a state's code: when the case entered it.
    origin: Optional[str] = None


class ItemVariant(Frozen):
    """What differs for the cases of an item on one channel or of one severity (first match wins)."""

    channel: Optional[str] = None
    severity: Optional[str] = None
    sla: Optional[tuple[SlaStage, ...]] = None  # None: the item's own
    evidence: Optional[tuple[str, ...]] = None  # None: the item's own; () when the variant says `none`

    def matches(self, channel: Optional[str], severity: Optional[str]) -> bool:
        return (self.channel is None or self.channel == channel) and (self.severity is None or self.severity == severity)


class CaseItem(Frozen):
    code: str  # full code, class code + item code
    label: Label = Label()
    severity: Optional[str] = None
    sla: tuple[SlaStage, ...] = ()
    evidence: tuple[str, ...] = ()  # "photo", "onsite_confirmation", "callback"
    steps: tuple[Label, ...] = ()
    channels: tuple[str, ...] = ()  # empty means any
    difficulty: float = 1.0
    escalation: Optional[str] = None  # escalation path code; the class's if empty
    variants: tuple[ItemVariant, ...] = ()

    def sla_for(self, channel: Optional[str], severity: Optional[str]) -> tuple[SlaStage, ...]:
        """The SLA of a case on ``channel`` with ``severity``: the first variant that sets one, else the item's."""
        for variant in self.variants:
            if variant.sla is not None and variant.matches(channel, severity):
                return variant.sla
        return self.sla

    def evidence_for(self, channel: Optional[str], severity: Optional[str]) -> tuple[str, ...]:
        """The evidence a case on ``channel`` with ``severity`` needs (a hotline call has no photo)."""
        for variant in self.variants:
            if variant.evidence is not None and variant.matches(channel, severity):
                return variant.evidence
        return self.evidence


class CaseClass(Frozen):
    code: str
    label: Label = Label()
    kind: str = "event"  # "component" (部件) or "event" (事件) or "service"
    items: tuple[CaseItem, ...] = ()
    escalation: Optional[str] = None


class State(Frozen):
    code: str
    label: Label = Label()
    initial: bool = False
    final: bool = False
    flags: tuple[str, ...] = ()  # "void" 作废, "suspended" 缓办, "rework" 返工, "closed"


class Transition(Frozen):
    code: str
    label: Label = Label()
    sources: tuple[str, ...]
    target: str
    roles: tuple[str, ...]
    office: bool = False  # reserved to the office: a tablet's move is a proposal
    requires: tuple[str, ...] = ()  # evidence needed: "onsite_confirmation", "callback", "photo"
    from_reporter: bool = False  # the confirmation or signature must come from the worker who reported the case
    evidence_by: tuple[str, ...] = ()  # roles whose workers must give the required evidence (a callback by the centre)


class Lifecycle(Frozen):
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]


class RouteRule(Frozen):
    """Who owns matching cases: a role at a grid level, or a department."""

    match_class: Optional[str] = None
    match_item: Optional[str] = None
    match_channel: Optional[str] = None
    match_severity: Optional[str] = None
    level: Optional[str] = None
    role: Optional[str] = None
    department: Optional[str] = None


class EscalationStep(Frozen):
    level: str
    role: Optional[str] = None
    department: Optional[str] = None
    own_department: bool = False  # to the department the case's route gave it
    after: Duration  # overdue time at the previous step before moving here
    within: Optional[Duration] = None  # the time this level has before the case moves up (its SLA)


class EscalationPath(Frozen):
    code: str
    label: Label = Label()
    steps: tuple[EscalationStep, ...]
    ceiling: Optional[str] = None
    next: Optional[str] = None  # the path that takes over above the ceiling ("大事" after "小事")


class FieldType(str, Enum):
    text = "text"
    integer = "integer"
    decimal = "decimal"
    boolean = "boolean"
    date = "date"
    choice = "choice"
    choices = "choices"
    phone = "phone"
    id_number = "id_number"


class FieldSpec(Frozen):
    code: str
    label: Label = Label()
    type: FieldType
    required: bool = False
    choices: tuple[str, ...] = ()
    min: Optional[float] = None
    max: Optional[float] = None
    pattern: Optional[str] = None
    critical: bool = False  # a conflicting edit is queued for review, not dropped


class Register(Frozen):
    """Custom fields of one entity: household, resident, visit or case."""

    entity: str
    fields: tuple[FieldSpec, ...]


#: The metrics an indicator or a veto may name; the scoring engine computes
#: each per subject and period. Counts unless said otherwise.
METRICS: dict[str, str] = {
    "reported": "cases reported (发现上报)",
    "registered": "cases registered (立案)",
    "dispatched": "cases dispatched (派遣)",
    "dispatched_once": "cases dispatched once and never again: dispatched to the right owner first time (准确派遣)",
    "closed": "cases closed (结案)",
    "closed_on_time": "cases closed within their SLA (按期结案)",
    "reworked": "cases sent back for rework (返工)",
    "overdue": "cases past their SLA",
    "escalated": "cases escalated",
    "callbacks": "callbacks (回访) made",
    "satisfaction": "share of satisfied residents, 0..1 (满意度)",
    "visits": "household visits logged",
    "visit_minutes": "minutes of household visits",
    "households_visited": "distinct households visited",
    "duty_score": "duty tasks done, weighted by difficulty (难度系数)",
    "spot_check": "third-party spot-check score (第三方考核抽查), 0..100: the mean of the cases' evaluations "
                  "and the worker's own spot checks (`wangge spotcheck record`)",
    "spot_checks": "third-party spot checks in the period: cases evaluated and checks of the worker",
    "complaints": "complaints received",
    "verified_complaints": "complaints verified as justified (有效投诉)",
    "tier_drops_year": "drops to a lower tier within the year",
    "volunteer_points": "volunteer points earned",
    "activities": "activities held",
    "meetings_attended": "meetings the worker attended, as recorded with attendance (例会出勤)",
}


def metric_parts(code: str) -> tuple[str, str, Optional[str]]:
    """A metric name split: ("plain", name, None), ("on_time" | "left", state, None) or ("field", field, value).

    ``on_time(受理)``: cases that left state 受理 within its stage deadline;
    ``left(受理)``: cases that left it; ``field(回访结果=满意)``: closed cases whose
    case register field 回访结果 is 满意; ``field(回访结果)``: closed cases that have it.
    """
    code = code.replace(" ", "")
    if code.endswith(")") and "(" in code:
        kind, arg = code[:-1].split("(", 1)
        field, _, value = arg.partition("=")
        return kind, field, (value or None) if kind == "field" else None
    return "plain", code, None


class Indicator(Frozen):
    """One scored indicator: a metric (or a ratio of two) with its weight.

    Metrics are named by the runtime (e.g. ``closed``, ``registered``,
    ``closed_on_time``, ``reworked``, ``satisfaction``, ``visits``).
    """

    code: str
    label: Label = Label()
    numerator: str
    denominator: Optional[str] = None
    weight: float
    target: Optional[float] = None  # value that earns the full weight
    lower_is_better: bool = False
    # A period with nothing to measure (no cases for a rate, no verdicts for
    # satisfaction): "full" earns the weight, "zero" earns nothing, "not_counted"
    # leaves the indicator out and rescales the weights of the rest to the total.
    if_empty: str = "not_counted"


class Tier(Frozen):
    code: str
    label: Label = Label()
    min: float = 0
    max: float = 0  # inclusive lower bound, exclusive upper bound except for the top tier
    # A tier by rank among peers instead of by range: "bottom" or "top", and how many
    # (``count`` subjects, or ``count`` percent of them, rounded up, when ``percent``).
    rank: Optional[str] = None
    count: float = 0
    percent: bool = False
    reward: Optional[float] = None  # what a subject in this tier is paid for the period


class Veto(Frozen):
    """A rule that bars tiers: e.g. three tier drops in a year bars "excellent"."""

    code: str
    label: Label = Label()
    metric: str  # "tier_drops_year", "verified_complaints", ...
    at_least: float
    bars: tuple[str, ...]  # tier codes it bars


class Formula(Frozen):
    code: str
    label: Label = Label()
    subject: str = "worker"  # "worker" or "grid"
    role: Optional[str] = None
    level: Optional[str] = None
    grade: Optional[str] = None
    period: str = "month"
    total: float = 100
    subtree: bool = False  # a worker is scored on every case and visit of the grids under theirs (a community head)
    no_reward_on_drop: bool = False  # a subject whose tier fell since the last period is paid no reward
    indicators: tuple[Indicator, ...]
    tiers: tuple[Tier, ...] = ()
    vetoes: tuple[Veto, ...] = ()


class EarnRule(Frozen):
    code: str
    label: Label = Label()
    points: int


class Reward(Frozen):
    code: str
    label: Label = Label()
    cost: int


class Points(Frozen):
    earn: tuple[EarnRule, ...] = ()
    rewards: tuple[Reward, ...] = ()


class Service(Frozen):
    """An item on the volunteer service menu (点单式)."""

    code: str
    label: Label = Label()
    points: int = 0


class ProjectStage(Frozen):
    code: str
    label: Label = Label()
    share: float  # share of the contract paid at this stage, 0..1
    evaluator: str = "third_party"
    min_score: Optional[float] = None


class ProjectTemplate(Frozen):
    code: str
    label: Label = Label()
    hours: Optional[float] = None
    budget: Optional[float] = None
    min_activities: Optional[int] = None  # the contract's activities; the last stage pays only once held
    within: Optional[Duration] = None  # the time limit, from the project's first delivery record
    stages: tuple[ProjectStage, ...] = ()


class Meeting(Frozen):
    code: str
    label: Label = Label()
    every: Duration
    roles: tuple[str, ...] = ()


class Ruleset(Frozen):
    name: str
    label: Label = Label()
    base: Optional[str] = None  # the ruleset this one extends, if any
    settings: Settings = Settings()
    roles: tuple[Role, ...] = ()
    levels: tuple[GridLevel, ...] = ()
    departments: tuple[Department, ...] = ()
    channels: tuple[Channel, ...] = ()
    severities: tuple[Severity, ...] = ()
    catalogue: tuple[CaseClass, ...] = ()
    lifecycle: Optional[Lifecycle] = None
    routes: tuple[RouteRule, ...] = ()
    escalations: tuple[EscalationPath, ...] = ()
    registers: tuple[Register, ...] = ()
    formulas: tuple[Formula, ...] = ()
    points: Points = Points()
    services: tuple[Service, ...] = ()
    projects: tuple[ProjectTemplate, ...] = ()
    meetings: tuple[Meeting, ...] = ()

    def model_copy(self, *, update=None, deep: bool = False) -> "Ruleset":
        """A copy; lookups cached on this ruleset (its version above all) are not carried over."""
        copy = super().model_copy(update=update, deep=deep)
        for name in ("version", "items", "item_class", "level_rank"):
            copy.__dict__.pop(name, None)
        return copy

    def canonical_json(self) -> str:
        """JSON with sorted keys and no insignificant whitespace: equal rulesets, equal bytes."""
        return json.dumps(
            self.model_dump(mode="json"), ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )

    @cached_property
    def version(self) -> str:
        """The content hash of the canonical JSON: the ruleset's version."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_json(cls, text: str | bytes) -> "Ruleset":
        return cls.model_validate_json(text)

    @cached_property
    def items(self) -> dict[str, CaseItem]:
        """Every catalogue item by its full code."""
        return {item.code: item for cls in self.catalogue for item in cls.items}

    @cached_property
    def item_class(self) -> dict[str, CaseClass]:
        """The class of every catalogue item, by item code."""
        return {item.code: cls for cls in self.catalogue for item in cls.items}

    @cached_property
    def level_rank(self) -> dict[str, int]:
        return {level.code: level.rank for level in self.levels}

    def register(self, entity: str) -> tuple[FieldSpec, ...]:
        """The custom fields the ruleset defines for ``entity`` (may be empty)."""
        for reg in self.registers:
            if reg.entity == entity:
                return reg.fields
        return ()
