"""What an office and a tablet share: an open store, its ruleset, and the case use cases."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Optional

from wangge.app import cases
from wangge.core import casework
from wangge.core.casework import Reported
from wangge.core.errors import UsageError, WanggeError
from wangge.core.models import GridCell
from wangge.core.ruleset import Ruleset
from wangge.core.store import Store
from wangge.sync.identity import store_keys
from wangge.sync.keys import DeviceKeys


@dataclass(frozen=True)
class Grid:
    """A grid cell as the roster holds it; ``upper`` is the code of the cell above (None at the top)."""

    id: str
    code: str
    level: str
    name: str
    grade: Optional[str]
    upper: Optional[str]


class Handle:
    """An open store and the use cases both sides offer. Close it, or use it as a context manager."""

    #: Said when the store has no ruleset, with the way to give it one.
    NO_RULESET = "this store has no ruleset"

    def __init__(self, store: Store):
        self.store = store
        self._rules_text: Optional[str] = None
        self._rules: Optional[Ruleset] = None
        self._keys: Optional[DeviceKeys] = None

    # -- the store ---------------------------------------------------------------------------

    @property
    def device_id(self) -> str:
        return self.store.device_id

    @property
    def keys(self) -> DeviceKeys:
        """This store's own key pairs (made on first use, kept in the store)."""
        if self._keys is None:
            self._keys = store_keys(self.store)
        return self._keys

    def installed_ruleset(self) -> Optional[Ruleset]:
        """The ruleset installed on the store, or None. Parsed again only when it changed."""
        with self.store.read() as conn:
            text = casework.installed_json(conn)
        if text != self._rules_text:
            self._rules_text, self._rules = text, Ruleset.from_json(text) if text else None
        return self._rules

    @property
    def ruleset(self) -> Ruleset:
        """The ruleset this store runs. Raises `WanggeError` saying how to give it one."""
        found = self.installed_ruleset()
        if found is None:
            raise WanggeError(self.NO_RULESET)
        return found

    def close(self) -> None:
        self.store.close()

    @contextmanager
    def _closed_on_error(self):
        """For set-up after opening: on an error the store is closed again, then the error goes on."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _blobs(self):
        """The photo store whose photos a reported case attaches, if this side keeps one."""
        return None

    # -- the roster --------------------------------------------------------------------------

    def grid(self, code: str) -> Grid:
        """The grid cell coded ``code``. Raises `UsageError` if the roster has none (deleted ones count as none)."""
        from sqlalchemy import select
        from sqlalchemy.orm import aliased

        cell, upper = GridCell.__table__, aliased(GridCell.__table__)
        with self.store.read() as conn:
            row = conn.execute(
                select(cell.c.id, cell.c.code, cell.c.level, cell.c.name, cell.c.grade, upper.c.code)
                .outerjoin(upper, upper.c.id == cell.c.upper_id)
                .where(cell.c.code == code, cell.c.deleted.is_(None))).first()
        if row is None:
            raise UsageError(f"no grid cell with code {code!r}: add it first with `wangge grid add`")
        return Grid(*row)

    # -- cases -------------------------------------------------------------------------------

    def report_case(self, *, by: str, item: str, grid: str, channel: str, at: Optional[datetime] = None,
                    description: str = "", photos: Iterable[str] = (), severity: Optional[str] = None,
                    building: Optional[str] = None, household: Optional[str] = None,
                    fields: Optional[dict] = None) -> Reported:
        """Report a case as worker ``by`` (see `wangge.app.cases.report`)."""
        return cases.report(self.store, self.ruleset, by=by, item=item, grid=grid, channel=channel, at=at,
                            description=description, photos=photos, severity=severity, building=building,
                            household=household, fields=fields, blobs=self._blobs())

    def move_case(self, case: str, move: str, *, role: str, by: Optional[str], at: Optional[datetime] = None,
                  evidence: Iterable[str] = (), note: str = "", satisfied: Optional[bool] = None,
                  spot_check: Optional[float] = None) -> str:
        """Make a lifecycle move on ``case``; return its status after (see `wangge.app.cases.move`)."""
        return cases.move(self.store, self.ruleset, case, move, role=role, by=by, at=at, evidence=evidence,
                          note=note, satisfied=satisfied, spot_check=spot_check)

    def explain(self, case: str, ruleset: Optional[Ruleset] = None) -> str:
        """Why ``case`` is where it is (by ``ruleset``, default the store's)."""
        return cases.explain(self.store, ruleset or self.ruleset, case)

    def cases(self, *, status: Optional[str] = None, grid: Optional[str] = None,
              limit: Optional[int] = None) -> list[cases.CaseLine]:
        """The live cases, newest first, optionally of one status or grid."""
        return cases.list_cases(self.store, status=status, grid=grid, limit=limit)
