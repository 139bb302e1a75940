"""Ops in columns: how a version 2 bundle body carries them.

A version 1 body sends each op as its own array, so a bundle of 10,000
household inserts repeats the entity, the kind, the device and every field
name 10,000 times, and the receiver checks each op's types one by one. A
version 2 body groups the ops by (entity, kind, field names) and sends each
group as columns::

    {"entity": "household", "kind": "insert", "names": ["grid_id", "address"],
     "at": [0, 1], "op_id": [...], "entity_id": [...], "hlc": [...],
     "actor": "w1", "device": "tab", "seq": [...],
     "values": [["g1", "g1"], ["1 号", "2 号"]],
     "seen": [null, {...}], "stamps": [null, {...}]}

``at`` gives each op's place in the bundle (the order the receiver takes
them in, as a version 1 body lists them); ``actor`` and ``device`` are one
string when every op of the group shares it, else a column; ``values``
holds one column per name; ``seen`` and ``stamps`` are left out when no op
of the group has them. `decode` checks each column at once (types, ranges,
NUL characters) and gives the same `OpError` words as `wangge.sync.log.ops`
for what a version 1 op would be refused for. Pure: no I/O.
"""
from __future__ import annotations

import math
from itertools import chain
from typing import Any, Iterable, Sequence

from wangge.sync.log.ops import KINDS, MAX_INT, MIN_INT, OpError, WireOp, _TYPED, _check_seen, _check_stamps

REQUIRED = ("entity", "kind", "names", "at", "op_id", "entity_id", "hlc", "actor", "device", "seq", "values")
OPTIONAL = ("seen", "stamps")
_KEYS = frozenset(REQUIRED + OPTIONAL)
_KINDS = frozenset(KINDS)
#: What a field value may be at its top: JSON's scalars; lists and maps are looked into.
_SCALARS = frozenset((str, int, float, bool, type(None)))


class Groups(list):
    """A version 2 body's list of op groups as received, not yet checked (`decode` checks it)."""


def encode(ops: Iterable[Sequence]) -> list[dict]:
    """Group wire ops (`WireOp` or its list form) into columns, keeping their order in ``at``.

    Raises `OpError` for an op that is not a list of 10 or 11 items with text for its entity
    and kind and a map of fields: a
    malformed op cannot be put in columns (a version 1 body can carry it, to test a receiver).
    """
    groups: dict[tuple, dict] = {}
    for at, op in enumerate(ops):
        if (not isinstance(op, (list, tuple)) or not 10 <= len(op) <= 11 or not isinstance(op[7], dict)
                or type(op[1]) is not str or type(op[6]) is not str):
            raise OpError(f"op {at}: an op to put in columns must be a list of 10 or 11 items with text for its "
                          f"entity and kind and a map of fields, got {str(op)[:60]}")
        fields = op[7]
        key = (op[1], op[6], tuple(fields))
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"entity": op[1], "kind": op[6], "names": list(key[2]), "at": [], "op_id": [],
                                   "entity_id": [], "hlc": [], "actor": [], "device": [], "seq": [],
                                   "values": [[] for _ in key[2]], "seen": [], "stamps": []}
        group["at"].append(at)
        group["op_id"].append(op[0])
        group["entity_id"].append(op[2])
        group["hlc"].append(op[3])
        group["actor"].append(op[4])
        group["device"].append(op[5])
        group["seq"].append(op[9])
        for column, value in zip(group["values"], fields.values()):
            column.append(value)
        group["seen"].append(op[8])
        group["stamps"].append(op[10] if len(op) == 11 else None)
    out = []
    for group in groups.values():
        for name in ("actor", "device"):
            column = group[name]
            if type(column[0]) is str and column.count(column[0]) == len(column):
                group[name] = column[0]  # one tablet, one worker: said once
        for name in OPTIONAL:
            if not any(group[name]):
                del group[name]
        out.append(group)
    return out


def decode(groups: Any, where: str) -> list[WireOp]:
    """The ops of a version 2 body's ``groups``, in the order their ``at`` gives.

    Raises `OpError` naming ``where``, the group or the op, what was expected and what came.
    """
    if type(groups) is not Groups and type(groups) is not list:
        raise OpError(f"{where}: body field 'ops' must be a list of op groups, got {type(groups).__name__}")
    placed: list[tuple[list[int], list[WireOp]]] = []
    total = 0
    for number, group in enumerate(groups):
        at, ops = _group(group, f"{where} op group {number}")
        placed.append((at, ops))
        total += len(ops)
    out: list = [None] * total
    for at, ops in placed:
        for index, op in zip(at, ops):
            if type(index) is not int or not 0 <= index < total or out[index] is not None:
                raise OpError(f"{where}: op {op.op_id} has position {index!r:.30} (column 'at'): each op needs its "
                              f"own position in 0..{total - 1}")
            out[index] = op
    return out


