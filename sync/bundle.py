"""The bundle: one signed, encrypted, length-prefixed message between two devices.

Layout (all integers big-endian; see docs/sync-protocol.md)::

    magic    4 bytes   b"WGB\\x01"
    hlen     4 bytes   header length, 1..MAX_HEADER
    header   hlen      canonical UTF-8 JSON object (HEADER_FIELDS, exactly)
    plen     4 bytes   payload length, 16..MAX_PAYLOAD
    payload  plen      ChaCha20-Poly1305(zlib(body)), AAD = the header bytes
    sig      64 bytes  Ed25519 over every byte before it, by the sender

`parse` checks caps, layout and header schema and returns an `Envelope`
without touching keys; the caller then looks the sender up, checks
revocation and replay, and only then calls `Envelope.verify` and
`Envelope.open`. Nothing is decrypted before the signature verifies.

The header's ``v`` says how the body is written: version 1 as a JSON object
with one array per op, version 2 as a MessagePack map whose ops travel in
columns (`wangge.sync.log.columns`), several times cheaper to decode and
check. A tablet writes version 2; the master reads both and answers in the
version it was sent.
"""
from __future__ import annotations

import base64
import math
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Optional

import msgpack

from wangge.core.errors import SyncError
from wangge.sync.keys import DeviceKeys, PublicKeys, begin_seal
from wangge.sync.log import columns
from wangge.sync.log.ops import MAX_INT, OpError

MAGIC = b"WGB\x01"
#: The body formats: 1, JSON with an array per op; 2, MessagePack with ops in columns.
VERSIONS = (1, 2)
#: What a tablet writes; a reply is written in the version of the push it answers.
VERSION = 2
MAX_HEADER = 4096
MAX_PAYLOAD = 64 * 1024 * 1024
#: Cap on the decompressed body: a small payload must not inflate without bound.
MAX_BODY = 512 * 1024 * 1024
#: A body may inflate to this many times its payload (JSON of ops compresses 5-15 times)...
MAX_RATIO = 64
#: ...or to this much, whichever is more: a small bundle of repetitive ops is not refused.
MIN_BODY_CAP = 4 * 1024 * 1024
SIGNATURE_BYTES = 64
#: The largest push counter: what a signed 64-bit column holds (`wangge.sync.log.ops.MAX_INT`).
MAX_SEQ = MAX_INT
KINDS = ("push", "reply")
HEADER_FIELDS = {"v": int, "kind": str, "id": str, "from": str, "to": str, "seq": int, "eph": str, "body": int}


class BundleError(SyncError, ValueError):
    """A bundle is malformed, over a cap, or fails a check; the message says which."""

    http_status = 400


@dataclass(frozen=True)
class Header:
    kind: str
    id: str
    sender: str
    recipient: str
    seq: int
    eph: bytes
    body: int  # decompressed body size, checked against MAX_BODY before inflating
    version: int = 1  # the body format: `VERSIONS`

    def to_bytes(self) -> bytes:
        data = {"v": self.version, "kind": self.kind, "id": self.id, "from": self.sender, "to": self.recipient,
                "seq": self.seq, "eph": base64.b64encode(self.eph).decode(), "body": self.body}
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Envelope:
    """A parsed bundle whose signature is not checked yet."""

    header: Header
    header_bytes: bytes
    payload: bytes
    signed: bytes  # every byte the signature covers
    signature: bytes

    def verify(self, sender: PublicKeys) -> None:
        """Raise `SignatureInvalid` unless the sender's key signed this bundle."""
        sender.verify(self.signature, self.signed, f"bundle {self.header.id} from device {self.header.sender}")

    def open(self, keys: DeviceKeys) -> dict:
        """Decrypt and decode the body (call after `verify`). Raises `BundleError` or `SealBroken`."""
        packed = keys.open(self.header.eph, self.payload, self.header_bytes)
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(packed, self.header.body + 1)
        except zlib.error as exc:
            raise BundleError(f"bundle {self.header.id}: body does not decompress: {exc}") from None
        if len(raw) != self.header.body or inflater.unconsumed_tail:
            raise BundleError(f"bundle {self.header.id}: body is not the {self.header.body} bytes its header declares")
        if not inflater.eof or inflater.unused_data:
            # The stream's own checksum (its trailer) is what says the body came out whole.
            raise BundleError(f"bundle {self.header.id}: body is not one whole zlib stream: "
                              f"{'its end and checksum are missing' if not inflater.eof else 'bytes follow its end'}")
        where = f"bundle {self.header.id}: body"
        if self.header.version == 1:
            body = _decode_json(raw, where)
            if not isinstance(body, dict):
                raise BundleError(f"{where} must be a JSON object, got {type(body).__name__}")
            return body
        return _decode_msgpack(raw, where)


