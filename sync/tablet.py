"""A tablet's own identity: its key pairs, kept inside its encrypted store.

The private keys are generated on the tablet and stored in ``store_meta``
of the tablet's database, which is encrypted at rest (`wangge.sync.atrest`),
so they are exactly as safe as the worker's data and never leave the device.
"""
from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from wangge.core.store import get_meta, set_meta
from wangge.sync.enrollment import EnrollmentRequest, make_request

META_SIGN, META_BOX = "device_sign_key", "device_box_key"


def _raw_private(key) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _raw_public(key) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def device_keys(store) -> tuple[Ed25519PrivateKey, X25519PrivateKey]:
    """The tablet's signing and encryption keys, generated on first use."""
    with store.write(actor="device") as rec:
        sign, box = get_meta(rec.conn, META_SIGN), get_meta(rec.conn, META_BOX)
        if sign is None:
            new_sign, new_box = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
            sign = base64.b64encode(_raw_private(new_sign)).decode()
            box = base64.b64encode(_raw_private(new_box)).decode()
            set_meta(rec.conn, META_SIGN, sign)
            set_meta(rec.conn, META_BOX, box)
    return (Ed25519PrivateKey.from_private_bytes(base64.b64decode(sign)),
            X25519PrivateKey.from_private_bytes(base64.b64decode(box)))


def enrollment_request(store, name: str) -> EnrollmentRequest:
    """A signed enrollment request for this tablet, named ``name``."""
    sign, box = device_keys(store)
    return make_request(store.device_id, name, _raw_public(sign), _raw_public(box), sign.sign)