def _group(group: Any, where: str) -> tuple[list, list[WireOp]]:
    if type(group) is not dict:
        raise OpError(f"{where}: expected a map of columns, got {str(group)[:60]}")
    keys = group.keys()
    if not keys >= set(REQUIRED) or not keys <= _KEYS:
        raise OpError(f"{where}: expected the columns {', '.join(REQUIRED)} (and maybe {', '.join(OPTIONAL)}), "
                      f"got {', '.join(sorted(map(str, keys)))[:200]}")
    entity, kind, names = group["entity"], group["kind"], group["names"]
    typed = _TYPED.get(entity) if type(entity) is str else None
    if typed is None:
        raise OpError(f"{where}: names unknown entity {entity!r:.60}")
    if type(kind) is not str or kind not in _KINDS:
        raise OpError(f"{where}: has unknown kind {kind!r:.60}: expected one of {', '.join(KINDS)}")
    if type(names) is not list or not _all(names, str) or len(set(names)) != len(names):
        raise OpError(f"{where}: column 'names' must list distinct field names, got {str(names)[:60]}")
    where = f"{where} ({kind} {entity})"
    at = _column(group, "at", None, where)
    count = len(at)
    op_ids = _texts(group, "op_id", count, where, empty=False)
    entity_ids = _texts(group, "entity_id", count, where, empty=False)
    hlcs = _integers(group, "hlc", count, 1, where)
    seqs = _integers(group, "seq", count, 0, where)
    actors = _shared_texts(group, "actor", count, where)
    devices = _shared_texts(group, "device", count, where)
    values = group["values"]
    if type(values) is not list or len(values) != len(names):
        raise OpError(f"{where}: column 'values' must hold one column per name ({len(names)}), got "
                      f"{str(values)[:60]}")
    for name, column in zip(names, values):
        _values(column, name, name in typed, count, entity, where)
    rows = [dict(zip(names, row)) for row in zip(*values)] if names else [{} for _ in range(count)]
    seen = _optional(group, "seen", count, where)
    stamps = _optional(group, "stamps", count, where)
    if seen is not None:
        for op_id, hlc, given in zip(op_ids, hlcs, seen):
            if given is not None:
                _check_seen(given, op_id, hlc, where)
    if stamps is not None:
        _stamps(stamps, op_ids, hlcs, rows, kind, set(names), where)
    else:
        stamps = (None,) * count
    if seen is None:
        seen = (None,) * count
    ops = [WireOp(op_id, entity, entity_id, hlc, actor, device, kind, fields, given, seq, own or None)
           for op_id, entity_id, hlc, actor, device, fields, given, seq, own
           in zip(op_ids, entity_ids, hlcs, actors, devices, rows, seen, seqs, stamps)]
    return at, ops


def _all(column: list, kind: type) -> bool:
    return not column or set(map(type, column)) == {kind}


def _column(group: dict, name: str, count, where: str) -> list:
    column = group[name]
    if type(column) is not list or (count is not None and len(column) != count):
        want = "a list" if count is None else f"a list of {count} items, one per op"
        raise OpError(f"{where}: column {name!r} must be {want}, got {str(column)[:60]}")
    return column


def _first_wrong(column: list, good) -> tuple[int, Any]:
    return next((n, value) for n, value in enumerate(column) if not good(value))


def _texts(group: dict, name: str, count: int, where: str, empty: bool = True) -> list[str]:
    column = _column(group, name, count, where)
    if not _all(column, str) or (not empty and not all(column)) or "\x00" in "".join(column):
        n, value = _first_wrong(column, lambda v: type(v) is str and (empty or v) and "\x00" not in v)
        raise OpError(f"{where} op {n}: column {name!r} must hold {'' if empty else 'non-empty '}text without "
                      f"NUL, got {value!r:.60}")
    return column


def _shared_texts(group: dict, name: str, count: int, where: str):
    value = group[name]
    if type(value) is str:
        if "\x00" in value:
            raise OpError(f"{where}: {name} must be text without NUL, got {value!r:.60}")
        return (value,) * count
    return _texts(group, name, count, where)


