"""Ops as they travel: validated records and their wire form.

On the wire an op is a JSON array, in this order::

    [op_id, entity, entity_id, hlc, actor, device, kind, fields, seen, seq]

``seen`` is ``null`` or, for an update of critical fields, the
``{field: [hlc, device]}`` stamps of the values the worker saw; ``seq`` is
the op's position in the sender's log (a device's own log for a push, the
master's log for a reply). `from_wire` never trusts its input.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

from wangge.core.models import ENTITIES

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

    @property
    def stamp(self) -> tuple[int, str]:
        return (self.hlc, self.device)

    def to_wire(self) -> list:
        return list(self)


_SIZE = len(WireOp._fields)
_KINDS = frozenset(KINDS)


def from_wire(item: Any, where: str) -> WireOp:
    """Validate one wire op. Raises `OpError` naming ``where`` and the problem."""
    # Bundles carry 100k ops: check types directly (exact types, so no bool passes as an int).
    if type(item) is not list or len(item) != _SIZE:
        raise OpError(f"{where}: an op must be a list of {_SIZE} items, got {str(item)[:60]}")
    op_id, entity, entity_id, hlc, actor, device, kind, fields, seen, seq = item
    if not (type(op_id) is str and type(entity) is str and type(entity_id) is str and type(hlc) is int
            and type(actor) is str and type(device) is str and type(kind) is str and type(fields) is dict
            and (seen is None or type(seen) is dict) and type(seq) is int):
        return _wrong_type(item, where)
    if entity not in ENTITIES:
        raise OpError(f"{where}: op {op_id} names unknown entity {entity!r}")
    if kind not in _KINDS:
        raise OpError(f"{where}: op {op_id} has unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    if not op_id or not entity_id or hlc <= 0:
        raise OpError(f"{where}: op needs an op id, an entity id and a positive stamp")
    return WireOp(op_id, entity, entity_id, hlc, actor, device, kind, fields, seen, seq)


_TYPES = (str, str, str, int, str, str, str, dict, (dict, type(None)), int)


def _wrong_type(item: list, where: str):
    for index, (value, kind) in enumerate(zip(item, _TYPES)):
        if not isinstance(value, kind) or isinstance(value, bool):
            raise OpError(f"{where}: op item {index} has the wrong type: got {value!r:.40}")
    raise OpError(f"{where}: an op's items have the wrong types: got {str(item)[:60]}")
