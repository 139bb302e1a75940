"""Device keys and the two primitives bundles need: signing and sealing.

Every device (tablet or master) holds an Ed25519 key pair to sign what it
sends and an X25519 key pair to receive what is sealed to it. Keys are
generated on the device; only the public halves travel (enrollment).

Sealing is X25519 with a fresh ephemeral key per bundle, HKDF-SHA256 and
ChaCha20-Poly1305 (all from `cryptography`). Because every bundle has its own
ephemeral key, every bundle has its own AEAD key, so a fixed nonce is safe.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from wangge.core.errors import SyncError

SEAL_INFO = b"wangge bundle seal v1"
NONCE = bytes(12)  # safe: the AEAD key is fresh per bundle (ephemeral X25519)
KEY_FILE_PREFIX = b"wangge-keys:1:"


class KeyError_(SyncError, ValueError):
    """Key material is malformed."""


class SignatureInvalid(SyncError):
    """A signature does not verify against the sender's registered key."""


class SealBroken(SyncError):
    """A sealed payload does not decrypt: damaged, or sealed to someone else."""


def _raw_public(key) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _raw_private(key) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


@dataclass(frozen=True)
class PublicKeys:
    """A peer's public keys, raw 32 bytes each."""

    sign: bytes
    box: bytes

    @classmethod
    def from_b64(cls, sign: str, box: str) -> "PublicKeys":
        """Decode base64 keys as the device registry stores them. Raises `KeyError_`."""
        try:
            keys = cls(base64.b64decode(sign, validate=True), base64.b64decode(box, validate=True))
        except ValueError:
            raise KeyError_("public keys must be base64") from None
        if len(keys.sign) != 32 or len(keys.box) != 32:
            raise KeyError_(f"public keys must be 32 bytes each, got {len(keys.sign)} and {len(keys.box)}")
        return keys

    def b64(self) -> tuple[str, str]:
        return base64.b64encode(self.sign).decode(), base64.b64encode(self.box).decode()

    def verify(self, signature: bytes, message: bytes, who: str) -> None:
        """Raise `SignatureInvalid` naming ``who`` unless ``signature`` covers ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.sign).verify(signature, message)
        except (InvalidSignature, ValueError):
            raise SignatureInvalid(f"signature of {who} does not verify: damaged, or signed by another key") from None


class DeviceKeys:
    """A device's private keys. Never leaves the device."""

    def __init__(self, sign: Ed25519PrivateKey, box: X25519PrivateKey):
        self._sign = sign
        self._box = box
        self.public = PublicKeys(_raw_public(sign.public_key()), _raw_public(box.public_key()))

    @classmethod
    def generate(cls) -> "DeviceKeys":
        return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    def to_bytes(self) -> bytes:
        """The private keys as one line of text, for the caller to keep (mode 0600)."""
        raw = _raw_private(self._sign) + _raw_private(self._box)
        return KEY_FILE_PREFIX + base64.b64encode(raw) + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> "DeviceKeys":
        """Parse `to_bytes` output. Raises `KeyError_` naming what is wrong."""
        data = data.strip()
        if not data.startswith(KEY_FILE_PREFIX):
            raise KeyError_(f"not a wangge key file: expected it to start with {KEY_FILE_PREFIX.decode()!r}")
        try:
            raw = base64.b64decode(data[len(KEY_FILE_PREFIX):], validate=True)
        except ValueError:
            raise KeyError_("key file is damaged: not base64") from None
        if len(raw) != 64:
            raise KeyError_(f"key file is damaged: expected 64 bytes of keys, got {len(raw)}")
        return cls(Ed25519PrivateKey.from_private_bytes(raw[:32]), X25519PrivateKey.from_private_bytes(raw[32:]))

    def sign(self, message: bytes) -> bytes:
        return self._sign.sign(message)

    def open(self, ephemeral: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Decrypt a payload sealed to this device. Raises `SealBroken`."""
        try:
            shared = self._box.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            key = _derive(shared, ephemeral, self.public.box)
            return ChaCha20Poly1305(key).decrypt(NONCE, ciphertext, aad)
        except (InvalidTag, ValueError):
            raise SealBroken("bundle payload does not decrypt: damaged, or sealed to another device") from None


def begin_seal(recipient_box: bytes):
    """Start sealing to ``recipient_box`` (raw X25519 public key).

    Returns ``(ephemeral_public, encrypt)`` where ``encrypt(plaintext, aad)``
    gives the ciphertext: the ephemeral key is known first, so it can sit in
    the header that the AEAD then authenticates. Raises `KeyError_` for a bad key.
    """
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = _raw_public(ephemeral.public_key())
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_box))
    except ValueError:
        raise KeyError_("recipient's encryption key is not a valid X25519 key") from None
    key = _derive(shared, ephemeral_public, recipient_box)
    return ephemeral_public, lambda plaintext, aad: ChaCha20Poly1305(key).encrypt(NONCE, plaintext, aad)


def _derive(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    # Binding both public keys into the salt ties the key to this exchange.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=SEAL_INFO).derive(shared)
