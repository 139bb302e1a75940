"""The master's check of every op a device pushes, before anything is applied.

A device may only push ops it recorded itself, on the entities a device may
write, for rows in the grids its worker is assigned to; a case move must be
a transition of the ruleset open to the worker's role; the district's own
fields of cases, households and visits must pass the rule file's checks.
One failing op refuses the whole bundle (`Unauthorised`), so the master's store is left
exactly as it was. An op stamped beyond the clock drift bound is not a
refusal: it is set aside for quarantine and the rest of the bundle applies;
so is an edit of a row whose tombstone was collected (`wangge.sync.master.tombstones`),
and an op that needs one held so first (`wangge.sync.master.quarantine`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy import Boolean, DateTime, Integer, String, TypeDecorator, select
from sqlalchemy.engine import Connection

from wangge.core import entities, placement
from wangge.core.capture import REPLICATION_COLUMNS, columns_of, table_of
from wangge.core.errors import SyncError
from wangge.core.hlc import moment, span, wall_of
from wangge.core.models import APPEND_ONLY
from wangge.core.ruleset import Ruleset
from wangge.core.validators import column_problems, field_problems
from wangge.sync.log import apply, scope
from wangge.sync.master import quarantine
from wangge.sync.log.ops import WireOp, typed_columns
from wangge.sync.master.tombstones import collected_ids


#: Records whose district fields the rule file defines (`wangge.core.validators`).
VALIDATED = entities.VALIDATED


class Unauthorised(SyncError, PermissionError):
    """An op in a bundle is not allowed; the whole bundle is refused."""


@dataclass(frozen=True)
class Sender:
    device_id: str
    worker_id: Optional[str]
    role: Optional[str]
    grids: frozenset[str]
    #: The grids the device may have held (its scope at its last sync, and every grid the worker
    #: was assigned), and the master log position it had then: what left its scope is held for
    #: the office, not refused (`_LeftScope`).
    previous: frozenset[str] = frozenset()
    cursor: int = 0


class _LeftScope(Exception):
    """An op for a row the worker had when the tablet last synced, which has left the worker's grids
    since (the worker reassigned, the row moved at the office). Refusing it would refuse every later
    bundle of the tablet, which then never hears of the change: it is held for the office instead."""


def authorise(conn: Connection, ops: list[WireOp], sender: Sender, ruleset: Optional[Ruleset], *,
              now_ms: int, max_drift_ms: int, validate: bool = True) -> tuple["Authorised", list[tuple[WireOp, str]]]:
    """Split fresh ``ops`` into (to apply, to quarantine with a reason).

    ``validate`` checks the district's fields against ``ruleset``'s rules;
    the caller turns it off for a device that recorded under another
    version of the rules (it gets the current one in the reply: refusing
    its bundle would leave it unable ever to get them).
    The rows the ops write and name are read once, in one query per entity
    (`apply.stored_rows`), and handed on with the ops to apply.
    Raises `Unauthorised` naming the first op that is not allowed and why.
    """
    refs, workers_named, wanted = [], set(), {}
    for op in ops:
        # One pass gathers what the checks look up: the rows the ops write and name, and the workers.
        found = _references(op)
        refs.append(found)
        for _, entity, entity_id in found:
            wanted.setdefault(entity, set()).add(entity_id)
        for _, _, worker in _references(op, _WORKER_REFERENCES):
            workers_named.add(worker)
        wanted.setdefault(op.entity, set()).add(op.entity_id)
    stored = apply.stored_rows(conn, wanted)
    made = {(op.entity, op.entity_id): (row[1], row[2]) for op in ops if op.kind in ("insert", "append")
            and (row := stored.get(op.entity, {}).get(op.entity_id)) is not None}
    grids = {entity: {i: row[0] for i, row in rows.items()} for entity, rows in stored.items()
             if entity in scope.SCOPED}
    workers = _known_workers(conn, workers_named)
    gone = _collected(conn, ops, refs, grids)
    held = quarantine.waiting(conn, sender.device_id) if ops else {}
    ok, drifted = Authorised(), []
    ok.stored = stored
    checks = validate and ruleset is not None
    for op, found in zip(ops, refs):
        _check_origin(op, sender)  # before any hold: nothing is kept in another device's name
        ahead = wall_of(op.top) - now_ms
        if ahead > max_drift_ms:
            _hold(drifted, held, op, f"stamped {moment(op.top)}, {span(ahead)} ahead of the master's clock "
                                     f"(the bound is {span(max_drift_ms)}): the device's clock is wrong")
            continue
        if gone and (op.entity, op.entity_id) in gone and op.kind in ("update", "delete"):
            # A tablet back from a long absence edited a row deleted meanwhile, whose
            # tombstone is collected: the deletion stands and the rest of the bundle applies.
            drifted.append((op, f"{op.entity} {op.entity_id} was deleted and its tombstone collected at the "
                                f"master: the edit is kept here, not applied"))
            continue
        lost = next(((entity, i) for _, entity, i in found if (entity, i) in gone), None) if gone else None
        if lost:
            _hold(drifted, held, op, f"it refers to {lost[0]} {lost[1]}, deleted and its tombstone collected at "
                                     f"the master: kept here, not applied")
            continue
        first = quarantine.blocked_by(op, held) if held else None
        if first:
            # Applying it would fail (no such row) and refuse every later bundle of the tablet.
            _hold(drifted, held, op, f"needs {first} waits in quarantine: release that first, then this")
            continue
        if workers_named:
            for column, _, worker in _references(op, _WORKER_REFERENCES):
                if worker not in workers:
                    raise _refuse(op, sender, f"its {column} names worker {worker}, whom the master does not have")
        try:
            _check_new_id(op, sender, made, grids)
            _check(conn, op, sender, ruleset, grids, (op.entity, op.entity_id) in made, found)
        except _LeftScope as left:
            _hold(drifted, held, op, str(left))
            continue
        if checks and op.entity in VALIDATED and op.kind != "delete":
            problems = field_problems(ruleset, op.entity, op.fields, new=op.kind != "update")
            if problems:
                raise _refuse(op, sender, "; ".join(problems))
        _note_grid(op, made, grids)
        ok.append(op)
    return ok, drifted


class Authorised(list):
    """The ops to apply, and the rows they touch as the check read them (`apply.stored_rows`), for
    `apply.apply_ops` to merge into without reading them again."""

    stored: apply.Stored


def _check_new_id(op: WireOp, sender: Sender, made: dict, grids: dict) -> None:
    """Refuse an insert under the id of a row the master has, or an earlier op of the bundle made,
    unless it is that row's own insert sent again (same stamp, same device: a re-send after a lost
    reply, which may fold newer edits). Any other would take over the row, wherever it lies: its
    later edits in the bundle would be judged by the grid the insert names, not the row's."""
    if op.kind not in ("insert", "append"):
        return
    stamp = made.get((op.entity, op.entity_id))
    if stamp is not None and stamp != op.stamp:
        grid = grids.get(op.entity, {}).get(op.entity_id)
        raise _refuse(op, sender, f"{op.entity} {op.entity_id} exists at the master, in grid {grid}, made by "
                                  f"another insert: a new row needs a fresh id (an edit of that row is an update)")


