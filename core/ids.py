"""Entity ids minted offline: UUIDv7 (RFC 9562), time-ordered and unique per device.

Time order keeps B-tree inserts at the right edge of the index, which keeps
bulk inserts on tablets and masters cheap.
"""
from __future__ import annotations

import os
import random
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_seq = 0
# The random bits make ids from different devices distinct, not secret, so a
# PRNG seeded from the OS is enough; os.urandom per id would cost a syscall.
_random = random.Random(os.urandom(16))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(16)))


def uuid7(now_ms: int | None = None) -> str:
    """Return a new UUIDv7 as a lowercase hyphenated string.

    Ids minted in one process are strictly increasing: within one millisecond
    a 12-bit counter (``rand_a``) orders them, and if it overflows the
    timestamp is advanced by one millisecond (RFC 9562, method 3).
    """
    global _last_ms, _seq
    with _lock:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        if ms <= _last_ms:
            ms = _last_ms
            _seq += 1
            if _seq > 0xFFF:
                ms += 1
                _seq = 0
        else:
            _seq = _random.getrandbits(10)
        _last_ms = ms
        value = (ms & 0xFFFFFFFFFFFF) << 80 | 0x7 << 76 | _seq << 64 | 0b10 << 62 | _random.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7_many(count: int) -> list[str]:
    """``count`` new UUIDv7s in increasing order (one clock read for the batch)."""
    global _last_ms, _seq
    ids = []
    with _lock:
        ms = max(int(time.time() * 1000), _last_ms)
        seq = _seq if ms == _last_ms else _random.getrandbits(10) - 1
        # Every change of a bulk write mints an op id: draw the random bits
        # for the whole batch at once, set their variant bits in one pass
        # (RFC 9562: binary 10 atop each id's 64 random bits), and format the
        # time prefix once per ms.
        noise = _with_variant(_random.randbytes(8 * count)).hex()
        head_ms, head = -1, ""
        hexed = _SEQ_HEX
        for start in range(0, 16 * count, 16):
            seq += 1
            if seq > 0xFFF:
                ms += 1
                seq = 0
            if ms != head_ms:
                h = f"{ms & 0xFFFFFFFFFFFF:012x}"
                head_ms, head = ms, f"{h[:8]}-{h[8:]}-7"
            ids.append(f"{head}{hexed[seq]}-{noise[start : start + 4]}-{noise[start + 4 : start + 16]}")
        _last_ms, _seq = ms, max(seq, 0)
    return ids


#: The counter as three hex digits, for each of its 4,096 values.
_SEQ_HEX = [f"{n:03x}" for n in range(0x1000)]
#: Per byte value, the byte with the variant bits (binary 10) in its top two bits.
_VARIANT_BYTE = bytes(0x80 | (b & 0x3F) for b in range(256))


def _with_variant(noise: bytes) -> bytes:
    """The 8-byte random blocks of ``noise`` with each block's first byte carrying the variant."""
    marked = bytearray(noise)
    marked[::8] = marked[::8].translate(_VARIANT_BYTE)
    return bytes(marked)


def uuid7_time_ms(value: str) -> int:
    """The Unix time in milliseconds carried by a UUIDv7."""
    return uuid.UUID(value).int >> 80
