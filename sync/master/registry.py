"""The device registry as a signed, versioned snapshot.

The master's ``device`` table is the registry: who is enrolled, with which
public keys, active or revoked. A snapshot is that table at one version,
signed by the master, so anyone holding the master's public key (a tablet,
an auditor, a second office) can check who may sync and notice a stale or
forged list::

    {"snapshot": "<canonical JSON>", "signature": "<base64 Ed25519>"}

The canonical JSON (sorted keys, no spaces, UTF-8) holds ``format`` (1),
``master``, ``version``, ``issued`` (UTC ISO 8601) and ``devices``: each
``id``, ``name``, ``sign_key``, ``box_key``, ``status`` and ``worker``,
sorted by id. The version is the greatest change stamp of any device row, so
it grows with every enrollment, approval and revocation, whoever makes it.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.engine import Connection

from wangge.core.errors import SyncError
from wangge.core.models import Device
from wangge.sync.keys import DeviceKeys, PublicKeys

FORMAT = 1
_devices = Device.__table__


class RegistryError(SyncError, ValueError):
    """A registry snapshot is malformed, forged, or older than one already held."""


def version(conn: Connection) -> int:
    """The registry's version: the newest change stamp of any device row (0 when empty)."""
    rows = conn.execute(select(_devices.c.hlc, _devices.c.deleted, _devices.c.stamps)).all()
    newest = 0
    for hlc, deleted, stamps in rows:
        changed = [pair[0] for pair in (stamps or {}).values()]
        newest = max(newest, hlc, deleted or 0, *changed)
    return newest


def snapshot(conn: Connection, master_id: str, keys: DeviceKeys, now: datetime | None = None) -> bytes:
    """The registry now, signed with the master's key."""
    now = now or datetime.now(timezone.utc)
    rows = conn.execute(select(_devices).where(_devices.c.deleted.is_(None)).order_by(_devices.c.id)).mappings()
    body = {
        "format": FORMAT, "master": master_id, "version": version(conn),
        "issued": now.astimezone(timezone.utc).isoformat(timespec="seconds"),
        "devices": [{"id": r["id"], "name": r["name"], "sign_key": r["sign_key"], "box_key": r["box_key"],
                     "status": r["status"], "worker": r["worker_id"]} for r in rows],
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    signature = base64.b64encode(keys.sign(text.encode("utf-8"))).decode()
    return json.dumps({"snapshot": text, "signature": signature}, ensure_ascii=False).encode("utf-8")


def verify(data: bytes, master: PublicKeys, *, newer_than: int = 0) -> dict:
    """The snapshot's contents, once its signature and format check out.

    Raises `RegistryError` for a malformed or forged snapshot, or one whose
    version is not above ``newer_than`` (a replayed, older list).
    """
    try:
        outer = json.loads(data)
        text, signature = outer["snapshot"], base64.b64decode(outer["signature"], validate=True)
        body = json.loads(text)
    except (ValueError, KeyError, TypeError):
        raise RegistryError("not a registry snapshot: expected {\"snapshot\": ..., \"signature\": ...}") from None
    try:
        master.verify(signature, text.encode("utf-8"), "the registry snapshot")
    except SyncError as exc:
        raise RegistryError(str(exc)) from None
    if not isinstance(body, dict) or body.get("format") != FORMAT or not isinstance(body.get("devices"), list):
        raise RegistryError(f"registry snapshot format {body.get('format') if isinstance(body, dict) else '?'} "
                            f"is not supported: expected {FORMAT}")
    if not isinstance(body.get("version"), int) or body["version"] <= newer_than:
        raise RegistryError(f"registry snapshot version {body.get('version')} is not newer than the "
                            f"{newer_than} already held: an old list replayed")
    return body
