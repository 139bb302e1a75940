"""Placement: a row lives in the grid of the row it belongs to.

A tablet holds the grids of its worker. A row in another grid than the row it
refers to would reach tablets that lack what it refers to, and fail there on the
foreign key at every sync. So:

- a resident lives in its household's grid, a household in its building's, a
  case in its household's (or, with none, its building's): when one of these
  moves (the office redraws a boundary), what belongs to it moves with it, in
  ops of its own (`settle`);
- append-only rows (case events, visits, point entries, photos) are never
  updated: each lies in the scope of the row it belongs to (`BELONGS`), found
  by join (`wangge.sync.log.scope`), and its own ``grid_id`` keeps the grid it was
  recorded in, which the monthly scores count.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy.engine import Connection

from wangge.core import entities
from wangge.core.errors import StoreError
from wangge.core.models import ENTITIES

#: Per movable entity, the rows whose grid it takes, first named first.
OWNERS = entities.OWNERS
#: Per append-only entity, the rows whose scope it lies in, first named first; with none named,
#: its own grid.
BELONGS = entities.BELONGS
#: Entities that movable rows belong to.
_OWNED = frozenset(owner for owners in OWNERS.values() for _, owner in owners)
#: Per entity, the fields whose change may misplace a row: its grid and its owners.
WATCHED: dict[str, frozenset[str]] = {
    entity: frozenset({"grid_id"} | {column for column, _ in OWNERS.get(entity, ())})
    for entity in set(OWNERS) | _OWNED
}
_TABLES = {entity: model.__tablename__ for entity, model in ENTITIES.items()}
CHUNK = entities.BATCH


class Placed:
    """Rows a write may have put in another grid than their owner's.

    ``own``: rows given a grid or an owner (checked against their owner);
    ``moved``: rows given a grid (what belongs to them follows); ``explicit``:
    rows whose grid the writer named, which `settle` never overrides.
    """

    def __init__(self) -> None:
        self.own: dict[str, set[str]] = {}
        self.moved: dict[str, set[str]] = {}
        self.explicit: dict[str, set[str]] = {}

    def __bool__(self) -> bool:
        return bool(self.own or self.moved)

    def note(self, entity: str, entity_id: str, fields, *, new: bool) -> None:
        """Record a write of ``fields`` to a row (``new``: an insert)."""
        owners = OWNERS.get(entity)
        gridded = "grid_id" in fields
        # A new row is checked only if it names an owner; nothing belongs to it yet. An edit that
        # takes a row out of its owner (a case no longer about a household) may leave it to another.
        named = owners and any(fields.get(column) is not None if new else column in fields for column, _ in owners)
        if named or (owners and gridded and not new):
            self.own.setdefault(entity, set()).add(entity_id)
            if gridded:
                self.explicit.setdefault(entity, set()).add(entity_id)
        if gridded and not new and entity in _OWNED:
            self.moved.setdefault(entity, set()).add(entity_id)

    def note_ops(self, ops) -> None:
        """Record the writes of ops merged from a device."""
        for op in ops:
            watched = WATCHED.get(op.entity)
            if watched and not watched.isdisjoint(op.fields):
                self.note(op.entity, op.entity_id, op.fields, new=op.kind in ("insert", "append"))

    def clear(self) -> None:
        self.own, self.moved, self.explicit = {}, {}, {}


def settle(rec, placed: Placed, *, strict: bool) -> None:
    """Move every row ``placed`` touched, and what belongs to them, to their owner's grid, with
    ``rec`` recording the moves as updates.

    ``strict`` (a write at hand): a row whose grid the writer named and its owner's differ is a
    mistake, and raises `StoreError` naming both; else (ops merged from a device) the owner wins.
    """
    own, parents = placed.own, placed.moved
    explicit = {entity: set(ids) for entity, ids in placed.explicit.items()}  # the moves below add to it
    every = {entity: set(ids) for entity, ids in parents.items()}  # every row moved, for the photos' check
    for _ in range(len(OWNERS) + 1):  # building → household → resident and case: the chain is short
        found = {entity: _misplaced(rec.conn, entity, own.get(entity, set()), parents) for entity in OWNERS}
        found = {entity: rows for entity, rows in found.items() if rows}
        if strict:
            _refuse_split(rec.conn, own, parents)
        if not found:
            if strict:
                _refuse_split_photos(rec.conn, every)
            placed.clear()
            return
        for entity, rows in found.items():
            every.setdefault(entity, set()).update(rows)
        if strict:
            _refuse_explicit(found, explicit)
        for entity, rows in found.items():
            # A tombstone moves too: a tablet of the old grid would hold it without its owner.
            rec.update_many(entity, [(i, {"grid_id": grid}) for i, (grid, _) in sorted(rows.items())],
                            tombstones=True)
        own, parents = {}, {entity: set(rows) for entity, rows in found.items()}
    raise StoreError("rows kept moving between grids while following their owners")  # pragma: no cover


def _refuse_split(conn: Connection, own: dict[str, set[str]], parents: dict[str, set[str]]) -> None:
    """Raise `StoreError` for a row written naming owners in two grids (a case about a household
    of one grid in a building of another), or left so by a move of one of them: some tablets
    would hold it without the other."""
    for entity, owners in OWNERS.items():
        if len(owners) < 2:
            continue
        wanted = [("t.id", sorted(own.get(entity, ())))] + [
            (f"t.{column}", sorted(parents.get(owner, ()))) for column, owner in owners]
        for row in (row for where, values in wanted for row in _rows(conn, entity, where, values, True)):
            named = [(row[2 + 2 * n], row[3 + 2 * n], owner) for n, (_, owner) in enumerate(owners)
                     if row[2 + 2 * n] is not None and row[3 + 2 * n] is not None]
            if len({grid for _, grid, _ in named}) > 1:
                said = " and ".join(f"{owner} {owner_id} in grid {grid}" for owner_id, grid, owner in named)
                raise StoreError(f"{entity} {row[0]} names {said}: a {entity} lives in one grid, with what it "
                                 f"names; expected them in the same grid, or name only one")


def _refuse_split_photos(conn: Connection, moved: dict[str, set[str]]) -> None:
    """Raise `StoreError` if a move leaves a photo of a case, taken on a visit, with its case in one
    grid and its visit's household in another: a tablet of either would hold it without the other."""
    households, cases = sorted(moved.get("household", ())), sorted(moved.get("case", ()))
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for where, values in (("h.id", households), ("c.id", cases)):
        for start in range(0, len(values), CHUNK):
            chunk = tuple(values[start : start + CHUNK])
            row = conn.exec_driver_sql(
                "SELECT a.id, c.id, c.grid_id, h.id, h.grid_id FROM attachment a JOIN cases c ON c.id = a.case_id "
                "JOIN visit v ON v.id = a.visit_id JOIN household h ON h.id = v.household_id "
                f"WHERE {where} IN ({', '.join([mark] * len(chunk))}) AND c.grid_id <> h.grid_id", chunk).first()
            if row is not None:
                raise StoreError(f"attachment {row[0]} belongs to case {row[1]} in grid {row[2]} and to a visit of "
                                 f"household {row[3]} in grid {row[4]}: a photo lives in one grid; expected the "
                                 f"case to move with the household (name it as the case's household)")


