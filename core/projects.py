"""Service projects paid in stages by evaluation (Lianchi's 三社联动).

The government designs a project, a social organisation wins it, a social
work team delivers it, a third party evaluates each stage, and each stage's
share of the contract is paid only if its evaluation reaches the stage's
minimum score. `payments` is pure: evaluations in, payments out. The hours
worked and activities held are counted from the project's delivery log
(`log`, `progress`), never typed in as totals.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping, Optional

from sqlalchemy import DateTime, select
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from wangge.core.calendar import for_calendar, in_zone
from wangge.core.errors import UsageError
from wangge.core.ids import uuid7
from wangge.core.ruleset import ProjectTemplate, Ruleset


@dataclass(frozen=True)
class Payment:
    stage: str
    amount: float
    paid: bool
    why: str


def payments(project: ProjectTemplate, scores: Mapping[str, float], contract: Optional[float] = None,
             delivered: Optional["Progress"] = None) -> list[Payment]:
    """What each stage pays given the evaluators' ``scores`` by stage code.

    ``contract`` defaults to the template's budget. A stage not yet
    evaluated pays nothing and says so. The last stage settles the contract:
    where the template names a number of activities ("合同明确至少完成40个"),
    it pays only once ``delivered`` (the project's `progress`) counts that
    many, and says how many are missing otherwise. Raises `UsageError` for a
    score naming a stage the project does not have.
    """
    total = contract if contract is not None else project.budget
    if total is None:
        raise UsageError(f"project {project.code} has no budget: give the contract amount")
    stages = {s.code for s in project.stages}
    unknown = sorted(set(scores) - stages)
    if unknown:
        raise UsageError(f"project {project.code} has no stage {', '.join(unknown)}: expected one of {', '.join(sorted(stages))}")
    out = []
    last = project.stages[-1].code if project.stages else None
    for stage in project.stages:
        amount = round(total * stage.share, 2)
        score = scores.get(stage.code)
        short = _activities_short(project, delivered) if stage.code == last else None
        if score is None:
            out.append(Payment(stage.code, 0.0, False, f"{stage.code}: not yet evaluated by {stage.evaluator}"))
        elif stage.min_score is not None and score < stage.min_score:
            out.append(Payment(stage.code, 0.0, False,
                               f"{stage.code}: {stage.evaluator} scored {score:g}, below the {stage.min_score:g} required"))
        elif short is not None:
            out.append(Payment(stage.code, 0.0, False, short))
        else:
            out.append(Payment(stage.code, amount, True,
                               f"{stage.code}: {stage.evaluator} scored {score:g}; pays {stage.share:.0%} = {amount:,.2f}"))
    return out


def _activities_short(project: ProjectTemplate, delivered: Optional["Progress"]) -> Optional[str]:
    """Why the settling stage cannot pay for want of activities, or None if it may."""
    due = project.min_activities
    if not due:
        return None
    if delivered is None:
        return f"{project.code}: the contract requires {due} activities; count them from the project's log first"
    if delivered.activities < due:
        return (f"{project.code}: {delivered.activities} of the {due} activities the contract requires were held; "
                f"the last stage pays once all are")
    return None


# -- what was delivered, from records ----------------------------------------------

class ProjectRecord(SQLModel, table=True):
    """One entry of a project's delivery log: work hours, or an activity held (kept at the office)."""

    __tablename__ = "project_record"
    id: str = Field(primary_key=True)
    project: str = Field(index=True)  # the rule file's project code
    kind: str  # "hours" or "activity"
    hours: float = 0.0
    at: datetime = Field(sa_type=DateTime(timezone=True))
    worker_id: Optional[str] = Field(default=None, foreign_key="worker.id")
    note: str = ""


@dataclass(frozen=True)
class Progress:
    project: str
    hours: float
    hours_due: Optional[float]
    activities: int
    activities_due: Optional[int]
    started: Optional[datetime] = None  # the first delivery record, in the ruleset's zone
    latest: Optional[datetime] = None  # the last one
    due: Optional[datetime] = None  # the end of the time limit, counted from ``started``
    now: Optional[datetime] = None  # when the progress was read

    @property
    def late(self) -> bool:
        """Whether the time limit has passed with the contract's activities or hours not all delivered."""
        if self.due is None or self.now is None or self.now <= self.due:
            return False
        return ((self.activities_due or 0) > self.activities) or ((self.hours_due or 0) > self.hours)

    def lines(self) -> list[str]:
        """Delivered against the template: hours and activities, each with its share of what is due,
        and the time limit."""
        out = []
        for what, done, target in (("work hours", self.hours, self.hours_due),
                                   ("activities", self.activities, self.activities_due)):
            if target:
                out.append(f"{what}: {done:g} of {target:g} ({done / target:.0%})")
            else:
                out.append(f"{what}: {done:g}")
        if self.due is not None:
            state = "late: the limit passed before everything was delivered" if self.late else (
                "within the limit" if self.now is None or self.now <= self.due else "delivered in time")
            out.append(f"time limit: from {self.started:%Y-%m-%d} to {self.due:%Y-%m-%d %H:%M %Z}, {state}")
        return out


def log(conn: Connection, ruleset: Ruleset, project: str, kind: str, at: datetime, hours: float = 0.0,
        worker_id: Optional[str] = None, note: str = "") -> str:
    """Record work hours (``kind`` "hours") or an activity held ("activity") on ``project``; return its id.

    Raises `UsageError` for an unknown project or kind, or hours that are not positive.
    """
    templates = {p.code: p for p in ruleset.projects}
    if project not in templates:
        raise UsageError(f"unknown project {project!r}: the rule file defines {', '.join(templates) or '(none)'}")
    if kind not in ("hours", "activity"):
        raise UsageError(f"a project record is 'hours' or 'activity', not {kind!r}")
    if kind == "hours" and not hours > 0:
        raise UsageError(f"work hours must be above 0, got {hours:g}")
    record_id = uuid7()
    conn.execute(ProjectRecord.__table__.insert().values(id=record_id, project=project, kind=kind,
                                                         hours=hours if kind == "hours" else 0.0,
                                                         at=in_zone(at, ruleset.settings.timezone).astimezone(timezone.utc),
                                                         worker_id=worker_id, note=note))
    return record_id


def progress(conn: Connection, ruleset: Ruleset, project: str, now: Optional[datetime] = None) -> Progress:
    """Hours and activities delivered on ``project``, counted from its records, against the template;
    and its time limit ("一年内完成"), counted from the first record, as of ``now`` (default: the clock)."""
    templates = {p.code: p for p in ruleset.projects}
    template = templates.get(project)
    if template is None:
        raise UsageError(f"unknown project {project!r}: the rule file defines {', '.join(templates) or '(none)'}")
    rows = conn.execute(select(ProjectRecord.kind, ProjectRecord.hours, ProjectRecord.at)
                        .where(ProjectRecord.project == project)).all()
    hours = sum(h for kind, h, _ in rows if kind == "hours")
    activities = sum(1 for kind, _, _ in rows if kind == "activity")
    zone = ruleset.settings.timezone
    # SQLite hands stored times back without their zone: they were written in UTC.
    moments = sorted(in_zone(at if at.tzinfo else at.replace(tzinfo=timezone.utc), zone) for _, _, at in rows)
    started, latest = (moments[0], moments[-1]) if moments else (None, None)
    due = None
    if template.within is not None and started is not None:
        due = for_calendar(ruleset.settings.calendar, zone).add(started, template.within)
    when = in_zone(now or datetime.now(timezone.utc), zone)
    return Progress(project, hours, template.hours, activities, template.min_activities, started, latest, due, when)
