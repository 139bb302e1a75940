"""Third-party spot checks of the workers (TEDA's "引入了'第三方'考核抽查制度").

An assessor from outside the street office (a role of the rule file, such
as TEDA's 第三方) checks a worker's work on a day of its choosing — the
households' cards, the log, residents asked at the door — and gives the
worker a score of 0 to 100. The office records each check in
``spot_check`` (kept at the office, not sent to tablets). The metric
``spot_check`` of a worker's period is the mean of every third-party score
in it: these checks of the worker, and the evaluations of the cases in the
worker's grids (the 评估 move's score); ``spot_checks`` counts them.

`record` and `of_worker` read and write the store; `combined` is pure.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, select
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from wangge.core.calendar import in_zone
from wangge.core.errors import UsageError
from wangge.core.ids import uuid7
from wangge.core.ruleset import Ruleset


class SpotCheckRecord(SQLModel, table=True):
    """One spot check of a worker by an assessor, with its score."""

    __tablename__ = "spot_check"
    id: str = Field(primary_key=True)
    worker_id: str = Field(foreign_key="worker.id", index=True)
    assessor_id: str = Field(foreign_key="worker.id")
    checked_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    score: float
    note: str = ""


def record(conn: Connection, ruleset: Ruleset, worker: str, assessor: str, at: datetime, score: float,
           note: str = "") -> str:
    """Store one spot check of ``worker`` by ``assessor`` (names or ids); return its id.

    Raises `UsageError` for a score outside 0..100, a worker or assessor not on
    the roster, an assessor checking themself, or an assessor whose role is
    not an office role of the rule file (a grid worker does not assess a peer).
    """
    from wangge.core.models import Worker

    if not 0 <= score <= 100:
        raise UsageError(f"a spot check scores 0 to 100, got {score:g}")
    roster = conn.execute(select(Worker.id, Worker.name, Worker.role).where(Worker.deleted.is_(None))).all()
    found = {}
    for who, given in (("worker", worker), ("assessor", assessor)):
        matches = [w for w in roster if given in (w.id, w.name)]
        if not matches:
            raise UsageError(f"no {who} {given!r} on the roster: name them by worker name or id")
        if len(matches) > 1:
            raise UsageError(f"{len(matches)} workers are named {given!r}: give the {who}'s id instead")
        found[who] = matches[0]
    if found["worker"].id == found["assessor"].id:
        raise UsageError(f"{found['worker'].name} cannot spot-check themself")
    office = [r.code for r in ruleset.roles if r.office]
    if found["assessor"].role not in office:
        raise UsageError(f"{found['assessor'].name} is a {found['assessor'].role}: spot checks are made by "
                         f"an office role ({', '.join(office) or 'the rule file has none'})")
    check_id = uuid7()
    # Stored in UTC like every time in the store (a naive ``at`` is the ruleset's local time).
    when = in_zone(at, ruleset.settings.timezone).astimezone(timezone.utc)
    conn.execute(SpotCheckRecord.__table__.insert().values(id=check_id, worker_id=found["worker"].id,
                                                           assessor_id=found["assessor"].id, checked_at=when,
                                                           score=float(score), note=note))
    return check_id


def of_worker(conn: Connection, worker_id: str, start: datetime, end: datetime) -> list[float]:
    """The scores of the spot checks of ``worker_id`` in ``[start, end)``."""
    rows = conn.execute(select(SpotCheckRecord.checked_at, SpotCheckRecord.score)
                        .where(SpotCheckRecord.worker_id == worker_id)).all()
    return [score for at, score in rows if start <= _utc(at) < end]


def combined(metrics: dict, worker_checks: list[float]) -> dict:
    """``metrics`` with ``spot_check`` the mean of the cases' third-party scores and ``worker_checks``."""
    cases = int(metrics.get("spot_checks", 0))
    if not worker_checks:
        return metrics
    total = metrics.get("spot_check", 0.0) * cases + sum(worker_checks)
    count = cases + len(worker_checks)
    return {**metrics, "spot_check": total / count, "spot_checks": count}


def listed(conn: Connection) -> list[dict]:
    """Every spot check, newest first, with the worker's and the assessor's names."""
    from wangge.core.models import Worker

    workers = dict(conn.execute(select(Worker.id, Worker.name)).all())
    table = SpotCheckRecord.__table__
    return [{"worker": workers.get(r.worker_id, r.worker_id), "assessor": workers.get(r.assessor_id, r.assessor_id),
             "at": _utc(r.checked_at), "score": r.score, "note": r.note}
            for r in conn.execute(select(table).order_by(table.c.checked_at.desc()))]


def _utc(moment: datetime) -> datetime:
    # SQLite hands stored times back without their zone: they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