def _refuse_explicit(found: dict, explicit: dict) -> None:
    for entity, rows in found.items():
        for entity_id, (grid, (column, owner_id)) in sorted(rows.items()):
            if entity_id in explicit.get(entity, ()):
                owner = dict(OWNERS[entity])[column]
                raise StoreError(f"{entity} {entity_id} is put in another grid than its {owner} {owner_id}, "
                                 f"which is in grid {grid}: a {entity} lives in its {owner}'s grid; expected "
                                 f"grid_id {grid}, or move the {owner} instead, or take the {entity} out of it")


def _misplaced(conn: Connection, entity: str, ids: set[str], parents: dict[str, set[str]]) -> dict:
    """``entity`` rows among ``ids``, or belonging to ``parents``, not in their owner's grid:
    id → (owner's grid, (column, owner id))."""
    owners = OWNERS[entity]
    wanted = [("t.id", sorted(ids))] + [(f"t.{column}", sorted(parents.get(owner, ())))
                                        for column, owner in owners]
    found: dict[str, tuple] = {}
    for where, values in wanted:
        for row in _rows(conn, entity, where, values):
            owner = _owner_of(row, owners)
            if owner is not None and owner[0] != row[1]:
                found[row[0]] = owner
    return found


def _rows(conn: Connection, entity: str, where: str, values: list[str], live_only: bool = False):
    """``entity`` rows, tombstones too, whose ``where`` is among ``values``: (id, grid, then per owner
    its id and grid)."""
    owners = OWNERS[entity]
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    joins = " ".join(f"LEFT JOIN {_TABLES[owner]} o{n} ON o{n}.id = t.{column}"
                     for n, (column, owner) in enumerate(owners))
    columns = ", ".join(f"t.{column}, o{n}.grid_id" for n, (column, _) in enumerate(owners))
    for start in range(0, len(values), CHUNK):
        chunk = tuple(values[start : start + CHUNK])
        sql = (f"SELECT t.id, t.grid_id, {columns} FROM {_TABLES[entity]} t {joins} "
               f"WHERE {where} IN ({', '.join([mark] * len(chunk))}){' AND t.deleted IS NULL' if live_only else ''}")
        yield from conn.exec_driver_sql(sql, chunk)


def _owner_of(row, owners) -> Optional[tuple]:
    """(grid, (column, id)) of the first owner the row names that exists."""
    for n, (column, _) in enumerate(owners):
        owner_id, grid = row[2 + 2 * n], row[3 + 2 * n]
        if owner_id is not None:
            return (grid, (column, owner_id)) if grid is not None else None
    return None
