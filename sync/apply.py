"""Applying ops to a store, through the caller's connection (one transaction).

`apply_ops` is what both ends run: the master on a device's authorised
bundle, a device on the master's reply. It is idempotent by op id (an op
already in the log is skipped) and order-independent (`wangge.sync.merge`),
so any delivery order, repetition or re-send gives the same state.

Applied ops are appended to the local op log with their original op id,
stamp and device, so they can be forwarded (master) and deduplicated.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Optional

from sqlalchemy import JSON, DateTime, select
from sqlalchemy.engine import Connection

from wangge.core.capture import REPLICATION_COLUMNS, _split, _with_defaults, columns_of, dumps, table_of
from wangge.core.errors import StoreError
from wangge.core.models import CaseEvent, Case
from wangge.core.ruleset import Ruleset
from wangge.sync import merge, tables
from wangge.sync.ops import WireOp

CHUNK = 500
#: Parents before children, so foreign keys hold within one batch.
ENTITY_ORDER = ("grid_cell", "worker", "device", "assignment", "building", "household", "resident",
                "case", "case_event", "visit", "attachment", "point_entry")
_cases, _events = Case.__table__, CaseEvent.__table__


@dataclass
class Applied:
    """What one `apply_ops` call did."""

    applied: list[WireOp] = field(default_factory=list)
    duplicates: int = 0
    orphans: list[WireOp] = field(default_factory=list)  # updates of rows this replica lacks
    conflicts: list[dict] = field(default_factory=list)
    max_hlc: int = 0


def known_op_ids(conn: Connection, op_ids: Iterable[str]) -> set[str]:
    """The subset of ``op_ids`` already in the local op log."""
    ids, found = sorted(set(op_ids)), set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        marks = ",".join("?" * len(chunk)) if conn.dialect.paramstyle == "qmark" else ",".join(["%s"] * len(chunk))
        found.update(r[0] for r in conn.exec_driver_sql(f"SELECT op_id FROM op WHERE op_id IN ({marks})", tuple(chunk)))
    return found


def apply_ops(conn: Connection, ops: Iterable[WireOp], *, ruleset: Optional[Ruleset] = None,
              masters: frozenset[str] = frozenset(), record_conflicts: bool = False) -> Applied:
    """Apply ``ops`` not yet in the log and log them; return what happened.

    Raises `StoreError` for an op whose fields do not fit its entity (the
    caller's transaction then rolls back: nothing is applied).
    """
    ops = list(ops)
    done = Applied()
    known = known_op_ids(conn, (op.op_id for op in ops))
    fresh: dict[str, WireOp] = {}
    for op in ops:
        if op.op_id in known or op.op_id in fresh:
            done.duplicates += 1
        else:
            fresh[op.op_id] = op
    todo = sorted(fresh.values(), key=lambda op: op.stamp)
    by_entity: dict[str, list[WireOp]] = {}
    for op in todo:
        by_entity.setdefault(op.entity, []).append(op)
    for entity in ENTITY_ORDER:
        _insert(conn, entity, [op for op in by_entity.get(entity, ()) if op.kind in ("insert", "append")])
    for entity in ENTITY_ORDER:
        changes = [op for op in by_entity.get(entity, ()) if op.kind in ("update", "delete")]
        if changes:
            orphans = _update(conn, entity, changes, merge.critical_fields(ruleset, entity), done)
            done.orphans.extend(orphans)
    orphan_ids = {op.op_id for op in done.orphans}
    done.applied = [op for op in todo if op.op_id not in orphan_ids]
    _log(conn, done.applied)
    cases = {op.entity_id for op in done.applied if op.entity == "case"}
    cases |= {op.fields.get("case_id") for op in done.applied if op.entity == "case_event"}
    rederive_status(conn, cases - {None}, ruleset, masters, record_conflicts)
    if record_conflicts and done.conflicts:
        conn.execute(tables.conflict.insert(), done.conflicts)
    done.max_hlc = max((op.hlc for op in done.applied), default=0)
    return done


def _insert(conn: Connection, entity: str, ops: list[WireOp]) -> None:
    if not ops:
        return
    table = table_of(entity)
    existing = _existing(conn, entity, [op.entity_id for op in ops])
    columns = columns_of(entity)
    dates = _date_columns(entity)
    records = []
    for op in ops:
        if op.entity_id in existing:
            continue  # the same entity inserted twice under two op ids: first stays
        existing.add(op.entity_id)
        plain, custom = _split(entity, {k: v for k, v in op.fields.items() if k != "id"}, columns)
        row = _with_defaults(entity, {"id": op.entity_id, **plain})
        if custom:
            row["fields"] = {**row.get("fields", {}), **custom}
        for name in dates & row.keys():
            row[name] = _as_datetime(row[name])
        records.append({**row, "hlc": op.hlc, "origin": op.device, "stamps": {}, "deleted": None})
    if not records:
        return
    if conn.dialect.name == "sqlite" and not dates:
        _insert_raw(conn, table, records)
    else:
        conn.execute(table.insert(), records)


def _insert_raw(conn: Connection, table, records: list[dict]) -> None:
    """Rows straight to the driver: SQLAlchemy's per-row processing would dominate a large import."""
    names = [c.name for c in table.columns]
    encoded = {c.name for c in table.columns if isinstance(c.type, JSON)}
    encode = json.JSONEncoder(ensure_ascii=False).encode  # as the engine's json_serializer writes it
    params = [tuple(encode(r[n]) if n in encoded and r[n] is not None else r[n] for n in names) for r in records]
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                         params)


