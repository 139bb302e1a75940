"""Ops the master sets aside instead of applying, until the office answers them.

An op is held here when its stamp runs beyond the clock drift bound (a
tablet whose clock says 2036), when it edits a row whose tombstone was
collected, or when it depends on an op held here (an edit of a row whose
insert is held, a visit to such a household): applying that one would fail
or leave the bundle refused for good. The whole op is kept in
``sync_quarantine`` and listed for review in ``sync_conflict`` (kind
``quarantine``), where `wangge resolve` releases (the op then leaves
``sync_quarantine``: the office made it) or discards it (it stays).
"""
from __future__ import annotations

from typing import Iterable, Optional

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from wangge.core.errors import SyncError
from wangge.sync.log import scope, tables
from wangge.sync.log.ops import WireOp, from_wire

_q, _c = tables.quarantine, tables.conflict


#: Ops kept per device at most: a tablet (honest or not) cannot fill the master's disk this way.
HOLD_MAX = 10_000


class QuarantineFull(SyncError):
    """A device already has as many ops waiting as are kept; the office must answer them first."""


def hold(conn: Connection, held: list[tuple[WireOp, str]], now_ms: int) -> None:
    """Keep each op with its reason and list it for review; an op held before stays as it was.

    Raises `QuarantineFull` (the caller's transaction then rolls back) past `HOLD_MAX` ops of a device.
    """
    if held:
        device = held[0][0].device
        waiting = conn.execute(select(func.count()).select_from(_q).where(_q.c.device == device)).scalar()
        if waiting + len(held) > HOLD_MAX:
            raise QuarantineFull(f"bundle refused: {waiting} ops from device {device} wait in quarantine already "
                                 f"(at most {HOLD_MAX:,} are kept): the office answers them first (wangge conflicts)")
    for op, reason in held:
        if conn.execute(select(_q.c.op_id).where(_q.c.op_id == op.op_id)).first():
            continue
        conn.execute(_q.insert().values(op_id=op.op_id, device=op.device, op=op.to_wire(), reason=reason, at=now_ms))
        conn.execute(_c.insert().values(kind="quarantine", entity=op.entity, entity_id=op.entity_id, field="",
                                        op_id=op.op_id, device=op.device, kept=None, lost=op.fields, hlc=op.hlc,
                                        note=reason, resolved=False))


def waiting(conn: Connection, device_id: str) -> dict[tuple[str, str], str]:
    """Rows a device made whose insert (or append) is held, waiting or discarded: (entity, id) -> op id.

    A discarded insert still counts: its row will never exist here, so what
    needs it stays held (and is discarded in turn) instead of refusing the
    tablet's bundles for good. A released op is no longer held (`released`).
    """
    found = conn.execute(select(_q.c.op).where(_q.c.device == device_id)).scalars()
    return {(op[1], op[2]): op[0] for op in found if op[6] in ("insert", "append")}


def known(conn: Connection, op_ids: Iterable[str]) -> set[str]:
    """Those of ``op_ids`` held here, answered or not: a re-sent bundle's held ops are no strangers.

    Every held op has its row for review, which stays when the op is released.
    """
    ids, found = sorted(set(op_ids)), set()
    for start in range(0, len(ids), scope.CHUNK):
        found.update(conn.execute(select(_c.c.op_id).where(
            _c.c.kind == "quarantine", _c.c.op_id.in_(ids[start : start + scope.CHUNK]))).scalars())
    return found


def released(conn: Connection, op_id: str) -> None:
    """Forget the held op once the office has made it: its row for review keeps what it was."""
    conn.execute(_q.delete().where(_q.c.op_id == op_id))


def blocked_by(op: WireOp, held: dict[tuple[str, str], str]) -> Optional[str]:
    """What ``op`` needs applied first, said for the office (the held insert of its row, or of
    a row it refers to), if anything."""
    needs = [(op.entity, op.entity_id)] if op.kind in ("update", "delete") else []
    needs += [(entity, value) for column, entity in scope.REFERENCES[op.entity]
              if type(value := op.fields.get(column)) is str]
    for entity, entity_id in needs:
        if (entity, entity_id) in held:
            return f"{entity} {entity_id}, whose insert (op {held[(entity, entity_id)]})"
    return None


def held_at(conn: Connection, op_id: str) -> int:
    """When the master set ``op_id`` aside, by its own clock (ms)."""
    return conn.execute(select(_q.c.at).where(_q.c.op_id == op_id)).scalar_one()


def held_op(conn: Connection, op_id: str) -> WireOp:
    """The op kept under ``op_id`` (it was valid when held)."""
    item = conn.execute(select(_q.c.op).where(_q.c.op_id == op_id)).scalar_one()
    return from_wire(list(item), f"quarantined op {op_id}")
