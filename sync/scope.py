"""Scope: which records a device may hold, and a checksum of them.

A device holds the records of the grids its worker is actively assigned to
(and the cells below them), plus what every device needs: the grid tree,
workers and assignments. The device registry never leaves the master.
The master enforces scope on both push (`wangge.sync.authorise`) and pull.

`checksums` digests every in-scope row per entity; device and master compute
it the same way after each sync, and a mismatch triggers a repair.
"""
from __future__ import annotations

import hashlib
import json
from typing import Iterable, Optional

from sqlalchemy import Text, cast, select
from sqlalchemy.engine import Connection

from wangge.core.capture import table_of
from wangge.core.models import Assignment, Case, GridCell, Worker

#: Sent to every device whatever its grids.
SHARED = frozenset({"grid_cell", "worker", "assignment"})
#: Never sent to a device.
PRIVATE = frozenset({"device"})
#: Entities a device may write. The rest are the office's.
DEVICE_WRITABLE = frozenset({"building", "household", "resident", "case", "case_event", "visit",
                             "attachment", "point_entry"})
SCOPED = ("building", "household", "resident", "case", "case_event", "visit", "attachment", "point_entry")
CHUNK = 500
_grids, _assign, _workers, _cases = GridCell.__table__, Assignment.__table__, Worker.__table__, Case.__table__


def worker_grids(conn: Connection, worker_id: Optional[str]) -> list[str]:
    """Ids of the grid cells ``worker_id`` is actively assigned to, and every cell below them."""
    if not worker_id:
        return []
    codes = conn.execute(select(_grids.c.code).join(_assign, _assign.c.grid_id == _grids.c.id).where(
        _assign.c.worker_id == worker_id, _assign.c.active.is_(True), _assign.c.deleted.is_(None))).scalars().all()
    ids: set[str] = set()
    for code in codes:  # hierarchical codes: "01.02" lies below "01"
        ids.update(conn.execute(select(_grids.c.id).where(
            (_grids.c.code == code) | _grids.c.code.startswith(code + ".", autoescape=True))).scalars())
    return sorted(ids)


def worker_role(conn: Connection, worker_id: Optional[str]) -> Optional[str]:
    if not worker_id:
        return None
    return conn.execute(select(_workers.c.role).where(_workers.c.id == worker_id)).scalar()


def grids_of(conn: Connection, entity: str, ids: Iterable[str]) -> dict[str, str]:
    """The grid of each existing row of a scoped ``entity`` (a case event's is its case's)."""
    ids, found = sorted(set(ids)), {}
    table = table_of(entity)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        if entity == "case_event":
            query = select(table.c.id, _cases.c.grid_id).join(_cases, _cases.c.id == table.c.case_id)
        else:
            query = select(table.c.id, table.c.grid_id)
        found.update((r[0], r[1]) for r in conn.execute(query.where(table.c.id.in_(chunk))))
    return found


def rows_in_scope(conn: Connection, entity: str, grids: Optional[list[str]]):
    """A query for the ids of ``entity`` rows in scope; ``grids=None`` means every row held."""
    table = table_of(entity)
    query = select(table.c.id)
    if grids is None or entity in SHARED:
        return query
    if entity == "case_event":
        return query.join(_cases, _cases.c.id == table.c.case_id).where(_cases.c.grid_id.in_(grids))
    return query.where(table.c.grid_id.in_(grids))


def synced_entities() -> tuple[str, ...]:
    return tuple(sorted(SHARED)) + SCOPED


#: Derived columns a checksum covers besides the replication stamps.
DERIVED = {"case": "status", "case_event": "stale"}


def checksums(conn: Connection, grids: Optional[list[str]]) -> dict[str, str]:
    """A SHA-256 per entity over every in-scope row's stamps, in id order.

    Per-field last-writer-wins makes a row's values a function of its stamps
    (insert stamp, per-field stamps, tombstone), so digesting the stamps, and
    the derived case status, is enough and avoids decoding every row.
    ``grids=None`` digests every row the replica holds (a device's view).
    """
    out = {}
    for entity in synced_entities():
        table = table_of(entity)
        extra = [table.c[DERIVED[entity]]] if entity in DERIVED else []
        # Stamps come back as the stored text and are decoded only when not
        # empty: most rows were never edited after their insert.
        query = select(table.c.id, table.c.hlc, table.c.origin, table.c.deleted, cast(table.c.stamps, Text), *extra)
        # Filtered directly, not by `id IN (rows_in_scope)`: SQLite runs that four times slower.
        if grids is not None and entity not in SHARED:
            if entity == "case_event":
                query = query.join(_cases, _cases.c.id == table.c.case_id).where(_cases.c.grid_id.in_(grids))
            else:
                query = query.where(table.c.grid_id.in_(grids))
        query = query.order_by(table.c.id)
        digest = hashlib.sha256()
        update, loads, dumps = digest.update, json.loads, json.dumps
        # A derived flag digests as Python's bool whatever the driver returns (SQLite: 0/1).
        flag = entity in DERIVED and DERIVED[entity] == "stale"
        for row in _raw_rows(conn, query):
            stamps = row[4]
            stamps = (dumps(loads(stamps), sort_keys=True) or "{}") if stamps and stamps != "{}" else "{}"
            derived = row[5:] if not flag or row[5] is None else (bool(row[5]),)
            update(f"{row[0]}|{row[1]}|{row[2]}|{row[3]}|{stamps}|{derived}\n".encode())
        out[entity] = digest.hexdigest()
    return out


def _raw_rows(conn: Connection, query):
    """The query's rows as the driver returns them: a scope can hold a district's every household."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    if compiled.positiontup is not None:
        params = tuple(compiled.params[name] for name in compiled.positiontup)
    else:
        params = compiled.params
    result = conn.exec_driver_sql(str(compiled), params)
    while rows := result.fetchmany(5000):
        yield from rows