def _update(conn: Connection, entity: str, ops: list[WireOp], critical: frozenset[str], done: Applied) -> list[WireOp]:
    table = table_of(entity)
    rows = _load(conn, entity, {op.entity_id for op in ops})
    columns = columns_of(entity)
    dates = _date_columns(entity)
    orphans, touched = [], {}
    for op in ops:
        row = rows.get(op.entity_id)
        if row is None:
            orphans.append(op)
            continue
        touched[op.entity_id] = row
        if op.kind == "delete":
            row["deleted"] = merge.tombstone(row["deleted"], op.hlc)
            continue
        current = {**(row.get("fields") or {}), **{k: v for k, v in row.items() if k in columns}}
        wins, conflicts = merge.merge_update(current, row["stamps"], (row["hlc"], row["origin"]), op.stamp,
                                             op.fields, op.seen, critical)
        for name, value in wins.items():
            if name in REPLICATION_COLUMNS or name == "id":
                raise StoreError(f"op {op.op_id} may not set {entity}.{name}")
            row["stamps"][name] = [op.hlc, op.device]
            if name in columns and name != "fields":
                row[name] = _as_datetime(value) if name in dates else value
            elif "fields" in columns:
                row["fields"] = {**(row.get("fields") or {}), name: value}
            else:
                raise StoreError(f"op {op.op_id}: {entity} has no field {name!r}")
        for c in conflicts:
            done.conflicts.append({"kind": "critical", "entity": entity, "entity_id": op.entity_id, "field": c.field,
                                   "op_id": op.op_id, "device": op.device, "kept": c.kept, "lost": c.lost,
                                   "hlc": op.hlc, "note": c.note, "resolved": False})
    for row in touched.values():
        values = {k: v for k, v in row.items() if k != "id"}
        conn.execute(table.update().where(table.c.id == row["id"]).values(**values))
    return orphans


def _existing(conn: Connection, entity: str, ids: list[str]) -> set[str]:
    table = table_of(entity)
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        found.update(conn.execute(select(table.c.id).where(table.c.id.in_(ids[start : start + CHUNK]))).scalars())
    return found


def _load(conn: Connection, entity: str, ids: set[str]) -> dict[str, dict]:
    table = table_of(entity)
    id_list, rows = sorted(ids), {}
    for start in range(0, len(id_list), CHUNK):
        for found in conn.execute(select(table).where(table.c.id.in_(id_list[start : start + CHUNK]))).mappings():
            row = dict(found)
            row["stamps"] = dict(row.get("stamps") or {})
            rows[row["id"]] = row
    return rows


