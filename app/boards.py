"""The office's boards, read from a master store: review, devices, escalation, scores, grids.

Plain data for the console's pages and for the commands that print the same
things (`wangge conflicts`). Conflicts are told in words: which record (a
case by its number, a household by its address), both values, who wrote
each and when, in the ruleset's zone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from sqlalchemy import Integer, func, select
from sqlalchemy.engine import Connection

from wangge.app.accounts import Account
from wangge.app.queries import DUE_SOON, department_of, local, scope_of, settled_states
from wangge.core import casework
from wangge.core.capture import table_of
from wangge.core.errors import StoreError
from wangge.core.hlc import wall_of
from wangge.core.models import Assignment, Case, Device, GridCell, Worker
from wangge.core.ruleset import Ruleset
from wangge.core.store import get_meta
from wangge.sync import enrollment
from wangge.sync.log import tables
from wangge.sync.master import review

_cases, _grids, _devices, _workers = Case.__table__, GridCell.__table__, Device.__table__, Worker.__table__
_assign = Assignment.__table__

# -- review -----------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    value: str  # in words
    who: str  # "王芳 (王芳的平板)", "the office", or "unknown device …"
    when: Optional[datetime]


@dataclass(frozen=True)
class ConflictView:
    id: int
    kind: str
    record: str  # "case C20261013001", "household 泰丰里3-2-301", ...
    entity: str
    entity_id: str
    field: str
    kept: Side
    other: Side
    note: str
    answers: tuple[str, ...]


def words(value: Any) -> str:
    """A stored value as a person reads it."""
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _when(stamp: Optional[int], ruleset: Optional[Ruleset]) -> Optional[datetime]:
    if not stamp:
        return None
    moment = datetime.fromtimestamp(wall_of(int(stamp)) / 1000, tz=timezone.utc)
    return local(moment, ruleset) if ruleset is not None else moment


def _who(conn: Connection, device_id: str, master: str) -> str:
    if not device_id:
        return "unknown"
    if device_id == master:
        return "the office"
    row = conn.execute(select(_devices.c.name, _workers.c.name.label("worker"))
                       .select_from(_devices.outerjoin(_workers, _workers.c.id == _devices.c.worker_id))
                       .where(_devices.c.id == device_id)).first()
    if row is None:
        return f"unknown device {device_id}"
    return f"{row.worker} ({row.name})" if row.worker else row.name or device_id


def _record_name(conn: Connection, entity: str, entity_id: str) -> tuple[str, Any]:
    """A record as a person names it, and its row (None if this store does not hold it)."""
    try:
        table = table_of(entity)
    except StoreError:
        return f"{entity} {entity_id}", None
    row = conn.execute(select(table).where(table.c.id == entity_id)).first()
    if row is None:
        return f"{entity} {entity_id} (not in this store)", None
    named = {"case": "number", "household": "address", "worker": "name", "grid_cell": "code", "resident": "name",
             "building": "code", "device": "name"}.get(entity)
    if entity == "case_event":
        number = conn.execute(select(_cases.c.number).where(_cases.c.id == row.case_id)).scalar()
        return f"case {number or row.case_id}: move {row.move}", row
    label = getattr(row, named, "") if named else ""
    return (f"{entity} {label}" if label else f"{entity} {entity_id}"), row


def conflicts(conn: Connection, ruleset: Optional[Ruleset], include_resolved: bool = False) -> list[ConflictView]:
    """What sync queued for review, oldest first, told in words."""
    master = get_meta(conn, "device_id") or ""
    query = select(tables.conflict).order_by(tables.conflict.c.hlc, tables.conflict.c.id)
    if not include_resolved:
        query = query.where(tables.conflict.c.resolved.is_(False))
    out = []
    for r in conn.execute(query).mappings():
        record, row = _record_name(conn, r["entity"], r["entity_id"])
        stamps = (row.stamps or {}) if row is not None and hasattr(row, "stamps") else {}
        written = stamps.get(r["field"]) if r["field"] else None
        if written:
            kept_hlc, kept_device = written[0], written[1]
        elif row is not None and hasattr(row, "hlc"):
            kept_hlc, kept_device = row.hlc, row.origin
        else:
            kept_hlc, kept_device = None, ""
        kept = Side(words(r["kept"]), _who(conn, kept_device, master), _when(kept_hlc, ruleset))
        other = Side(words(r["lost"]), _who(conn, r["device"], master), _when(r["hlc"], ruleset))
        out.append(ConflictView(r["id"], r["kind"], record, r["entity"], r["entity_id"], r["field"], kept, other,
                                r["note"], review.ANSWERS.get(r["kind"], ())))
    return out


def conflict_line(c: ConflictView) -> str:
    """One conflict as `wangge conflicts` prints it."""
    def at(side: Side) -> str:
        return f"{side.when:%Y-%m-%d %H:%M %Z}" if side.when else "an unknown time"

    what = f"{c.record}" + (f", field {c.field}" if c.field else "")
    if c.kind == "quarantine":
        told = f"held op from {c.other.who} stamped {at(c.other)}: {c.other.value}"
    elif c.kind == "proposal":
        told = f"proposed by {c.other.who} at {at(c.other)}"
    elif c.kind == "revoked":
        told = f"bundle sent by revoked {c.other.who} at {at(c.other)}"
    else:
        told = (f"kept {c.kept.value} (written by {c.kept.who} at {at(c.kept)}); other {c.other.value} "
                f"(from {c.other.who} at {at(c.other)})")
    return f"#{c.id:<4} {c.kind:<10} {what}: {told} — {c.note}; answer with {' or '.join(c.answers)}"


# -- devices ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceView:
    device_id: str
    name: str
    status: str
    worker: str
    fingerprint: str
    enrolled_at: Optional[datetime]
    last_sync: Optional[datetime]
    lease_ends: Optional[datetime]
    lease: str  # "valid", "expired", "none" (never synced)


def devices(conn: Connection, ruleset: Optional[Ruleset], now: datetime) -> list[DeviceView]:
    """Every tablet: pending ones first (with the fingerprint to read aloud), then by name."""
    seen = dict(conn.execute(select(tables.peer.c.device_id, tables.peer.c.seen_at)).all())
    lease_days = ruleset.settings.lease_days if ruleset is not None else None
    out = []
    for d in enrollment.list_devices(conn):
        last = _when_ms(seen.get(d["device_id"]), ruleset)
        ends = last + timedelta(days=lease_days) if last is not None and lease_days else None
        lease = "none" if last is None else ("expired" if ends is not None and ends < now else "valid")
        out.append(DeviceView(d["device_id"], d["name"], d["status"], d["worker"], d["fingerprint"],
                              local(d["enrolled_at"], ruleset) if ruleset and d["enrolled_at"] else d["enrolled_at"],
                              last, ends, lease))
    order = {"pending": 0, "active": 1, "revoked": 2}
    return sorted(out, key=lambda v: (order.get(v.status, 3), v.name))


def _when_ms(ms: Optional[int], ruleset: Optional[Ruleset]) -> Optional[datetime]:
    if not ms:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return local(moment, ruleset) if ruleset is not None else moment


def workers(conn: Connection) -> list[tuple[str, str, str]]:
    """(id, name, role) of every worker, by name: whom a tablet may be approved for."""
    return [tuple(r) for r in conn.execute(select(_workers.c.id, _workers.c.name, _workers.c.role)
                                           .where(_workers.c.deleted.is_(None)).order_by(_workers.c.name))]


# -- escalation -------------------------------------------------------------------


@dataclass
class LevelRow:
    level: str
    overdue: int = 0
    due_soon: int = 0
    cases: list = field(default_factory=list)  # (number, id, owner, deadline, overdue) of the first few


def escalation_board(conn: Connection, ruleset: Ruleset, account: Account, now: datetime,
                     listed: int = 20) -> list[LevelRow]:
    """Open cases overdue or due within `DUE_SOON`, per escalation level, most urgent first."""
    joined = _cases.join(_grids, _grids.c.id == _cases.c.grid_id)
    conds = [_cases.c.deleted.is_(None), _cases.c.status.not_in(settled_states(ruleset)),
             _cases.c.deadline < now + DUE_SOON]
    conds += [limit for limit in (scope_of(account), department_of(account)) if limit is not None]
    late = _cases.c.deadline < now
    counts = conn.execute(select(_cases.c.escalation_level, late.label("late"), func.count())
                          .select_from(joined).where(*conds).group_by(_cases.c.escalation_level, late)).all()
    rows: dict[str, LevelRow] = {}
    for level, is_late, n in counts:
        row = rows.setdefault(level or "", LevelRow(level or ""))
        if is_late:
            row.overdue += n
        else:
            row.due_soon += n
    for level, row in rows.items():
        found = conn.execute(select(_cases.c.id, _cases.c.number, _cases.c.owner, _cases.c.deadline)
                             .select_from(joined).where(*conds, _cases.c.escalation_level == level)
                             .order_by(_cases.c.deadline).limit(listed)).all()
        row.cases = [(r.number, r.id, r.owner, local(r.deadline, ruleset), local(r.deadline, ruleset) < now)
                     for r in found]
    rank = ruleset.level_rank
    return sorted(rows.values(), key=lambda r: (rank.get(r.level, 99), r.level))


# -- scores -----------------------------------------------------------------------


def scores(conn: Connection, ruleset: Ruleset, account: Account, period) -> list[casework.MonthScore]:
    """The scores of workers and grids for ``period`` (a `wangge.core.periods.Period`) by the formulas of
    its kind, those of the account's grids only if it has one; none for a department's account (the
    grid workers' appraisal is the street's, not a utility's)."""
    if account.department:
        return []
    results = casework.period_scores(conn, ruleset, period)
    if not account.grid_code:
        return results
    below = account.grid_code + "."
    grids = {c for c in conn.execute(select(_grids.c.code)).scalars() if c == account.grid_code or c.startswith(below)}
    names = set(conn.execute(
        select(_workers.c.name).select_from(_workers.join(_assign, _assign.c.worker_id == _workers.c.id)
                                            .join(_grids, _grids.c.id == _assign.c.grid_id))
        .where(_grids.c.code.in_(grids))).scalars()) if grids else set()
    return [r for r in results if (r.worker in grids if r.subject == "grid" else r.worker in names)]


def indicators(results: list[casework.MonthScore]) -> list[str]:
    """Indicator codes any of the formulas has, in first-seen order: one column each."""
    return list(dict.fromkeys(p.indicator for r in results for p in r.score.parts))


# -- grids ------------------------------------------------------------------------


@dataclass
class GridNode:
    id: str
    code: str
    name: str
    level: str
    grade: str
    open: int = 0
    overdue: int = 0
    due_soon: int = 0
    boundary: Optional[dict] = None  # GeoJSON geometry, where the store holds one
    children: list["GridNode"] = field(default_factory=list)

    @property
    def colour(self) -> str:
        return "overdue" if self.overdue else ("soon" if self.due_soon else ("open" if self.open else "clear"))


def grid_tree(conn: Connection, ruleset: Ruleset, account: Account, now: datetime) -> list[GridNode]:
    """The grid cells the account sees as a tree, each counting the open, overdue and due-soon
    cases of its whole subtree."""
    query = select(_grids.c.id, _grids.c.code, _grids.c.name, _grids.c.level, _grids.c.grade, _grids.c.upper_id,
                   _grids.c.fields).where(_grids.c.deleted.is_(None)).order_by(_grids.c.code)
    scope = scope_of(account)
    if scope is not None:
        query = query.where(scope)
    nodes = {}
    for r in conn.execute(query):
        fields = r.fields if isinstance(r.fields, dict) else json.loads(r.fields or "{}")
        boundary = fields.get("boundary") if isinstance(fields.get("boundary"), dict) else None
        nodes[r.id] = (GridNode(r.id, r.code, r.name, r.level, r.grade or "", boundary=boundary), r.upper_id)
    late, soon = _cases.c.deadline < now, _cases.c.deadline < now + DUE_SOON
    mine = [limit for limit in (department_of(account),) if limit is not None]
    counted = conn.execute(select(_cases.c.grid_id, func.count(), func.sum(late.cast(Integer)), func.sum(soon.cast(Integer)))
                           .where(_cases.c.deleted.is_(None), _cases.c.status.not_in(settled_states(ruleset)), *mine)
                           .group_by(_cases.c.grid_id)).all()
    own = {g: (n, int(o or 0), int(s or 0) - int(o or 0)) for g, n, o, s in counted}
    roots = []
    for node, upper in nodes.values():
        if upper in nodes:
            nodes[upper][0].children.append(node)
        else:
            roots.append(node)

    def total(node: GridNode) -> tuple[int, int, int]:
        n, o, s = own.get(node.id, (0, 0, 0))
        for child in node.children:
            cn, co, cs = total(child)
            n, o, s = n + cn, o + co, s + cs
        node.open, node.overdue, node.due_soon = n, o, s
        return n, o, s

    for root in roots:
        total(root)
    return roots

