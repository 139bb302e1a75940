"""Applying ops to a store, through the caller's connection (one transaction).

`apply_ops` is what both ends run: the master on a device's authorised
bundle, a device on the master's reply. It is idempotent by op id (an op
already in the log is skipped) and order-independent (`wangge.sync.log.merge`),
so any delivery order, repetition or re-send gives the same state.

Applied ops are appended to the local op log with their original op id,
stamp and device, so they can be forwarded (master) and deduplicated.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Optional

from pydantic_core import PydanticUndefined
from sqlalchemy import JSON, DateTime, bindparam, delete, func, select
from sqlalchemy.engine import Connection

from wangge.core.capture import REPLICATION_COLUMNS, columns_of, dumps, patch_rows, sql_text, stored_json, table_of
from wangge.core import codec, entities
from wangge.core.errors import StoreError
from wangge.core.models import ENTITIES, Case, CaseEvent, Op
from wangge.core.ruleset import Ruleset
from wangge.sync.log import merge, scope, tables
from wangge.sync.log.ops import WireOp

CHUNK = entities.BATCH
#: Parents before children, so foreign keys hold within one batch.
ENTITY_ORDER = entities.ORDER
_cases, _events = Case.__table__, CaseEvent.__table__


#: JSON as the store engine's serializer writes it, for rows written past it (`wangge.core.codec`).
_store_json = codec.column


@dataclass
class Applied:
    """What one `apply_ops` call did."""

    applied: list[WireOp] = field(default_factory=list)
    duplicates: int = 0
    orphans: list[WireOp] = field(default_factory=list)  # updates of rows this replica lacks
    conflicts: list[dict] = field(default_factory=list)
    max_hlc: int = 0


def log_top(conn: Connection) -> int:
    """The highest position in the local op log (0 if it is empty)."""
    return conn.execute(select(func.coalesce(func.max(Op.__table__.c.seq), 0))).scalar()


def remove_ops(conn: Connection, where, owner: str) -> None:
    """Delete the log's ops matching ``where`` without giving their positions to later ops.

    A log position is a promise: peers acknowledge ops by it (a master's
    cursor, a device's pushed ``through``). SQLite hands the highest rowid
    plus one to the next insert, so removing the newest ops would hand their
    positions out again, to ops a peer then never asks for. A mark (kind
    ``mark``, on the private ``device`` entity: never sent) holds the top.
    """
    _op = Op.__table__
    top = log_top(conn)
    conn.execute(delete(_op).where(where))
    if top and not conn.execute(select(_op.c.seq).where(_op.c.seq == top)).first():
        mark_position(conn, top, owner)


def mark_position(conn: Connection, seq: int, owner: str) -> None:
    """Hold log position ``seq`` with a mark: an op row no peer is ever sent."""
    conn.execute(Op.__table__.insert().values(seq=seq, op_id=f"mark-{owner}-{seq}", entity="device",
                                              entity_id=owner, hlc=1, actor="sync", device="", kind="mark",
                                              fields={}))
    if conn.dialect.name == "postgresql":
        # A position given outright leaves PostgreSQL's sequence behind: the next op would take it.
        conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('op', 'seq'), "
                             "GREATEST(%s, nextval(pg_get_serial_sequence('op', 'seq'))))", (seq,))


#: Per entity, per id: ``[grid, insert hlc, origin, stamps, tombstone]`` of a stored row, the grid
#: that of its scope (None for an entity outside every scope) and the stamps as the driver gives them.
Stored = dict[str, dict[str, list]]


def stored_rows(conn: Connection, wanted: dict[str, Iterable[str]]) -> Stored:
    """The scope grid and the replication columns of each existing row ``wanted`` names (entity to
    ids), in one query per entity (and chunk): what the master's check of a push judges a row by,
    and what merging into it needs, read once for both."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    out: Stored = {}
    for entity, ids in wanted.items():
        ids, found = sorted(set(ids)), out.setdefault(entity, {})
        joins, grid = scope.placed_sql(entity) if entity in scope.SCOPED else ("", "NULL")
        for start in range(0, len(ids), CHUNK):
            chunk = tuple(ids[start : start + CHUNK])
            sql = (f"SELECT t.id, {grid}, t.hlc, t.origin, t.stamps, t.deleted FROM {table_of(entity).name} t "
                   f"{joins} WHERE t.id IN ({', '.join([mark] * len(chunk))})")
            for entity_id, *row in conn.exec_driver_sql(sql, chunk).all():  # fetched at once, not row by row
                found[entity_id] = row
    return out


def known_op_ids(conn: Connection, op_ids: Iterable[str]) -> set[str]:
    """The subset of ``op_ids`` already in the local op log."""
    ids, found = sorted(set(op_ids)), set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        marks = ",".join("?" * len(chunk)) if conn.dialect.paramstyle == "qmark" else ",".join(["%s"] * len(chunk))
        found.update(r[0] for r in conn.exec_driver_sql(f"SELECT op_id FROM op WHERE op_id IN ({marks})", tuple(chunk)))
    return found


def apply_ops(conn: Connection, ops: Iterable[WireOp], *, ruleset: Optional[Ruleset] = None,
              masters: frozenset[str] = frozenset(), record_conflicts: bool = False, fresh: bool = False,
              derive: bool = True, stored: Optional[Stored] = None) -> Applied:
    """Apply ``ops`` not yet in the log and log them; return what happened.

    ``derive=False`` leaves re-deriving case statuses to the caller (the
    protocol's `rederive_since_last` covers these ops and local moves at once).
    ``fresh`` says the caller knows none of the ops is in the log yet (the
    master, from the sender's acknowledged position), which saves looking
    every op id up; the log's unique op id still refuses a repeat.
    ``stored`` gives the rows the ops touch as `stored_rows` read them in
    this transaction (the master's check read them already): they are not
    read again.
    Raises `StoreError` for an op whose fields do not fit its entity (the
    caller's transaction then rolls back: nothing is applied).
    """
    ops = list(ops)
    done = Applied()
    known = set() if fresh else known_op_ids(conn, (op.op_id for op in ops))
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
        # An insert that folds later edits also merges into the row if it was there
        # already (a re-send after a lost reply); into the row it just made, it changes nothing.
        # Its ``id`` repeats the row's, which an edit never sets.
        changes = [op if op.kind != "insert" else op._replace(kind="update", fields=_without_id(op.fields))
                   for op in by_entity.get(entity, ()) if op.kind in ("update", "delete") or op.stamps]
        if changes:
            orphans = _update(conn, entity, changes, merge.critical_fields(ruleset, entity), done,
                              (stored or {}).get(entity))
            done.orphans.extend(orphans)
    orphan_ids = {op.op_id for op in done.orphans}
    done.applied = [op for op in todo if op.op_id not in orphan_ids]
    log_ops(conn, done.applied)
    if derive:
        cases = {op.entity_id for op in done.applied if op.entity == "case"}
        cases |= {op.fields.get("case_id") for op in done.applied if op.entity == "case_event"}
        rederive_status(conn, cases - {None}, ruleset, masters, record_conflicts)
    if record_conflicts and done.conflicts:
        conn.execute(tables.conflict.insert(), done.conflicts)
    done.max_hlc = max((op.top for op in done.applied), default=0)
    return done


def _without_id(fields: dict) -> dict:
    return {name: value for name, value in fields.items() if name != "id"} if "id" in fields else fields


class _Plan:
    """How rows of one entity are built and written, worked out once."""

    def __init__(self, entity: str):
        table = table_of(entity)
        self.table = table
        self.names = [c.name for c in table.columns]
        self.columns = columns_of(entity)
        self.has_fields = "fields" in self.columns
        self.json = frozenset(c.name for c in table.columns if isinstance(c.type, JSON))
        self.json_at = [i for i, name in enumerate(self.names) if name in self.json]
        self.dates = _date_columns(entity)
        self.constants: dict = {}
        self.factories: list = []
        for name, spec in ENTITIES[entity].model_fields.items():
            if name in REPLICATION_COLUMNS or name == "id":
                continue
            if spec.default_factory is not None:
                self.factories.append((name, spec.default_factory))
            elif spec.default is not PydanticUndefined:
                self.constants[name] = spec.default
        self.settable = self.columns - {"id", "fields"}
        # Rows go straight to the driver on SQLite when no column needs SQLAlchemy's conversions.
        self.raw = not self.dates
        # For those: a new row's column values with the defaults in place, where each column
        # sits, and which of them an op may set.
        self.at = {name: i for i, name in enumerate(self.names)}
        self.template = [_encoded(self.constants.get(name), name in self.json) for name in self.names]
        self.template[self.at["stamps"]] = "{}"
        self.index = {name: self.at[name] for name in self.settable}
        self.row_factories = [(name, factory) for name, factory in self.factories if name not in self.json]

    def row(self, op: WireOp) -> dict:
        """The new row an insert op makes, with the model's defaults filled in."""
        values = op.fields
        if not REPLICATION_COLUMNS.isdisjoint(values):
            name = next(n for n in values if n in REPLICATION_COLUMNS)
            raise StoreError(f"op {op.op_id}: cannot set {op.entity}.{name}: it is kept by change capture")
        row = self.constants.copy()
        for name, factory in self.factories:
            row[name] = factory()
        settable = self.settable
        plain = {k: v for k, v in values.items() if k in settable}
        row.update(plain)
        if len(plain) < len(values):
            custom = {k: v for k, v in values.items() if k not in settable and k != "id" and k != "fields"}
            if "fields" in values and self.has_fields:
                custom = {**values["fields"], **custom}
            if custom:
                if not self.has_fields:
                    name = next(iter(custom))
                    raise StoreError(f"{op.entity} has no field {name!r}: expected one of "
                                     f"{', '.join(sorted(self.columns))}")
                fields = row.get("fields")
                row["fields"] = {**fields, **custom} if fields else custom
        if self.dates:
            for name in self.dates & row.keys():
                row[name] = _as_datetime(row[name])
        row["id"] = op.entity_id
        row["hlc"], row["origin"], row["stamps"], row["deleted"] = op.hlc, op.device, _own_stamps(op), None
        return row


def _encoded(value, is_json: bool):
    return _store_json(value) if is_json and value is not None else value


def _own_stamps(op: WireOp) -> dict:
    """A new row's per-field stamps: none, unless the insert folds later edits of the row."""
    return {name: [stamp, op.device] for name, stamp in op.stamps.items()} if op.stamps else {}


_PLANS: dict[str, _Plan] = {}


def _plan(entity: str) -> _Plan:
    plan = _PLANS.get(entity)
    if plan is None:
        plan = _PLANS[entity] = _Plan(entity)
    return plan


def _insert(conn: Connection, entity: str, ops: list[WireOp]) -> None:
    if not ops:
        return
    plan = _plan(entity)
    if conn.dialect.name == "sqlite" and plan.raw:
        # The same entity inserted twice under two op ids: the first stays (ON CONFLICT DO NOTHING).
        _insert_raw(conn, plan, ops)
        return
    existing = _existing(conn, entity, [op.entity_id for op in ops])
    records = []
    for op in ops:
        if op.entity_id in existing:
            continue  # the same entity inserted twice under two op ids: first stays
        existing.add(op.entity_id)
        records.append(plan.row(op))
    if records:
        conn.execute(plan.table.insert(), records)


def _insert_raw(conn: Connection, plan: _Plan, ops: list[WireOp]) -> None:
    """Rows straight to the driver, built as tuples from the ops: an import of 10,000 households
    spent more on SQLAlchemy's per-row processing, and then on building dicts, than on SQLite."""
    template, at, factories = plan.template, plan.at, plan.row_factories
    index, has_fields, replication = plan.index, plan.has_fields, REPLICATION_COLUMNS
    encode = _store_json
    fields_at, id_at, hlc_at, origin_at, stamps_at = (at.get(name) for name in ("fields", "id", "hlc", "origin",
                                                                                  "stamps"))
    params = []
    # Per shape (the names an op sets, in order): the columns they go to and the district fields.
    shapes: dict[tuple, tuple[list, list]] = {}
    for op in ops:
        values = op.fields
        shape = shapes.get(key := tuple(values))
        if shape is None:
            if not replication.isdisjoint(values):
                plan.row(op)  # raises, naming the column
            shape = shapes[key] = ([(index[name], name) for name in key if name in index],
                                   [name for name in key if name not in index and name != "id" and name != "fields"])
        placed, named = shape
        row = template.copy()
        for name, factory in factories:
            row[index[name]] = factory()
        for i, name in placed:
            row[i] = values[name]
        custom = {name: values[name] for name in named} if named else None
        if has_fields:
            given = values.get("fields")
            if given:
                custom = {**given, **custom} if custom else given
            row[fields_at] = encode(custom) if custom else "{}"
        elif custom:
            plan.row(op)  # raises, naming the field
        row[id_at], row[hlc_at], row[origin_at] = op.entity_id, op.hlc, op.device
        if op.stamps:
            row[stamps_at] = encode(_own_stamps(op))
        params.append(tuple(row))
    names = ", ".join(plan.names)
    conn.exec_driver_sql(f"INSERT INTO {plan.table.name} ({names}) VALUES ({', '.join('?' * len(plan.names))}) "
                         "ON CONFLICT(id) DO NOTHING", params)


def _update(conn: Connection, entity: str, ops: list[WireOp], critical: frozenset[str], done: Applied,
            stored: Optional[dict[str, list]] = None) -> list[WireOp]:
    plan = _plan(entity)
    if (conn.dialect.name == "sqlite" and plan.raw and plan.has_fields
            and not any(op.seen or not critical.isdisjoint(op.fields) or not _patchable(op.fields) for op in ops)):
        return _update_patched(conn, plan, ops, stored)
    rows = _load(conn, plan, {op.entity_id for op in ops})
    columns, dates, has_fields = plan.columns, plan.dates, plan.has_fields
    orphans: list[WireOp] = []
    changed: dict[str, set[str]] = {}
    for op in ops:
        row = rows.get(op.entity_id)
        if row is None:
            orphans.append(op)
            continue
        if op.kind == "delete":
            row["deleted"] = merge.tombstone(row["deleted"], op.hlc)
            changed.setdefault(op.entity_id, set()).add("deleted")
            continue
        row_stamps = row["stamps"]
        own = op.stamps
        if op.seen or not critical.isdisjoint(op.fields):
            current = {**(row.get("fields") or {}), **{k: v for k, v in row.items() if k in columns}}
            # A folded op's fields may carry stamps of their own: merge them field by field then.
            parts = [(op.stamp, op.fields)] if not own else [
                ((op.field_hlc(name), op.device), {name: value}) for name, value in op.fields.items()]
            wins = {}
            for stamp, changes in parts:
                won, conflicts = merge.merge_update(current, row_stamps, (row["hlc"], row["origin"]), stamp,
                                                    changes, op.seen, critical)
                wins.update(won)
                for c in conflicts:
                    done.conflicts.append({"kind": "critical", "entity": entity, "entity_id": op.entity_id,
                                           "field": c.field, "op_id": op.op_id, "device": op.device,
                                           "kept": c.kept, "lost": c.lost, "hlc": op.hlc, "note": c.note,
                                           "resolved": False})
        else:
            wins = {name: value for name, (value, _) in merge.winners(
                op.fields, row_stamps, (row["hlc"], row["origin"]), op.hlc, op.device, own).items()}
        if not wins:
            continue
        marks = changed.setdefault(op.entity_id, set())
        pair = [op.hlc, op.device]
        for name, value in wins.items():
            if name in REPLICATION_COLUMNS or name == "id":
                raise StoreError(f"op {op.op_id} may not set {entity}.{name}")
            row_stamps[name] = [own[name], op.device] if own and name in own else pair
            if name in columns and name != "fields":
                row[name] = _as_datetime(value) if name in dates else value
                marks.add(name)
            elif has_fields:
                row["fields"][name] = value
                marks.add("fields")
            else:
                raise StoreError(f"op {op.op_id}: {entity} has no field {name!r}")
        marks.add("stamps")
    _save(conn, plan, rows, changed)
    return orphans


def _update_patched(conn: Connection, plan: _Plan, ops: list[WireOp], stored: Optional[dict[str, list]]) -> list[WireOp]:
    """`_update` on SQLite when no op touches a critical field: only stamps are read (or taken from
    ``stored``, `stored_rows` of this entity; a row missing there may have been inserted since).

    Per-field last writer wins needs the stored stamps, not the values: each
    row's winning fields are merged into it by SQLite (`patch_rows`), so a
    row's fields are neither decoded nor encoded again. Returns the orphans.
    """
    ids = {op.entity_id for op in ops}
    if stored is None:
        rows = _load_stamps(conn, plan.table.name, ids)
    else:
        loads = json.loads
        rows = {entity_id: [row[1], row[2], loads(row[3]) if row[3] and row[3] != "{}" else {}, row[4]]
                for entity_id in ids if (row := stored.get(entity_id)) is not None}
        if len(rows) < len(ids):
            rows.update(_load_stamps(conn, plan.table.name, ids - rows.keys()))
    columns, entity = plan.columns, ops[0].entity
    orphans: list[WireOp] = []
    patches: dict[str, tuple[dict, dict]] = {}
    for op in ops:
        row = rows.get(op.entity_id)
        if row is None:
            orphans.append(op)
            continue
        patch = patches.get(op.entity_id)
        if op.kind == "delete":
            row[3] = merge.tombstone(row[3], op.hlc)
            if patch is None:
                patch = patches[op.entity_id] = ({}, {})
            patch[0]["deleted"] = row[3]
            continue
        stamps, device = row[2], op.device
        for name, (value, mine) in merge.winners(op.fields, stamps, (row[0], row[1]), op.hlc, device,
                                                 op.stamps).items():
            if name in REPLICATION_COLUMNS or name == "id":
                raise StoreError(f"op {op.op_id} may not set {entity}.{name}")
            if patch is None:
                patch = patches[op.entity_id] = ({}, {})
            if name in columns and name != "fields":
                patch[0][name] = value
            else:
                patch[1][name] = value
            stamps[name] = [mine, device]
    encode = _store_json
    stamped = scope.canonical_stamps
    patch_rows(conn, plan.table.name, ((entity_id, plain, custom, encode(custom), stamped(rows[entity_id][2]))
                                       for entity_id, (plain, custom) in patches.items()),
               live_only=False, whole_stamps=True)
    return orphans


def _patchable(fields: dict) -> bool:
    """Whether SQLite's ``json_patch`` sets these values as they are: it would merge an object
    into the one stored instead of replacing it, and a null's JSON path cannot name a field
    whose name has a double quote."""
    kinds = set(map(type, fields.values()))
    if dict in kinds:
        return False
    return type(None) not in kinds or not any(value is None and '"' in name for name, value in fields.items())


def _load_stamps(conn: Connection, table: str, ids: set[str]) -> dict[str, list]:
    """Per row: ``[insert hlc, origin, field stamps, tombstone]``."""
    id_list, rows = sorted(ids), {}
    loads = json.loads
    for start in range(0, len(id_list), CHUNK):
        chunk = id_list[start : start + CHUNK]
        found = conn.exec_driver_sql(f"SELECT id, hlc, origin, stamps, deleted FROM {table} WHERE id IN "
                                     f"({', '.join('?' * len(chunk))})", tuple(chunk))
        for entity_id, hlc, origin, stamps, deleted in found:
            rows[entity_id] = [hlc, origin, loads(stamps) if stamps and stamps != "{}" else {}, deleted]
    return rows


def _save(conn: Connection, plan: _Plan, rows: dict[str, dict], changed: dict[str, set[str]]) -> None:
    """Write back the changed columns of each row, one executemany per set of columns."""
    shapes: dict[tuple[str, ...], list] = {}
    for entity_id, names in changed.items():
        shapes.setdefault(tuple(sorted(names)), []).append(rows[entity_id])
    table = plan.table
    for names, group in shapes.items():
        if conn.dialect.name == "sqlite" and plan.raw:
            encode, json_columns = _store_json, plan.json
            params = [tuple(encode(row[n]) if n in json_columns and row[n] is not None else row[n] for n in names)
                      + (row["id"],) for row in group]
            sets = ", ".join(f'"{name}" = ?' for name in names)
            conn.exec_driver_sql(f'UPDATE "{table.name}" SET {sets} WHERE id = ?', params)
        else:
            statement = table.update().where(table.c.id == bindparam("_id")).values(
                {name: bindparam("v_" + name) for name in names})
            conn.execute(statement, [{"_id": row["id"], **{"v_" + n: row[n] for n in names}} for row in group])


def _existing(conn: Connection, entity: str, ids: list[str]) -> set[str]:
    table = table_of(entity)
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        found.update(conn.execute(select(table.c.id).where(table.c.id.in_(ids[start : start + CHUNK]))).scalars())
    return found


def _load(conn: Connection, plan: _Plan, ids: set[str]) -> dict[str, dict]:
    table = plan.table
    id_list, rows = sorted(ids), {}
    raw = conn.dialect.name == "sqlite" and plan.raw
    names, json_columns = plan.names, plan.json
    for start in range(0, len(id_list), CHUNK):
        chunk = id_list[start : start + CHUNK]
        if raw:
            # JSON decoded here once; SQLAlchemy's row processing would triple the cost.
            found = conn.exec_driver_sql(f"SELECT {', '.join(names)} FROM {table.name} WHERE id IN "
                                         f"({', '.join('?' * len(chunk))})", tuple(chunk))
            for values in found:
                row = dict(zip(names, values))
                for name in json_columns:
                    if isinstance(row[name], str):
                        row[name] = json.loads(row[name])
                row["stamps"] = row["stamps"] or {}
                rows[row["id"]] = row
            continue
        for found in conn.execute(select(table).where(table.c.id.in_(chunk))).mappings():
            row = dict(found)
            row["stamps"] = dict(row.get("stamps") or {})
            if plan.has_fields:
                row["fields"] = dict(row.get("fields") or {})
            rows[row["id"]] = row
    return rows


def log_ops(conn: Connection, ops: list[WireOp]) -> None:
    """Append ``ops`` to the local log as they are (their ids, stamps and devices)."""
    if not ops:
        return
    first = ops[0]
    actor, device = first.actor, first.device
    if (conn.dialect.name == "sqlite" and "\x00" not in actor + device
            and all(op.actor == actor and op.device == device for op in ops)):
        # One tablet's bundle, one worker: actor and device as literals (see `Recorder._write_ops`).
        conn.exec_driver_sql(
            f"INSERT INTO op (op_id, entity, entity_id, hlc, kind, fields, stamps, actor, device) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, {sql_text(actor)}, {sql_text(device)})",
            [(op.op_id, op.entity, op.entity_id, op.hlc, op.kind, dumps(op.fields),
              dumps(op.stamps) if op.stamps else None) for op in ops])
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO op (op_id, entity, entity_id, hlc, actor, device, kind, fields, stamps) "
        f"VALUES ({', '.join([mark] * 9)})",
        [(op.op_id, op.entity, op.entity_id, op.hlc, op.actor, op.device, op.kind, dumps(op.fields),
          dumps(op.stamps) if op.stamps else None) for op in ops],
    )


