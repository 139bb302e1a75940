"""A worker's tablet, opened for the field app: who works on it, their grids, cases, households and lease.

`FieldTablet` is the application layer's `Tablet` (opened the one right
way: unlocked with the worker's passphrase, migrated) with what the field
app's pages read. It opens for sync, so a tablet whose lease ran out still
opens to sync and renew it; `lease` says whether it may record anything
else, and the use cases that record (`wangge.app.fieldrecords`) refuse while
it is out. Everything the home page shows is read here, in one transaction
per page.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select

from wangge.app.tablet import Tablet
from wangge.core import casework
from wangge.core.capture import stored_json
from wangge.core.errors import WanggeError
from wangge.core.lifecycle import Lifecycle
from wangge.core.models import (Assignment, Attachment, Building, Case, CaseEvent, GridCell, Household, Op,
                                PointEntry, Resident, Visit, Worker)
from wangge.core.ruleset import Ruleset
from wangge.core.store import Store, get_meta, set_meta
from wangge.sync.device import atrest
from wangge.sync.log import scope
from wangge.sync.device.session import DeviceSession

_cases, _events, _households = Case.__table__, CaseEvent.__table__, Household.__table__
_grids, _workers, _visits, _op = GridCell.__table__, Worker.__table__, Visit.__table__, Op.__table__
_residents, _attachments, _buildings = Resident.__table__, Attachment.__table__, Building.__table__
_points, _assign = PointEntry.__table__, Assignment.__table__

META_WORKER = "field.worker_id"
META_LAST_SYNC = "field.last_sync"  # what the last sync did, in figures (`wangge.app.fieldsync.Outcome`)
#: A household not visited for this many days is due a visit. The rule files set no visiting
#: cadence (the seeds count visits and minutes, not intervals), so the app's default is a month.
VISIT_EVERY_DAYS = 30
DAY_MS = atrest.DAY_MS


@dataclass(frozen=True)
class LeaseView:
    """What the home page says about the lease: days left, or that the tablet is locked."""

    last_sync_ms: Optional[int]
    lease_days: int
    now_ms: int

    @property
    def days_left(self) -> Optional[float]:
        if self.last_sync_ms is None:
            return None
        return (self.last_sync_ms + self.lease_days * DAY_MS - self.now_ms) / DAY_MS

    @property
    def expired(self) -> bool:
        left = self.days_left
        return left is not None and left < 0


@dataclass
class Home:
    worker: Optional[dict]
    grids: list[dict]
    cases: list[dict]
    open_cases: int
    due_visits: list[dict]
    households_due: int
    meetings: list[dict]
    lease: LeaseView
    waiting: int
    last_sync: Optional[dict]
    candidates: list[dict] = field(default_factory=list)


class FieldTablet(Tablet):
    """An unlocked tablet store with the photo store beside it. Close it when done.

    ``now`` is the moment records are made at; the store's own clock stamps their changes.
    """

    def __init__(self, store: Store, path: str | Path, *,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        super().__init__(store, path)
        self.now = now

    @classmethod
    def open(cls, path: str | Path, passphrase: str, **options) -> "FieldTablet":
        """Unlock the tablet at ``path`` (for sync: the lease is the app's to show). Raises
        `WrongPassphrase`, `UsageError` or `StoreError`."""
        opened = Tablet.open(path, passphrase, for_sync=True)
        return cls(opened.store, path, **options)

    # -- what the tablet knows ------------------------------------------------------------------

    def rules(self, conn=None) -> Optional[Ruleset]:
        """The ruleset sync delivered (parsed once per version); None before the first sync."""
        if conn is None:
            return self.installed_ruleset()
        text = casework.installed_json(conn)
        if text != self._rules_text:
            self._rules_text, self._rules = text, Ruleset.from_json(text) if text else None
        return self._rules

    def session(self, conn) -> DeviceSession:
        """Where the tablet stands with its master (acknowledged position, lease, ...)."""
        return DeviceSession.load(conn)

    def now_ms(self) -> int:
        return int(self.now().timestamp() * 1000)

    def lease(self, conn) -> LeaseView:
        rules = self.rules(conn)
        found = atrest.read_lease(conn, rules.settings.lease_days if rules else 14)
        return LeaseView(found.last_sync_ms, found.lease_days, self.now_ms())

    def worker(self, conn) -> Optional[dict]:
        """The tablet's worker (learnt at sync, or chosen once on a tablet that only syncs by USB)."""
        worker_id = get_meta(conn, META_WORKER)
        if not worker_id:
            return None
        row = conn.execute(select(_workers.c.id, _workers.c.name, _workers.c.role)
                           .where(_workers.c.id == worker_id)).first()
        return dict(row._mapping) if row else None

    def set_worker(self, worker_id: str) -> None:
        """Record whose tablet this is. Raises `WanggeError` for a worker the tablet does not hold."""
        with self.store.write(actor="field") as rec:
            if rec.conn.execute(select(_workers.c.id).where(_workers.c.id == worker_id)).first() is None:
                raise WanggeError(f"no worker {worker_id} on this tablet: sync first")
            set_meta(rec.conn, META_WORKER, worker_id)

    def candidates(self, conn) -> list[dict]:
        """Workers who could own this tablet: those assigned to a grid whose households it holds."""
        held = select(_households.c.grid_id).distinct()
        rows = conn.execute(select(_workers.c.id, _workers.c.name, _workers.c.role).distinct()
                            .join(_assign, _assign.c.worker_id == _workers.c.id)
                            .where(_assign.c.active.is_(True), _assign.c.grid_id.in_(held))
                            .order_by(_workers.c.name)).all()
        return [dict(r._mapping) for r in rows]

    def grid_ids(self, conn, worker: Optional[dict]) -> list[str]:
        return scope.worker_grids(conn, worker["id"]) if worker else []

    def waiting(self, conn) -> int:
        """Own changes not yet acknowledged by the office: what the next sync sends."""
        through = self.session(conn).through
        return conn.execute(select(func.count()).select_from(_op).where(
            _op.c.device == self.device_id, _op.c.seq > through, _op.c.kind != "mark")).scalar()

    def zone(self, conn) -> ZoneInfo:
        rules = self.rules(conn)
        return ZoneInfo(rules.settings.timezone if rules else "Asia/Shanghai")

    # -- the home page --------------------------------------------------------------------------

    def home(self, *, limit: int = 30) -> Home:
        with self.store.read() as conn:
            worker = self.worker(conn)
            grid_ids = self.grid_ids(conn, worker)
            rules = self.rules(conn)
            cases, total = self.open_cases(conn, grid_ids, rules, limit=limit)
            due, due_total = self.due_visits(conn, grid_ids, limit=limit)
            return Home(
                worker=worker, grids=self.grids(conn, grid_ids), cases=cases, open_cases=total,
                due_visits=due, households_due=due_total, meetings=self.meetings(rules, worker),
                lease=self.lease(conn), waiting=self.waiting(conn),
                last_sync=stored_json(get_meta(conn, META_LAST_SYNC)),
                candidates=[] if worker else self.candidates(conn))

    def grids(self, conn, grid_ids: list[str]) -> list[dict]:
        if not grid_ids:
            return []
        counts = dict(conn.execute(select(_households.c.grid_id, func.count()).where(
            _households.c.grid_id.in_(grid_ids), _households.c.deleted.is_(None)).group_by(_households.c.grid_id)).all())
        rows = conn.execute(select(_grids.c.id, _grids.c.code, _grids.c.name, _grids.c.level, _grids.c.grade)
                            .where(_grids.c.id.in_(grid_ids)).order_by(_grids.c.code)).all()
        return [dict(r._mapping, households=counts.get(r.id, 0)) for r in rows]

    def open_cases(self, conn, grid_ids: list[str], rules: Optional[Ruleset], *, limit: int) -> tuple[list[dict], int]:
        """Open cases of the worker's grids: overdue first, then by deadline; and how many there are."""
        if not grid_ids or rules is None or rules.lifecycle is None:
            return [], 0
        life = Lifecycle.of(rules)
        settled = sorted(life.final | life.closed)
        where = and_(_cases.c.grid_id.in_(grid_ids), _cases.c.deleted.is_(None), _cases.c.status.not_in(settled))
        total = conn.execute(select(func.count()).select_from(_cases).where(where)).scalar()
        # Without a deadline last; SQLite and PostgreSQL both sort NULLs by this flag first.
        rows = conn.execute(select(_cases.c.id, _cases.c.number, _cases.c.item_code, _cases.c.status,
                                   _cases.c.description, _cases.c.deadline, _cases.c.reported_at, _cases.c.grid_id)
                            .where(where).order_by(_cases.c.deadline.is_(None), _cases.c.deadline, _cases.c.number)
                            .limit(limit)).all()
        now = self.now()
        out = []
        for r in rows:
            deadline = aware(r.deadline) if r.deadline else None
            item = rules.items.get(r.item_code)
            out.append({**r._mapping, "deadline": deadline, "overdue": bool(deadline and deadline < now),
                        "item": item.label if item else None})
        return out, total

    def due_visits(self, conn, grid_ids: list[str], *, limit: int) -> tuple[list[dict], int]:
        """Households of the worker's grids not visited for `VISIT_EVERY_DAYS`, never visited first."""
        if not grid_ids:
            return [], 0
        since = self.now() - timedelta(days=VISIT_EVERY_DAYS)
        last = (select(_visits.c.household_id, func.max(_visits.c.at).label("last"))
                .where(_visits.c.deleted.is_(None)).group_by(_visits.c.household_id).subquery())
        where = and_(_households.c.grid_id.in_(grid_ids), _households.c.deleted.is_(None),
                     or_(last.c.last.is_(None), last.c.last < since))
        base = select(_households.c.id, _households.c.address, _households.c.head_name, _households.c.fields,
                      last.c.last).select_from(_households.outerjoin(last, last.c.household_id == _households.c.id))
        total = conn.execute(select(func.count()).select_from(
            _households.outerjoin(last, last.c.household_id == _households.c.id)).where(where)).scalar()
        rows = conn.execute(base.where(where).order_by(last.c.last.is_not(None), last.c.last, _households.c.address)
                            .limit(limit)).all()
        title = title_field(self.rules(conn))
        return [{"id": r.id, "address": r.address, "head": household_head(r, title),
                 "last": aware(r.last) if r.last else None} for r in rows], total

    def meetings(self, rules: Optional[Ruleset], worker: Optional[dict]) -> list[dict]:
        """The rule file's meetings the worker's role attends (or open to all), with their cadence."""
        if rules is None:
            return []
        role = worker["role"] if worker else None
        return [{"code": m.code, "label": m.label, "every": m.every} for m in rules.meetings
                if not m.roles or role in m.roles]


def title_field(rules: Optional[Ruleset]) -> Optional[str]:
    """The register field that names a household in lists: its first required text field (TEDA's 户主)."""
    for spec in rules.register("household") if rules else ():
        if spec.required and spec.type.value == "text":
            return spec.code
    return None


def household_head(row, title: Optional[str]) -> str:
    """A household's name as lists show it: its title field if the register has one, else the column."""
    fields = stored_json(row.fields) or {}
    return str((fields.get(title) if title else None) or row.head_name or "")


def aware(moment: datetime) -> datetime:
    """``moment`` with its zone: SQLite hands times back without it, and change capture wrote them in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