def _note_grid(op: WireOp, made: dict, grids: dict) -> None:
    """Keep ``grids`` right for the later ops of the bundle: a new row is where its insert puts it,
    a moved one where the move puts it (both checked to be the worker's)."""
    row = (op.entity, op.entity_id)
    if op.kind in ("insert", "append") and row not in made:
        grids.setdefault(op.entity, {})[op.entity_id] = _grid_of_new(op, grids)
        made[row] = op.stamp
    elif op.kind == "update" and type(op.fields.get("grid_id")) is str:
        grids[op.entity][op.entity_id] = op.fields["grid_id"]


def _hold(drifted: list, held: dict, op: WireOp, why: str) -> None:
    drifted.append((op, why))
    if op.kind in ("insert", "append"):
        held[(op.entity, op.entity_id)] = op.op_id  # what refers to this row waits with it


def _refuse(op: WireOp, sender: Sender, why: str) -> Unauthorised:
    return Unauthorised(f"bundle refused: op {op.op_id} ({op.kind} {op.entity} {op.entity_id}) "
                        f"from device {sender.device_id}: {why}")


#: Shapes of op, (entity, kind, field names in order), that `_check_origin_whole` passed once, and
#: the typed columns among their names: the rest of its checks hold for every op of the shape.
_SHAPES: dict[tuple, tuple[str, ...]] = {}


def _check_origin(op: WireOp, sender: Sender) -> None:
    """`_check_origin_whole`, judging once per shape of op what the shape decides (the entity, the
    kind, which names are set): a bundle of 10,000 household inserts is one shape."""
    fields = op.fields
    typed = _SHAPES.get((op.entity, op.kind, *fields))
    if typed is not None and op.device == sender.device_id and ("id" not in fields or fields["id"] == op.entity_id):
        for name, kind, nullable in typed:
            value = fields[name]
            if type(value) is not kind and (value is not None or not nullable):
                break
        else:
            return
    _check_origin_whole(op, sender)  # raises, naming what is wrong, unless all is right
    if len(_SHAPES) < 10_000:  # a bound: a hostile bundle of many shapes must not grow it forever
        _SHAPES[(op.entity, op.kind, *fields)] = _typed(op.entity, fields)


