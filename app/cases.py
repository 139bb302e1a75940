"""Cases as people handle them: report one, move it on, explain it, list them, sweep the overdue.

Each function is one use case over a store: it opens the transaction, asks
the case workflow (`wangge.core.casework`), and returns what happened. A
case is named by its number (C20261013001) or its id; a grid by its code or id.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.engine import Connection

from wangge.core import casework
from wangge.core.casework import Reported
from wangge.core.errors import RoutingError, UsageError
from wangge.core.escalation import Escalation
from wangge.core.models import Case, GridCell
from wangge.core.ruleset import Ruleset
from wangge.core.store import Store
from wangge.sync.attachments import BlobStore

_cases, _grids = Case.__table__, GridCell.__table__


@dataclass(frozen=True)
class CaseLine:
    """One case as a list shows it."""

    id: str
    number: str
    item: str
    grid: str  # the grid's code
    status: str
    owner: str
    reported_at: datetime
    deadline: Optional[datetime]
    description: str


@dataclass(frozen=True)
class Swept:
    """What an escalation sweep did: the moves made and the overdue cases already at their ceiling."""

    moved: tuple[Escalation, ...]
    at_ceiling: tuple[str, ...]


def moment(store: Store, at: Optional[datetime] = None) -> datetime:
    """``at``, or now by the store's clock, in local time (timezone-aware)."""
    if at is not None:
        return at if at.tzinfo else at.astimezone()
    return datetime.fromtimestamp(store.now_ms() / 1000).astimezone()


def case_id(conn: Connection, ref: str) -> str:
    """The id of the case numbered or identified ``ref``. Raises `RoutingError` if there is none."""
    found = conn.execute(select(_cases.c.id).where((_cases.c.id == ref) | (_cases.c.number == ref))).scalar()
    if found is None:
        raise RoutingError(f"no case {ref!r}: give a case number (e.g. C20261012001) or id")
    return found


def grid_id(conn: Connection, ref: str) -> str:
    """The id of the live grid cell coded or identified ``ref``. Raises `UsageError` if there is none."""
    found = conn.execute(select(_grids.c.id).where((_grids.c.id == ref) | (_grids.c.code == ref),
                                                   _grids.c.deleted.is_(None))).scalar()
    if found is None:
        raise UsageError(f"no grid cell {ref!r}: give a grid's code (e.g. TF.03) or id")
    return found


def report(store: Store, ruleset: Ruleset, *, by: str, item: str, grid: str, channel: str,
           at: Optional[datetime] = None, description: str = "", photos: Iterable[str] = (),
           severity: Optional[str] = None, building: Optional[str] = None, household: Optional[str] = None,
           fields: Optional[dict] = None, blobs: Optional[BlobStore] = None) -> Reported:
    """Report a case as worker ``by``: validated, routed and recorded, with its likely duplicates.

    ``photos`` are SHA-256 names; each one ``blobs`` (the tablet's photo
    store) holds gets an attachment row in the same transaction, which is
    what sends the photo to the office at the next sync. Raises
    `ValidationFailed` (every problem at once), `RoutingError` or
    `UsageError` for an unknown grid; nothing is written then.
    """
    photos = list(photos)
    with store.write(actor=by) as rec:
        grid_of = grid_id(rec.conn, grid)
        reported = casework.report_case(rec, ruleset, item=item, grid_id=grid_of, channel=channel, reporter_id=by,
                                        at=moment(store, at), description=description, photos=photos,
                                        severity=severity, building_id=building, household_id=household,
                                        fields=fields)
        held = [sha for sha in dict.fromkeys(photos) if blobs is not None and blobs.has(sha)]
        rec.insert_many("attachment", [{"sha256": sha, "size": blobs.size(sha), "media_type": "image/jpeg",
                                        "case_id": reported.case_id, "grid_id": grid_of, "name": f"{sha[:12]}.jpg"}
                                       for sha in held])
        return reported


def move(store: Store, ruleset: Ruleset, case: str, move_code: str, *, role: str, by: Optional[str],
         at: Optional[datetime] = None, evidence: Iterable[str] = (), note: str = "",
         satisfied: Optional[bool] = None, spot_check: Optional[float] = None) -> str:
    """Make lifecycle move ``move_code`` on ``case`` in ``role`` as ``by``; return the case's status after it.

    On a tablet a move the rules reserve to the office is recorded as a
    proposal for the office (the status stays). Raises `TransitionError`
    (naming the guard that refused: state, role, evidence, reporter) and
    writes nothing if the move is not allowed.
    """
    with store.write(actor=by or role) as rec:
        return casework.move_case(rec, ruleset, case_id(rec.conn, case), move_code, role=role, actor_id=by,
                                  at=moment(store, at), evidence=evidence, on_device=store.role == "device",
                                  note=note, satisfied=satisfied, spot_check=spot_check)


def explain(store: Store, ruleset: Ruleset, case: str) -> str:
    """Why ``case`` is where it is: the routing trace, its deadline and escalation, and its events."""
    with store.read() as conn:
        return casework.explain(conn, ruleset, case)


def list_cases(store: Store, *, status: Optional[str] = None, grid: Optional[str] = None,
               limit: Optional[int] = None) -> list[CaseLine]:
    """The live cases, newest first; only those in ``status`` or in grid ``grid`` (its code or id) if given."""
    query = (select(_cases, _grids.c.code).join(_grids, _grids.c.id == _cases.c.grid_id)
             .where(_cases.c.deleted.is_(None)).order_by(_cases.c.reported_at.desc(), _cases.c.number.desc()))
    with store.read() as conn:
        if status is not None:
            query = query.where(_cases.c.status == status)
        if grid is not None:
            query = query.where(_cases.c.grid_id == grid_id(conn, grid))
        if limit is not None:
            query = query.limit(limit)
        rows = conn.execute(query).all()
    return [CaseLine(r.id, r.number, r.item_code, r.code, r.status, r.owner, r.reported_at, r.deadline,
                     r.description) for r in rows]


def escalate(store: Store, ruleset: Ruleset, at: Optional[datetime] = None) -> Swept:
    """Move every overdue open case up its escalation chain as of ``at`` (default now), never past its ceiling.

    Sweeping twice at the same moment changes nothing the second time.
    """
    with store.write(actor="escalation") as rec:
        moved, stuck = casework.sweep(rec, ruleset, moment(store, at))
    return Swept(tuple(moved), tuple(stuck))