def _log(conn: Connection, ops: list[WireOp]) -> None:
    if not ops:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO op (op_id, entity, entity_id, hlc, actor, device, kind, fields) VALUES ({', '.join([mark] * 8)})",
        [(op.op_id, op.entity, op.entity_id, op.hlc, op.actor, op.device, op.kind, dumps(op.fields)) for op in ops],
    )


_DATES: dict[str, frozenset[str]] = {}


def _date_columns(entity: str) -> frozenset[str]:
    if entity not in _DATES:
        _DATES[entity] = frozenset(c.name for c in table_of(entity).columns if isinstance(c.type, DateTime))
    return _DATES[entity]


def _as_datetime(value):
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise StoreError(f"expected an ISO date-time, got {value!r}") from None
    return value


def rederive_status(conn: Connection, case_ids: set[str], ruleset: Optional[Ruleset],
                    masters: frozenset[str], record_conflicts: bool) -> None:
    """Replay the moves of ``case_ids`` and store each status and stale flag (derived, no ops)."""
    lifecycle = ruleset.lifecycle if ruleset else None
    ids = sorted(case_ids)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        moves: dict[str, list] = {case_id: [] for case_id in chunk}
        rows = conn.execute(select(_events.c.id, _events.c.case_id, _events.c.hlc, _events.c.origin, _events.c.move,
                                   _events.c.to_status, _events.c.stale).where(_events.c.case_id.in_(chunk))).all()
        for r in rows:
            moves[r.case_id].append(r)
        present = set(conn.execute(select(_cases.c.id).where(_cases.c.id.in_(chunk))).scalars())
        for case_id in chunk:
            if case_id not in present:
                continue
            result = merge.replay([merge.Move(r.id, r.hlc, r.origin, r.move, r.to_status) for r in moves[case_id]],
                                  lifecycle, masters)
            conn.execute(_cases.update().where(_cases.c.id == case_id).values(status=result.status))
            for r in moves[case_id]:
                flag = result.flags.get(r.id)
                if bool(flag == "stale") != bool(r.stale):
                    conn.execute(_events.update().where(_events.c.id == r.id).values(stale=flag == "stale"))
                if flag and record_conflicts:
                    _record_move_conflict(conn, case_id, r, flag)


def rederive_since_last(conn: Connection, ruleset: Optional[Ruleset], masters: frozenset[str],
                        record_conflicts: bool) -> None:
    """Re-derive the status of every case whose moves entered the log since the last call.

    Change capture records local moves without replaying them, so each
    exchange catches up from the ``sync.derived`` log position.
    """
    from wangge.core.store import get_meta, set_meta

    since = int(get_meta(conn, "sync.derived") or 0)
    rows = conn.exec_driver_sql(
        "SELECT seq, entity, entity_id, fields FROM op WHERE seq > ? AND entity IN ('case', 'case_event')"
        if conn.dialect.paramstyle == "qmark" else
        "SELECT seq, entity, entity_id, fields FROM op WHERE seq > %s AND entity IN ('case', 'case_event')",
        (since,)).all()
    cases = {r[2] if r[1] == "case" else json.loads(r[3]).get("case_id") for r in rows}
    rederive_status(conn, cases - {None}, ruleset, masters, record_conflicts)
    top = conn.exec_driver_sql("SELECT COALESCE(MAX(seq), 0) FROM op").scalar()
    set_meta(conn, "sync.derived", str(top))


def _record_move_conflict(conn: Connection, case_id: str, row, flag: str) -> None:
    exists = conn.execute(select(tables.conflict.c.id).where(
        tables.conflict.c.kind == flag, tables.conflict.c.op_id == row.id)).first()
    if exists is None:
        note = ("a move not legal from the case's status when replayed in order: kept, not applied"
                if flag == "stale" else "a move reserved to the office, proposed from a device: accept it at the office")
        conn.execute(tables.conflict.insert().values(
            kind=flag, entity="case", entity_id=case_id, field="status", op_id=row.id, device=row.origin,
            kept=None, lost=row.move, hlc=row.hlc, note=note, resolved=False))
