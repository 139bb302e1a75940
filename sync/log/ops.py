"""Ops as they travel: validated records and their wire form.

On the wire an op is a JSON array, in this order::

    [op_id, entity, entity_id, hlc, actor, device, kind, fields, seen, seq]
    [op_id, entity, entity_id, hlc, actor, device, kind, fields, seen, seq, stamps]

``seen`` is ``null`` or, for an update of critical fields, the
``{field: [hlc, device]}`` stamps of the values the worker saw; ``seq`` is
the op's position in the sender's log (a device's own log for a push, the
master's log for a reply). An update that folds several edits of one row
(`coalesce`) has an eleventh item, ``{field: hlc}``, for the fields whose
stamp is older than the op's ``hlc``; an insert that folds the row's later
edits has it for the fields those edits set, each newer than the insert's
``hlc``. `from_wire` never trusts its input: every integer must also fit
the signed 64-bit columns the receiver stores it in (`MAX_INT`).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, NoReturn, Optional

from sqlalchemy import JSON

from wangge.core.capture import REPLICATION_COLUMNS
from wangge.core.models import ENTITIES
# JSON integers have no bound: every one a peer sends is checked against what a signed 64-bit
# column holds before it reaches SQL (re-exported for the sync package).
from wangge.core.validators import MAX_INT, MIN_INT

KINDS = ("insert", "append", "update", "delete")


class OpError(ValueError):
    """A wire op is malformed; the message names the op and the problem."""


class WireOp(NamedTuple):
    op_id: str
    entity: str
    entity_id: str
    hlc: int
    actor: str
    device: str
    kind: str
    fields: dict[str, Any]
    seen: Optional[dict[str, Any]] = None
    seq: int = 0
    stamps: Optional[dict[str, int]] = None  # folded edits: fields whose stamp is not ``hlc``

    @property
    def stamp(self) -> tuple[int, str]:
        return (self.hlc, self.device)

    def field_hlc(self, name: str) -> int:
        """The stamp of one field's value: its own if the op folds several edits, else the op's."""
        stamps = self.stamps
        return stamps.get(name, self.hlc) if stamps else self.hlc

    @property
    def top(self) -> int:
        """The newest stamp the op carries: a folded insert's later edits are newer than the insert
        (an update's own field stamps are never newer than it, `from_wire` checks)."""
        return max(self.hlc, *self.stamps.values()) if self.stamps and self.kind == "insert" else self.hlc

    def to_wire(self) -> list:
        return list(self) if self.stamps else list(self)[:10]


_KINDS = frozenset(KINDS)
#: Per entity, the fields an op may set that are bound to an SQL column as they come: an integer
#: there must fit it. District fields are kept in a JSON column, where any integer fits.
_TYPED = {entity: tuple(c.name for c in model.__table__.columns
                        if not isinstance(c.type, JSON) and c.name not in REPLICATION_COLUMNS)
          for entity, model in ENTITIES.items()}


def typed_columns(entity: str) -> tuple[str, ...]:
    """The fields of ``entity`` bound to an SQL column of their own (not the JSON ``fields``), but
    the replication ones: those whose values `wangge.core.validators.column_problems` checks."""
    return _TYPED[entity]


def from_wire(item: Any, where: str) -> WireOp:
    """Validate one wire op. Raises `OpError` naming ``where`` and the problem."""
    # Bundles carry 100k ops: check types directly (exact types, so no bool passes as an int).
    if type(item) is not list or not 10 <= len(item) <= 11:
        raise OpError(f"{where}: an op must be a list of 10 or 11 items, got {str(item)[:60]}")
    op_id, entity, entity_id, hlc, actor, device, kind, fields, seen, seq = item[:10]
    if not (type(op_id) is str and type(entity) is str and type(entity_id) is str and type(hlc) is int
            and type(actor) is str and type(device) is str and type(kind) is str and type(fields) is dict
            and (seen is None or type(seen) is dict) and type(seq) is int):
        return _wrong_type(item, where)
    typed = _TYPED.get(entity)
    if typed is None:
        raise OpError(f"{where}: op {op_id} names unknown entity {entity!r}")
    if kind not in _KINDS:
        raise OpError(f"{where}: op {op_id} has unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    if not op_id or not entity_id or not 0 < hlc <= MAX_INT or not 0 <= seq <= MAX_INT:
        _wrong_value(op_id, entity_id, hlc, seq, where)
    if "\x00" in op_id + entity_id + actor + device:
        raise OpError(f"{where}: op {op_id!r:.60}: its ids hold a NUL character, which no text column keeps")
    for name in typed:
        value = fields.get(name)
        if type(value) is int and not MIN_INT <= value <= MAX_INT:
            raise OpError(f"{where}: op {op_id}: field {entity}.{name} must fit a signed 64-bit column, "
                          f"{MIN_INT}..{MAX_INT}, got {value}")
        if type(value) is str and "\x00" in value:
            # PostgreSQL keeps no NUL in text, and the master looks ids up before anything else.
            raise OpError(f"{where}: op {op_id}: field {entity}.{name} holds a NUL character, which no text "
                          f"column keeps, got {value!r:.60}")
    if seen is not None:
        _check_seen(seen, op_id, hlc, where)
    stamps = item[10] if len(item) == 11 else None
    if stamps is not None:
        _check_stamps(stamps, op_id, kind, fields, hlc, where)
    return WireOp(op_id, entity, entity_id, hlc, actor, device, kind, fields, seen, seq, stamps or None)


def _wrong_value(op_id: str, entity_id: str, hlc: int, seq: int, where: str) -> NoReturn:
    if not op_id or not entity_id:
        raise OpError(f"{where}: op needs an op id and an entity id, got {op_id!r:.40} and {entity_id!r:.40}")
    if not 0 < hlc <= MAX_INT:
        raise OpError(f"{where}: op {op_id}: hlc (item 3) must be an integer in 1..{MAX_INT}, got {hlc}")
    raise OpError(f"{where}: op {op_id}: seq (item 9) must be an integer in 0..{MAX_INT}, got {seq}")


def _check_seen(seen: dict, op_id: str, hlc: int, where: str) -> None:
    # Only updates of critical fields carry it, so checking it costs the bulk of a bundle nothing.
    for name, pair in seen.items():
        if not (type(pair) is list and len(pair) == 2 and type(pair[0]) is int and 0 < pair[0] <= MAX_INT
                and type(pair[1]) is str):
            raise OpError(f"{where}: op {op_id}: seen stamp {name!r} (item 8) must be [stamp in 1..{MAX_INT}, "
                          f"device id], got {pair!r:.60}")
        if pair[0] > hlc:
            # A worker sees a value before changing it: a later one would pass any value held as seen.
            raise OpError(f"{where}: op {op_id}: seen stamp {name!r} (item 8) is {pair[0]}, newer than the op's "
                          f"own stamp {hlc}: the value seen must be older than the edit")


def _check_stamps(stamps: Any, op_id: str, kind: str, fields: dict, hlc: int, where: str) -> None:
    if type(stamps) is not dict or kind not in ("update", "insert"):
        raise OpError(f"{where}: op {op_id}: item 10 (field stamps) must be an object, on an update or insert only")
    # A folded op carries a stamp per field: check them all at once, and one by one only to say which is wrong.
    values = stamps.values()
    if not stamps or (stamps.keys() <= fields.keys() and int in (kinds := set(map(type, values))) and len(kinds) == 1
                      and (0 < min(values) and max(values) <= hlc if kind == "update"
                           else hlc < min(values) and max(values) <= MAX_INT)):
        return
    for name, stamp in stamps.items():
        if kind == "update" and (name not in fields or type(stamp) is not int or not 0 < stamp <= hlc):
            raise OpError(f"{where}: op {op_id}: field stamp {name!r} must name one of its fields and be a "
                          f"stamp in 1..{hlc}, got {stamp!r}")
        if kind == "insert" and (name not in fields or type(stamp) is not int or not hlc < stamp <= MAX_INT):
            raise OpError(f"{where}: op {op_id}: field stamp {name!r} of a folded insert must name one of its "
                          f"fields and be a later stamp than the insert's {hlc}, at most {MAX_INT}, got {stamp!r}")


def coalesce(ops: list[WireOp], keep_apart: Callable[[WireOp], bool] = lambda op: False,
             may_join: Callable[[WireOp, WireOp], bool] = lambda insert, update: True) -> list[WireOp]:
    """Fold each row's updates into one op, each field keeping its own stamp.

    A tablet that edited a household form ten times on a patrol sends one op
    instead of ten; per-field last-writer-wins gives the same result, because
    every field still carries the stamp of the edit that last set it. Deletes,
    appends, ops with ``seen`` stamps and those ``keep_apart`` names (edits of
    critical fields, which are reviewed edit by edit) stay as they are.

    The folded op takes the last update's id and position, so sending the same
    ops again folds them the same way, and a re-send that folds in a newer edit
    is a new op. If the row's insert is among ``ops`` too (a household made and
    then edited offline), the updates fold into it: it keeps its place (what
    refers to the row comes after it) and its stamp, and each later field
    carries its own, newer one; a receiver that has the row already merges it.
    Otherwise, or if one of them may not join the insert (``may_join``, or a
    stamp not above the insert's: a clock set back in between), they fold
    into the last update, in its place; unless one is stamped above the
    last (the clock set back between them), when none of them folds.
    """
    def foldable(op: WireOp) -> bool:
        return op.kind == "update" and op.seen is None and not keep_apart(op)

    last: dict[tuple[str, str], int] = {}
    inserts: dict[tuple[str, str], int] = {}
    for index, op in enumerate(ops):
        key = (op.entity, op.entity_id)
        if foldable(op):
            last[key] = index
        elif op.kind == "insert" and op.seen is None and not op.stamps:
            inserts.setdefault(key, index)
    # A row whose earlier edit is stamped above its last (the clock was set back in between) is
    # sent edit by edit: folded, a field would carry a stamp above its op's, which no receiver takes.
    newest: dict[tuple[str, str], int] = {}
    for op in ops:
        if foldable(op):
            key = (op.entity, op.entity_id)
            newest[key] = max(newest.get(key, 0), op.hlc)
    last = {key: end for key, end in last.items() if newest[key] <= ops[end].hlc}
    joining: dict[tuple[str, str], bool] = {}
    for index, op in enumerate(ops):
        key = (op.entity, op.entity_id)
        start = inserts.get(key)
        if start is not None and start < index and foldable(op) and joining.get(key, True):
            joining[key] = (may_join(ops[start], op)
                            and min(map(op.field_hlc, op.fields), default=op.hlc) > ops[start].hlc)
    into = {key: inserts[key] for key, end in last.items() if inserts.get(key, end) < end and joining.get(key)}
    if not into and len(last) == sum(1 for op in ops if op.kind == "update"):
        return ops  # nothing to fold
    folded: dict[tuple[str, str], tuple[dict, dict]] = {}
    for index, op in enumerate(ops):
        key = (op.entity, op.entity_id)
        if index == into.get(key) or (foldable(op) and key in last):
            fields, stamps = folded.setdefault(key, ({}, {}))
            for name, value in op.fields.items():
                fields[name] = value
                stamps[name] = op.field_hlc(name)
    out = []
    for index, op in enumerate(ops):
        key = (op.entity, op.entity_id)
        end = last.get(key)
        if key in into:
            if index == into[key]:
                final, (fields, stamps) = ops[end], folded[key]
                own = {name: stamp for name, stamp in stamps.items() if stamp != op.hlc}
                out.append(op._replace(op_id=final.op_id, seq=final.seq, fields=fields, stamps=own or None))
            elif not foldable(op):
                out.append(op)
            continue
        if end is None or not foldable(op):
            out.append(op)
        elif index == end:
            fields, stamps = folded[key]
            own = {name: stamp for name, stamp in stamps.items() if stamp != op.hlc}
            out.append(op._replace(fields=fields, stamps=own or None))
    return out


_TYPES = (str, str, str, int, str, str, str, dict, (dict, type(None)), int)


def _wrong_type(item: list, where: str):
    for index, (value, kind) in enumerate(zip(item, _TYPES)):
        if not isinstance(value, kind) or isinstance(value, bool):
            raise OpError(f"{where}: op item {index} has the wrong type: got {value!r:.40}")
    raise OpError(f"{where}: an op's items have the wrong types: got {str(item)[:60]}")
