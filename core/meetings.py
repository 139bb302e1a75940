"""Meetings the rule file's cadences ask for: which are due, who attended, and a metric.

Baotaqiao holds its street leading group monthly, the L1 head with the L2
heads every other day, L2 with L3 heads every ten days (每旬): the rule file
says ``meeting 旬会 every 10 days roles 网格长``. The office records each
meeting held, with its attendance, in ``meeting_record`` (kept at the office,
not sent to tablets); `due` tells which meetings are due by a date, and the
metric ``meetings_attended`` counts a worker's meetings in a period.

`due` and `attended` are pure; `record` and `held` read and write the store.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Optional

from sqlalchemy import JSON, DateTime, select
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from wangge.core.calendar import for_calendar, in_zone
from wangge.core.errors import UsageError
from wangge.core.ids import uuid7
from wangge.core.ruleset import Ruleset


class MeetingRecord(SQLModel, table=True):
    """One meeting held, with who attended (worker ids)."""

    __tablename__ = "meeting_record"
    id: str = Field(primary_key=True)
    meeting: str = Field(index=True)  # the rule file's meeting code
    held_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    grid_id: Optional[str] = Field(default=None, foreign_key="grid_cell.id")
    attendees: list[Any] = Field(default_factory=list, sa_type=JSON)
    note: str = ""


@dataclass(frozen=True)
class Held:
    meeting: str
    at: datetime
    attendees: tuple[str, ...]


@dataclass(frozen=True)
class Due:
    meeting: str
    last: Optional[datetime]  # None: never held
    due: Optional[datetime]  # None: due now, never held
    overdue: bool


def due(ruleset: Ruleset, held: Iterable[Held], now: datetime) -> list[Due]:
    """Every meeting of the ruleset with its last sitting and when the next is due (last + every)."""
    time = for_calendar(ruleset.settings.calendar, ruleset.settings.timezone)
    last: dict[str, datetime] = {}
    for h in held:
        if h.meeting not in last or h.at > last[h.meeting]:
            last[h.meeting] = h.at
    out = []
    for meeting in ruleset.meetings:
        previous = last.get(meeting.code)
        next_due = time.add(previous, meeting.every) if previous else None
        out.append(Due(meeting.code, previous, next_due, next_due is None or next_due <= now))
    return out


def attended(held: Iterable[Held], worker_id: str, start: datetime, end: datetime) -> int:
    """Meetings in ``[start, end)`` that ``worker_id`` attended."""
    return sum(1 for h in held if start <= h.at < end and worker_id in h.attendees)


def record(conn: Connection, ruleset: Ruleset, meeting: str, at: datetime, attendees: Iterable[str],
           grid_id: Optional[str] = None, note: str = "") -> str:
    """Store one meeting held; return its id.

    Attendees are worker ids or names. Raises `UsageError` for a meeting the
    rule file does not define, or for an attendee who is not on the roster or
    whose role the meeting does not invite.
    """
    from wangge.core.models import Worker

    meetings = {m.code: m for m in ruleset.meetings}
    found = meetings.get(meeting)
    if found is None:
        raise UsageError(f"unknown meeting {meeting!r}: the rule file defines {', '.join(meetings) or '(none)'}")
    roster = conn.execute(select(Worker.id, Worker.name, Worker.role).where(Worker.deleted.is_(None))).all()
    by_name = {w.name: w.id for w in roster}
    roles = {w.id: w.role for w in roster}
    given = list(dict.fromkeys(attendees))
    unknown = [p for p in given if p not in roles and p not in by_name]
    if unknown:
        raise UsageError(f"no worker {', '.join(unknown)} on the roster: name attendees by worker name or id")
    people = list(dict.fromkeys(p if p in roles else by_name[p] for p in given))
    outside = [p for p in people if found.roles and roles[p] not in found.roles]
    if outside:
        raise UsageError(f"meeting {meeting} is for {', '.join(found.roles)}; "
                         f"{', '.join(f'{p} ({roles[p]})' for p in outside)} is not invited")
    record_id = uuid7()
    # Stored in UTC like every time in the store (a naive ``at`` is the ruleset's local time).
    held_at = in_zone(at, ruleset.settings.timezone).astimezone(timezone.utc)
    conn.execute(MeetingRecord.__table__.insert().values(id=record_id, meeting=meeting, held_at=held_at, grid_id=grid_id,
                                                         attendees=people, note=note))
    return record_id


def held(conn: Connection) -> list[Held]:
    """Every meeting recorded in the store."""
    rows = conn.execute(select(MeetingRecord.meeting, MeetingRecord.held_at, MeetingRecord.attendees)).all()
    return [Held(m, _aware(at), tuple(people or ())) for m, at, people in rows]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
