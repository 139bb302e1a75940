"""Scope: which records a device may hold, and a checksum of them.

A device holds the records of the grids its worker is actively assigned to
(and the cells below them), plus what every device needs: the grid tree,
workers and assignments. The device registry never leaves the master.
The master enforces scope on both push (`wangge.sync.master.authorise`) and pull.

`checksums` digests every in-scope row per entity; device and master compute
it the same way after each sync, and a mismatch triggers a repair. A shared
entity's digest is kept per process and used again while the table's change
mark (`wangge.sync.log.tables.mark`, set by a trigger on every write) stands.
"""
from __future__ import annotations

import bisect
import functools
import hashlib
import json
import weakref
from typing import Callable, Iterable, Optional

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection, Engine

from wangge.core import codec, entities, placement
from wangge.core.capture import stored_json, table_of
from wangge.core.models import Op
from wangge.sync.log import tables

#: Sent to every device whatever its grids.
SHARED = entities.SHARED
#: Never sent to a device.
PRIVATE = entities.PRIVATE
#: Entities a device may write. The rest are the office's.
DEVICE_WRITABLE = entities.DEVICE_WRITABLE
SCOPED = entities.SCOPED
CHUNK = entities.BATCH
#: Per entity, its columns that refer to another synced row (its foreign keys), and that row's entity.
REFERENCES = entities.REFERENCES
_op = Op.__table__


def written(conn: Connection, sql: str, params: tuple = ()):
    """Run ``sql``, written with ``?`` marks, through the driver: the query compiler's work and
    cache-key building cost several times the run of the small queries an exchange makes."""
    return conn.exec_driver_sql(_marked(sql, conn.dialect.paramstyle), params)


@functools.lru_cache(maxsize=256)
def _marked(sql: str, paramstyle: str) -> str:
    return sql if paramstyle == "qmark" else sql.replace("?", "%s")


def worker_grids(conn: Connection, worker_id: Optional[str]) -> list[str]:
    """Ids of the grid cells ``worker_id`` is actively assigned to, and every cell below them."""
    if not worker_id:
        return []
    codes = written(conn, "SELECT g.code FROM grid_cell g JOIN assignment a ON a.grid_id = g.id WHERE "
                          "a.worker_id = ? AND a.active = ? AND a.deleted IS NULL", (worker_id, True)).scalars().all()
    return sorted(_cells_at_or_below(conn, codes))


def grids_changed_since(conn: Connection, worker_id: Optional[str], cursor: int) -> set[str]:
    """Grids (and the cells below them) of ``worker_id``'s assignments changed after log position
    ``cursor``: what the worker held, as far as a tablet at that cursor knows, and may have lost.
    At cursor 0, every grid the worker was ever assigned."""
    return changed_since(conn, assignment_changes(conn, worker_id), cursor)


def changed_since(conn: Connection, changes: dict[str, int], cursor: int) -> set[str]:
    """`grids_changed_since` from the worker's `assignment_changes`, read once for several cursors."""
    return _cells_at_or_below(conn, [code for code, seq in changes.items() if seq > cursor])


def assignment_changes(conn: Connection, worker_id: Optional[str]) -> dict[str, int]:
    """The grid code of each of ``worker_id``'s assignments, ever, and the last log position of
    a change to an assignment there."""
    if not worker_id:
        return {}
    # From the worker's assignments to their ops by entity: from the ops, it walked every
    # assignment's, a thousand tablets' worth.
    return dict(written(conn, "SELECT g.code, MAX(o.seq) FROM assignment a JOIN grid_cell g ON g.id = a.grid_id "
                              "JOIN op o ON o.entity = 'assignment' AND o.entity_id = a.id "
                              "WHERE a.worker_id = ? GROUP BY g.code", (worker_id,)).all())


