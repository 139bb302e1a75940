"""Collecting tombstones: deleted rows leave the master once every active device has seen them.

A tombstone must outlive every replica that could still send an older edit
of its row, so it is kept until the lowest cursor acknowledged by every
active device has passed its last op. A device that comes back with a
cursor below that horizon gets a full download (after its own ops apply).
"""
from __future__ import annotations

from sqlalchemy import delete, func, select

from wangge.core.models import Device, Op
from wangge.core.store import Store, set_meta
from wangge.sync import apply, tables

_devices, _op = Device.__table__, Op.__table__


def collect(store: Store) -> int:
    """Remove tombstoned rows, and their ops, below the lowest cursor every active device acknowledged.

    A device that comes back with a cursor below that horizon gets a full
    download (after its own ops are applied). Returns the number of rows removed.
    """
    with store.write(actor="sync") as rec:
        conn = rec.conn
        active = select(_devices.c.id).where(_devices.c.status == "active")
        horizon = conn.execute(select(func.min(tables.peer.c.cursor)).where(tables.peer.c.device_id.in_(active))).scalar()
        if horizon is None:
            horizon = conn.execute(select(func.coalesce(func.max(_op.c.seq), 0))).scalar()
        removed = 0
        for entity in reversed(apply.ENTITY_ORDER):
            table = apply.table_of(entity)
            if "deleted" not in table.c:
                continue
            late = select(_op.c.entity_id).where(_op.c.entity == entity, _op.c.seq > horizon)
            ids = conn.execute(select(table.c.id).where(table.c.deleted.is_not(None), table.c.id.not_in(late))).scalars().all()
            for entity_id in ids:
                try:
                    with conn.begin_nested():
                        conn.execute(delete(table).where(table.c.id == entity_id))
                        conn.execute(delete(_op).where(_op.c.entity == entity, _op.c.entity_id == entity_id))
                    removed += 1
                except Exception:  # still referenced by a live child row: keep the tombstone
                    continue
        set_meta(conn, "sync.gc_horizon", str(horizon))
    return removed
