"""Change capture: every change to a synced entity and its op, in one transaction.

A `Recorder` writes through the caller's connection, so the change and its
op commit or roll back together; there is no path that writes one without
the other. Each insert stamps the row once (``hlc``, ``origin``); each update
stamps only the fields it touches (``stamps``), which is what per-field
last-writer-wins merging needs.

Fields a district's rule file defines are not columns: they live in the
row's JSON ``fields`` column, and ops carry them flat next to the columns.
"""
from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any, Iterable, Iterator, Mapping, Optional

from pydantic_core import PydanticUndefined
from sqlalchemy import JSON, DateTime, bindparam, select
from sqlalchemy.engine import Connection

from wangge.core import codec, placement
from wangge.core.entities import BATCH
from wangge.core.errors import StoreError
from wangge.core.hlc import Clock
from wangge.core.ids import uuid7, uuid7_many
from wangge.core.models import APPEND_ONLY, ENTITIES, Op

REPLICATION_COLUMNS = frozenset({"hlc", "origin", "stamps", "deleted"})
#: Columns of an op row, in the order `Recorder` writes them.
OP_COLUMNS = ("op_id", "entity", "entity_id", "hlc", "actor", "device", "kind", "fields")
_op = Op.__table__
#: Rows fetched per SELECT when updating many entities at once.
_CHUNK = BATCH


# The store's JSON is one codec (`wangge.core.codec`); these names are its reads.
stored_json, json_value, dumps, _store_json = codec.decoded, codec.json_value, codec.op, codec.column


@functools.cache
def columns_of(entity: str) -> frozenset[str]:
    """The typed columns of ``entity`` that changes may set."""
    return frozenset(c.name for c in table_of(entity).columns) - REPLICATION_COLUMNS


def table_of(entity: str):
    try:
        return ENTITIES[entity].__table__
    except KeyError:
        raise StoreError(
            f"unknown entity {entity!r}: expected one of {', '.join(sorted(ENTITIES))}"
        ) from None