def _cells_at_or_below(conn: Connection, codes) -> set[str]:
    if not codes:
        return set()
    codes_in_order, ids_in_order = _grid_tree(conn)
    found: set[str] = set()
    for code in codes:  # hierarchical codes: "01.02" lies below "01"; those below sort together
        at = bisect.bisect_left(codes_in_order, code)
        if at < len(codes_in_order) and codes_in_order[at] == code:
            found.add(ids_in_order[at])
        below = code + "."
        for n in range(bisect.bisect_left(codes_in_order, below), len(codes_in_order)):
            if not codes_in_order[n].startswith(below):
                break
            found.add(ids_in_order[n])
    return found


def _grid_tree(conn: Connection) -> tuple[list[str], list[str]]:
    """Every grid cell's code in order, and their ids in the same order: kept while the grid
    tree is unchanged, as every exchange looks up the cells below the worker's grids."""
    def read() -> tuple[list[str], list[str]]:
        rows = sorted(conn.exec_driver_sql("SELECT code, id FROM grid_cell").all())
        return [code for code, _ in rows], [id_ for _, id_ in rows]
    return _kept(conn, "tree", "grid_cell", _marks(conn).get("grid_cell"), read)


def grids_ever(conn: Connection, entity: str, entity_id: str) -> set[str]:
    """Every grid a row has been in, from its insert and the moves in the log."""
    return grids_ever_of(conn, entity, [entity_id]).get(entity_id, set())


def grids_ever_of(conn: Connection, entity: str, ids) -> dict[str, set[str]]:
    """`grids_ever` of many rows of ``entity``, a query per 500."""
    ids, out = sorted(set(ids)), {}
    for start in range(0, len(ids), CHUNK):
        found = conn.execute(select(_op.c.entity_id, _op.c.fields).where(
            _op.c.entity == entity, _op.c.entity_id.in_(ids[start : start + CHUNK]),
            _op.c.kind.in_(("insert", "append", "update"))))
        for entity_id, fields in found:
            fields = stored_json(fields)
            if isinstance(fields.get("grid_id"), str):
                out.setdefault(entity_id, set()).add(fields["grid_id"])
    return out


def worker_role(conn: Connection, worker_id: Optional[str]) -> Optional[str]:
    if not worker_id:
        return None
    return written(conn, "SELECT role FROM worker WHERE id = ?", (worker_id,)).scalar()


def grids_of(conn: Connection, entity: str, ids: Iterable[str]) -> dict[str, str]:
    """The scope's grid of each existing row of a scoped ``entity`` (an append-only row's is its
    owner's: `wangge.core.placement.BELONGS`)."""
    ids, found = sorted(set(ids)), {}
    joins, grid = placed_sql(entity)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for start in range(0, len(ids), CHUNK):
        chunk = tuple(ids[start : start + CHUNK])
        # Written out, not built by the query compiler: an import looks up 10,000 rows here.
        marks = ", ".join([mark] * len(chunk))
        sql = f"SELECT t.id, {grid} FROM {table_of(entity).name} t {joins} WHERE t.id IN ({marks})"
        found.update(conn.exec_driver_sql(sql, chunk).all())
    return found


def placed_sql(entity: str) -> tuple[str, str]:
    """(joins, grid expression) in SQL giving the grid whose scope holds each row ``t`` of
    ``entity``: its own, or for an append-only row its owner's (found the same way in turn), or
    with no owner named, its own."""
    joins, grids = _placing(entity, "t", False)
    sql = " ".join(f"{'LEFT JOIN' if outer else 'JOIN'} {table_of(owner).name} {alias} "
                   f"ON {alias}.id = {parent}.{column}" for owner, alias, parent, column, outer in joins)
    columns = [f"{alias}.grid_id" for alias in grids]
    return sql, columns[0] if len(columns) == 1 else f"COALESCE({', '.join(columns)})"