def _typed(entity: str, names) -> tuple[tuple[str, Optional[type], bool], ...]:
    """(name, the one type of value it takes, whether null) of each typed column among ``names``.
    A date-time column names no type: each of its values goes to `column_problems`."""
    table, typed, out = table_of(entity), typed_columns(entity), []
    for name in names:
        if name in typed:
            declared = table.c[name].type
            declared = declared.impl_instance if isinstance(declared, TypeDecorator) else declared
            out.append((name, next((kind for sql, kind in _VALUE_TYPES if isinstance(declared, sql)), None),
                        bool(table.c[name].nullable)))
    return tuple(out)


#: What a typed column's value is in Python: `column_problems` says the same, a value at a time.
_VALUE_TYPES = ((Boolean, bool), (DateTime, None), (Integer, int), (String, str))


def _check_origin_whole(op: WireOp, sender: Sender) -> None:
    if op.device != sender.device_id:
        raise _refuse(op, sender, f"recorded on device {op.device}; a device may only push its own ops")
    if op.entity not in scope.DEVICE_WRITABLE:
        raise _refuse(op, sender, f"{op.entity} is written at the office only")
    expected = ("append",) if op.entity in APPEND_ONLY else ("insert", "update", "delete")
    if op.kind not in expected:
        raise _refuse(op, sender, f"{op.entity} takes {'/'.join(expected)} ops only")
    if "id" in op.fields and (op.kind not in ("insert", "append") or op.fields["id"] != op.entity_id):
        raise _refuse(op, sender, f"it sets id {op.fields['id']!r:.80}: an insert's id repeats the op's entity id, "
                                  f"and a row's id never changes")
    if not REPLICATION_COLUMNS.isdisjoint(op.fields):
        taken = ", ".join(sorted(REPLICATION_COLUMNS & op.fields.keys()))
        raise _refuse(op, sender, f"it sets {taken}, which only the merge sets (from the op's own stamp)")
    columns = _closed_columns(op.entity)
    if columns is not None and not op.fields.keys() <= columns:
        unknown = ", ".join(sorted(op.fields.keys() - columns))
        raise _refuse(op, sender, f"{op.entity} has no field {unknown}: expected some of {', '.join(sorted(columns))}")
    problems = column_problems(op.entity, op.fields, new=op.kind in ("insert", "append"))
    if problems:
        raise _refuse(op, sender, "; ".join(problems))


def _closed_columns(entity: str) -> frozenset[str] | None:
    """The names an op of ``entity`` may set, or None if any name goes (a district field, kept in
    the row's ``fields``)."""
    columns = columns_of(entity)
    return None if "fields" in columns else columns


def _check(conn: Connection, op: WireOp, sender: Sender, ruleset: Optional[Ruleset], grids: dict,
           stored: bool, references: tuple) -> None:
    """Raise unless the row ``op`` writes and every row it names lie in the sender's grids. A row the
    master has (``stored``: an insert sent again is judged as an edit) is judged where it lies."""
    own = "grid_id" in columns_of(op.entity)
    if op.kind in ("insert", "append") and not stored:
        # A row's own grid is where it was recorded, which must be the worker's; the grid whose
        # scope it lies in (its owner's) is checked with its references below.
        grid = op.fields.get("grid_id") if own else _grid_of_new(op, grids)
    else:
        grid = grids.get(op.entity, {}).get(op.entity_id)
        if grid is None:
            raise _refuse(op, sender, "no such row at the master")
        target = op.fields.get("grid_id", grid)
        if target != grid and target not in sender.grids:
            _outside(conn, op, sender, None, target, f"moves the row to grid {target}, outside the worker's grids")
    if grid is None and not own:
        pass  # its owner is not at the master: the references below say so
    elif grid not in sender.grids:
        if op.kind in ("update", "delete") or stored:
            row = (op.entity, op.entity_id)
        else:  # a new row recorded in its own grid, or one lying in its owner's
            row = None if own else _owner(op)
        _outside(conn, op, sender, row, grid, f"grid {grid} is not among the worker's grids")
    for column, entity, entity_id in references:
        # A visit in the worker's grid to another grid's household would tie that
        # household to work its own tablets never see (and could not apply).
        held = grids.get(entity, {}).get(entity_id)
        if held is None:
            raise _refuse(op, sender, f"its {column} names {entity} {entity_id}, which the master does not have")
        if held not in sender.grids:
            _outside(conn, op, sender, (entity, entity_id), held,
                     f"its {column} names {entity} {entity_id} in grid {held}, outside the worker's grids")
    if op.entity == "case_event":
        _check_move(op, sender, ruleset)


