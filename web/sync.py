"""The master's sync endpoints, as Starlette routes over a `Master`.

HTTP here only moves bytes. The bundles are the same signed, encrypted
bundles the file transport carries; verifying, authorising and applying
them is the sync protocol's job, reached through the `Master` interface the
caller passes in. These routes add what a network needs and a USB stick
does not: resumable transfers, body caps, concurrency and clean errors.

Endpoints (JSON unless noted; every error is ``{"error": ..., "status": N}``
with a 4xx code, never a traceback — see `wangge.web.server`):

    GET  /health                      {"status": "ok", "process": pid, "exchanges": N, ...Master.health()}
                                      (the process answering, of `wangge serve --workers N`, and its count)
    GET  /registry                    the device registry, signed by the master (sync/registry.py)
    POST /enroll                      an enrollment request → {"device_id", "status"}
    GET  /enroll/{device_id}          the request's status (pending, active, revoked)
    GET  /uploads/{sha}               {"received": N} bytes of an upload so far
    PUT  /uploads/{sha}?offset=&total=   one chunk (raw body) → {"received": N} (signed request)
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

Bundles are applied in worker threads, at most ``applying`` at once per
process (an `asyncio.Semaphore`). On SQLite that is one: it has one writer
anyway (transactions start with ``BEGIN IMMEDIATE``), and queueing in the
app keeps hundreds of devices from spinning on ``busy_timeout``. On
PostgreSQL the database orders the writers of every process
(`wangge.core.store.WRITE_LOCK`), one device's exchanges with the rest, so
`wangge serve --workers N` runs N processes of these endpoints on one port.
Reads (health, downloads) are not queued; chunks are written (and a
finished blob fsynced) in worker threads, off the event loop.

What the processes share is the folder: uploads and replies are written
under temporary names and renamed into place, chunks of one upload appended
one writer at a time (`BlobStore.write_chunk`), and a bundle's answered
record (bundle sha -> reply) linked into place only if none is there yet.
So a bundle posted to two processes at once is applied once (the second
apply finds it imported and returns the same reply), both answer the same
record, and neither fails on an upload the other removed.

Each handler notes on ``request.state`` the device it served and the ops
that went in and out, for the access log (`wangge.web.access`).
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Protocol

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from wangge.core.errors import WanggeError
from wangge.sync.attachments import AttachmentError, BlobStore, check_sha, may_fetch
from wangge.sync.request_auth import MAX_DIGITS, is_number, read_signed

#: Default caps. A patrol's bundle is kilobytes; provisioning 400 households
#: of 77 fields and 2,000 cases is a few megabytes.
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_CHUNK_BYTES = 4 * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024


class Master(Protocol):
    """What the sync endpoints need from the master's sync protocol (`wangge.sync.office.Office`)."""

    def exchange(self, bundle: bytes):
        """Verify and apply a device's bundle; return an `Exchanged` (reply, summary, device, ops in and out).

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

    def may_upload(self, device_id: str, message: bytes, signature: bytes) -> None:
        """Raise `SyncError` unless an enrolled device's key signed ``message`` (a bundle upload)."""

    def health(self) -> dict:
        """Facts for the health endpoint (role, ruleset version, ...)."""

    def registry(self) -> bytes:
        """The device registry as a snapshot signed by the master."""


class HttpError(WanggeError):
    """A request the endpoints refuse before the sync protocol sees it; answered with ``http_status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.http_status = status


def query_number(query: Mapping[str, str], name: str, default: Optional[int] = None) -> int:
    """The query parameter ``name`` as a non-negative integer. Raises `HttpError` (400)."""
    raw = query.get(name)
    if raw is None:
        if default is None:
            raise HttpError(400, f"missing query parameter {name!r}: expected a number of bytes")
        return default
    if not is_number(raw):
        raise HttpError(400, f"bad query parameter {name}={raw!r:.40}: expected a non-negative integer "
                             f"of at most {MAX_DIGITS} digits 0-9")
    return int(raw)


def declared_length(request: Request, cap: int) -> None:
    """Refuse a body whose Content-Length is not a number (400) or over ``cap`` (413), unread."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    if not is_number(declared):
        raise HttpError(400, f"bad Content-Length {declared!r:.40}: expected a number of bytes")
    if int(declared) > cap:
        raise HttpError(413, f"request body of {declared} bytes is over the cap of {cap} bytes")


