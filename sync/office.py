"""The street office's master service: what `wangge serve` puts behind HTTP.

`Office` implements the `wangge.web.sync.Master` interface over a master
store: enrollment and the device registry (`wangge.sync.enrollment`),
signed-request checks for photos, health, and the bundle exchange, which it
hands to the sync protocol's bundle importer (``exchange`` callable) so that
HTTP and USB files apply bundles by exactly the same code.
"""
from __future__ import annotations

import base64
from typing import Callable, Optional

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from wangge.core.errors import SyncError, UsageError
from wangge.core.models import Assignment, Device, GridCell
from wangge.sync import enrollment

_devices, _assign, _grids = Device.__table__, Assignment.__table__, GridCell.__table__


class Office:
    """A master store behind the HTTP transport.

    ``exchange(bundle) -> Exchanged`` applies a device's bundle (the
    sync protocol); ``live_rules`` (a `wangge.sync.transport.watch.LiveRuleset`) gives
    health the running ruleset version.
    """

    def __init__(self, store, exchange: Callable[[bytes], object], *, live_rules=None,
                 public_keys=None):
        self.store = store
        self._exchange = exchange
        self.live_rules = live_rules
        self.public_keys = public_keys  # the master's, handed to a tablet once it is approved

    def exchange(self, bundle: bytes):
        """The sync protocol's import of ``bundle``: a `wangge.sync.transport.fieldwork.Exchanged`."""
        return self._exchange(bundle)

    def read(self):
        return self.store.read()

    def enroll(self, request: dict) -> dict:
        parsed = enrollment.EnrollmentRequest.from_dict(request)
        with self.store.write(actor="enrollment") as rec:
            state = enrollment.submit(rec, parsed)
        return {"device_id": parsed.device_id, "status": state, "fingerprint": parsed.fingerprint}

    def enrollment(self, device_id: str) -> dict:
        """The device's enrollment status; once active, also the master's id and public keys."""
        with self.store.read() as conn:
            try:
                answer = enrollment.status(conn, device_id)
            except UsageError as exc:
                raise SyncError(str(exc)) from None
        if answer["status"] == "active" and self.public_keys is not None:
            sign, box = self.public_keys.b64()
            answer["master"] = {"id": self.store.device_id, "sign_key": sign, "box_key": box}
        return answer

    def device_grids(self, device_id: str, message: bytes, signature: bytes) -> list[str]:
        """Grids of an active device whose signature verifies. Raises `SyncError`."""
        with self.store.read() as conn:
            row = _signed_by(conn, device_id, message, signature, ("active",))
            return grids_of_worker(conn, row.worker_id)

    def may_upload(self, device_id: str, message: bytes, signature: bytes) -> None:
        """Raise `SyncError` unless an enrolled device signed ``message``: only they may store a bundle here.

        A revoked device may still upload: its bundle is refused at the exchange
        but kept for the office to review (`wangge.sync.master.revoked`).
        """
        with self.store.read() as conn:
            _signed_by(conn, device_id, message, signature, ("active", "revoked"))

    def registry(self) -> bytes:
        """The device registry, signed by this master (`wangge.sync.master.registry`)."""
        from wangge.sync.master import registry
        from wangge.sync.identity import store_keys

        keys = store_keys(self.store)
        with self.store.read() as conn:
            return registry.snapshot(conn, self.store.device_id, keys)

    def health(self) -> dict:
        facts = {"role": self.store.role, "master": self.store.device_id}
        if self.live_rules is not None:
            facts["ruleset"] = self.live_rules.version
            facts["rules_error"] = self.live_rules.last_error
        return facts


def _signed_by(conn, device_id: str, message: bytes, signature: bytes, statuses: tuple[str, ...]):
    """The device row of ``device_id`` if its status is one of ``statuses`` and its key signed ``message``."""
    row = conn.execute(select(_devices).where(_devices.c.id == device_id)).first()
    if row is None or row.status not in statuses:
        state = "unknown" if row is None else row.status
        raise SyncError(f"device {device_id} is {state} at this master: requests refused")
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(row.sign_key)).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise SyncError(f"request signature of device {device_id} does not verify") from None
    return row


def grids_of_worker(conn, worker_id: Optional[str]) -> list[str]:
    """The grid cells a worker is actively assigned to, and every cell below them."""
    if worker_id is None:
        return []
    codes = conn.execute(
        select(_grids.c.code).join(_assign, _assign.c.grid_id == _grids.c.id)
        .where(_assign.c.worker_id == worker_id, _assign.c.active.is_(True), _assign.c.deleted.is_(None))
    ).scalars().all()
    if not codes:
        return []
    # Hierarchical codes: "01.02" is below "01". One query per assignment root.
    ids: set[str] = set()
    for code in codes:
        ids.update(conn.execute(select(_grids.c.id).where(
            (_grids.c.code == code) | _grids.c.code.startswith(code + "."))).scalars())
    return sorted(ids)