def _integers(group: dict, name: str, count: int, low: int, where: str) -> list[int]:
    column = _column(group, name, count, where)
    if column and (not _all(column, int) or min(column) < low or max(column) > MAX_INT):
        n, value = _first_wrong(column, lambda v: type(v) is int and low <= v <= MAX_INT)
        raise OpError(f"{where} op {n}: column {name!r} must hold integers in {low}..{MAX_INT}, got {value!r:.60}")
    return column


def _values(column: Any, name: str, typed: bool, count: int, entity: str, where: str) -> None:
    if type(column) is not list or len(column) != count:
        raise OpError(f"{where}: the values of field {name!r} must be a list of {count} items, one per op, "
                      f"got {str(column)[:60]}")
    kinds = set(map(type, column))
    if kinds <= {str} and not typed:
        return  # the bulk of a bundle: district text, checked by the rules later
    if not kinds <= _SCALARS:
        for n, value in enumerate(column):
            bad = not_json(value)
            if bad is not None:
                raise OpError(f"{where} op {n}: field {entity}.{name} holds {bad}, which JSON has not: expected "
                              f"text, numbers, true/false, null, lists and maps with text keys")
    if float in kinds and not all(math.isfinite(v) for v in column if type(v) is float):
        n, value = _first_wrong(column, lambda v: type(v) is not float or math.isfinite(v))
        raise OpError(f"{where} op {n}: field {entity}.{name} must be a finite number, got {value}")
    if typed:
        if int in kinds and not all(MIN_INT <= v <= MAX_INT for v in column if type(v) is int):
            n, value = _first_wrong(column, lambda v: type(v) is not int or MIN_INT <= v <= MAX_INT)
            raise OpError(f"{where} op {n}: field {entity}.{name} must fit a signed 64-bit column, "
                          f"{MIN_INT}..{MAX_INT}, got {value}")
        if str in kinds and any("\x00" in v for v in column if type(v) is str):
            n, value = _first_wrong(column, lambda v: type(v) is not str or "\x00" not in v)
            raise OpError(f"{where} op {n}: field {entity}.{name} holds a NUL character, which no text column "
                          f"keeps, got {value!r:.60}")


def not_json(value: Any):
    """What in ``value`` no JSON document holds (bytes, a map key that is not text, a number
    that is not finite), described; None if nothing."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is list:
            stack.extend(item)
        elif kind is dict:
            if not _all(list(item), str):
                return f"a map key {next(k for k in item if type(k) is not str)!r:.40}"
            stack.extend(item.values())
        elif kind is float:
            if not math.isfinite(item):
                return f"the number {item}"
        elif kind not in _SCALARS:
            return f"{kind.__name__} {item!r:.40}"
    return None


def _optional(group: dict, name: str, count: int, where: str):
    if name not in group:
        return None
    column = _column(group, name, count, where)
    if not set(map(type, column)) <= {dict, type(None)}:
        n, value = _first_wrong(column, lambda v: v is None or type(v) is dict)
        raise OpError(f"{where} op {n}: column {name!r} must hold maps or nulls, got {value!r:.60}")
    if name == "seen":
        # Field stamps are checked whole by `_stamps` (text names among the group's, integer stamps);
        # a seen stamp's pair by `_check_seen`, but not its name.
        for n, given in enumerate(column):
            bad = not_json(given) if given else None
            if bad is not None:
                raise OpError(f"{where} op {n}: column {name!r} holds {bad}, which JSON has not")
    return column


def _stamps(stamps: list, op_ids: list, hlcs: list, rows: list, kind: str, names: set, where: str) -> None:
    """Each op's own field stamps, checked as `wangge.sync.log.ops` does, the whole column's types at once."""
    given = [s for s in stamps if s]
    folded = kind in ("update", "insert")
    if given and folded and _all(list(chain.from_iterable(s.values() for s in given)), int) \
            and all(s.keys() <= names for s in given):
        update = kind == "update"
        if all((0 < min(s.values()) and max(s.values()) <= hlc) if update else
               (hlc < min(s.values()) and max(s.values()) <= MAX_INT)
               for s, hlc in zip(stamps, hlcs) if s):
            return
    for own, op_id, hlc, fields in zip(stamps, op_ids, hlcs, rows):
        if own is not None:
            _check_stamps(own, op_id, kind, fields, hlc, where)