async def read_body(request: Request, cap: int) -> bytes:
    """The whole body, refusing more than ``cap`` bytes (413) before reading it all."""
    declared_length(request, cap)
    parts, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise HttpError(413, f"request body is over the cap of {cap} bytes")
            parts.append(chunk)
    except ClientDisconnect:
        raise HttpError(400, "the client disconnected during the request body") from None
    return b"".join(parts)


async def read_json(request: Request) -> dict:
    """The body as a JSON object (at most `MAX_JSON_BYTES`). Raises `HttpError` (400, 413)."""
    raw = await read_body(request, MAX_JSON_BYTES)
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"request body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise HttpError(400, f"request body must be a JSON object, got {type(value).__name__}")
    return value


class EnrollmentGate:
    """Per source address: a rate of enrollment requests, and a cap on the devices it may have waiting.

    A token bucket of ``burst`` requests refilled at one per ``every`` seconds
    stops a flood; ``per_address`` bounds the new pending devices one address
    may register (an office enrolling tablets on its own Wi-Fi stays far
    below both). The store's own cap (`enrollment.MAX_PENDING`) holds against
    many addresses. Remembers at most ``addresses`` addresses (oldest dropped).
    """

    def __init__(self, *, burst: int = 60, every: float = 1.0, per_address: int = 50, addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.burst, self.every, self.per_address, self.addresses = burst, every, per_address, addresses
        self.clock = clock
        self._buckets: dict[str, list] = {}  # address -> [tokens, at, pending device ids]

    def admit(self, address: str) -> None:
        """Take one request's token for ``address``. Raises `HttpError` (429) when it has none or is full."""
        now = self.clock()
        bucket = self._buckets.pop(address, None) or [float(self.burst), now, set()]
        self._buckets[address] = bucket  # most recent last
        if len(self._buckets) > self.addresses:
            self._buckets.pop(next(iter(self._buckets)))
        bucket[0] = min(float(self.burst), bucket[0] + (now - bucket[1]) / self.every)
        bucket[1] = now
        if len(bucket[2]) >= self.per_address:
            raise HttpError(429, f"{len(bucket[2])} devices from {address} are waiting for the office already: "
                                 f"ask the office to approve them before enrolling more")
        if bucket[0] < 1:
            raise HttpError(429, f"too many enrollment requests from {address}: try again in "
                                 f"{(1 - bucket[0]) * self.every:.0f} s")
        bucket[0] -= 1

    def waiting(self, address: str) -> set[str]:
        """The devices counted as waiting for ``address`` (the set itself: `prune` narrows it)."""
        bucket = self._buckets.get(address)
        return bucket[2] if bucket is not None else set()

    def prune(self, address: str, still_pending: Callable[[str], bool]) -> None:
        """Stop counting the devices of ``address`` the office has approved, revoked or let expire."""
        waiting = self.waiting(address)
        for device_id in list(waiting):
            if not still_pending(device_id):
                waiting.discard(device_id)

    def pending(self, address: str, device_id: str) -> None:
        """Count ``device_id`` as waiting on behalf of ``address``."""
        bucket = self._buckets.get(address)
        if bucket is not None:
            bucket[2].add(device_id)


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value, ensure_ascii=False).encode("utf-8"), status, media_type="application/json")