@functools.cache
def placed(entity: str):
    """(from clause, grid column) of the query form of `placed_sql`.

    Built once per entity: the joins are immutable, and building them again
    on every exchange cost more than running the query."""
    source = table_of(entity)
    aliases = {"t": source}
    joins, grids = _placing(entity, "t", False)
    for owner, alias, parent, column, outer in joins:
        aliases[alias] = table_of(owner).alias(alias)
        source = source.join(aliases[alias], aliases[alias].c.id == aliases[parent].c[column], isouter=outer)
    columns = [aliases[alias].c.grid_id for alias in grids]
    return source, columns[0] if len(columns) == 1 else func.coalesce(*columns)


def _placing(entity: str, name: str, outer: bool) -> tuple[list[tuple], list[str]]:
    """For rows ``name`` of ``entity``: the joins, each (owner, alias, the alias it joins from,
    its column there, outer or not), and the aliases whose grid to take, first found first."""
    owners = placement.BELONGS.get(entity)
    if not owners:
        return [], [name]
    # One owner that every row names joins plainly; else each owner may be missing.
    plain = len(owners) == 1 and not table_of(entity).c[owners[0][0]].nullable
    joins, grids = [], []
    for n, (column, owner) in enumerate(owners):
        alias, loose = f"{name}_{n}", outer or not plain
        joins.append((owner, alias, name, column, loose))
        inner, found = _placing(owner, alias, loose)
        joins += inner
        grids += found
    return joins, grids if plain else grids + [name]


def rows_in_scope(conn: Connection, entity: str, grids: Optional[list[str]]):
    """A query for the ids of ``entity`` rows in scope; ``grids=None`` means every row held."""
    table = table_of(entity)
    if grids is None or entity in SHARED:
        return select(table.c.id)
    source, grid = placed(entity)
    return select(table.c.id).select_from(source).where(grid.in_(grids))


def op_in_scope_sql(mark: str, grids: int, op: str = "o") -> tuple[str, int]:
    """SQL true for an op row ``op`` whose row lies in the scope of ``grids`` grid ids (bound by
    ``mark`` placeholders), and how many times the grid ids are to be bound in turn.

    A CASE on the op's entity (not an OR) keeps SQLite on the log's position
    order instead of the entity index; a shared entity's op is always in scope.
    """
    shared = ", ".join(f"'{entity}'" for entity in sorted(SHARED))
    if not grids:
        return f"{op}.entity IN ({shared})", 0
    marks = ", ".join([mark] * grids)
    arms = []
    for entity in SCOPED:
        joins, grid = placed_sql(entity)
        arms.append(f"WHEN '{entity}' THEN EXISTS (SELECT 1 FROM {table_of(entity).name} t {joins} "
                    f"WHERE t.id = {op}.entity_id AND {grid} IN ({marks}))")
    return f"CASE {op}.entity {' '.join(arms)} ELSE {op}.entity IN ({shared}) END", len(SCOPED)


def synced_entities() -> tuple[str, ...]:
    return tuple(sorted(SHARED)) + SCOPED


#: Derived columns a checksum covers besides the replication stamps.
DERIVED = entities.DERIVED


def checksums(conn: Connection, grids: Optional[list[str]]) -> dict[str, str]:
    """A SHA-256 per entity over every in-scope row's stamps, in id order.

    Per-field last-writer-wins makes a row's values a function of its stamps
    (insert stamp, per-field stamps, tombstone), so digesting the stamps, and
    the derived case status, is enough and avoids decoding every row.
    ``grids=None`` digests every row the replica holds (a device's view).
    """
    out = {}
    marks = _marks(conn)
    for entity in synced_entities():
        if grids is None or entity in SHARED:
            # Every device gets the same digest of the whole grid tree, workers and assignments:
            # with a thousand tablets, digesting them at each exchange cost more than the rest of it.
            out[entity] = _kept(conn, "digest", entity, marks.get(entity), lambda e=entity: _digest(conn, e, None))
    if grids is not None:
        out.update(_scoped_digests(conn, grids))
    return {entity: out[entity] for entity in synced_entities()}


