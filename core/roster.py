"""The street's roster: grid cells and workers, added by the office.

Checked against the installed ruleset when there is one, so a grid names a
level the district has and a worker a role it defines; every write goes
through change capture, so tablets receive the roster by sync.
"""
from __future__ import annotations

from typing import Iterable, Optional

from sqlalchemy import select

from wangge.core.capture import Recorder
from wangge.core.errors import UsageError, WanggeError
from wangge.core.models import GridCell
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