def typed(entity: str, values: dict) -> dict:
    """An op's fields with its date-time columns as moments, as a `Recorder` takes them.

    Raises `StoreError` for a date-time that is not ISO 8601.
    """
    dates = _date_columns(entity) & values.keys()
    return {**values, **{name: _as_datetime(values[name]) for name in dates}} if dates else dict(values)


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
        present = dict(conn.execute(select(_cases.c.id, _cases.c.status).where(_cases.c.id.in_(chunk))).all())
        statuses, stale = [], []
        for case_id in chunk:
            if case_id not in present:
                continue
            result = merge.replay([merge.Move(r.id, r.hlc, r.origin, r.move, r.to_status) for r in moves[case_id]],
                                  lifecycle, masters)
            if result.status != present[case_id]:
                statuses.append({"_id": case_id, "_status": result.status})
            for r in moves[case_id]:
                flag = result.flags.get(r.id)
                if bool(flag == "stale") != bool(r.stale):
                    stale.append({"_id": r.id, "_stale": flag == "stale"})
                if flag and record_conflicts:
                    _record_move_conflict(conn, case_id, r, flag)
        # Only what changed, one statement each: a tablet's first sync derives thousands of cases.
        if statuses:
            conn.execute(_cases.update().where(_cases.c.id == bindparam("_id")).values(status=bindparam("_status")),
                         statuses)
        if stale:
            conn.execute(_events.update().where(_events.c.id == bindparam("_id")).values(stale=bindparam("_stale")),
                         stale)


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
    cases = {r[2] if r[1] == "case" else stored_json(r[3]).get("case_id") for r in rows}
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
