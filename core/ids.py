"""Entity ids minted offline: UUIDv7 (RFC 9562), time-ordered and unique per device.

Time order keeps B-tree inserts at the right edge of the index, which keeps
bulk inserts on tablets and masters cheap.
"""
from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_seq = 0


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
            _seq = int.from_bytes(os.urandom(2), "big") & 0x3FF
        _last_ms = ms
        seq = _seq
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= seq << 64
    value |= 0b10 << 62
    value |= rand_b
    return str(uuid.UUID(int=value))


def uuid7_time_ms(value: str) -> int:
    """The Unix time in milliseconds carried by a UUIDv7."""
    return uuid.UUID(value).int >> 80