def _scoped_digests(conn: Connection, grids: list[str]) -> dict[str, str]:
    """The checksum of every scoped entity's rows in the scope of ``grids``, from one query: a
    query per entity cost more in statements than in rows."""
    out = {entity: hashlib.sha256() for entity in SCOPED}
    if grids:
        loads, canonical, written_ = json.loads, _canonical, _written
        rows = conn.exec_driver_sql(_scoped_sql(conn.dialect.paramstyle, conn.dialect.name, len(grids)),
                                    tuple(grids) * len(SCOPED))
        entity, update, derive = None, None, None
        while batch := rows.fetchmany(5000):
            for row in batch:
                if SCOPED[row[0]] != entity:
                    entity = SCOPED[row[0]]
                    update, derive = out[entity].update, DERIVED.get(entity)
                stamps = row[5]
                if not stamps or stamps == "{}":
                    stamps = "{}"
                elif stamps not in written_:
                    stamps = canonical(loads(stamps))
                # As `_digest` writes them: a case's status, a case event's stale flag as a bool.
                if derive is None:
                    derived = ()
                elif derive == "stale":
                    derived = (row[7],) if row[7] is None else (bool(row[7]),)
                else:
                    derived = (row[6],)
                update(f"{row[1]}|{row[2]}|{row[3]}|{row[4]}|{stamps}|{derived}\n".encode())
    return {entity: digest.hexdigest() for entity, digest in out.items()}


@functools.lru_cache(maxsize=64)
def _scoped_sql(paramstyle: str, dialect: str, grids: int) -> str:
    """`_scoped_digests`' query: each scoped entity's rows in scope, tagged by the entity's place
    in `SCOPED`, in id order within each; a case's status and a case event's stale flag apart."""
    mark = "?" if paramstyle == "qmark" else "%s"
    marks = ", ".join([mark] * grids)
    parts = []
    for n, entity in enumerate(SCOPED):
        joins, grid = placed_sql(entity)
        # Typed NULLs: PostgreSQL types a UNION's columns pair by pair, an untyped NULL as text.
        status = f"t.{DERIVED[entity]}" if entity in DERIVED and DERIVED[entity] != "stale" else "CAST(NULL AS TEXT)"
        stale = "t.stale" if DERIVED.get(entity) == "stale" else "CAST(NULL AS BOOLEAN)"
        parts.append(f"SELECT {n} AS k, t.id AS id, t.hlc, t.origin, t.deleted, CAST(t.stamps AS TEXT), "
                     f"{status} AS status, {stale} AS stale FROM {table_of(entity).name} t {joins} "
                     f"WHERE {grid} IN ({marks})")
    # Ids sort by their bytes on every replica, as in `_digest_sql`.
    order = 'k, id COLLATE "C"' if dialect == "postgresql" else "k, id"
    return f"SELECT * FROM ({' UNION ALL '.join(parts)}) u ORDER BY {order}"


def _digest(conn: Connection, entity: str, grids: Optional[list[str]]) -> str:
    """The checksum of ``entity``'s rows in the scope of ``grids`` (None: every row held)."""
    digest = hashlib.sha256()
    update, loads, canonical, written = digest.update, json.loads, _canonical, _written
    # A derived flag digests as Python's bool whatever the driver returns (SQLite: 0/1).
    flag = DERIVED.get(entity) == "stale"
    scoped = grids is not None
    rows = conn.exec_driver_sql(_digest_sql(conn, entity, len(grids) if scoped else None),
                                tuple(grids) if scoped else ())
    while batch := rows.fetchmany(5000):
        for row in batch:
            # Stamps come back as the stored text, decoded only when not
            # empty: most rows were never edited after their insert.
            stamps = row[4]
            if not stamps or stamps == "{}":
                stamps = "{}"
            elif stamps not in written:
                stamps = canonical(loads(stamps))
            derived = tuple(row[5:]) if not flag or row[5] is None else (bool(row[5]),)
            update(f"{row[0]}|{row[1]}|{row[2]}|{row[3]}|{stamps}|{derived}\n".encode())
    return digest.hexdigest()


