"""What both sides of the sync session share: the peer at the other end, the refusals, and
reading a bundle's body, a logged op and the rows that refer to others.

The session is sans-IO: bundle bytes in, reply bytes out. A transport (HTTP, a
USB stick) only moves bytes::

    push = device.make_push()                 # on the tablet: `wangge.sync.device.exchange`
    reply, summary = master.exchange(push)    # on the master: `wangge.sync.master.exchange`
    result = device.accept_reply(reply)       # on the tablet
    # repeat while result.again (a scope repair was asked for)
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from wangge.core.capture import stored_json
from wangge.core.errors import SyncError
from wangge.sync import bundle
from wangge.sync.keys import PublicKeys
from wangge.sync.log import apply, columns
from wangge.sync.log.ops import MAX_INT, OpError, WireOp, from_wire


class NotEnrolled(SyncError, PermissionError):
    """The sender is unknown, not yet approved, or revoked."""


class Replayed(SyncError):
    """A bundle was seen before, or its sequence number is not new."""

    http_status = 409


class CloneDetected(SyncError):
    """Two tablets (or a restored backup) use one device id."""


@dataclass(frozen=True)
class Peer:
    """Who is at the other end: id and public keys."""

    device_id: str
    keys: PublicKeys


def body_ops(body: dict, where: str) -> list[WireOp]:
    """The checked ops of an opened body, of either format (a version 2 body's come in columns).
    Raises `BundleError` naming the op and what is wrong with it."""
    items = body.get("ops")
    try:
        if isinstance(items, columns.Groups):
            return columns.decode(items, where)
        if not isinstance(items, list):
            raise bundle.BundleError(f"{where}: body needs a list of ops")
        return [from_wire(item, f"{where} op {n}") for n, item in enumerate(items)]
    except OpError as exc:
        raise bundle.BundleError(str(exc)) from None


def body_int(body: dict, name: str, where: str) -> int:
    value = body.get(name)
    # Log positions go into signed 64-bit columns and SQL comparisons: a larger one fails there.
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise bundle.BundleError(f"{where}: body field {name!r} must be a non-negative integer in 0..{MAX_INT}, "
                                 f"got {value!r:.60}")
    return value


def op_of_row(row) -> WireOp:
    fields, stamps = stored_json(row.fields), stored_json(row.stamps)
    return WireOp(row.op_id, row.entity, row.entity_id, row.hlc, row.actor, row.device, row.kind, fields, None,
                  row.seq, stamps or None)


def referring(conn: Connection, entity: str, column: str, ids: set[str]) -> set[str]:
    """Ids of the ``entity`` rows whose ``column`` names one of ``ids``."""
    table, found, listed = apply.table_of(entity), set(), sorted(ids)
    for start in range(0, len(listed), apply.CHUNK):
        found.update(conn.execute(select(table.c.id).where(
            table.c[column].in_(listed[start : start + apply.CHUNK]))).scalars())
    return found

