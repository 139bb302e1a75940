"""Bundles a revoked tablet still sends: refused, kept unopened, and listed for the office.

A tablet revoked because it was lost or stolen, or whose worker left, may
still hold work nobody else has. Its bundle is refused (nothing in it
applies), but one that carries the tablet's own signature is kept as it
came, sealed to the master, and listed in `wangge conflicts` (kind
``revoked``) so the office learns that the tablet is still in use and keeps
what it sent. A bundle forged in its name fails the signature first and is
kept nowhere; a tablet that keeps trying fills no disk (`KEEP_MAX`).
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from wangge.core.hlc import pack
from wangge.sync import bundle
from wangge.sync.log import tables

#: Bundles kept per revoked tablet; later ones are refused and counted only.
KEEP_MAX = 20
_kept, _c = tables.revoked, tables.conflict


def keep(conn: Connection, head: bundle.Header, data: bytes, now_ms: int) -> str:
    """Keep a revoked tablet's verified bundle and list it; return what was done, for the refusal."""
    if conn.execute(select(_kept.c.bundle_id).where(_kept.c.bundle_id == head.id)).first():
        return "the bundle was kept before"
    if conn.execute(select(tables.seen.c.bundle_id).where(tables.seen.c.bundle_id == head.id)).first():
        return "it is an old bundle, imported before the revocation: not kept again"
    held = conn.execute(select(func.count()).select_from(_kept).where(_kept.c.device_id == head.sender)).scalar()
    if held >= KEEP_MAX:
        return f"not kept: {held} of its bundles are kept already"
    conn.execute(_kept.insert().values(bundle_id=head.id, device_id=head.sender, seq=head.seq, at=now_ms, data=data))
    conn.execute(_c.insert().values(
        kind="revoked", entity="device", entity_id=head.sender, field="", op_id=head.id, device=head.sender,
        kept=None, lost={"bundle": head.id, "bytes": len(data)}, hlc=pack(now_ms), resolved=False,
        note=f"a bundle from revoked device {head.sender}, refused and kept unopened ({len(data):,} bytes): "
             f"the tablet is still in use"))
    return "the bundle is kept for the office (wangge conflicts)"
