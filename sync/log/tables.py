"""The sync protocol's own tables, added to a store by named migrations.

Pass `MIGRATIONS` as ``extra_migrations`` to `wangge.core.store.init`/`open`.
None of these tables is replicated: they are each replica's bookkeeping.

* ``sync_peer`` (master): per device, the last bundle sequence and id, the
  device's own ops acknowledged so far (``through``, its local op seq), the
  master cursor it has acknowledged, its scope, and the last reply (so a
  re-sent bundle gets the same reply without being applied twice).
* ``sync_seen`` (master): every bundle id accepted, for replay protection.
* ``sync_conflict``: critical-field conflicts, stale transitions, office
  proposals and quarantined ops, for review (`wangge conflicts`).
* ``sync_quarantine``: ops not applied (clock drift, a collected row, or
  needing such an op first), kept whole, never lost (`wangge.sync.master.quarantine`).
* ``sync_revoked`` (master): bundles a revoked tablet sent, kept unopened
  (`wangge.sync.master.revoked`).
* ``sync_collected`` (master): ids of tombstoned rows removed by collection,
  so a late edit of one is set aside instead of refusing its bundle, and a
  device that still holds the tombstone is told to drop it.
* ``sync_mark``: per shared entity (grid cells, workers, assignments), a
  random mark that a trigger sets anew on every write to its table, in the
  writing transaction, so a checksum of the whole table is digested again
  only after a change (`wangge.sync.log.scope.checksums`).
"""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Integer, LargeBinary, MetaData, String, Table, text
from sqlalchemy.engine import Connection

from wangge.core.migrations import Migration, _add_column

metadata = MetaData()

peer = Table(
    "sync_peer", metadata,
    Column("device_id", String, primary_key=True),
    Column("bundle_seq", BigInteger, nullable=False, default=0),
    Column("bundle_id", String, nullable=False, default=""),
    Column("through", BigInteger, nullable=False, default=0),
    Column("cursor", BigInteger, nullable=False, default=0),
    Column("scope", JSON, nullable=False, default=list),
    Column("reply_id", String, nullable=False, default=""),
    Column("reply", LargeBinary, nullable=True),
    Column("seen_at", BigInteger, nullable=False, default=0),
)

seen = Table(
    "sync_seen", metadata,
    Column("bundle_id", String, primary_key=True),
    Column("device_id", String, nullable=False, index=True),
    Column("seq", BigInteger, nullable=False),
)

conflict = Table(
    "sync_conflict", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String, nullable=False),  # critical | stale | proposal | quarantine | revoked
    Column("entity", String, nullable=False),
    Column("entity_id", String, nullable=False),
    Column("field", String, nullable=False, default=""),
    Column("op_id", String, nullable=False),
    Column("device", String, nullable=False, default=""),
    Column("kept", JSON, nullable=True),  # the value the replica holds
    Column("lost", JSON, nullable=True),  # the value that did not win
    Column("hlc", BigInteger, nullable=False, default=0),
    Column("note", String, nullable=False, default=""),
    Column("resolved", Boolean, nullable=False, default=False),
)

quarantine = Table(
    "sync_quarantine", metadata,
    Column("op_id", String, primary_key=True),
    Column("device", String, nullable=False),
    Column("op", JSON, nullable=False),
    Column("reason", String, nullable=False),
    Column("at", BigInteger, nullable=False),
)


revoked = Table(
    "sync_revoked", metadata,
    Column("bundle_id", String, primary_key=True),
    Column("device_id", String, nullable=False, index=True),
    Column("seq", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),  # as it came: signed, sealed to the master
)


collected = Table(
    "sync_collected", metadata,
    Column("entity", String, primary_key=True),
    Column("entity_id", String, primary_key=True),
    Column("horizon", BigInteger, nullable=False),
    # The master's log top when collected: a device whose cursor is below it may still hold
    # the tombstone, and is told to drop it (`evict`), or its checksums would differ.
    Column("seq", BigInteger, nullable=False, default=0),
)


