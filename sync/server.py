"""The master's HTTP transport: a plain ASGI app served by uvicorn.

HTTP here only moves bytes. The bundles are the same signed, encrypted
bundles the file transport carries; verifying, authorising and applying
them is the sync protocol's job, reached through the `Master` interface
the caller passes in. This module adds what a network needs and a USB
stick does not: resumable transfers, body caps, concurrency and clean
errors.

Endpoints (JSON unless noted; every error is ``{"error": ..., "status": N}``
with a 4xx code, never a traceback):

    GET  /health                      {"status": "ok", ...Master.health()}
    GET  /registry                    the device registry, signed by the master (sync/registry.py)
    POST /enroll                      an enrollment request → {"device_id", "status"}
    GET  /enroll/{device_id}          the request's status (pending, active, revoked)
    GET  /uploads/{sha}               {"received": N} bytes of an upload so far
    PUT  /uploads/{sha}?offset=&total=   one chunk (raw body) → {"received": N}
    POST /exchange/{sha}              apply the uploaded bundle → {"reply", "size", "summary"}
    GET  /replies/{sha}?offset=       the reply bundle's bytes from offset (raw)
    GET  /blobs/{sha}                 {"received": N} (signed request)
    PUT  /blobs/{sha}?offset=&total=  a photo chunk (signed request)
    GET  /blobs/{sha}/data?offset=    a photo's bytes, if in the device's scope (signed)

An upload is named by the SHA-256 of the whole bundle, so it is resumable
(ask how much arrived, send the rest) and checked end to end. `POST
/exchange` is idempotent: the reply to a bundle is kept under the bundle's
hash, so a device whose connection dropped while the master replied asks
again and gets the same reply — the bundle is applied once.

Bundles are applied one at a time (`asyncio.Lock`) in a worker thread:
SQLite has one writer anyway (transactions start with ``BEGIN IMMEDIATE``),
and queueing in the app keeps hundreds of devices from spinning on
``busy_timeout``. Reads (health, downloads) are not queued.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, Optional, Protocol
from urllib.parse import parse_qs

from wangge.core.errors import SyncError, UsageError, WanggeError
from wangge.sync.attachments import AttachmentError, BlobStore, check_sha

log = logging.getLogger("wangge.server")

#: Default caps. A patrol's bundle is kilobytes; provisioning 400 households
#: of 77 fields and 2,000 cases is a few megabytes.
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_CHUNK_BYTES = 4 * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024
#: A signed blob request is valid this long: bounds replay of a captured header.
REQUEST_SKEW_MS = 5 * 60 * 1000

#: Digits of the longest number a query parameter or header may carry (offsets, sizes, times in ms):
#: any 18-digit number fits a signed 64-bit integer, and none of these needs more.
MAX_DIGITS = 18

HEADER_DEVICE = "x-wangge-device"
HEADER_TIME = "x-wangge-time"
HEADER_SIGNATURE = "x-wangge-signature"


class Master(Protocol):
    """What the HTTP layer needs from the master's sync protocol."""

    def exchange(self, bundle: bytes) -> tuple[bytes, str]:
        """Verify and apply a device's bundle; return the reply bundle and a one-line summary.

        Raises `SyncError` to refuse it (revoked device, bad signature, ...).
        """

    def enroll(self, request: dict) -> dict:
        """Record an enrollment request; return ``{"device_id", "status"}``. Raises `SyncError`."""

    def enrollment(self, device_id: str) -> dict:
        """The status of a device's enrollment. Raises `SyncError` if unknown."""

    def device_grids(self, device_id: str, message: bytes, signature: bytes) -> list[str]:
        """The grids of an active device whose ``signature`` over ``message`` verifies.

        Raises `SyncError` for an unknown or revoked device or a bad signature.
        """

    def health(self) -> dict:
        """Facts for the health endpoint (role, ruleset version, ...)."""

    def registry(self) -> bytes:
        """The device registry as a snapshot signed by the master."""


