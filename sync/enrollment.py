"""Enrolling tablets at the office: request, approve (bind to a worker), revoke, list.

A tablet generates its own key pairs (the private keys never leave it) and
produces an *enrollment request*: its device id, a name, its Ed25519 signing
key and X25519 encryption key, signed with the signing key to prove it holds
it. The request travels as JSON over HTTP, or as one line of text ready for
a QR code (``wangge-enroll:1:<base64url>``) when the office has no network
to the tablet. The office checks the short fingerprint the tablet shows,
then approves it, binding the device to a worker; from then on its bundles
are accepted with that worker's role and grids. Revoking marks the device
revoked; its next bundle is refused.

The registry is the master's ``device`` table, written through change
capture, so every approval and revocation is an op like any other.
Everything here is pure except the functions that take a `Recorder` or a
connection from the caller.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Callable, Optional

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from wangge.core.capture import Recorder
from wangge.core.errors import SyncError, UsageError
from wangge.core.hlc import pack
from wangge.core.models import Device, Worker

TEXT_PREFIX = "wangge-enroll:1:"
STATUSES = ("pending", "active", "revoked", "expired")
#: A request nobody approved within this many days expires: the registry does not fill with strays.
PENDING_DAYS = 7
#: Requests waiting at once: past this, new ones are refused until the office acts or some expire.
MAX_PENDING = 1000
_DAY_MS = 86_400_000
_devices = Device.__table__
_workers = Worker.__table__


class EnrollmentError(SyncError, ValueError):
    """An enrollment request is malformed, forged, or cannot be approved."""

    http_status = 400


class EnrollmentFull(EnrollmentError):
    """Too many enrollment requests are waiting for the office; try again later."""

    http_status = 429


@dataclass(frozen=True)
class EnrollmentRequest:
    """What a tablet asks the office to register. Keys are base64 of the raw public keys."""

    device_id: str
    name: str
    sign_key: str
    box_key: str
    signature: str = ""

    def payload(self) -> bytes:
        """The canonical bytes the signature covers."""
        fields = {"device_id": self.device_id, "name": self.name, "sign_key": self.sign_key, "box_key": self.box_key}
        return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @property
    def fingerprint(self) -> str:
        """Eight groups of four hex digits of the keys' hash: read aloud at the office to compare."""
        digest = hashlib.sha256(f"{self.sign_key}|{self.box_key}".encode()).hexdigest()[:32]
        return " ".join(digest[i:i + 4] for i in range(0, 32, 4))

    def to_text(self) -> str:
        """One line for a QR code: URL-safe base64 of the JSON, no padding."""
        raw = json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return TEXT_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def from_text(cls, text: str) -> "EnrollmentRequest":
        """Parse `to_text` output. Raises `EnrollmentError` naming what is wrong."""
        text = text.strip()
        if not text.startswith(TEXT_PREFIX):
            raise EnrollmentError(f"not an enrollment request: expected text starting {TEXT_PREFIX!r}, got {text[:24]!r}")
        body = text[len(TEXT_PREFIX):]
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, binascii.Error) as exc:
            raise EnrollmentError(f"enrollment request text is damaged (was it scanned whole?): {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data) -> "EnrollmentRequest":
        """Raises `EnrollmentError` for missing or extra fields."""
        names = {"device_id", "name", "sign_key", "box_key", "signature"}
        if not isinstance(data, dict) or set(data) != names:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise EnrollmentError(f"enrollment request needs exactly the fields {sorted(names)}, got {got}")
        if not all(isinstance(v, str) for v in data.values()):
            raise EnrollmentError("enrollment request fields must all be strings")
        return cls(**data)

    def verify(self) -> None:
        """Check the keys' shapes and that the request is signed by its own signing key.

        Raises `EnrollmentError` otherwise.
        """
        try:
            sign_key = _raw_key(self.sign_key, "sign_key")
            _raw_key(self.box_key, "box_key")
            signature = _b64(self.signature, "signature")
        except _Malformed as exc:
            raise EnrollmentError(f"enrollment request {exc}") from None
        if not self.device_id or len(self.device_id) > 64:
            raise EnrollmentError(f"bad device id {self.device_id!r}: expected 1-64 characters")
        try:
            Ed25519PublicKey.from_public_bytes(sign_key).verify(signature, self.payload())
        except InvalidSignature:
            raise EnrollmentError(
                f"enrollment request of device {self.device_id} is not signed by its own key: refused"
            ) from None


def make_request(device_id: str, name: str, sign_public: bytes, box_public: bytes,
                 sign: Callable[[bytes], bytes]) -> EnrollmentRequest:
    """A signed request for the device's public keys; ``sign`` uses its Ed25519 private key."""
    unsigned = EnrollmentRequest(device_id, name, _enc(sign_public), _enc(box_public))
    return EnrollmentRequest(**{**asdict(unsigned), "signature": _enc(sign(unsigned.payload()))})


def _enc(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class _Malformed(ValueError):
    """A field that does not decode; the request or card it came from frames the message."""


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise _Malformed(f"{what} is not base64") from None


def _raw_key(text: str, what: str) -> bytes:
    raw = _b64(text, what)
    if len(raw) != 32:
        raise _Malformed(f"{what} must be a 32-byte public key, got {len(raw)} bytes")
    return raw


# -- the office's answer, for a tablet with no network -----------------------

CARD_PREFIX = "wangge-master:1:"


@dataclass(frozen=True)
class MasterCard:
    """The office's answer to an approved tablet: the master's id and public keys.

    Over HTTP the tablet fetches this from ``GET /enrollment/<id>``; with no
    network the office prints it as one line (``wangge-master:1:...``) for the
    tablet to scan. It names the device it was made for, so a card meant for
    another tablet is refused, and is signed by the master's own key.
    """

    master_id: str
    sign_key: str
    box_key: str
    device_id: str
    signature: str = ""

    def payload(self) -> bytes:
        fields = {k: v for k, v in asdict(self).items() if k != "signature"}
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def to_text(self) -> str:
        raw = json.dumps(asdict(self), separators=(",", ":")).encode("utf-8")
        return CARD_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def from_text(cls, text: str, device_id: str) -> "MasterCard":
        """Parse and verify a card for ``device_id``. Raises `EnrollmentError` naming what is wrong."""
        text = text.strip()
        if not text.startswith(CARD_PREFIX):
            raise EnrollmentError(f"not a master card: expected text starting {CARD_PREFIX!r}, got {text[:24]!r}")
        body = text[len(CARD_PREFIX):]
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, binascii.Error) as exc:
            raise EnrollmentError(f"master card is damaged: its text does not decode ({exc}); "
                                  "was it scanned whole?") from None
        try:
            card = cls._from_dict(data)
        except _Malformed as exc:
            raise EnrollmentError(f"master card is damaged: {exc}") from None
        if card.device_id != device_id:
            raise EnrollmentError(f"this master card was made for device {card.device_id}, not {device_id}")
        try:
            sign_key, signature = _raw_key(card.sign_key, "sign_key"), _b64(card.signature, "signature")
            _raw_key(card.box_key, "box_key")
        except _Malformed as exc:
            raise EnrollmentError(f"master card for device {device_id} is damaged: {exc}; "
                                  "was it scanned whole?") from None
        try:
            Ed25519PublicKey.from_public_bytes(sign_key).verify(signature, card.payload())
        except InvalidSignature:
            raise EnrollmentError("master card is not signed by the master's own key: refused") from None
        return card

    @classmethod
    def _from_dict(cls, data) -> "MasterCard":
        """Raises `_Malformed` unless ``data`` has exactly the card's fields, all text, and a master id."""
        names = {"master_id", "sign_key", "box_key", "device_id", "signature"}
        if not isinstance(data, dict) or set(data) != names:
            got = sorted(data) if isinstance(data, dict) else f"a JSON {type(data).__name__}"
            raise _Malformed(f"expected exactly the fields {sorted(names)}, got {got}")
        wrong = sorted(name for name, value in data.items() if not isinstance(value, str))
        if wrong:
            kinds = ", ".join(f"{name} is {type(data[name]).__name__}" for name in wrong)
            raise _Malformed(f"every field must be text, but {kinds}")
        if not data["master_id"]:
            raise _Malformed("master_id is empty")
        return cls(**data)


def make_card(master_id: str, sign_key: str, box_key: str, device_id: str,
              sign: Callable[[bytes], bytes]) -> MasterCard:
    """A card for ``device_id`` signed with the master's Ed25519 key (``sign``); keys are base64."""
    unsigned = MasterCard(master_id, sign_key, box_key, device_id)
    return MasterCard(**{**asdict(unsigned), "signature": _enc(sign(unsigned.payload()))})


# -- the office side: writes through the caller's recorder ---------------------

def submit(rec: Recorder, request: EnrollmentRequest) -> str:
    """Record a verified request as a pending device; return its status.

    Idempotent for the same keys; a request that expired is pending again.
    Requests pending for more than `PENDING_DAYS` expire first. Raises
    `EnrollmentError` if the request does not verify, or if the device id is
    already registered with other keys (a cloned tablet, or a typo);
    `EnrollmentFull` if `MAX_PENDING` requests are waiting already.
    """
    request.verify()
    row = _device(rec.conn, request.device_id)
    if row is not None:
        if (row.sign_key, row.box_key) != (request.sign_key, request.box_key):
            raise EnrollmentError(f"device {request.device_id} is already registered with other keys: refused")
        if row.status != "expired":
            return row.status
    waiting = expire_pending(rec)
    if waiting >= MAX_PENDING:
        raise EnrollmentFull(f"{waiting} enrollment requests are waiting for the office already: approve the real "
                             f"ones (wangge device list); the others expire after {PENDING_DAYS} days")
    if row is not None:
        rec.update("device", request.device_id, {"status": "pending", "name": request.name})
    else:
        rec.insert("device", {"id": request.device_id, "name": request.name, "sign_key": request.sign_key,
                              "box_key": request.box_key, "status": "pending"})
    return "pending"


def expire_pending(rec: Recorder) -> int:
    """Mark requests pending for more than `PENDING_DAYS` expired; return how many are still pending."""
    horizon = pack(rec.physical_ms - PENDING_DAYS * _DAY_MS)
    stale = rec.conn.execute(select(_devices.c.id).where(
        _devices.c.status == "pending", _devices.c.hlc < horizon, _devices.c.deleted.is_(None))).scalars().all()
    for device_id in stale:
        rec.update("device", device_id, {"status": "expired"})
    return rec.conn.execute(select(func.count()).select_from(_devices).where(
        _devices.c.status == "pending", _devices.c.deleted.is_(None))).scalar_one()


def approve(rec: Recorder, device_id: str, worker: str, *, now: Optional[datetime] = None) -> None:
    """Activate a pending device and bind it to ``worker`` (an id or a unique name).

    Raises `UsageError` for an unknown device or worker, `EnrollmentError`
    for a revoked device (enroll it anew with new keys).
    """
    row = _require(rec.conn, device_id)
    if row.status == "revoked":
        raise EnrollmentError(f"device {device_id} was revoked; a revoked tablet must enroll again with new keys")
    worker_id = resolve_worker(rec.conn, worker)
    rec.update("device", device_id, {"status": "active", "worker_id": worker_id,
                                     "enrolled_at": now or datetime.now(timezone.utc)})


def revoke(rec: Recorder, device_id: str) -> None:
    """Revoke a device: its next bundle is refused. Raises `UsageError` if unknown."""
    row = _require(rec.conn, device_id)
    if row.status != "revoked":
        rec.update("device", device_id, {"status": "revoked"})


def list_devices(conn: Connection) -> list[dict]:
    """Every registered device with its worker's name, newest first."""
    query = (select(_devices.c.id, _devices.c.name, _devices.c.status, _workers.c.name.label("worker"),
                    _devices.c.enrolled_at, _devices.c.sign_key, _devices.c.box_key)
             .select_from(_devices.outerjoin(_workers, _workers.c.id == _devices.c.worker_id))
             .where(_devices.c.deleted.is_(None)).order_by(_devices.c.hlc.desc()))
    out = []
    for row in conn.execute(query).mappings():
        fingerprint = EnrollmentRequest(row["id"], row["name"], row["sign_key"], row["box_key"]).fingerprint
        out.append({"device_id": row["id"], "name": row["name"], "status": row["status"],
                    "worker": row["worker"] or "", "enrolled_at": row["enrolled_at"], "fingerprint": fingerprint})
    return out


def status(conn: Connection, device_id: str) -> dict:
    """``{"device_id", "status", "worker_id"}``. Raises `UsageError` if unknown."""
    row = _require(conn, device_id)
    return {"device_id": device_id, "status": row.status, "worker_id": row.worker_id}


def resolve_worker(conn: Connection, worker: str) -> str:
    """A worker's id from its id or its unique name. Raises `UsageError`."""
    rows = conn.execute(select(_workers.c.id, _workers.c.name).where(
        (_workers.c.id == worker) | (_workers.c.name == worker), _workers.c.deleted.is_(None))).all()
    if len(rows) == 1:
        return rows[0].id
    if not rows:
        names = conn.execute(select(_workers.c.name).where(_workers.c.deleted.is_(None)).limit(8)).scalars().all()
        url = conn.engine.url
        store = url.database if url.get_backend_name() == "sqlite" else url.render_as_string(hide_password=True)
        raise UsageError(f"no worker {worker!r} at this master (workers here: {', '.join(names) or 'none yet'}): "
                         f"add the worker first with `wangge worker add {store} {worker} --role ROLE --grid GRID` "
                         f"(a role of the ruleset, e.g. 网格员, and a grid from `wangge grid add`)")
    raise UsageError(f"{len(rows)} workers are named {worker!r}: give the worker id instead")


def _device(conn: Connection, device_id: str):
    return conn.execute(select(_devices).where(_devices.c.id == device_id)).first()


def _require(conn: Connection, device_id: str):
    row = _device(conn, device_id)
    if row is None:
        raise UsageError(f"no device {device_id!r} has asked to enroll here: see `wangge device list`")
    return row
