"""Households, their residents and the visits a worker pays them, as a worker records them.

The district's own fields (a rule file's ``register household`` or
``register visit``) are checked here, before anything is written, by the
same check the master applies to a tablet's ops (`field_problems`): a worker
hears about a missing field on the tablet, not at the office a day later.
A resident lives in its household's grid and a visit is filed in it; a
visit is append-only, so it is recorded once and never edited.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Optional

from sqlalchemy import select

from wangge.app.cases import grid_id, moment
from wangge.core.errors import StoreError, ValidationFailed
from wangge.core.models import Household, Resident
from wangge.core.ruleset import Ruleset
from wangge.core.store import Store
from wangge.core.validators import field_problems

_households, _residents = Household.__table__, Resident.__table__


def _check(ruleset: Optional[Ruleset], entity: str, values: Mapping[str, Any], *, new: bool) -> None:
    if ruleset is None:
        return
    problems = field_problems(ruleset, entity, dict(values), new=new)
    if problems:
        failed = ValidationFailed(f"{entity}: " + "; ".join(problems))
        failed.problems = problems
        raise failed


def _live(conn, table, entity: str, row_id: str):
    row = conn.execute(select(table).where(table.c.id == row_id)).first()
    if row is None or row.deleted is not None:
        raise StoreError(f"no {entity} {row_id} here{' any more (deleted)' if row is not None else ''}")
    return row


def record_household(store: Store, ruleset: Optional[Ruleset], *, by: str, grid: str, address: str = "",
                     head_name: str = "", members: int = 0, building: Optional[str] = None,
                     fields: Optional[Mapping[str, Any]] = None) -> str:
    """Record a new household in grid ``grid`` (its code or id) as ``by``; return its id.

    ``fields`` are the district's own. Raises `ValidationFailed` listing
    every problem, `UsageError` for an unknown grid; nothing is written then.
    """
    values = {"address": address, "head_name": head_name, "members": members, "building_id": building,
              **(fields or {})}
    _check(ruleset, "household", values, new=True)
    with store.write(actor=by) as rec:
        return rec.insert("household", {**values, "grid_id": grid_id(rec.conn, grid)})


def edit_household(store: Store, ruleset: Optional[Ruleset], household: str, changes: Mapping[str, Any], *,
                   by: str) -> None:
    """Change some fields of ``household`` (typed columns or the district's own) as ``by``.

    Only the fields given are checked and sent: a field someone else
    changed meanwhile keeps their value unless named here. Raises
    `ValidationFailed`, or `StoreError` for a missing or deleted household.
    """
    _check(ruleset, "household", changes, new=False)
    with store.write(actor=by) as rec:
        _live(rec.conn, _households, "household", household)
        rec.update("household", household, dict(changes))


def record_resident(store: Store, *, by: str, household: str, name: str, id_number: str = "", phone: str = "",
                    fields: Optional[Mapping[str, Any]] = None) -> str:
    """Record a resident of ``household`` (in its grid) as ``by``; return the resident's id.

    Raises `StoreError` for a missing or deleted household.
    """
    with store.write(actor=by) as rec:
        home = _live(rec.conn, _households, "household", household)
        return rec.insert("resident", {"household_id": household, "grid_id": home.grid_id, "name": name,
                                       "id_number": id_number, "phone": phone, **(fields or {})})


def edit_resident(store: Store, resident: str, changes: Mapping[str, Any], *, by: str) -> None:
    """Change some fields of ``resident`` as ``by``. Raises `StoreError` for a missing or deleted resident."""
    with store.write(actor=by) as rec:
        _live(rec.conn, _residents, "resident", resident)
        rec.update("resident", resident, dict(changes))


def record_visit(store: Store, ruleset: Optional[Ruleset], *, by: str, household: str,
                 at: Optional[datetime] = None, minutes: int = 0, purpose: str = "", notes: str = "",
                 fields: Optional[Mapping[str, Any]] = None) -> str:
    """Record worker ``by``'s visit to ``household`` at ``at`` (default now); return its id.

    Raises `ValidationFailed` listing every problem with the district's
    visit fields, `StoreError` for a missing or deleted household.
    """
    values = {"minutes": minutes, "purpose": purpose, "notes": notes, **(fields or {})}
    _check(ruleset, "visit", values, new=True)
    with store.write(actor=by) as rec:
        home = _live(rec.conn, _households, "household", household)
        return rec.insert("visit", {**values, "household_id": household, "grid_id": home.grid_id,
                                    "worker_id": by, "at": moment(store, at)})