class HttpError(Exception):
    """An error answered to the client as JSON with a 4xx status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    receive: Callable[[], Awaitable[dict]]

    async def body(self, cap: int) -> bytes:
        """The whole body, refusing more than ``cap`` bytes (413) before reading it all."""
        declared = self.headers.get("content-length")
        if declared is not None:
            if not _is_number(declared):
                raise HttpError(400, f"bad Content-Length {declared!r:.40}: expected a number of bytes")
            if int(declared) > cap:
                raise HttpError(413, f"request body of {declared} bytes is over the cap of {cap} bytes")
        parts, size = [], 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise HttpError(400, "the client disconnected during the request body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise HttpError(413, f"request body is over the cap of {cap} bytes")
            parts.append(chunk)
            if not message.get("more_body"):
                return b"".join(parts)

    async def json(self) -> dict:
        raw = await self.body(MAX_JSON_BYTES)
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"request body is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise HttpError(400, f"request body must be a JSON object, got {type(value).__name__}")
        return value

    def int_param(self, name: str, default: Optional[int] = None) -> int:
        raw = self.query.get(name)
        if raw is None:
            if default is None:
                raise HttpError(400, f"missing query parameter {name!r}: expected a number of bytes")
            return default
        if not _is_number(raw):
            raise HttpError(400, f"bad query parameter {name}={raw!r:.40}: expected a non-negative integer "
                                 f"of at most {MAX_DIGITS} digits 0-9")
        return int(raw)


class MasterApp:
    """The ASGI application of a master. ``folder`` holds uploads and replies."""

    def __init__(self, master: Master, folder: str | Path, *, blobs: Optional[BlobStore] = None,
                 max_bundle: int = MAX_BUNDLE_BYTES, now_ms: Callable[[], int] = lambda: int(time.time() * 1000)):
        self.master = master
        self.folder = Path(folder)
        self.uploads = BlobStore(self.folder / "uploads", max_bytes=max_bundle)
        self.replies = BlobStore(self.folder / "replies", max_bytes=max_bundle * 4)
        self.answered = self.folder / "answered"  # bundle sha -> reply sha
        self.answered.mkdir(parents=True, exist_ok=True)
        self.blobs = blobs or BlobStore(self.folder / "blobs")
        self.now_ms = now_ms
        self._apply_lock: Optional[asyncio.Lock] = None
        self.exchanges = 0  # bundles applied (not replayed answers), for health and tests

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(
            scope["method"], scope["path"],
            {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()},
            {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])},
            receive,
        )
        try:
            status, body, kind = await self.route(request)
        except HttpError as exc:
            status, body, kind = exc.status, _error(exc.status, str(exc)), "application/json"
        except SyncError as exc:
            status = refusal_status(exc)
            body, kind = _error(status, str(exc)), "application/json"
        except WanggeError as exc:
            status, body, kind = 422, _error(422, str(exc)), "application/json"
        except Exception:  # noqa: BLE001 - never a traceback to a client
            log.exception("internal error on %s %s", request.method, request.path)
            status, body, kind = 500, _error(500, "internal error on the master; it is logged there"), "application/json"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def route(self, req: Request) -> tuple[int, bytes, str]:
        parts = [p for p in req.path.split("/") if p]
        key = (req.method, parts[0] if parts else "", len(parts))
        name = _ROUTES.get(key)
        if name is None:
            if any(k[1:] == key[1:] for k in _ROUTES):
                raise HttpError(405, f"{req.method} is not allowed on {req.path}")
            raise HttpError(404, f"no endpoint {req.method} {req.path}: see GET /health for the master")
        handler = getattr(self, name)
        return await handler(req, *parts[1:])

    # -- endpoints ----------------------------------------------------------

    async def health(self, req: Request):
        facts = await asyncio.to_thread(self.master.health)
        return _json(200, {"status": "ok", "exchanges": self.exchanges, **facts})

    async def registry(self, req: Request):
        data = await asyncio.to_thread(self.master.registry)
        return 200, data, "application/json"

    async def enroll(self, req: Request):
        request = await req.json()
        return _json(202, await self._serialised(self.master.enroll, request))

    async def enrollment(self, req: Request, device_id: str):
        return _json(200, await asyncio.to_thread(self.master.enrollment, device_id))

    async def upload_status(self, req: Request, sha: str):
        # An answered bundle's upload is gone; say so, so the device skips to the reply.
        answered = (self.answered / check_sha(sha)).exists()
        return _json(200, {"received": self.uploads.received(sha), "answered": answered})

    async def upload_chunk(self, req: Request, sha: str):
        return _json(200, {"received": await self._chunk(self.uploads, req, sha)})

    async def exchange(self, req: Request, sha: str):
        check_sha(sha)
        answered = self.answered / sha
        if not answered.exists():
            if not self.uploads.has(sha):
                have = self.uploads.received(sha)
                raise HttpError(409, f"bundle {sha[:12]} is incomplete: {have} bytes arrived; upload the rest first")
            await self._serialised(self._apply, sha)
        reply = json.loads(answered.read_text(encoding="utf-8"))
        return _json(200, reply)

    def _apply(self, sha: str) -> None:
        if (self.answered / sha).exists():  # answered while this request queued
            return
        reply, summary = self.master.exchange(self.uploads.read(sha))
        reply_sha = self.replies.put(reply)
        record = json.dumps({"reply": reply_sha, "size": len(reply), "summary": summary})
        tmp = self.answered / (sha + ".tmp")
        tmp.write_text(record, encoding="utf-8")
        tmp.replace(self.answered / sha)
        self.uploads.path(sha).unlink(missing_ok=True)  # the reply now stands for it
        self.exchanges += 1

    async def reply(self, req: Request, sha: str):
        return self._download(self.replies, sha, req.int_param("offset", 0))

    async def blob_status(self, req: Request, sha: str):
        await self._signed(req)
        return _json(200, {"received": self.blobs.received(check_sha(sha))})

    async def blob_chunk(self, req: Request, sha: str):
        await self._signed(req)
        return _json(200, {"received": await self._chunk(self.blobs, req, sha)})

    async def blob_data(self, req: Request, sha: str, leaf: str):
        if leaf != "data":
            raise HttpError(404, f"no endpoint GET {req.path}: expected /blobs/SHA/data")
        grids = await self._signed(req)
        from wangge.sync.attachments import may_fetch

        allowed = await asyncio.to_thread(self.master_may_fetch, may_fetch, sha, grids)
        if not allowed:
            raise HttpError(403, f"blob {sha[:12]} is not attached to any record in this device's grids")
        return self._download(self.blobs, sha, req.int_param("offset", 0))

    def master_may_fetch(self, may_fetch, sha: str, grids: list[str]) -> bool:
        connect = getattr(self.master, "read", None)
        if connect is None:
            return False
        with connect() as conn:
            return may_fetch(conn, sha, grids)

    # -- helpers ------------------------------------------------------------

    async def _chunk(self, store: BlobStore, req: Request, sha: str) -> int:
        check_sha(sha)
        offset, total = req.int_param("offset"), req.int_param("total")
        data = await req.body(MAX_CHUNK_BYTES)
        return store.write_chunk(sha, offset, data, total)

    def _download(self, store: BlobStore, sha: str, offset: int):
        # At most MAX_CHUNK_BYTES per response: a dropped link loses one chunk,
        # and the master never holds a whole provisioning reply per request.
        if not store.has(check_sha(sha)):
            raise HttpError(404, f"no bundle or blob {sha[:12]} here")
        size = store.size(sha)
        if offset > size:
            raise HttpError(416, f"offset {offset} is past the end ({size} bytes)")
        data = next((chunk for _, chunk in store.chunks(sha, offset, MAX_CHUNK_BYTES)), b"")
        return 200, data, "application/octet-stream"

    async def _signed(self, req: Request) -> list[str]:
        device, stamp, signature = (req.headers.get(h) for h in (HEADER_DEVICE, HEADER_TIME, HEADER_SIGNATURE))
        if not (device and stamp and signature):
            raise HttpError(401, f"this endpoint needs a signed request: headers {HEADER_DEVICE}, {HEADER_TIME}, {HEADER_SIGNATURE}")
        if not _is_number(stamp) or abs(int(stamp) - self.now_ms()) > REQUEST_SKEW_MS:
            raise HttpError(401, f"request time {stamp!r:.40} is not milliseconds since the epoch within 5 minutes "
                                 f"of the master's clock")
        try:
            raw = base64.b64decode(signature, validate=True)
        except ValueError:
            raise HttpError(401, "request signature is not base64") from None
        message = request_message(req.method, req.path, device, stamp)
        return await asyncio.to_thread(self.master.device_grids, device, message, raw)

    async def _serialised(self, fn, *args):
        if self._apply_lock is None:
            self._apply_lock = asyncio.Lock()
        async with self._apply_lock:
            return await asyncio.to_thread(fn, *args)


#: (method, first path segment, segments) -> handler method: the one table of routes.
_ROUTES = {
    ("GET", "health", 1): "health",
    ("GET", "registry", 1): "registry",
    ("POST", "enroll", 1): "enroll",
    ("GET", "enroll", 2): "enrollment",
    ("GET", "uploads", 2): "upload_status",
    ("PUT", "uploads", 2): "upload_chunk",
    ("POST", "exchange", 2): "exchange",
    ("GET", "replies", 2): "reply",
    ("GET", "blobs", 2): "blob_status",
    ("PUT", "blobs", 2): "blob_chunk",
    ("GET", "blobs", 3): "blob_data",
}


def _is_number(text: str) -> bool:
    """Whether ``text`` is a plain decimal number: ASCII digits only, at most `MAX_DIGITS` of them.

    `str.isdigit` alone also passes "²" and full-width "１", which `int` refuses or reads as
    digits no client sends; and a thousand-digit number is no offset, size or time.
    """
    return 0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit()


def request_message(method: str, path: str, device: str, stamp: str) -> bytes:
    """The bytes a device signs to authenticate a blob request."""
    return f"wangge-request/1\n{method}\n{path}\n{device}\n{stamp}".encode("utf-8")


def _json(status: int, value: Any) -> tuple[int, bytes, str]:
    return status, json.dumps(value, ensure_ascii=False).encode("utf-8"), "application/json"


def refusal_status(exc: SyncError) -> int:
    """The HTTP status of a sync refusal: 400 for what is malformed (a damaged bundle, a bad
    request or attachment), 409 for a bundle out of turn (replayed, or a reply to another push),
    403 for what is well formed but not allowed (a bad signature, a revoked device, an op out
    of scope). A client acts on the kind: resend whole, sync again, or ask the office."""
    from wangge.sync.bundle import BundleError
    from wangge.sync.enrollment import EnrollmentError
    from wangge.sync.protocol import Replayed

    if isinstance(exc, (BundleError, EnrollmentError, AttachmentError)):
        return 400
    if isinstance(exc, Replayed):
        return 409
    return 403


def _error(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": status}, ensure_ascii=False).encode("utf-8")


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


# -- running it ----------------------------------------------------------------

def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket; port 0 picks a free one. Raises `UsageError` if the port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from None
    sock.listen(2048)
    return sock


def _config(app, *, certfile: Optional[str] = None, keyfile: Optional[str] = None, log_level: str = "warning"):
    import uvicorn

    if bool(certfile) != bool(keyfile):
        raise UsageError("TLS needs both a certificate file and its key file (--cert and --key)")
    return uvicorn.Config(app, lifespan="on", log_level=log_level, ssl_certfile=certfile, ssl_keyfile=keyfile,
                          timeout_keep_alive=30, limit_concurrency=4096, backlog=2048, access_log=False)


def serve(app, sock: socket.socket, **options) -> None:
    """Serve ``app`` on the listening ``sock`` (from `bind`) until interrupted: the `wangge serve` command."""
    import uvicorn

    uvicorn.Server(_config(app, **options)).run(sockets=[sock])


@contextlib.contextmanager
def running(app, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 10.0, **options) -> Iterator[str]:
    """Serve ``app`` in a background thread; yield its base URL; stop it on leaving.

    Waits (bounded) for the server to start. Raises `SyncError` if it does not.
    """
    import uvicorn

    class _Server(uvicorn.Server):
        def install_signal_handlers(self) -> None:  # not the main thread
            pass

    sock = bind(host, port)
    server = _Server(_config(app, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="wangge-master")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise SyncError(f"the master server did not start on {host}:{sock.getsockname()[1]}")
        time.sleep(0.005)
    scheme = "https" if options.get("certfile") else "http"
    try:
        yield f"{scheme}://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
