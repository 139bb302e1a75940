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

from wangge.core.calendar import in_zone
from wangge.core.errors import UsageError
from wangge.core.ids import uuid7
from wangge.core.ruleset import ProjectTemplate, Ruleset


@dataclass(frozen=True)
class Payment:
    stage: str
    amount: float
    paid: bool
    why: str


def payments(project: ProjectTemplate, scores: Mapping[str, float], contract: Optional[float] = None) -> list[Payment]:
    """What each stage pays given the evaluators' ``scores`` by stage code.

    ``contract`` defaults to the template's budget. A stage not yet
    evaluated pays nothing and says so. Raises `UsageError` for a score
    naming a stage the project does not have.
    """
    total = contract if contract is not None else project.budget
    if total is None:
        raise UsageError(f"project {project.code} has no budget: give the contract amount")
    stages = {s.code for s in project.stages}
    unknown = sorted(set(scores) - stages)
    if unknown:
        raise UsageError(f"project {project.code} has no stage {', '.join(unknown)}: expected one of {', '.join(sorted(stages))}")
    out = []
    for stage in project.stages:
        amount = round(total * stage.share, 2)
        score = scores.get(stage.code)
        if score is None:
            out.append(Payment(stage.code, 0.0, False, f"{stage.code}: not yet evaluated by {stage.evaluator}"))
        elif stage.min_score is not None and score < stage.min_score:
            out.append(Payment(stage.code, 0.0, False,
                               f"{stage.code}: {stage.evaluator} scored {score:g}, below the {stage.min_score:g} required"))
        else:
            out.append(Payment(stage.code, amount, True,
                               f"{stage.code}: {stage.evaluator} scored {score:g}; pays {stage.share:.0%} = {amount:,.2f}"))
    return out


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

    def lines(self) -> list[str]:
        """Delivered against the template: hours and activities, each with its share of what is due."""
        out = []
        for what, done, target in (("work hours", self.hours, self.hours_due),
                                   ("activities", self.activities, self.activities_due)):
            if target:
                out.append(f"{what}: {done:g} of {target:g} ({done / target:.0%})")
            else:
                out.append(f"{what}: {done:g}")
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


def progress(conn: Connection, ruleset: Ruleset, project: str) -> Progress:
    """Hours and activities delivered on ``project``, counted from its records, against the template."""
    templates = {p.code: p for p in ruleset.projects}
    template = templates.get(project)
    if template is None:
        raise UsageError(f"unknown project {project!r}: the rule file defines {', '.join(templates) or '(none)'}")
    rows = conn.execute(select(ProjectRecord.kind, ProjectRecord.hours).where(ProjectRecord.project == project)).all()
    hours = sum(h for kind, h in rows if kind == "hours")
    activities = sum(1 for kind, _ in rows if kind == "activity")
    return Progress(project, hours, template.hours, activities, template.min_activities)
