"""What a tablet keeps secret: its enrollment keys and its photos.

The private keys are generated on the tablet and stored in its encrypted
database (`wangge.sync.device.atrest`, `wangge.sync.identity`), so they are exactly
as safe as the worker's data and never leave the device; the enrollment
request carries only public halves.

Photos live in files next to the database (``tablet.db.files/blobs``), not in
it, so they are sealed too: each blob's bytes are AES-256-CTR under a random
photo key kept inside the encrypted database. A stream cipher preserves
lengths and offsets, so chunked, resumable transfers work unchanged, and a
partial download is sealed as it arrives. Integrity needs no tag: blobs are
named by the SHA-256 of their clear bytes and checked against it on arrival.
A lost tablet's photos are as unreadable as its database.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wangge.core.store import Store, get_meta, set_meta
from wangge.sync.attachments import AttachmentError, BlobStore, sha256
from wangge.sync.enrollment import EnrollmentRequest, make_request
from wangge.sync.identity import store_keys

META_PHOTO_KEY = "photo_key"
_BLOCK = 16


def enrollment_request(store, name: str) -> EnrollmentRequest:
    """A signed enrollment request for this tablet, named ``name``."""
    keys = store_keys(store)
    return make_request(store.device_id, name, keys.public.sign, keys.public.box, keys.sign)


class SealedBlobStore(BlobStore):
    """A `BlobStore` whose files hold AES-256-CTR ciphertext of the blobs under ``key``."""

    def __init__(self, root: str | Path, key: bytes, **options):
        if len(key) != 32:
            raise ValueError(f"a photo key must be 32 bytes, got {len(key)}")
        super().__init__(root, **options)
        self._key = key

    def read(self, sha: str) -> bytes:
        """The clear bytes of blob ``sha``. Raises `AttachmentError` if they do not hash to its name."""
        data = super().read(sha)
        if sha256(data) != sha:  # tampered with, or sealed under another tablet's key
            raise AttachmentError(f"photo {sha[:12]} in {self.root} does not open to its content: "
                                  "it was altered or belongs to another tablet")
        return data

    def _code(self, sha: str, offset: int, data: bytes) -> bytes:
        # Each blob has its own counter start, derived from its name: blobs never
        # share keystream, and any offset can be sealed or opened on its own.
        start = int.from_bytes(hmac.new(self._key, sha.encode(), hashlib.sha256).digest()[:_BLOCK], "big")
        counter = ((start + offset // _BLOCK) % 2**128).to_bytes(_BLOCK, "big")
        cipher = Cipher(algorithms.AES(self._key), modes.CTR(counter)).encryptor()
        skip = offset % _BLOCK
        return (cipher.update(bytes(skip) + data) + cipher.finalize())[skip:]


def photo_key(store: Store) -> bytes:
    """The key a tablet seals its photos with, made on first use and kept in its (encrypted) store."""
    with store.write(actor="identity") as rec:
        kept = get_meta(rec.conn, META_PHOTO_KEY)
        if kept is None:
            kept = base64.b64encode(secrets.token_bytes(32)).decode()
            set_meta(rec.conn, META_PHOTO_KEY, kept)
    return base64.b64decode(kept)


def photos_folder(database: str | Path) -> Path:
    """Where the tablet whose database is at ``database`` keeps its photos."""
    return Path(str(database) + ".files") / "blobs"


def tablet_photos(store: Store, database: str | Path) -> SealedBlobStore:
    """The tablet's sealed photo store, next to its database file."""
    return SealedBlobStore(photos_folder(database), photo_key(store))
