"""A tablet's sync state: one typed record, read and written once per exchange.

The state lives in the store's ``store_meta`` table under the keys listed in
`KEYS` (so stores written before this record existed read the same), but the
sync code sees one `DeviceSession`: `load` reads every key in one query,
`save` writes the keys whose value changed since, in the caller's
transaction. Nothing else reads or writes these keys.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Optional

from sqlalchemy import select
from sqlalchemy.engine import Connection

from wangge.core.models import StoreMeta
from wangge.core.store import set_meta

_meta = StoreMeta.__table__
META_ENROLLED_WITH = "sync.enrolled_with"


@dataclass(frozen=True)
class Pending:
    """The push a tablet waits for a reply to."""

    bundle_id: str
    seq: int


@dataclass
class DeviceSession:
    """Where a tablet stands with its master.

    ``through``: the last of its own op positions the master acknowledged;
    ``cursor``: the master's log position it has received up to; ``seq``: its
    last push's sequence number; ``pending``: the push awaiting a reply;
    ``repair``: the next push asks for its scope afresh (checksums differed);
    ``ruleset``: the master's ruleset as canonical JSON; ``master``: the
    trusted master's id and public keys; ``enrolled_with``: the URL the
    enrollment request went to; ``last_sync_ms`` and ``lease_days``: the lease.
    """

    through: int = 0
    cursor: int = 0
    seq: int = 0
    pending: Optional[Pending] = None
    repair: bool = False
    ruleset: Optional[str] = None
    master: Optional[dict] = None  # {"id", "sign", "box"}
    enrolled_with: Optional[str] = None
    last_sync_ms: Optional[int] = None
    lease_days: Optional[int] = None
    high_water_ms: Optional[int] = None  # the latest time this tablet is known to have seen
    _loaded: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, conn: Connection) -> "DeviceSession":
        """The session as stored, in one query."""
        stored = dict(conn.execute(select(_meta.c.key, _meta.c.value).where(_meta.c.key.in_(KEYS.values()))).all())
        values = {name: _decode(name, stored.get(key)) for name, key in KEYS.items()}
        return cls(**{k: v for k, v in values.items() if v is not None}, _loaded=stored)

    def save(self, conn: Connection) -> None:
        """Write the fields changed since `load`, in ``conn``'s transaction."""
        for name, key in KEYS.items():
            text = _encode(name, getattr(self, name))
            if text is not None and text != self._loaded.get(key):
                set_meta(conn, key, text)
                self._loaded[key] = text

    def evolve(self, **changes) -> "DeviceSession":
        return replace(self, **changes, _loaded=self._loaded)


#: Each field's key in ``store_meta``, as older stores wrote them.
KEYS = {"through": "sync.through", "cursor": "sync.cursor", "seq": "sync.seq", "pending": "sync.pending",
        "repair": "sync.repair", "ruleset": "sync.ruleset", "master": "sync.master",
        "enrolled_with": META_ENROLLED_WITH, "last_sync_ms": "last_sync_ms", "lease_days": "lease_days",
        "high_water_ms": "lease.high_water_ms"}
_INTS = frozenset({"through", "cursor", "seq", "last_sync_ms", "lease_days", "high_water_ms"})


def _decode(name: str, text: Optional[str]):
    if not text:
        return None
    if name in _INTS:
        return int(text)
    if name == "repair":
        return text == "1"
    if name == "pending":
        data = json.loads(text)
        return Pending(data["id"], int(data["seq"])) if data else None
    if name == "master":
        return json.loads(text)
    return text


def _encode(name: str, value) -> Optional[str]:
    if name == "pending":
        return "{}" if value is None else json.dumps({"id": value.bundle_id, "seq": value.seq})
    if value is None:
        return None
    if name == "repair":
        return "1" if value else "0"
    if name == "master":
        return json.dumps(value)
    return str(value)
