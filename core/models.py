"""The domain store's tables (SQLModel).

Every synced table carries the same replication columns (`Replicated`):

* ``hlc`` and ``origin``: the stamp and device of the insert, one per row;
* ``stamps``: per-field ``[hlc, device]`` pairs, written only when a field is
  updated, so a 77-field household pays no tracking rows on insert;
* ``deleted``: the stamp of the tombstone, if the row was deleted. Rows are
  never removed by a delete, so an older edit cannot resurrect them.

District-defined fields (TEDA keeps 77 per household) live in the JSON column
``fields``; the typed columns are the ones every district shares.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    # Stored times are timezone-aware: tablets and masters may not share a zone.
    return datetime.now(timezone.utc)


class Replicated(SQLModel):
    """Replication columns shared by every synced table."""

    hlc: int = Field(default=0, sa_type=BigInteger)
    origin: str = Field(default="")
    stamps: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    deleted: Optional[int] = Field(default=None, sa_type=BigInteger)


class GridCell(Replicated, table=True):
    """One grid at one level; ``code`` is hierarchical (``12.03.007``)."""

    __tablename__ = "grid_cell"
    id: str = Field(primary_key=True)
    code: str = Field(unique=True, index=True)
    level: str
    name: str
    grade: Optional[str] = None
    upper_id: Optional[str] = Field(default=None, foreign_key="grid_cell.id", index=True)
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class Building(Replicated, table=True):
    __tablename__ = "building"
    id: str = Field(primary_key=True)
    grid_id: str = Field(foreign_key="grid_cell.id", index=True)
    code: str
    name: str = ""
    kind: str = "residential"
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class Household(Replicated, table=True):
    __tablename__ = "household"
    id: str = Field(primary_key=True)
    grid_id: str = Field(foreign_key="grid_cell.id", index=True)
    building_id: Optional[str] = Field(default=None, foreign_key="building.id", index=True)
    address: str = ""
    head_name: str = ""
    # 64-bit, as every number on the wire and in a tablet's SQLite: PostgreSQL's INTEGER stops at 2**31.
    members: int = Field(default=0, sa_type=BigInteger)
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class Resident(Replicated, table=True):
    __tablename__ = "resident"
    id: str = Field(primary_key=True)
    household_id: str = Field(foreign_key="household.id", index=True)
    grid_id: str = Field(foreign_key="grid_cell.id", index=True)
    name: str
    id_number: str = ""
    phone: str = ""
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class Worker(Replicated, table=True):
    """A grid worker, office clerk or department; ``role`` is a ruleset role."""

    __tablename__ = "worker"
    id: str = Field(primary_key=True)
    name: str
    role: str
    phone: str = ""
    department: str = ""


class Assignment(Replicated, table=True):
    """A worker's responsibility for one grid cell (and the cells below it)."""

    __tablename__ = "assignment"
    __table_args__ = (UniqueConstraint("worker_id", "grid_id"),)
    id: str = Field(primary_key=True)
    worker_id: str = Field(foreign_key="worker.id", index=True)
    grid_id: str = Field(foreign_key="grid_cell.id", index=True)
    active: bool = True


class Device(Replicated, table=True):
    """A tablet or a master known to this store."""

    __tablename__ = "device"
    id: str = Field(primary_key=True)
    worker_id: Optional[str] = Field(default=None, foreign_key="worker.id", index=True)
    name: str = ""
    sign_key: str = ""
    box_key: str = ""
    status: str = "pending"
    enrolled_at: Optional[datetime] = Field(default=None, sa_type=DateTime(timezone=True))