def _decode_msgpack(raw: bytes, where: str) -> dict:
    """A version 2 body: one MessagePack map with text keys whose values JSON could hold (no bytes,
    no extension types, no number that is not finite), but for ``ops``, the op groups, which
    `wangge.sync.log.columns.decode` checks column by column. Raises `BundleError`."""
    try:
        body = msgpack.unpackb(raw, raw=False, ext_hook=_no_extension, strict_map_key=True)
    except Exception as exc:  # msgpack refuses bad input with several kinds of error; each is a malformed body
        raise BundleError(f"{where} is not MessagePack we take: {type(exc).__name__}: {str(exc)[:120]}") from None
    if type(body) is not dict:
        raise BundleError(f"{where} must be a MessagePack map, got {type(body).__name__}")
    ops = body.pop("ops", None)
    bad = columns.not_json(body)
    if bad is not None:
        raise BundleError(f"{where} holds {bad}, which a body may not: expected text, numbers, true/false, "
                          f"null, lists and maps with text keys")
    if ops is not None:
        if type(ops) is not list:
            raise BundleError(f"{where} field 'ops' must be a list of op groups, got {type(ops).__name__}")
        body["ops"] = columns.Groups(ops)
    return body


def _no_extension(code: int, data: bytes):
    raise ValueError(f"MessagePack extension type {code} is not part of a body")


def _decode_json(raw: bytes, where: str) -> Any:
    """Standard JSON only: no NaN or Infinity (nor a number too large for a float), and no text
    that is not Unicode (an escaped lone surrogate): neither could be stored, nor sent on.
    Raises `BundleError`."""
    try:
        value = json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except RecursionError:
        raise BundleError(f"{where} is not JSON we take: nested too deeply") from None
    except ValueError as exc:
        raise BundleError(f"{where} is not JSON: {exc}") from None
    if b"\\u" in raw:  # only an escape can make a lone surrogate: UTF-8 itself holds none
        bad = _not_unicode(value)
        if bad is not None:
            raise BundleError(f"{where} is not JSON we take: {bad!r:.60} is not Unicode text "
                              f"(an escaped lone surrogate)")
    return value


