"""Signed requests: how a device proves who it is on an HTTP request that carries no bundle.

A bundle is signed inside; a photo chunk or an upload chunk is not. For those
the device signs a short message naming the method, the path, itself and the
time (`request_message`) and sends it in three headers. The master checks the
time against its own clock (a captured header is good for `REQUEST_SKEW_MS`
only) and the signature against the device's enrolled key.

Pure functions over text: the HTTP server hands in the headers and its clock,
the client hands in its signing key.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Callable, Mapping

from wangge.core.errors import SyncError

HEADER_DEVICE = "x-wangge-device"
HEADER_TIME = "x-wangge-time"
HEADER_SIGNATURE = "x-wangge-signature"
#: A signed request is valid this long: bounds replay of a captured header.
REQUEST_SKEW_MS = 5 * 60 * 1000
#: Digits of the longest number a query parameter or header may carry (offsets, sizes, times in ms):
#: any 18-digit number fits a signed 64-bit integer, and none of these needs more.
MAX_DIGITS = 18


class Unsigned(SyncError, PermissionError):
    """A request that needs a device's signature lacks one, or carries a stale or malformed one."""

    http_status = 401


@dataclass(frozen=True)
class SignedRequest:
    """Who claims to have signed a request, and what to verify against their enrolled key."""

    device_id: str
    message: bytes
    signature: bytes


def is_number(text: str) -> bool:
    """Whether ``text`` is a plain decimal number: ASCII digits only, at most `MAX_DIGITS` of them.

    `str.isdigit` alone also passes "²" and full-width "１", which `int` refuses or reads as
    digits no client sends; and a thousand-digit number is no offset, size or time.
    """
    return 0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit()


def request_message(method: str, path: str, device: str, stamp: str) -> bytes:
    """The bytes a device signs to authenticate a request."""
    return f"wangge-request/1\n{method}\n{path}\n{device}\n{stamp}".encode("utf-8")


def sign_headers(method: str, path: str, device_id: str, sign: Callable[[bytes], bytes], now_ms: int) -> dict:
    """The three headers that sign ``method path`` for ``device_id`` at ``now_ms``."""
    stamp = str(now_ms)
    signature = sign(request_message(method, path.split("?")[0], device_id, stamp))
    return {HEADER_DEVICE: device_id, HEADER_TIME: stamp, HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii")}


def read_signed(method: str, path: str, headers: Mapping[str, str], now_ms: int) -> SignedRequest:
    """The claimed signer of a request, with the message and signature to verify.

    Checks presence, form and freshness only; the caller verifies the signature
    against the device's enrolled key. Raises `Unsigned`.
    """
    device, stamp, signature = (headers.get(h) for h in (HEADER_DEVICE, HEADER_TIME, HEADER_SIGNATURE))
    if not (device and stamp and signature):
        raise Unsigned(f"this endpoint needs a signed request: headers {HEADER_DEVICE}, {HEADER_TIME}, "
                       f"{HEADER_SIGNATURE}")
    if not is_number(stamp) or abs(int(stamp) - now_ms) > REQUEST_SKEW_MS:
        raise Unsigned(f"request time {stamp!r:.40} is not milliseconds since the epoch within 5 minutes "
                       f"of the master's clock")
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        raise Unsigned("request signature is not base64") from None
    return SignedRequest(device, request_message(method, path, device, stamp), raw)