class Case(Replicated, table=True):
    """A resident problem. ``status`` is derived from its events, never written directly."""

    __tablename__ = "cases"  # CASE is an SQL keyword
    id: str = Field(primary_key=True)
    number: str = Field(default="", index=True)
    item_code: str = Field(index=True)
    grid_id: str = Field(foreign_key="grid_cell.id", index=True)
    building_id: Optional[str] = Field(default=None, foreign_key="building.id")
    household_id: Optional[str] = Field(default=None, foreign_key="household.id")
    channel: str = "patrol"
    severity: str = ""
    status: str = ""
    description: str = ""
    reporter_id: Optional[str] = Field(default=None, foreign_key="worker.id")
    owner: str = ""
    ruleset_version: str = ""
    reported_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    deadline: Optional[datetime] = Field(default=None, sa_type=DateTime(timezone=True))
    escalation_level: str = ""
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class CaseEvent(Replicated, table=True):
    """One lifecycle move of a case: append-only."""

    __tablename__ = "case_event"
    id: str = Field(primary_key=True)
    case_id: str = Field(foreign_key="cases.id", index=True)
    move: str
    from_status: str = ""
    to_status: str = ""
    actor_id: Optional[str] = Field(default=None, foreign_key="worker.id")
    role: str = ""
    device_id: str = ""
    at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    place: str = ""
    note: str = ""
    stale: bool = False


class Visit(Replicated, table=True):
    """A worker's visit to a household: append-only."""

    __tablename__ = "visit"
    id: str = Field(primary_key=True)
    household_id: str = Field(foreign_key="household.id", index=True)
    grid_id: str = Field(foreign_key="grid_cell.id", index=True)
    worker_id: str = Field(foreign_key="worker.id", index=True)
    at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    minutes: int = Field(default=0, sa_type=BigInteger)
    purpose: str = ""
    notes: str = ""
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class Attachment(Replicated, table=True):
    """A photo or document, addressed by the SHA-256 of its content: append-only."""

    __tablename__ = "attachment"
    id: str = Field(primary_key=True)
    sha256: str = Field(index=True)
    size: int = Field(sa_type=BigInteger)
    media_type: str
    case_id: Optional[str] = Field(default=None, foreign_key="cases.id", index=True)
    visit_id: Optional[str] = Field(default=None, foreign_key="visit.id", index=True)
    grid_id: str = Field(foreign_key="grid_cell.id", index=True)
    name: str = ""


class PointEntry(Replicated, table=True):
    """One volunteer point ledger entry (positive earns, negative redeems): append-only."""

    __tablename__ = "point_entry"
    id: str = Field(primary_key=True)
    resident_id: str = Field(foreign_key="resident.id", index=True)
    grid_id: str = Field(foreign_key="grid_cell.id", index=True)
    delta: int = Field(sa_type=BigInteger)
    reason: str
    rule: str = ""
    at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class Op(SQLModel, table=True):
    """One change, recorded in the same transaction as the change itself.

    ``seq`` is the local order of arrival, the cursor sync uses; ``hlc`` and
    ``device`` order changes across replicas.
    """

    __tablename__ = "op"
    seq: Optional[int] = Field(default=None, primary_key=True)
    op_id: str = Field(unique=True)
    entity: str
    entity_id: str
    # No index on hlc: nothing looks ops up by stamp, and every write would pay for it.
    hlc: int = Field(sa_type=BigInteger)
    actor: str = ""
    device: str = ""
    kind: str
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # A tablet folds several edits of one row into one op before sending; a
    # field changed by an earlier edit keeps that edit's stamp here.
    stamps: Optional[dict[str, int]] = Field(default=None, sa_type=JSON)


class StoreMeta(SQLModel, table=True):
    """Key/value facts about the store itself: its role, its device id, its clock."""

    __tablename__ = "store_meta"
    key: str = Field(primary_key=True)
    value: str


def __getattr__(name: str):
    # The entity table (`wangge.core.entities`) holds what is known of each entity; these two names
    # are read from it for code that imports them from here. Lazily: the table imports the models.
    if name in ("ENTITIES", "APPEND_ONLY"):
        from wangge.core import entities

        return entities.MODELS if name == "ENTITIES" else entities.APPEND_ONLY
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
