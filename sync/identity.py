"""A store's own identity: the key pairs it signs and opens bundles with.

Keys are generated where they are used (on the tablet, on the master) and
kept in the store's ``store_meta``; on a tablet that store is encrypted at
rest (`wangge.sync.device.atrest`), so the private keys are as safe as the data
they protect and never leave the device. Enrollment sends only the public
halves; approval hands the tablet the master's public keys in return.
"""
from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from wangge.core.store import Store, get_meta, set_meta
from wangge.sync.keys import KEY_FILE_PREFIX, DeviceKeys, KeyError_

META_SIGN, META_BOX = "device_sign_key", "device_box_key"


def _raw(key) -> str:
    return base64.b64encode(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())).decode()


def store_keys(store: Store) -> DeviceKeys:
    """This store's keys, generated and kept on first use."""
    with store.write(actor="identity") as rec:
        sign, box = get_meta(rec.conn, META_SIGN), get_meta(rec.conn, META_BOX)
        if sign is None or box is None:
            sign, box = _raw(Ed25519PrivateKey.generate()), _raw(X25519PrivateKey.generate())
            set_meta(rec.conn, META_SIGN, sign)
            set_meta(rec.conn, META_BOX, box)
    return DeviceKeys(Ed25519PrivateKey.from_private_bytes(base64.b64decode(sign)),
                      X25519PrivateKey.from_private_bytes(base64.b64decode(box)))


def adopt_keys(store: Store, keys: DeviceKeys) -> DeviceKeys:
    """Keep ``keys`` (from a `--keys` file) as the store's own if it has none yet, and return them.

    One store, one identity: a key file can give a store that never made
    keys its identity, never replace the identity it already has (the master
    knows the device by those). Raises `KeyError_` if the store keeps others.
    """
    raw = base64.b64decode(keys.to_bytes().strip()[len(KEY_FILE_PREFIX):])
    sign, box = base64.b64encode(raw[:32]).decode(), base64.b64encode(raw[32:]).decode()
    with store.write(actor="identity") as rec:
        have = get_meta(rec.conn, META_SIGN), get_meta(rec.conn, META_BOX)
        if have == (None, None):
            set_meta(rec.conn, META_SIGN, sign)
            set_meta(rec.conn, META_BOX, box)
        elif have != (sign, box):
            raise KeyError_("the key file holds other keys than this store's own: leave out --keys "
                            "to use the store's keys (the ones its enrollment registered)")
    return keys

