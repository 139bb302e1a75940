"""The street's roster as the office keeps it: grid cells and the workers responsible for them.

Checked against the installed ruleset (a grid's level and grade, a worker's
role); tablets receive the roster by sync.
"""
from __future__ import annotations

from typing import Iterable, Optional

from wangge.core import roster
from wangge.core.store import Store


def add_grid(store: Store, code: str, *, level: str, name: str, upper: Optional[str] = None,
             grade: Optional[str] = None) -> str:
    """Add a grid cell coded ``code`` under the cell coded ``upper``; return its id.

    Raises `UsageError` for a level or grade the ruleset lacks, an unknown
    upper cell or a code already taken; nothing is written then.
    """
    with store.write(actor="office") as rec:
        return roster.add_grid(rec, code, level, name, upper, grade)


def add_worker(store: Store, name: str, *, role: str, grids: Iterable[str] = (), phone: str = "") -> str:
    """Add a worker with ``role``, responsible for the grid cells coded ``grids``; return the worker's id.

    Raises `UsageError` for a role the ruleset lacks or an unknown grid.
    """
    with store.write(actor="office") as rec:
        return roster.add_worker(rec, name, role, grids, phone)
