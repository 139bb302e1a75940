"""Tablets and the office: enrollment asked on a tablet, approved or revoked at the office.

A tablet makes its own keys and asks to enroll (as text for a QR code, or
sent to the master's URL); the office approves it for a worker, which hands
back a signed card naming the master, for a tablet with no network; a
revoked tablet's next sync is refused. The registry snapshot is the list of
devices signed by the master.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from wangge.core.store import Store, set_meta
from wangge.sync import enrollment, protocol
from wangge.sync.device import exchange as device_exchange
from wangge.sync.master import registry
from wangge.sync.enrollment import EnrollmentRequest
from wangge.sync.transport.fieldwork import master_card
from wangge.sync.transport.files import write_atomic
from wangge.sync.identity import store_keys
from wangge.sync.keys import PublicKeys
from wangge.sync.device.session import META_ENROLLED_WITH
from wangge.sync.device.tablet import enrollment_request


@dataclass(frozen=True)
class Approved:
    device_id: str
    worker: str
    card: str  # the master's signed card, as text: `wangge device trust` reads it on the tablet


@dataclass(frozen=True)
class Devices:
    registry_version: int
    rows: tuple[dict, ...]  # device_id, name, status, worker, enrolled_at, fingerprint; newest first


@dataclass(frozen=True)
class Snapshot:
    path: Path
    version: int
    devices: int
    master: str


@dataclass(frozen=True)
class Rotated:
    master: str
    retired: Path
    cards: tuple[tuple[str, str, Optional[str], str], ...]  # (device, name, worker, card) per active tablet


@dataclass(frozen=True)
class Enrolled:
    request: EnrollmentRequest
    sent_to: Optional[str]  # the master's URL, if the request was sent
    status: Optional[str]  # what the master answered: pending, active, revoked


# -- the office --------------------------------------------------------------------------------

def devices(store: Store) -> Devices:
    """Every tablet registered at this master, with the registry's version."""
    with store.read() as conn:
        return Devices(registry.version(conn), tuple(enrollment.list_devices(conn)))


def approve(store: Store, request: str, worker: str) -> Approved:
    """Approve a tablet for ``worker`` (an id or a unique name).

    ``request`` is the device id of a request already received, or the
    request's ``wangge-enroll:1:`` text (from a QR code), which is verified
    and recorded first. Raises `EnrollmentError` for a request that does not
    verify or a revoked tablet, `UsageError` for an unknown device or worker.
    """
    with store.write(actor="office") as rec:
        if request.startswith(enrollment.TEXT_PREFIX):
            parsed = EnrollmentRequest.from_text(request)
            enrollment.submit(rec, parsed)
            device_id = parsed.device_id
        else:
            device_id = request
        enrollment.approve(rec, device_id, worker)
    return Approved(device_id, worker, master_card(store, device_id))


def revoke(store: Store, device_id: str) -> None:
    """Revoke a tablet: its next sync is refused. Raises `UsageError` for an unknown device."""
    with store.write(actor="office") as rec:
        enrollment.revoke(rec, device_id)


def rotate_keys(store: Store, *, stamp: str) -> Rotated:
    """New key pairs for this master; the old ones are kept aside (`identity.rotate_master_keys`) and a
    card per active tablet comes back, for each to scan before it takes this master's replies again."""
    from wangge.sync.identity import rotate_master_keys

    retired = rotate_master_keys(store, stamp=stamp)
    with store.read() as conn:
        active = [r for r in enrollment.list_devices(conn)
                  if r["status"] == "active" and r["device_id"] != store.device_id]
    cards = tuple((r["device_id"], r["name"], r["worker"], master_card(store, r["device_id"])) for r in active)
    return Rotated(store.device_id, retired, cards)


def snapshot(store: Store, out: str | Path) -> Snapshot:
    """Write the device registry, signed by this master, to ``out`` (atomically)."""
    keys = store_keys(store)
    with store.read() as conn:
        data = registry.snapshot(conn, store.device_id, keys)
    body = json.loads(json.loads(data)["snapshot"])
    return Snapshot(write_atomic(out, data), body["version"], len(body["devices"]), body["master"])


# -- the tablet --------------------------------------------------------------------------------

def enroll(store: Store, name: str, master_url: Optional[str] = None) -> Enrolled:
    """This tablet's enrollment request named ``name``; sent to ``master_url`` if given.

    The URL is remembered, so a first bundle export can still learn the
    master's keys. Raises `UsageError` for a malformed URL (before anything
    is remembered), `SyncError` if the master cannot be reached.
    """
    from wangge.sync.transport.client import MasterClient, check_master_url

    master_url = check_master_url(master_url) if master_url is not None else None
    request = enrollment_request(store, name)
    if master_url is None:
        return Enrolled(request, None, None)
    with store.write(actor="enrollment") as rec:
        set_meta(rec.conn, META_ENROLLED_WITH, master_url)
    with MasterClient(master_url) as client:
        answer = client.enroll(request.__dict__)
    return Enrolled(request, master_url, answer["status"])


def trust(store: Store, card_text: str) -> str:
    """Record the master a card (`approve`'s) names; return the master's id.

    Raises `EnrollmentError` for a card that is malformed, badly signed or
    made for another tablet.
    """
    card = enrollment.MasterCard.from_text(card_text, store.device_id)
    device_exchange.trust_master(store, protocol.Peer(card.master_id, PublicKeys.from_b64(card.sign_key, card.box_key)))
    return card.master_id