class Recorder:
    """Writes changes and their ops through one connection (one transaction).

    Every change gets a fresh stamp from ``clock`` at physical time
    ``physical_ms``; ``device`` and ``actor`` are recorded on every op.
    """

    def __init__(self, conn: Connection, *, clock: Clock, physical_ms: int, device: str, actor: str = ""):
        self.conn = conn
        self.clock = clock
        self.physical_ms = physical_ms
        self.device = device
        self.actor = actor
        self.ops = 0
        #: Rows this write may have put in another grid than their owner's (`wangge.core.placement`).
        self.placed = placement.Placed()

    def stamp(self) -> int:
        """A fresh HLC stamp for one change."""
        return self.clock.now(self.physical_ms)

    def _stamps(self, count: int) -> range:
        return self.clock.now_many(self.physical_ms, count)

    def insert(self, entity: str, values: Mapping[str, Any]) -> str:
        """Insert a new row and record an ``insert`` (or ``append``) op; return its id."""
        return self.insert_many(entity, [values])[0]

    def insert_many(self, entity: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Insert rows, one op each, with two statements in all; return their ids.

        Rows go to the driver as tuples (`_Inserts`): the model's defaults
        fill what a row leaves out, an id is minted for a row without one,
        and each row is stamped once. Raises `StoreError` for an unknown
        entity or field, a replication column, or a value its column
        cannot hold; nothing is written then.
        """
        plan = _Inserts.of(entity, self.conn.dialect)
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return []
        count = len(rows)
        # One batch of ids: the ops' first, then the rows' that bring none.
        minted = uuid7_many(count + sum(1 for values in rows if "id" not in values))
        params, ops, ids, owned = plan.build(rows, self._stamps(count), minted[:count], iter(minted[count:]))
        plan.write(self.conn, self.device, params)
        self._write_ops(entity, "append" if entity in APPEND_ONLY else "insert", ops)
        for entity_id, columns in owned:
            self.placed.note(entity, entity_id, columns, new=True)
        return ids

    def update(self, entity: str, entity_id: str, values: Mapping[str, Any]) -> None:
        """Change some fields of one row and record one ``update`` op."""
        self.update_many(entity, [(entity_id, values)])

    def update_many(self, entity: str, changes: Iterable[tuple[str, Mapping[str, Any]]], *,
                    tombstones: bool = False) -> None:
        """Apply many changes, one op per change, reading and writing each row once.

        Raises `StoreError` for an append-only entity, a missing or deleted
        row, or an attempt to set a replication column; nothing is written.
        ``tombstones`` lets a deleted row change too, staying deleted: its
        tombstone moves with its owner (`wangge.core.placement`).
        """
        if entity in APPEND_ONLY:
            raise StoreError(f"{entity} is append-only: its rows cannot be updated")
        changes = list(changes)
        columns = columns_of(entity)
        watched = placement.WATCHED.get(entity)
        if watched:
            for entity_id, values in changes:
                if not watched.isdisjoint(values):
                    self.placed.note(entity, entity_id, values, new=False)
        # SQLite merges the JSON itself, so rows need not be read back;
        # elsewhere rows are read, merged here and written back once each.
        if self.conn.dialect.name == "sqlite" and "fields" in columns and (
                self._saves_in_sql(entity, changes, columns, live_only=not tombstones)
                or self._update_in_sql(entity, changes, columns, live_only=not tombstones)):
            return
        rows = self._load(entity, {entity_id for entity_id, _ in changes})
        ops = []
        device = self.device
        named, has_fields = columns | REPLICATION_COLUMNS, "fields" in columns
        for (entity_id, values), stamp, op_id in zip(changes, self._stamps(len(changes)), uuid7_many(len(changes))):
            row = rows.get(entity_id)
            if row is None:
                raise StoreError(f"cannot update {entity} {entity_id}: no such row")
            if row["deleted"] is not None and not tombstones:
                raise StoreError(f"cannot update {entity} {entity_id}: it was deleted")
            if named.isdisjoint(values):
                # Only the district's own fields: the usual form save, and the
                # op carries exactly the values given.
                if not has_fields:
                    _split(entity, values, columns)  # raises, naming the field
                row["fields"].update(values)
                fields_json = dumps(values)
            else:
                plain, custom = _split(entity, values, columns)
                if "id" in plain:
                    raise StoreError(f"cannot update {entity} {entity_id}: ids never change")
                if custom:
                    row["fields"].update(custom)
                if plain:
                    row["set"].update(plain)
                fields_json = dumps(_op_fields(values))
            pair = [stamp, device]
            row_stamps = row["stamps"]
            for name in values:
                row_stamps[name] = pair
            ops.append((op_id, entity_id, stamp, fields_json))
        self._save(entity, rows.values())
        self._write_ops(entity, "update", ops)

    def _saves_in_sql(self, entity: str, changes: list, columns: frozenset[str], live_only: bool) -> bool:
        """`update_many` on SQLite for the usual batch, form saves, in one pass and one UPDATE shape.

        Each change sets only custom fields, to text, numbers or yes/no (no
        null), and no row is changed twice: a change's op JSON is then its
        row's patch of custom fields, and one stamp patch covers its fields.
        Returns False, having written nothing, for any other batch, which
        `_update_in_sql` folds row by row.
        """
        count = len(changes)
        if len({entity_id for entity_id, _ in changes}) != count:
            return False
        named, plain, encode, patch = columns | REPLICATION_COLUMNS, _PLAIN_TYPES, dumps, _stamps_patch
        tail = "," + dumps(self.device) + "]"
        params, ops, clock = [], [], self.clock.last
        for (entity_id, values), stamp, op_id in zip(changes, self._stamps(count), uuid7_many(count)):
            if not values or not named.isdisjoint(values) or not plain.issuperset(map(type, values.values())):
                self.clock.last = clock  # nothing was stamped
                return False
            fields_json = encode(values)
            params.append((fields_json, patch(values, stamp, tail), entity_id))
            ops.append((op_id, entity_id, stamp, fields_json))
        live = " AND deleted IS NULL" if live_only else ""
        matched = self.conn.exec_driver_sql(f'UPDATE "{table_of(entity).name}" SET fields = json_patch(fields, ?1), '
                                            f"stamps = {_merged_stamps(2)} WHERE id = ?3{live}", params).rowcount
        if matched != count:
            self._refuse_missing(entity, [entity_id for entity_id, _ in changes])
        self._write_ops(entity, "update", ops)
        return True

    def _update_in_sql(self, entity: str, changes: list, columns: frozenset[str], live_only: bool = True) -> bool:
        """`update_many` on SQLite with the JSON merge done by SQLite's ``json_patch``.

        Rows are never read into Python: the changes of each row are folded
        into one patch of its custom fields and one of its stamps (a later
        change to a field overrides an earlier one, as it would in order),
        and each row gets one UPDATE. A change to a missing or deleted row
        matches nothing, which the row count reveals; the caller's
        transaction then rolls back. Returns False, having written nothing,
        if a value needs Python's conversions (a moment, a JSON column).
        """
        named, simple = columns | REPLICATION_COLUMNS, _SIMPLE_TYPES
        stamps = self._stamps(len(changes))
        jsons: list[str] = []  # each change's op fields, as JSON
        add_json = jsons.append
        # Per row, its changes: (typed columns or None, values, custom fields, stamp, op JSON).
        rows: dict[str, list[tuple]] = {}
        for (entity_id, values), stamp in zip(changes, stamps):
            fields_json = None
            if len(values) == 1:  # the most common edit, one custom int or string field, by hand
                for name, value in values.items():
                    if name not in named:
                        kind = type(value)
                        if kind is int:
                            fields_json = (_opened.get(name) or _open(name)) + str(value) + "}"
                        elif kind is str:
                            fields_json = (_opened.get(name) or _open(name)) + _encode_str(value) + "}"
            if fields_json is not None:
                plain, custom = None, values
            elif not simple.issuperset(map(type, values.values())) or (None in values.values() and any(
                    value is None and '"' in name for name, value in values.items())):
                # Nothing written yet: the caller merges in Python (a null's JSON path
                # in `patch_rows` cannot name a field whose name has a double quote).
                return False
            elif named.isdisjoint(values):
                plain, custom = None, values
                fields_json = dumps(values)
            else:
                if "fields" in values:
                    return False
                plain, custom = _split(entity, values, columns)
                if "id" in plain:
                    raise StoreError(f"cannot update {entity} {entity_id}: ids never change")
                fields_json = dumps(_op_fields(values))
            add_json(fields_json)
            done = rows.get(entity_id)
            if done is None:
                rows[entity_id] = [(plain, values, custom, stamp, fields_json)]
            else:
                done.append((plain, values, custom, stamp, fields_json))
        # Each row's changes folded into one patch of its custom fields and
        # one of its stamps; a lone change's op JSON is its patch.
        tail = "," + dumps(self.device) + "]"
        patches = []
        for entity_id, done in rows.items():
            if len(done) == 1:
                plain, values, custom, stamp, fields_json = done[0]
                custom_json = fields_json if plain is None else dumps(custom)
                patches.append((entity_id, plain or {}, custom, custom_json, _stamps_patch(values, stamp, tail)))
            else:
                plain, custom, own = {}, {}, {}
                for typed, values, changed, stamp, _ in done:
                    if typed:
                        plain.update(typed)
                    custom.update(changed)
                    for name in values:
                        own[name] = stamp
                patches.append((entity_id, plain, custom, dumps(custom), _stamps_patch(own, None, tail)))
        matched = patch_rows(self.conn, table_of(entity).name, patches, live_only=live_only)
        if matched != len(rows):
            self._refuse_missing(entity, list(rows))
        self._write_ops(entity, "update", list(zip(uuid7_many(len(changes)), [e for e, _ in changes], stamps, jsons)))
        return True

    def _refuse_missing(self, entity: str, ids: list[str]) -> None:
        table = table_of(entity)
        found = dict(self.conn.execute(select(table.c.id, table.c.deleted).where(table.c.id.in_(set(ids)))).all())
        for entity_id in ids:
            if entity_id not in found:
                raise StoreError(f"cannot update {entity} {entity_id}: no such row")
            if found[entity_id] is not None:
                raise StoreError(f"cannot update {entity} {entity_id}: it was deleted")

    def delete(self, entity: str, entity_id: str) -> None:
        """Tombstone a row: it stays, marked deleted, so no older edit revives it."""
        if entity in APPEND_ONLY:
            raise StoreError(f"{entity} is append-only: its rows cannot be deleted")
        table = table_of(entity)
        stamp = self.stamp()
        done = self.conn.execute(
            table.update()
            .where(table.c.id == entity_id, table.c.deleted.is_(None))
            .values(deleted=stamp)
        ).rowcount
        if not done:
            raise StoreError(f"cannot delete {entity} {entity_id}: no such row, or already deleted")
        self._write_ops(entity, "delete", [(uuid7(), entity_id, stamp, "{}")])

    def _write_ops(self, entity: str, kind: str, ops: list[tuple]) -> None:
        """Insert op rows of one entity and kind, given as ``(op_id, entity_id, hlc, fields JSON)``."""
        if not ops:
            return
        # Straight to the driver: the op log is the hot path of every write,
        # and SQLAlchemy's per-row type processing would triple its cost.
        # On SQLite the batch's constant columns are literals: binding four
        # equal strings per row was a sixth of the op log's write.
        conn = self.conn
        if conn.dialect.name == "sqlite" and "\x00" not in self.actor + self.device:
            constants = ", ".join(sql_text(v) for v in (entity, self.actor, self.device, kind))
            statement = (f"INSERT INTO op (op_id, entity_id, hlc, fields, entity, actor, device, kind) "
                         f"VALUES (?, ?, ?, ?, {constants})")
            conn.exec_driver_sql(statement, ops)
        else:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            statement = f"INSERT INTO op ({', '.join(OP_COLUMNS)}) VALUES ({', '.join([mark] * len(OP_COLUMNS))})"
            tail = (self.actor, self.device, kind)
            conn.exec_driver_sql(statement, [(op_id, entity, entity_id, hlc, *tail, fields)
                                             for op_id, entity_id, hlc, fields in ops])
        self.ops += len(ops)

    def _load(self, entity: str, ids: set[str]) -> dict[str, dict]:
        table = table_of(entity)
        has_fields = "fields" in table.c
        wanted = [table.c.id, table.c.stamps, table.c.deleted] + ([table.c.fields] if has_fields else [])
        rows: dict[str, dict] = {}
        id_list = sorted(ids)
        for start in range(0, len(id_list), _CHUNK):
            chunk = id_list[start : start + _CHUNK]
            for found in self.conn.execute(select(*wanted).where(table.c.id.in_(chunk))):
                rows[found.id] = {
                    "id": found.id,
                    "stamps": dict(found.stamps or {}),
                    "deleted": found.deleted,
                    "fields": dict(found.fields or {}) if has_fields else {},
                    "has_fields": has_fields,
                    "set": {},
                }
        return rows

    def _save(self, entity: str, rows: Iterable[dict]) -> None:
        table = table_of(entity)
        # One executemany per shape of change (which columns it sets).
        shapes: dict[tuple[str, ...], list[dict]] = {}
        for row in rows:
            params = {"_id": row["id"], "stamps": row["stamps"], **row["set"]}
            if row["has_fields"]:
                params["fields"] = row["fields"]
            shapes.setdefault(tuple(sorted(params)), []).append(params)
        for shape, params in shapes.items():
            if self.conn.dialect.name == "sqlite" and set(shape) <= {"_id", "stamps", "fields"}:
                # Straight to the driver with the JSON encoded once per row, as the
                # engine's serializer would, instead of SQLAlchemy's per-row processing.
                names = [name for name in shape if name != "_id"]
                sets = ", ".join(f"{name} = ?" for name in names)
                self.conn.exec_driver_sql(
                    f'UPDATE "{table.name}" SET {sets} WHERE id = ?',
                    [tuple(_store_json(p[name]) for name in names) + (p["_id"],) for p in params],
                )
                continue
            values = {name: bindparam(name) for name in shape if name != "_id"}
            statement = table.update().where(table.c.id == bindparam("_id")).values(values)
            self.conn.execute(statement, params)


class _Inserts:
    """How new rows of one entity become driver tuples on one kind of database, worked out once.

    A row comes out as SQLAlchemy's insert of the model made it: the model's
    defaults fill what it leaves out, an aware moment is kept in UTC, and a
    value whose column type converts it for the database (a moment's text or
    a checked yes/no on SQLite) is converted by that type's own bind
    processor. The district's fields are encoded once, in the op's form,
    and that text is both the row's JSON column and the second half of the
    op's JSON, after the typed columns (sorted); the fields keep the order
    they were given in, as the JSON column always has. Nothing reads either
    but as JSON.
    """

    _plans: dict[tuple[str, str], "_Inserts"] = {}

    @classmethod
    def of(cls, entity: str, dialect) -> "_Inserts":
        plan = cls._plans.get((entity, dialect.name))
        if plan is None:
            plan = cls._plans[(entity, dialect.name)] = cls(entity, dialect)
        return plan

    def __init__(self, entity: str, dialect):
        table = table_of(entity)
        settable = columns_of(entity) - {"fields"}
        self.entity, self.table = entity, table.name
        self.has_fields = "fields" in table.c
        #: Typed columns in the table's order: a row's tuple holds them in this order.
        self.typed = [c.name for c in table.columns if c.name in settable]
        self.settable = frozenset(self.typed)
        # Every typed column, in sorted order: a row's columns keep it, and so does their JSON in
        # the op. The id and columns with a default factory are placeholders; a required column
        # left out is NULL, which its NOT NULL constraint refuses.
        specs = ENTITIES[entity].model_fields
        self.defaults: dict[str, Any] = {
            name: None if spec.default is PydanticUndefined else spec.default
            for name, spec in sorted((name, specs[name]) for name in settable)}
        self.factories = [(name, specs[name].default_factory) for name in self.typed
                          if specs[name].default_factory is not None]
        self.dates = [c.name for c in table.columns if c.name in settable and isinstance(c.type, DateTime)]
        self.processors = []
        for at, name in enumerate(self.typed):
            kind = table.c[name].type
            process = codec.column if isinstance(kind, JSON) else kind.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors.append((at, name, process))
        typed = self.typed
        self.values = itemgetter(*typed) if len(typed) > 1 else lambda row: (row[typed[0]],)
        #: `placement.Placed.note` passes over a new row that names none of its owners.
        self.owners = [column for column, _ in placement.OWNERS.get(entity, ())]

    def build(self, rows: list, stamps: Iterable[int], op_ids: list[str], new_ids: Iterator[str]) -> tuple:
        """The rows as driver tuples (their `typed` values, fields JSON, stamp), their ops
        ``(op_id, id, stamp, fields JSON)``, their ids and ``(id, columns)`` of those naming an owner.

        A row's id is its own or the next of ``new_ids``. Raises `StoreError` naming a field that
        is not the entity's or is kept by change capture, or a value its column cannot hold.
        """
        entity, defaults, factories, settable, has_fields = (
            self.entity, self.defaults, self.factories, self.settable, self.has_fields)
        values_of, processors, dates, owners = self.values, self.processors, self.dates, self.owners
        encode, special = _in_order, REPLICATION_COLUMNS | {"fields"}
        params, ops, ids, owned = [], [], [], []
        for values, stamp, op_id in zip(rows, stamps, op_ids):
            flat = defaults.copy()
            for name, factory in factories:
                flat[name] = factory()
            custom, given = {}, None
            for name, value in values.items():
                if name in settable:
                    flat[name] = value
                elif name not in special and has_fields:
                    custom[name] = value
                elif name == "fields":
                    given = _mapping(entity, value)
                else:
                    _split(entity, {name: value}, columns_of(entity))  # raises, naming the field
            for name in dates:
                moment = flat[name]
                if isinstance(moment, datetime) and moment.tzinfo is not None:
                    # SQLite keeps no zone: store every moment in UTC so it reads back right.
                    flat[name] = moment.astimezone(timezone.utc)
            entity_id = flat["id"]
            if entity_id is None and "id" not in values:
                entity_id = flat["id"] = next(new_ids)
            row = values_of(flat)
            if processors:
                row = self._processed(row)
            op_json = encode(flat)
            if has_fields:
                fields = ({**given, **custom} if custom else given) if given else custom
                if fields:
                    fields_json = encode(fields)
                    if given and not settable.isdisjoint(given):
                        op_json = codec.op({**flat, **fields})  # a custom value stands for the column's in the op
                    else:
                        op_json = op_json[:-1] + "," + fields_json[1:]
                    params.append((*row, fields_json, stamp))
                else:
                    params.append((*row, "{}", stamp))
            else:
                params.append((*row, stamp))
            ops.append((op_id, entity_id, stamp, op_json))
            ids.append(entity_id)
            if owners:
                for column in owners:
                    if flat[column] is not None:
                        owned.append((entity_id, flat))
                        break
        return params, ops, ids, owned

    def _processed(self, row: tuple) -> list:
        row = list(row)
        for at, name, process in self.processors:
            try:
                row[at] = process(row[at])
            except (TypeError, ValueError) as exc:
                raise StoreError(f"cannot insert {self.entity}: {name} = {row[at]!r} does not fit the column: "
                                 f"{exc}") from None
        return row

    def write(self, conn: Connection, device: str, params: list[tuple]) -> None:
        """Insert rows given as `build` makes them, stamped by ``device``: one executemany."""
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        names = [*self.typed, *(["fields"] if self.has_fields else []), "hlc", "origin"]
        marks = [mark] * (len(names) - 1)
        if "\x00" in device:  # bound, so the database names what it cannot hold
            marks.append(mark)
            params = [(*row, device) for row in params]
        else:
            # The batch's device as a literal, as the op log has it (`Recorder._write_ops`).
            origin = sql_text(device)
            marks.append(origin if mark == "?" else origin.replace("%", "%%"))
        statement = (f'INSERT INTO "{self.table}" ({", ".join(names)}, stamps, deleted) '
                     f"VALUES ({', '.join(marks)}, '{{}}', NULL)")
        conn.exec_driver_sql(statement, params)


_in_order_c = codec._c_encoder(codec.json_value, json.encoder.encode_basestring, (",", ":"), False)


def _in_order(value: Mapping[str, Any]) -> str:
    """The op form of `wangge.core.codec` with the keys in the mapping's own order (sorting
    them cost a tenth of a bulk insert)."""
    return "".join(_in_order_c(value, 0)) if _in_order_c else codec.op(value)


def _mapping(entity: str, value: Any) -> dict:
    try:
        return dict(value)
    except (TypeError, ValueError):
        raise StoreError(f"{entity}.fields: expected a mapping of field names to values, got {value!r}") from None


def patch_rows(conn: Connection, table: str, patches: Iterable[tuple], *, live_only: bool,
               whole_stamps: bool = False) -> int:
    """Merge changes into rows on SQLite without reading them; return how many rows matched.

    Each patch is ``(id, typed column values, custom fields, their JSON, stamps JSON)``: typed
    columns are set, custom fields merged by ``json_patch``, and so are the stamps unless
    ``whole_stamps`` says the JSON holds all of the row's (a caller that read them: setting
    costs SQLite a third less than merging). One executemany per shape.
    ``live_only`` leaves tombstoned rows alone (they then do not count as matched).
    """
    shapes: dict[tuple, list[tuple]] = {}
    for entity_id, plain, custom, custom_json, stamps_json in patches:
        # A merge patch deletes a key set to null: nulls are set one by one.
        nulls = tuple(name for name, value in custom.items() if value is None) if None in custom.values() else ()
        params = (*plain.values(), custom_json, *(f'$."{name}"' for name in nulls), stamps_json, entity_id)
        shapes.setdefault((tuple(plain), nulls), []).append(params)
    matched = 0
    for (plain, nulls), params in shapes.items():
        at = len(plain) + 1  # where the custom fields' JSON is bound, then the nulls' paths
        fields = f"json_patch(fields, ?{at})"
        if nulls:
            fields = "json_set(" + fields + "".join(f", ?{at + n}, json('null')" for n in range(1, len(nulls) + 1)) + ")"
        at += len(nulls) + 1  # the stamps' JSON
        stamps = f"?{at}" if whole_stamps else _merged_stamps(at)
        sets = [f'"{name}" = ?{n}' for n, name in enumerate(plain, 1)] + [f"fields = {fields}", f"stamps = {stamps}"]
        live = " AND deleted IS NULL" if live_only else ""
        matched += conn.exec_driver_sql(f'UPDATE "{table}" SET {", ".join(sets)} WHERE id = ?{at + 1}{live}',
                                        params).rowcount
    return matched


def _merged_stamps(at: int) -> str:
    """SQL for a row's stamps merged with the patch bound at ``?{at}``.

    A row not edited since its insert has no stamps and takes the patch as it
    is: SQLite's json_patch of the stamps cost as much as the rest of a form
    save's UPDATE.
    """
    return f"CASE WHEN stamps = '{{}}' THEN ?{at} ELSE json_patch(stamps, ?{at}) END"


_SIMPLE_TYPES = frozenset({str, int, float, bool, type(None)})
#: Values a JSON merge patch sets as they are (a null would delete the field).
_PLAIN_TYPES = frozenset({str, int, float, bool})


def sql_text(value: str) -> str:
    """An SQL string literal (quotes doubled); the caller keeps NUL out."""
    return "'" + value.replace("'", "''") + "'"


def _split(entity: str, values: Mapping[str, Any], columns: frozenset[str]) -> tuple[dict, dict]:
    """Separate typed columns from the district's custom fields."""
    plain, custom = {}, {}
    for name, value in values.items():
        if name in REPLICATION_COLUMNS:
            raise StoreError(f"cannot set {entity}.{name}: it is kept by change capture")
        if name in columns and name != "fields":
            if isinstance(value, datetime) and value.tzinfo is not None:
                # SQLite keeps no zone: store every moment in UTC so it reads back right.
                value = value.astimezone(timezone.utc)
            plain[name] = value
        elif name == "fields":
            plain["fields"] = dict(value)
        else:
            if "fields" not in columns:
                raise StoreError(f"{entity} has no field {name!r}: expected one of {', '.join(sorted(columns))}")
            custom[name] = value
    return plain, custom


