"""The entity table: for every synced entity, in one declaration, everything the code knows about it.

Each `Entity` says where it comes in the order parents-before-children,
whether its rows are append-only, which rows it takes its grid from
(``owners``: it moves with them) or lies in the scope of (``belongs``: an
append-only row never moves), its critical columns, whether every tablet
holds it, only the tablets of its grids, or none (``sharing``), whether a
tablet may write it, whether the rule file validates it, and what is derived
rather than written by ops. Its references come from the model's foreign keys.

Every module that needs one of these facts reads it from here (`ORDER`,
`APPEND_ONLY`, `OWNERS`, `BELONGS`, `CRITICAL_COLUMNS`, `SHARED`, `PRIVATE`,
`SCOPED`, `DEVICE_WRITABLE`, `VALIDATED`, `DERIVED`, `REFERENCES`, `BATCH`);
`tests/core/test_entities.py` proves none keeps a copy of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from wangge.core.models import (Assignment, Attachment, Building, Case, CaseEvent, Device, GridCell, Household,
                                PointEntry, Replicated, Resident, Visit, Worker)

Links = tuple[tuple[str, str], ...]  # (column, entity it names), first named first

#: How many ids one ``IN (...)`` query takes: below SQLite's and PostgreSQL's parameter limits.
BATCH = 500


@dataclass(frozen=True)
class Entity:
    """What the code knows about one synced entity."""

    name: str  # as ops carry it
    model: type[Replicated]
    sharing: str  # "shared": every tablet; "scoped": the tablets of its grids; "private": the master only
    append_only: bool = False  # rows are never updated or deleted once written
    device_writes: bool = False  # a tablet may push ops of it; the rest are the office's
    owners: Links = ()  # movable: the rows whose grid it takes, moving with them
    belongs: Links = ()  # append-only: the rows whose scope it lies in (none: its own grid)
    critical: frozenset[str] = frozenset()  # typed columns whose concurrent edits go to review
    validated: bool = False  # the rule file defines fields of it (`wangge.core.validators`)
    derived: Optional[str] = None  # a column set by replaying events, never by ops

    @property
    def references(self) -> Links:
        """Its columns that refer to another synced row (its foreign keys), with that row's entity."""
        by_table = {e.model.__table__.name: e.name for e in TABLE}
        return tuple((column.name, by_table[fk.column.table.name]) for column in self.model.__table__.columns
                     for fk in column.foreign_keys if fk.column.table.name in by_table)


#: Every synced entity, parents before children, so foreign keys hold within one batch.
TABLE: tuple[Entity, ...] = (
    Entity("grid_cell", GridCell, "shared"),
    Entity("worker", Worker, "shared"),
    Entity("device", Device, "private"),
    Entity("assignment", Assignment, "shared"),
    Entity("building", Building, "scoped", device_writes=True),
    Entity("household", Household, "scoped", device_writes=True, owners=(("building_id", "building"),),
           critical=frozenset({"address", "head_name"}), validated=True),
    Entity("resident", Resident, "scoped", device_writes=True, owners=(("household_id", "household"),),
           critical=frozenset({"name", "id_number"})),
    Entity("case", Case, "scoped", device_writes=True,
           owners=(("household_id", "household"), ("building_id", "building")), validated=True, derived="status"),
    Entity("case_event", CaseEvent, "scoped", append_only=True, device_writes=True, belongs=(("case_id", "case"),),
           derived="stale"),
    Entity("visit", Visit, "scoped", append_only=True, device_writes=True, belongs=(("household_id", "household"),),
           validated=True),
    Entity("attachment", Attachment, "scoped", append_only=True, device_writes=True,
           belongs=(("case_id", "case"), ("visit_id", "visit"))),
    Entity("point_entry", PointEntry, "scoped", append_only=True, device_writes=True,
           belongs=(("resident_id", "resident"),)),
)

BY_NAME: dict[str, Entity] = {e.name: e for e in TABLE}

# -- the reads every consumer takes ------------------------------------------------------------------

#: Synced entities by the name ops carry.
MODELS: dict[str, type[Replicated]] = {e.name: e.model for e in TABLE}
ORDER: tuple[str, ...] = tuple(e.name for e in TABLE)
APPEND_ONLY = frozenset(e.name for e in TABLE if e.append_only)
OWNERS: dict[str, Links] = {e.name: e.owners for e in TABLE if e.owners}
BELONGS: dict[str, Links] = {e.name: e.belongs for e in TABLE if e.belongs}
CRITICAL_COLUMNS: dict[str, frozenset[str]] = {e.name: e.critical for e in TABLE if e.critical}
SHARED = frozenset(e.name for e in TABLE if e.sharing == "shared")
PRIVATE = frozenset(e.name for e in TABLE if e.sharing == "private")
SCOPED: tuple[str, ...] = tuple(e.name for e in TABLE if e.sharing == "scoped")
DEVICE_WRITABLE = frozenset(e.name for e in TABLE if e.device_writes)
VALIDATED = frozenset(e.name for e in TABLE if e.validated)
DERIVED: dict[str, str] = {e.name: e.derived for e in TABLE if e.derived}
REFERENCES: dict[str, Links] = {e.name: e.references for e in TABLE}