def _not_json(word: str):
    raise ValueError(f"{word} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"{text[:40]} is too large for a number")
    return value


def _not_unicode(value) -> Optional[str]:
    """The first string in ``value`` (keys too) that UTF-8 cannot encode, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
    return None


def body_cap(payload_bytes: int) -> int:
    """The most a body carried in ``payload_bytes`` of payload may inflate to."""
    return min(MAX_BODY, max(MIN_BODY_CAP, payload_bytes * MAX_RATIO))


def _compress(raw: bytes) -> bytes:
    # The receiver refuses a body past `body_cap` of its payload; a body that compresses better
    # than that (rare: long runs of one value) is sent less compressed rather than refused.
    for level in (6, 1, 0):
        packed = zlib.compress(raw, level)
        if len(raw) <= body_cap(len(packed) + 16):
            return packed
    return packed


def encode_body(body: dict[str, Any], version: int) -> bytes:
    """``body`` as bytes in format ``version``. A version 2 body's ``ops`` (wire ops, or groups
    already in columns) go in columns. Raises `BundleError` for an op that cannot."""
    if version == 1:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
    ops = body.get("ops")
    if isinstance(ops, list) and not isinstance(ops, columns.Groups):
        try:
            body = {**body, "ops": columns.encode(ops)}
        except OpError as exc:
            raise BundleError(f"bundle body: {exc}") from None
    return msgpack.packb(body, default=str, use_bin_type=True)


def build(kind: str, bundle_id: str, sender: str, recipient: str, seq: int, body: dict[str, Any],
          keys: DeviceKeys, recipient_keys: PublicKeys, version: int = 1) -> bytes:
    """Encode ``body`` in format ``version`` (1 unless told: what every master reads), compress,
    seal to the recipient and sign. Raises `BundleError` over a cap."""
    if version not in VERSIONS:
        raise BundleError(f"bundle format version {version} is not one this end writes: expected one of "
                          f"{', '.join(map(str, VERSIONS))}")
    raw = encode_body(body, version)
    if len(raw) > MAX_BODY:
        raise BundleError(f"bundle body of {len(raw)} bytes is over the cap of {MAX_BODY}: sync in smaller steps")
    eph, encrypt = begin_seal(recipient_keys.box)
    header = Header(kind, bundle_id, sender, recipient, seq, eph, len(raw), version).to_bytes()
    payload = encrypt(_compress(raw), header)
    if len(payload) > MAX_PAYLOAD:
        raise BundleError(f"bundle payload of {len(payload)} bytes is over the cap of {MAX_PAYLOAD}")
    signed = MAGIC + struct.pack(">I", len(header)) + header + struct.pack(">I", len(payload)) + payload
    return signed + keys.sign(signed)


def parse(data: bytes) -> Envelope:
    """Check layout, caps and header schema. Raises `BundleError` naming the first problem."""
    if len(data) < 12 + SIGNATURE_BYTES or data[:4] != MAGIC:
        got = data[:4].hex() if len(data) >= 4 else f"{len(data)} bytes"
        raise BundleError(f"not a wangge bundle: expected magic {MAGIC.hex()} and at least "
                          f"{12 + SIGNATURE_BYTES} bytes, got {got} in {len(data)} bytes")
    (hlen,) = struct.unpack_from(">I", data, 4)
    if not 1 <= hlen <= MAX_HEADER:
        raise BundleError(f"bundle header of {hlen} bytes is outside 1..{MAX_HEADER}")
    if len(data) < 12 + hlen:
        raise BundleError(f"bundle is truncated: {len(data)} bytes cannot hold its {hlen}-byte header")
    (plen,) = struct.unpack_from(">I", data, 8 + hlen)
    if not 16 <= plen <= MAX_PAYLOAD:
        raise BundleError(f"bundle payload of {plen} bytes is outside 16..{MAX_PAYLOAD} (its AEAD tag alone is 16)")
    expected = 12 + hlen + plen + SIGNATURE_BYTES
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "too long"
        raise BundleError(f"bundle is {what}: its lengths add up to {expected} bytes, got {len(data)}")
    header_bytes = data[8 : 8 + hlen]
    header = _header(header_bytes)
    if header.body > body_cap(plen):
        # Checked before anything is decrypted or inflated: a zip bomb costs the receiver nothing.
        raise BundleError(f"bundle {header.id} declares a body of {header.body} bytes in a payload of {plen}: "
                          f"over the cap of {body_cap(plen)} bytes ({MAX_RATIO} times its payload)")
    signed = data[: expected - SIGNATURE_BYTES]
    return Envelope(header, header_bytes, data[12 + hlen : 12 + hlen + plen], signed, data[-SIGNATURE_BYTES:])


def _header(raw: bytes) -> Header:
    data = _decode_json(raw, "bundle header")
    if not isinstance(data, dict) or set(data) != set(HEADER_FIELDS):
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise BundleError(f"bundle header needs exactly the fields {sorted(HEADER_FIELDS)}, got {got}")
    for name, kind in HEADER_FIELDS.items():
        if type(data[name]) is not kind:
            raise BundleError(f"bundle header field {name!r} must be {kind.__name__}, got {data[name]!r}")
    if data["v"] not in VERSIONS:
        raise BundleError(f"bundle format version {data['v']} is not supported: expected one of "
                          f"{', '.join(map(str, VERSIONS))}")
    if data["kind"] not in KINDS:
        raise BundleError(f"bundle kind {data['kind']!r} is unknown: expected one of {', '.join(KINDS)}")
    if not all(0 < len(data[name]) <= 64 and "\x00" not in data[name] for name in ("id", "from", "to")):
        # NUL: a PostgreSQL master could not even look the sender up.
        raise BundleError("bundle header id, from and to must be 1-64 characters, none of them NUL")
    if not 1 <= data["seq"] <= MAX_SEQ:
        # The receiver keeps it in a signed 64-bit column: a larger one would fail there, not here.
        raise BundleError(f"bundle header field 'seq' must be an integer in 1..{MAX_SEQ}, got {data['seq']}")
    if not 0 <= data["body"] <= MAX_BODY:
        raise BundleError(f"bundle header field 'body' must be a byte count in 0..{MAX_BODY}, got {data['body']}")
    try:
        eph = base64.b64decode(data["eph"], validate=True)
    except ValueError:
        eph = b""
    if len(eph) != 32:
        raise BundleError("bundle header eph must be a base64 32-byte X25519 key")
    return Header(data["kind"], data["id"], data["from"], data["to"], data["seq"], eph, data["body"], data["v"])