#: What is worked out from a whole shared table (its digest, the grid tree), by (what, entity,
#: change mark). Marks are random and never repeat, so one map serves every store a process
#: opens. Bounded; entries are exact.
_KEPT: dict[tuple[str, str, str], object] = {}
_KEPT_MAX = 256
_MARKED: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def _marks(conn: Connection) -> dict[str, str]:
    """The change mark of each shared entity; none on a store without the sync tables' migrations."""
    marked = _MARKED.get(conn.engine)
    if marked is None:
        marked = _MARKED[conn.engine] = inspect(conn).has_table(tables.mark.name)
    return dict(conn.exec_driver_sql(_MARKS_SQL).all()) if marked else {}


_MARKS_SQL = f"SELECT entity, mark FROM {tables.mark.name}"


def _kept(conn: Connection, what: str, entity: str, mark: Optional[str], work: Callable[[], object]):
    """``work()``, a function of the shared ``entity``'s rows alone, kept while the table's change
    mark stays ``mark`` (None: the store keeps no marks, and it is worked out every time).

    The mark is read again after the work and the result kept only if it stood:
    on PostgreSQL each statement sees the latest commit, and a write committed
    in between would pair the old mark with the new rows.
    """
    if mark is None:
        return work()
    key = (what, entity, mark)
    found = _KEPT.get(key)
    if found is None:
        found = work()
        if _marks(conn).get(entity) == mark:
            if len(_KEPT) >= _KEPT_MAX:
                _KEPT.clear()
            _KEPT[key] = found
    return found


#: `json.dumps(value, sort_keys=True)`, the digest's documented form (`wangge.core.codec`).
_canonical = codec.canonical


#: Stamps texts this process wrote in canonical form (`canonical_stamps`), which a
#: checksum then digests as they are instead of decoding them again: an import's
#: reply digests the very rows it has just written. Bounded; membership is exact.
_written: set[str] = set()
_WRITTEN_MAX = 20_000


def canonical_stamps(stamps: dict) -> str:
    """A row's stamps as JSON in the checksum's canonical form, for writing to the row."""
    text = _canonical(stamps)
    if len(_written) >= _WRITTEN_MAX:
        _written.clear()
    _written.add(text)
    return text


_SQL: dict[tuple, str] = {}


def _digest_sql(conn: Connection, entity: str, grids: Optional[int]) -> str:
    """The rows a checksum digests, in id order, for ``grids`` grid ids (None: every row held).

    Written out and kept per shape: built by the query compiler every time,
    it cost more than the digest of a grid's rows. Filtered by grid directly,
    not by ``id IN (rows in scope)``, which SQLite runs four times slower.
    """
    key = (conn.dialect.paramstyle, entity, grids)
    sql = _SQL.get(key)
    if sql is None:
        name = table_of(entity).name
        columns = "t.id, t.hlc, t.origin, t.deleted, CAST(t.stamps AS TEXT)"
        if entity in DERIVED:
            columns += f", t.{DERIVED[entity]}"
        marks = ", ".join(["?" if conn.dialect.paramstyle == "qmark" else "%s"] * (grids or 0))
        if grids is None:
            where = ""
        elif not grids:
            where = "WHERE 1 = 0"
        else:
            joins, grid = placed_sql(entity)
            where = f"{joins} WHERE {grid} IN ({marks})"
        # Ids sort by their bytes on every replica: PostgreSQL's default collation sorts
        # by language ("a1" before "A1"), SQLite by bytes, and the digests must agree.
        order = 't.id COLLATE "C"' if conn.dialect.name == "postgresql" else "t.id"
        sql = _SQL[key] = f"SELECT {columns} FROM {name} t {where} ORDER BY {order}"
    return sql
