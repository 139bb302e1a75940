"""The street's roster: grid cells and workers, added by the office; staffing and stipends.

Checked against the installed ruleset when there is one, so a grid names a
level the district has and a worker a role it defines; every write goes
through change capture, so tablets receive the roster by sync. A role's
`headcount` is checked against the roster (`staffing`), its `stipend` is
reported per period (`stipends`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.engine import Connection

from wangge.core.capture import Recorder
from wangge.core.errors import UsageError, WanggeError
from wangge.core.models import Assignment, GridCell, Worker
from wangge.core.periods import Period
from wangge.core.ruleset import Ruleset

_grids = GridCell.__table__


def _ruleset(rec: Recorder) -> Optional[Ruleset]:
    from wangge.core.casework import installed_ruleset

    try:
        return installed_ruleset(rec.conn)
    except WanggeError:
        return None


def grid_id(rec: Recorder, code: str) -> str:
    """The id of the grid cell with ``code``; raises `UsageError` if there is none."""
    found = rec.conn.execute(select(_grids.c.id).where(_grids.c.code == code, _grids.c.deleted.is_(None))).scalar()
    if found is None:
        raise UsageError(f"no grid cell with code {code!r}: add it first with `wangge grid add`")
    return found


def add_grid(rec: Recorder, code: str, level: str, name: str, upper: Optional[str] = None,
             grade: Optional[str] = None) -> str:
    """Add a grid cell under the cell coded ``upper``; return its id.

    Raises `UsageError` for a level or grade the ruleset lacks, a missing
    upper cell, or a code already taken.
    """
    ruleset = _ruleset(rec)
    if ruleset is not None:
        levels = {lv.code: lv for lv in ruleset.levels}
        if level not in levels:
            raise UsageError(f"unknown level {level!r}: the ruleset has {', '.join(levels)}")
        grades = [c.code for c in levels[level].classes]
        if grade is not None and grade not in grades:
            raise UsageError(f"unknown class or grade {grade!r} at level {level}: expected one of {', '.join(grades) or '(none)'}")
    if rec.conn.execute(select(_grids.c.id).where(_grids.c.code == code)).first():
        raise UsageError(f"grid code {code!r} is already taken")
    return rec.insert("grid_cell", {"code": code, "level": level, "name": name, "grade": grade,
                                    "upper_id": grid_id(rec, upper) if upper else None})


def add_worker(rec: Recorder, name: str, role: str, grids: Iterable[str] = (), phone: str = "") -> str:
    """Add a worker with ``role``, assigned to the grid cells coded ``grids``; return the id.

    Raises `UsageError` for a role the ruleset does not define or an unknown grid.
    """
    ruleset = _ruleset(rec)
    if ruleset is not None and role not in {r.code for r in ruleset.roles}:
        raise UsageError(f"unknown role {role!r}: the ruleset defines {', '.join(r.code for r in ruleset.roles)}")
    cells = [grid_id(rec, code) for code in grids]
    worker = rec.insert("worker", {"name": name, "role": role, "phone": phone})
    for cell in cells:
        rec.insert("assignment", {"worker_id": worker, "grid_id": cell})
    return worker


@dataclass(frozen=True)
class Staffing:
    """How many workers of a role one grid cell has against the role's headcount."""

    grid: str  # the cell's code
    name: str
    level: str
    role: str
    needed: int
    have: int

    @property
    def short(self) -> int:
        return max(0, self.needed - self.have)


def staffing(conn: Connection, ruleset: Ruleset) -> list[Staffing]:
    """Every grid cell at the level of a role with a `headcount`, with the workers of that role it has.

    A worker counts for each cell they are actively assigned to. Cells in code order, roles in file order.
    """
    cells = conn.execute(select(_grids.c.id, _grids.c.code, _grids.c.name, _grids.c.level)
                         .where(_grids.c.deleted.is_(None)).order_by(_grids.c.code)).all()
    have: dict[tuple[str, str], int] = {}
    rows = conn.execute(select(Assignment.grid_id, Worker.role).join(Worker, Worker.id == Assignment.worker_id)
                        .where(Assignment.active, Assignment.deleted.is_(None), Worker.deleted.is_(None)))
    for grid, role in rows:
        have[(grid, role)] = have.get((grid, role), 0) + 1
    return [Staffing(cell.code, cell.name, cell.level, role.code, role.headcount, have.get((cell.id, role.code), 0))
            for role in ruleset.roles if role.headcount and role.level
            for cell in cells if cell.level == role.level]


@dataclass(frozen=True)
class Stipend:
    worker: str
    role: str
    amount: float  # CNY for the period
    why: str


#: Months in one stipend period, to turn `stipend N per P` into a monthly amount.
_MONTHS = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}


def stipends(conn: Connection, ruleset: Ruleset, period: Period) -> list[Stipend]:
    """What each worker of a role with a `stipend` is owed for ``period`` (a month, quarter, half year or year).

    A stipend per day counts the period's calendar days, per week its days / 7;
    longer periods are shared out by months. Workers on the roster now, by name.
    Raises `UsageError` for a period of a day or a week (stipends are paid by month).
    """
    if period.kind not in _MONTHS:
        raise UsageError(f"stipends are reported for a month, quarter, half year or year, not a {period.kind}")
    months = _MONTHS[period.kind]
    days = (period.end - period.start).days
    workers = conn.execute(select(Worker.name, Worker.role).where(Worker.deleted.is_(None))
                           .order_by(Worker.role, Worker.name)).all()
    paid = {r.code: r for r in ruleset.roles if r.stipend}
    out = []
    for name, role_code in workers:
        role = paid.get(role_code)
        if role is None:
            continue
        unit = role.stipend_period or "month"
        if unit == "day":
            amount, why = role.stipend * days, f"{role.stipend:g} per day × {days} days"
        elif unit == "week":
            amount, why = role.stipend * days / 7, f"{role.stipend:g} per week × {days}/7 weeks"
        else:
            amount = role.stipend * months / _MONTHS[unit]
            why = f"{role.stipend:g} per {unit.replace('_', ' ')}" + (
                f" × {months}/{_MONTHS[unit]}" if months != _MONTHS[unit] else "")
        out.append(Stipend(name, role_code, round(amount, 2), why))
    return out
