"""Ops as they travel: validated records and their wire form.

On the wire an op is a JSON array, in this order::

    [op_id, entity, entity_id, hlc, actor, device, kind, fields, seen, seq]

``seen`` is ``null`` or, for an update of critical fields, the
``{field: [hlc, device]}`` stamps of the values the worker saw; ``seq`` is
the op's position in the sender's log (a device's own log for a push, the
master's log for a reply). `from_wire` never trusts its input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from wangge.core.models import ENTITIES

KINDS = ("insert", "append", "update", "delete")


class OpError(ValueError):
    """A wire op is malformed; the message names the op and the problem."""


@dataclass(frozen=True)
class WireOp:
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
        return [self.op_id, self.entity, self.entity_id, self.hlc, self.actor, self.device, self.kind,
                self.fields, self.seen, self.seq]


_TYPES = (str, str, str, int, str, str, str, dict, (dict, type(None)), int)


def from_wire(item: Any, where: str) -> WireOp:
    """Validate one wire op. Raises `OpError` naming ``where`` and the problem."""
    if not isinstance(item, list) or len(item) != len(_TYPES):
        raise OpError(f"{where}: an op must be a list of {len(_TYPES)} items, got {str(item)[:60]}")
    for index, (value, kind) in enumerate(zip(item, _TYPES)):
        if not isinstance(value, kind) or isinstance(value, bool):
            raise OpError(f"{where}: op item {index} has the wrong type: got {value!r:.40}")
    op = WireOp(*item)
    if op.entity not in ENTITIES:
        raise OpError(f"{where}: op {op.op_id} names unknown entity {op.entity!r}")
    if op.kind not in KINDS:
        raise OpError(f"{where}: op {op.op_id} has unknown kind {op.kind!r}: expected one of {', '.join(KINDS)}")
    if not op.op_id or not op.entity_id or op.hlc <= 0:
        raise OpError(f"{where}: op needs an op id, an entity id and a positive stamp")
    return op