def _outside(conn: Connection, op: WireOp, sender: Sender, row: Optional[tuple], grid: Optional[str], why: str):
    """Raise `_LeftScope` if the worker had ``grid`` at the tablet's last sync, or ``row`` was once in a grid
    the tablet held (the office moved it away); else `Unauthorised`: a tablet that never held the grid
    has no business there."""
    held = sender.previous | sender.grids
    if grid in sender.previous or (row is not None and not held.isdisjoint(scope.grids_ever(conn, *row))):
        raise _LeftScope(f"{why}: it left them since the tablet last synced; kept here, not applied")
    raise _refuse(op, sender, why)


def _grid_of_new(op: WireOp, grids: dict) -> Optional[str]:
    """The grid whose scope a new row lies in: an append-only row's owner's (None if the master
    lacks it), else its own."""
    owner = _owner(op)
    if owner is not None:
        return grids.get(owner[0], {}).get(owner[1])
    return op.fields.get("grid_id")


def _owner(op: WireOp) -> Optional[tuple[str, str]]:
    """(entity, id) of the row a new append-only row belongs to, if it names one."""
    for column, entity in placement.BELONGS.get(op.entity, ()):
        value = op.fields.get(column)
        if type(value) is str:
            return entity, value
    return None


def _check_move(op: WireOp, sender: Sender, ruleset: Optional[Ruleset]) -> None:
    role = op.fields.get("role") or sender.role
    if role != sender.role:
        raise _refuse(op, sender, f"claims role {role!r} but the device's worker is {sender.role!r}")
    if ruleset is None or ruleset.lifecycle is None:
        return
    rule = next((t for t in ruleset.lifecycle.transitions if t.code == op.fields.get("move")), None)
    if rule is None:
        codes = ", ".join(t.code for t in ruleset.lifecycle.transitions)
        raise _refuse(op, sender, f"unknown move {op.fields.get('move')!r}: expected one of {codes}")
    if sender.role not in rule.roles:
        raise _refuse(op, sender, f"move {rule.code} is for {', '.join(rule.roles)}, not {sender.role}")


def _collected(conn: Connection, ops: list[WireOp], refs: list[tuple], grids: dict) -> set[tuple[str, str]]:
    """(entity, id) of rows edited or referred to that the master lacks because their tombstones were collected."""
    unknown: dict[str, list[str]] = {}
    for op, found in zip(ops, refs):
        if op.kind in ("update", "delete") and op.entity_id not in grids.get(op.entity, {}):
            unknown.setdefault(op.entity, []).append(op.entity_id)
        for _, entity, entity_id in found:
            if entity_id not in grids.get(entity, {}):
                unknown.setdefault(entity, []).append(entity_id)
    if not unknown:
        return set()
    return {(entity, i) for entity, ids in unknown.items() for i in collected_ids(conn, entity, ids)}


def _references(op: WireOp, among: Optional[dict] = None) -> tuple[tuple[str, str, str], ...]:
    """(column, entity, id) of each scoped row the op's fields refer to (a visit's household, an event's
    case), or of each row of ``among`` (per entity, its columns that name one and the entity named)."""
    found: tuple = ()
    fields = op.fields
    for column, entity in (among or _SCOPED_REFERENCES)[op.entity]:  # a new household names no building
        value = fields.get(column)
        if type(value) is str:
            found += ((column, entity, value),)
    return found


_SCOPED_REFERENCES = {entity: tuple((column, target) for column, target in refs if target in scope.SCOPED)
                      for entity, refs in scope.REFERENCES.items()}
#: A row may name workers too (a visit's, a case's reporter): they are everyone's, but must exist.
_WORKER_REFERENCES = {entity: tuple((column, target) for column, target in refs if target == "worker")
                      for entity, refs in scope.REFERENCES.items()}


def _known_workers(conn: Connection, named: set[str]) -> set[str]:
    """Those of the workers ``named`` that the master has."""
    if not named:
        return set()
    workers, named = table_of("worker"), sorted(named)
    return {found for start in range(0, len(named), scope.CHUNK) for found in conn.execute(
        select(workers.c.id).where(workers.c.id.in_(named[start : start + scope.CHUNK]))).scalars()}
