"""Pushes a tablet with a bug (or another implementation) can send: its own keys sign and seal them
properly, so only what is inside them can be refused; and a dump of a store to show a refusal changed
nothing, on SQLite and PostgreSQL alike."""
from __future__ import annotations

from sqlalchemy import inspect, text

from wangge.core.hlc import pack
from wangge.core.ids import uuid7
from wangge.sync import bundle


def signed_push(net, tablet, ops: list, *, seq: int = 100, cursor: int | None = None) -> bytes:
    """A push of wire ``ops`` signed with ``tablet``'s keys and sealed to ``net``'s master. ``cursor``
    defaults to the tablet's own, and the push says it holds the master's rules (so the district's
    fields are checked): nothing but the ops looks wrong."""
    if cursor is None:
        cursor = tablet_cursor(tablet)
    rules = net.ruleset.version if net.ruleset else ""
    return bundle.build("push", uuid7(), tablet.store.device_id, net.master.device_id, seq,
                        {"ops": ops, "cursor": cursor, "repair": False, "ruleset": rules}, tablet.keys,
                        net.master_keys.public)


def tablet_cursor(tablet) -> int:
    """The master log position ``tablet`` has applied: what its next push says."""
    from wangge.core.store import get_meta

    with tablet.store.read() as conn:
        return int(get_meta(conn, "sync.cursor") or 0)


def wire_op(net, tablet, entity: str, kind: str, fields: dict, *, entity_id: str | None = None,
            seen=None, stamps=None, seq: int = 1000) -> list:
    """One op as it travels, recorded by ``tablet`` now."""
    op = [uuid7(), entity, entity_id or uuid7(), pack(net.clock()), tablet.worker, tablet.store.device_id, kind,
          fields, seen, seq]
    return op + [stamps] if stamps is not None else op


def dump(store) -> dict[str, list[str]]:
    """Every row of every table, in a stable order."""
    with store.read() as conn:
        names = sorted(inspect(conn).get_table_names())
        return {name: sorted(map(repr, conn.execute(text(f'SELECT * FROM "{name}"')).all())) for name in names}


def sealed_raw(net, tablet, raw: bytes, *, seq: int = 100) -> bytes:
    """A push whose body is ``raw`` as it is (JSON wangge would never write), signed and sealed properly."""
    import struct
    import zlib

    eph, encrypt = bundle.begin_seal(net.master_keys.public.box)
    header = bundle.Header("push", uuid7(), tablet.store.device_id, net.master.device_id, seq, eph,
                           len(raw)).to_bytes()
    payload = encrypt(zlib.compress(raw, 6), header)
    signed = bundle.MAGIC + struct.pack(">I", len(header)) + header + struct.pack(">I", len(payload)) + payload
    return signed + tablet.keys.sign(signed)


def tablet_with_household(net, name: str = "a", grid: str = "g1", **fields):
    """A tablet of ``grid`` that recorded one household there and synced it: (tablet, household id)."""
    tablet = net.add_tablet(name, grids=(grid,))
    net.sync(tablet)
    with tablet.store.write(actor=tablet.worker) as rec:
        house = rec.insert("household", {"grid_id": grid, "address": "1-1", **fields})
    net.sync(tablet)
    return tablet, house
