"""A store's own identity: the key pairs it signs and opens bundles with.

Keys are generated where they are used (on the tablet, on the master).
A tablet keeps them in its ``store_meta``: that store is encrypted at rest
(`wangge.sync.device.atrest`), so the private keys are as safe as the data they
protect and never leave the device. A master keeps them *outside* its
database, in a key file readable by its owner only (`master_key_path`): a
database backup, a replica or a ``pg_dump`` then carries no identity, and
the master's signature cannot be forged from one. The database keeps only
the public keys' fingerprint, so a missing key file is said, never silently
replaced by a new identity that every tablet would refuse. Enrollment sends
only the public halves; approval hands the tablet the master's public keys
in return. docs/deploy.md says where the key file lives and how to back it up.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Optional

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from wangge.core.errors import StoreError
from wangge.core.store import Store, get_meta, set_meta
from wangge.sync.keys import KEY_FILE_PREFIX, DeviceKeys, KeyError_

META_SIGN, META_BOX = "device_sign_key", "device_box_key"
META_KEYS_FINGERPRINT = "master_keys_fingerprint"  # of the public keys in the master's key file
#: Where a PostgreSQL master's key file is (an SQLite master's is beside its database).
ENV_MASTER_KEYS = "WANGGE_MASTER_KEYS"
KEYS_FORMAT = "wangge-master-keys/1"


def _raw(key) -> str:
    return base64.b64encode(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())).decode()


def store_keys(store: Store) -> DeviceKeys:
    """This store's keys, generated and kept on first use (a master's in its key file).

    Raises `StoreError` for a master whose key file is missing, damaged,
    readable by others, or holds another master's keys.
    """
    with store.write(actor="identity") as rec:
        if store.role == "master":
            sign, box = master_keys(rec.conn)
        else:
            sign, box = get_meta(rec.conn, META_SIGN), get_meta(rec.conn, META_BOX)
            if sign is None or box is None:
                sign, box = _raw(Ed25519PrivateKey.generate()), _raw(X25519PrivateKey.generate())
                set_meta(rec.conn, META_SIGN, sign)
                set_meta(rec.conn, META_BOX, box)
    return _keys(sign, box)


def _keys(sign: str, box: str) -> DeviceKeys:
    return DeviceKeys(Ed25519PrivateKey.from_private_bytes(base64.b64decode(sign)),
                      X25519PrivateKey.from_private_bytes(base64.b64decode(box)))


def master_key_path(conn) -> Path:
    """Where the key file of the master behind ``conn`` lives.

    An SQLite master's is beside its database (``office.db.keys``); any other
    master's is ``$WANGGE_MASTER_KEYS`` or, without it, ``<master id>.keys``
    in the user's configuration folder (``$XDG_CONFIG_HOME/wangge``, by
    default ``~/.config/wangge``).
    """
    url = conn.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database + ".keys")
    if os.environ.get(ENV_MASTER_KEYS):
        return Path(os.environ[ENV_MASTER_KEYS])
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "wangge" / f"{get_meta(conn, 'device_id')}.keys"


def master_keys(conn) -> tuple[str, str]:
    """The master's private keys (base64 of the raw bytes): from its key file, made or moved there if need be.

    Keys still in ``store_meta`` (a master made before key files) are moved
    out: written to the key file, then deleted from the database. Raises `StoreError`.
    """
    path = master_key_path(conn)
    device_id = get_meta(conn, "device_id")
    expected = get_meta(conn, META_KEYS_FINGERPRINT)
    if path.exists():
        sign, box = _read_key_file(path, device_id)
        if expected is not None and _fingerprint(sign, box) != expected:
            raise StoreError(f"the master key file {path} holds other keys than this master's "
                             f"(fingerprint {expected[:16]}): restore this master's own key file from its backup")
    elif expected is not None:
        raise StoreError(f"the master's key file {path} is missing: restore it from its backup (docs/deploy.md); "
                         f"a new identity would be refused by every tablet"
                         + ("" if path.name.endswith(".db.keys") else f", or point {ENV_MASTER_KEYS} at it"))
    else:
        sign, box = get_meta(conn, META_SIGN), get_meta(conn, META_BOX)
        if sign is None or box is None:
            sign, box = _raw(Ed25519PrivateKey.generate()), _raw(X25519PrivateKey.generate())
        _write_key_file(path, device_id, sign, box)
    if expected is None:
        set_meta(conn, META_KEYS_FINGERPRINT, _fingerprint(sign, box))
    _forget_in_database(conn)
    return sign, box


def rotate_master_keys(store: Store, *, stamp: str) -> Path:
    """Give a master new key pairs; return where the retired key file was kept (mode 0600).

    The retired file is named ``<key file>.retired-<stamp>``: keep it until
    every tablet trusts the new keys, then destroy it. Raises `StoreError`
    for a store that is not a master or whose key file cannot be read.
    """
    if store.role != "master":
        raise StoreError(f"{store.url} is a {store.role} store: only a master's keys are rotated here")
    with store.write(actor="identity") as rec:
        master_keys(rec.conn)  # the current file is sound before it is retired
        path = master_key_path(rec.conn)
        retired = path.with_name(f"{path.name}.retired-{stamp}")
        os.replace(path, retired)
        sign, box = _raw(Ed25519PrivateKey.generate()), _raw(X25519PrivateKey.generate())
        try:
            _write_key_file(path, get_meta(rec.conn, "device_id"), sign, box)
        except StoreError:
            os.replace(retired, path)
            raise
        set_meta(rec.conn, META_KEYS_FINGERPRINT, _fingerprint(sign, box))
    return retired


def move_keys_out(conn) -> None:
    """Migration 0005: a master's private keys leave ``store_meta`` for its key file (tablets: nothing)."""
    if get_meta(conn, "role") == "master" and get_meta(conn, META_SIGN) is not None:
        master_keys(conn)


def _forget_in_database(conn) -> None:
    from wangge.core.store import _meta

    conn.execute(_meta.delete().where(_meta.c.key.in_([META_SIGN, META_BOX])))


def _fingerprint(sign: str, box: str) -> str:
    public = _keys(sign, box).public.b64()
    return hashlib.sha256("\n".join(public).encode("ascii")).hexdigest()


def _write_key_file(path: Path, device_id: Optional[str], sign: str, box: str) -> None:
    """Write atomically, mode 0600 from the first byte. Raises `StoreError`."""
    text = json.dumps({"format": KEYS_FORMAT, "master": device_id, "sign_key": sign, "box_key": box}, indent=2)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"cannot write the master's key file {path}: {exc.strerror or exc}") from None


def _read_key_file(path: Path, device_id: Optional[str]) -> tuple[str, str]:
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & 0o077:
            raise StoreError(f"the master's key file {path} is readable by others (mode {mode & 0o777:o}): "
                             f"make it the owner's alone with `chmod 600 {path}`")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StoreError(f"cannot read the master's key file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise StoreError(f"the master's key file {path} is damaged: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != KEYS_FORMAT:
        raise StoreError(f"{path} is not a wangge master key file: expected format {KEYS_FORMAT!r}")
    if data.get("master") != device_id:
        raise StoreError(f"the key file {path} belongs to master {data.get('master')}, not to {device_id}: "
                         f"each master needs its own (set {ENV_MASTER_KEYS} per master)")
    try:
        sign, box = str(data["sign_key"]), str(data["box_key"])
        _keys(sign, box)
    except (KeyError, ValueError) as exc:
        raise StoreError(f"the master's key file {path} is damaged: {exc}") from None
    return sign, box


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

