"""Collecting tombstones: deleted rows leave the master once every device that counts has seen them.

A tombstone must outlive every replica that could still send an older edit
of its row, so it is kept until the lowest cursor acknowledged by every
active device has passed every op of its row: the horizon. A device not
seen for longer than ``absent_after_days`` no longer holds the horizon
back; when it comes back its cursor is below the horizon, so after its own
ops apply it downloads its scope afresh (`wangge.sync.protocol`). An edit
it made meanwhile to a collected row is set aside and reported, never
applied (`wangge.sync.master.authorise`): the ids of collected rows are kept.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.engine import Connection

from wangge.core.errors import StoreError
from wangge.core.models import Device, Op
from wangge.core.store import Store, set_meta
from wangge.sync.log import apply, tables

_devices, _op = Device.__table__, Op.__table__
DAY_MS = 24 * 3600 * 1000
#: A tablet away longer than this re-registers on return instead of holding deletions back.
ABSENT_AFTER_DAYS = 30


@dataclass(frozen=True)
class Collected:
    removed: int  # rows removed
    kept: int  # tombstones kept: a live row still refers to them, or a device has not seen them yet
    horizon: int  # master log position every counted device has acknowledged
    absent: tuple[str, ...]  # active devices not seen for too long: they download afresh on return


def horizon(conn: Connection, now_ms: int, absent_after_days: float = ABSENT_AFTER_DAYS) -> tuple[int, tuple[str, ...]]:
    """The collection horizon, and the active devices too long absent to hold it back."""
    top = apply.log_top(conn)
    since = now_ms - int(absent_after_days * DAY_MS)
    rows = conn.execute(select(tables.peer.c.device_id, tables.peer.c.cursor, tables.peer.c.seen_at)
                        .join(_devices, _devices.c.id == tables.peer.c.device_id)
                        .where(_devices.c.status == "active", _devices.c.deleted.is_(None))).all()
    present = [r.cursor for r in rows if r.seen_at >= since]
    absent = tuple(sorted(r.device_id for r in rows if r.seen_at < since))
    return min(present + [top]), absent


def collect(store: Store, *, absent_after_days: float = ABSENT_AFTER_DAYS) -> Collected:
    """Remove tombstoned rows, and their ops, whose every op lies at or below the horizon."""
    if store.role != "master":
        raise StoreError(f"store {store.url} is a {store.role}: tombstones are collected on the master only")
    with store.write(actor="sync") as rec:
        conn = rec.conn
        limit, absent = horizon(conn, rec.physical_ms, absent_after_days)
        # A position above every cursor acknowledged so far: who has not passed it may hold a tombstone.
        after = apply.log_top(conn) + 1
        removed = kept = 0
        for entity in reversed(apply.ENTITY_ORDER):  # children first, so a parent can follow them
            table = apply.table_of(entity)
            if "deleted" not in table.c:
                continue
            later = exists().where(_op.c.entity == entity, _op.c.entity_id == table.c.id, _op.c.seq > limit)
            dead = conn.execute(select(table.c.id).where(table.c.deleted.is_not(None))).scalars().all()
            ripe = set(conn.execute(select(table.c.id).where(table.c.deleted.is_not(None), ~later)).scalars())
            kept += len(dead) - len(ripe)
            for entity_id in sorted(ripe):
                try:
                    with conn.begin_nested():
                        conn.execute(delete(table).where(table.c.id == entity_id))
                except Exception:  # noqa: BLE001 - a live row still refers to it: keep the tombstone
                    kept += 1
                    continue
                apply.remove_ops(conn, (_op.c.entity == entity) & (_op.c.entity_id == entity_id),
                                 store.device_id or "master")
                gone = tables.collected
                conn.execute(delete(gone).where(gone.c.entity == entity, gone.c.entity_id == entity_id))
                conn.execute(insert(gone).values(entity=entity, entity_id=entity_id, horizon=limit, seq=after))
                removed += 1
        if removed:
            apply.mark_position(conn, after, store.device_id or "master")  # so replies move cursors past it
        set_meta(conn, "sync.gc_horizon", str(limit))
    return Collected(removed, kept, limit, absent)


def collected_ids(conn: Connection, entity: str, ids: list[str]) -> set[str]:
    """Those of ``ids`` whose rows were tombstoned and collected here."""
    found: set[str] = set()
    for start in range(0, len(ids), apply.CHUNK):
        chunk = ids[start : start + apply.CHUNK]
        found.update(conn.execute(select(tables.collected.c.entity_id).where(
            tables.collected.c.entity == entity, tables.collected.c.entity_id.in_(chunk))).scalars())
    return found