def _op_fields(values: Mapping[str, Any]) -> dict:
    """An op's fields: typed columns and custom fields flattened into one mapping."""
    flat = {k: v for k, v in values.items() if k != "fields" and k not in REPLICATION_COLUMNS}
    flat.update(values.get("fields") or {})
    return flat


#: Field names as JSON strings, for building patches as text.
_quoted: dict[str, str] = {}
#: Per tuple of field names, the pieces of a stamp patch that one stamp joins.
_templates: dict[tuple, list[str]] = {}
_encode_str = json.encoder.encode_basestring


def _quote(name: str) -> str:
    _quoted[name] = text = dumps(name)
    return text


#: ``{"name":`` per field name, the start of a one-field op's JSON.
_opened: dict[str, str] = {}


def _open(name: str) -> str:
    _opened[name] = text = "{" + (_quoted.get(name) or _quote(name)) + ":"
    return text


def _stamps_patch(names: Mapping[str, Any], stamp: Optional[int], tail: str) -> str:
    """The JSON object of field stamps ``[hlc, device]``: every name stamped ``stamp``, or, without
    one, each name its own; ``tail`` is the device's part of a stamp, ``,"device"]``."""
    if stamp is not None:
        key = tuple(names)
        pieces = _templates.get(key)
        if pieces is None:
            if not key:
                return "{}"
            quoted = [_quoted.get(name) or _quote(name) for name in key]
            pieces = ["{" + quoted[0] + ":"] + ["," + q + ":" for q in quoted[1:]] + ["}"]
            if len(_templates) < 4096:  # forms have few shapes; don't grow without bound
                _templates[key] = pieces
        return f"[{stamp}{tail}".join(pieces)
    return "{" + ",".join([f"{_quoted.get(name) or _quote(name)}:[{own}{tail}" for name, own in names.items()]) + "}"