class SyncEndpoints:
    """The sync endpoints of one master; ``folder`` holds uploads, replies and (by default) photos.

    ``on_event(text)`` hears of each enrollment request and each applied
    bundle, one line each, for `wangge serve` to print. ``applying`` is how
    many bundles (and enrollments) this process applies at once: 1 for
    SQLite, more only where the database orders its writers (PostgreSQL).
    """

    def __init__(self, master: Master, folder: str | Path, *, blobs: Optional[BlobStore] = None,
                 max_bundle: int = MAX_BUNDLE_BYTES, now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 on_event: Optional[Callable[[str], None]] = None, gate: Optional[EnrollmentGate] = None,
                 applying: int = 1):
        self.master = master
        self.folder = Path(folder)
        self.uploads = BlobStore(self.folder / "uploads", max_bytes=max_bundle)
        self.replies = BlobStore(self.folder / "replies", max_bytes=max_bundle * 4)
        self.answered = self.folder / "answered"  # bundle sha -> reply sha
        self.answered.mkdir(parents=True, exist_ok=True)
        self.blobs = blobs or BlobStore(self.folder / "blobs")
        self.now_ms = now_ms
        self.on_event = on_event or (lambda text: None)
        self.gate = gate or EnrollmentGate()
        if applying < 1:
            raise ValueError(f"applying={applying}: expected at least 1 bundle applied at a time")
        self.applying = applying
        self._applying: Optional[asyncio.Semaphore] = None
        self.exchanges = 0  # bundles applied by this process (not replayed answers), for health and tests

    @property
    def routes(self) -> list[BaseRoute]:
        """The declared routes, at the paths devices know (docs/sync-protocol.md)."""
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/registry", self.registry, methods=["GET"]),
            Route("/enroll", self.enroll, methods=["POST"]),
            Route("/enroll/{device_id}", self.enrollment, methods=["GET"]),
            Route("/uploads/{sha}", self.upload_status, methods=["GET"]),
            Route("/uploads/{sha}", self.upload_chunk, methods=["PUT"]),
            Route("/exchange/{sha}", self.exchange, methods=["POST"]),
            Route("/replies/{sha}", self.reply, methods=["GET"]),
            Route("/blobs/{sha}", self.blob_status, methods=["GET"]),
            Route("/blobs/{sha}", self.blob_chunk, methods=["PUT"]),
            Route("/blobs/{sha}/data", self.blob_data, methods=["GET"]),
        ]

    # -- endpoints ----------------------------------------------------------

    async def health(self, request: Request) -> Response:
        facts = await asyncio.to_thread(self.master.health)
        return _json({"status": "ok", "process": os.getpid(), "exchanges": self.exchanges, **facts})

    async def registry(self, request: Request) -> Response:
        data = await asyncio.to_thread(self.master.registry)
        return Response(data, media_type="application/json")

    async def enroll(self, request: Request) -> Response:
        source = request.client.host if request.client else "?"
        if len(self.gate.waiting(source)) >= self.gate.per_address:
            await asyncio.to_thread(self.gate.prune, source, self._still_pending)
        self.gate.admit(source)
        asked = await read_json(request)
        answer = await self._serialised(self.master.enroll, asked)
        request.state.device = answer.get("device_id")
        if answer.get("status") == "pending":
            self.gate.pending(source, str(answer.get("device_id")))
        self.on_event(f"enrollment request from {source}: device {answer.get('device_id')} "
                      f"({asked.get('name')}), fingerprint {answer.get('fingerprint')}: {answer.get('status')}")
        return _json(answer, 202)

    def _still_pending(self, device_id: str) -> bool:
        try:
            return self.master.enrollment(device_id).get("status") == "pending"
        except WanggeError:
            return False

    async def enrollment(self, request: Request) -> Response:
        device_id = request.path_params["device_id"]
        request.state.device = device_id
        return _json(await asyncio.to_thread(self.master.enrollment, device_id))

    async def upload_status(self, request: Request) -> Response:
        sha = check_sha(request.path_params["sha"])
        received = self.uploads.received(sha)
        # An answered bundle's upload is gone; say so, so the device skips to the reply. Looked at
        # after the upload: another process may answer it and remove the upload in between.
        answered = (self.answered / sha).exists()
        return _json({"received": received, "answered": answered})

    async def upload_chunk(self, request: Request) -> Response:
        # Signed, like photos: storage on the master is for enrolled devices only.
        return _json({"received": await self._chunk(self.uploads, request, self._uploader)})

    async def exchange(self, request: Request) -> Response:
        sha = check_sha(request.path_params["sha"])
        answered = self.answered / sha
        if not answered.exists():
            if not self.uploads.has(sha) and not answered.exists():  # answered by another process meanwhile?
                have = self.uploads.received(sha)
                raise HttpError(409, f"bundle {sha[:12]} is incomplete: {have} bytes arrived; upload the rest first")
            done = await self._serialised(self._apply, sha)
            if done is not None:
                self.exchanges += 1  # here, on the event loop: the threads applying bundles never race on it
                state = request.state
                state.device, state.ops_in, state.ops_out = done.device, done.ops_in, done.ops_out
                self.on_event(f"sync: {done.summary}")
        else:
            # Uploaded again after another process answered it (the device asked before the answer came):
            # the answer stands for it, as after an apply.
            self.uploads.remove(sha)
        return _json(json.loads(answered.read_text(encoding="utf-8")))

    def _apply(self, sha: str):
        """Apply the uploaded bundle ``sha`` and record its answer; None if it was answered already
        (while this request queued, or by another process)."""
        if (self.answered / sha).exists():
            return None
        try:
            bundle = self.uploads.read(sha)
        except AttachmentError:
            if (self.answered / sha).exists():  # another process answered it and removed the upload
                return None
            raise
        done = self.master.exchange(bundle)
        reply_sha = self.replies.put(done.reply)
        record = json.dumps({"reply": reply_sha, "size": len(done.reply), "summary": done.summary})
        # Named for this thread of this process: two answering one bundle never share the temporary file.
        # The first record stands (a link fails on an existing name): both name the same reply, and a
        # device asking twice gets the same answer, summary and all.
        tmp = self.answered / f"{sha}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(record, encoding="utf-8")
        try:
            os.link(tmp, self.answered / sha)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        self.uploads.path(sha).unlink(missing_ok=True)  # the reply now stands for it
        return done

    async def reply(self, request: Request) -> Response:
        return self._download(self.replies, request)

    async def blob_status(self, request: Request) -> Response:
        await self._signed(request)
        return _json({"received": self.blobs.received(check_sha(request.path_params["sha"]))})

    async def blob_chunk(self, request: Request) -> Response:
        return _json({"received": await self._chunk(self.blobs, request, self._signed)})

    async def blob_data(self, request: Request) -> Response:
        grids = await self._signed(request)
        sha = check_sha(request.path_params["sha"])
        if not await asyncio.to_thread(self._may_fetch, sha, grids):
            raise HttpError(403, f"blob {sha[:12]} is not attached to any record in this device's grids")
        return self._download(self.blobs, request)

    def _may_fetch(self, sha: str, grids: list[str]) -> bool:
        connect = getattr(self.master, "read", None)
        if connect is None:
            return False
        with connect() as conn:
            return may_fetch(conn, sha, grids)

    # -- helpers ------------------------------------------------------------

    async def _chunk(self, store: BlobStore, request: Request, authenticate) -> int:
        # What is malformed is refused before the signature is checked, and the body is read only after.
        sha = check_sha(request.path_params["sha"])
        offset, total = query_number(request.query_params, "offset"), query_number(request.query_params, "total")
        declared_length(request, MAX_CHUNK_BYTES)
        await authenticate(request)
        data = await read_body(request, MAX_CHUNK_BYTES)
        # In a thread: a finished blob is hashed and fsynced, which must not stall every other connection.
        return await asyncio.to_thread(store.write_chunk, sha, offset, data, total)

    def _download(self, store: BlobStore, request: Request) -> Response:
        # At most MAX_CHUNK_BYTES per response: a dropped link loses one chunk,
        # and the master never holds a whole provisioning reply per request.
        sha = check_sha(request.path_params["sha"])
        offset = query_number(request.query_params, "offset", 0)
        if not store.has(sha):
            raise HttpError(404, f"no bundle or blob {sha[:12]} here")
        size = store.size(sha)
        if offset > size:
            raise HttpError(416, f"offset {offset} is past the end ({size} bytes)")
        data = next((chunk for _, chunk in store.chunks(sha, offset, MAX_CHUNK_BYTES)), b"")
        return Response(data, media_type="application/octet-stream")

    async def _signed(self, request: Request) -> list[str]:
        """The grids of the enrolled device that signed ``request``. Raises `Unsigned` or `SyncError`."""
        signed = read_signed(request.method, request.url.path, request.headers, self.now_ms())
        request.state.device = signed.device_id
        return await asyncio.to_thread(self.master.device_grids, signed.device_id, signed.message, signed.signature)

    async def _uploader(self, request: Request) -> None:
        """Raise unless an enrolled device signed ``request``."""
        signed = read_signed(request.method, request.url.path, request.headers, self.now_ms())
        request.state.device = signed.device_id
        await asyncio.to_thread(self.master.may_upload, signed.device_id, signed.message, signed.signature)

    async def _serialised(self, fn, *args):
        """``fn(*args)`` in a worker thread, once one of the ``applying`` places is free."""
        if self._applying is None:
            self._applying = asyncio.Semaphore(self.applying)
        async with self._applying:
            return await asyncio.to_thread(fn, *args)