mark = Table(
    "sync_mark", metadata,
    Column("entity", String, primary_key=True),
    Column("mark", String, nullable=False),
)


def _keep_marks(conn: Connection) -> None:
    # Every write path (the office's capture, applied ops, eviction, collection, a hand-made
    # SQL fix) passes through the table, so a trigger, not the code, sets the mark.
    from wangge.core.entities import SHARED, MODELS

    mark.create(conn, checkfirst=True)
    postgres = conn.dialect.name == "postgresql"
    new = "md5(random()::text || clock_timestamp()::text)" if postgres else "lower(hex(randomblob(16)))"
    if postgres:
        conn.execute(text(f"CREATE OR REPLACE FUNCTION sync_mark_set() RETURNS trigger LANGUAGE plpgsql AS $$ "
                          f"BEGIN UPDATE sync_mark SET mark = {new} WHERE entity = TG_ARGV[0]; RETURN NULL; END $$"))
    for entity in sorted(SHARED):
        conn.execute(text(f"INSERT INTO sync_mark (entity, mark) SELECT '{entity}', {new} "
                          f"WHERE NOT EXISTS (SELECT 1 FROM sync_mark WHERE entity = '{entity}')"))
        table = MODELS[entity].__table__.name
        if postgres:
            conn.execute(text(f"CREATE TRIGGER sync_mark_{table} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                              f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION sync_mark_set('{entity}')"))
            continue
        for event in ("INSERT", "UPDATE", "DELETE"):
            conn.execute(text(f"CREATE TRIGGER sync_mark_{table}_{event.lower()} AFTER {event} ON {table} "
                              f"BEGIN UPDATE sync_mark SET mark = {new} WHERE entity = '{entity}'; END"))


def _create(conn: Connection) -> None:
    metadata.create_all(conn)
    # One conflict per (kind, op, field): replays re-derive stale moves without duplicating them.
    conn.execute(text("CREATE UNIQUE INDEX ix_sync_conflict_op ON sync_conflict (kind, op_id, field)"))
    # Pulls, repairs and evictions look ops up by entity.
    conn.execute(text("CREATE INDEX ix_op_entity ON op (entity, entity_id)"))


def _list_quarantine(conn: Connection) -> None:
    # Ops held before quarantined ops were answerable get their row for review.
    for op_id, device, op, reason in conn.execute(quarantine.select().with_only_columns(
            quarantine.c.op_id, quarantine.c.device, quarantine.c.op, quarantine.c.reason)).all():
        listed = conn.execute(conflict.select().where(conflict.c.kind == "quarantine", conflict.c.op_id == op_id))
        if listed.first() is None:
            conn.execute(conflict.insert().values(kind="quarantine", entity=op[1], entity_id=op[2], field="",
                                                  op_id=op_id, device=device, kept=None, lost=op[7], hlc=op[3],
                                                  note=reason, resolved=False))


MIGRATIONS: tuple[Migration, ...] = (
    Migration("sync_0001_bookkeeping", _create),
    # Stores made after the table joined `metadata` have it from sync_0001 already.
    Migration("sync_0002_collected", lambda conn: collected.create(conn, checkfirst=True)),
    Migration("sync_0003_quarantine_for_review", _list_quarantine),
    Migration("sync_0004_revoked_bundles", lambda conn: revoked.create(conn, checkfirst=True)),
    Migration("sync_0005_collected_seq",
              lambda conn: _add_column(conn, "sync_collected", "seq", "BIGINT NOT NULL DEFAULT 0")),
    Migration("0005_master_keys_out", lambda conn: _move_keys_out(conn)),
    Migration("sync_0010_shared_marks", _keep_marks),
)


def _move_keys_out(conn) -> None:
    # The master's private keys leave the database for its key file (wangge.sync.identity).
    from wangge.sync.identity import move_keys_out

    move_keys_out(conn)
