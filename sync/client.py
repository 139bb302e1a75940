"""The tablet's HTTP client for a master (`wangge.sync.server`), over httpx.

Every transfer is resumable. An upload is named by the SHA-256 of the
bundle: after a dropped connection the client asks the master how many
bytes arrived and sends the rest; the exchange itself is idempotent on the
master, so asking again after a cut reply returns the same reply and the
bundle is applied once; the reply is downloaded from an offset and checked
against its hash. Transient failures (connection refused or reset, timeouts,
503) are retried with a bounded backoff; a refusal by the master (4xx) is
not retried.

On failure every method raises `SyncError` with one line saying what and
where; nothing is lost, since the tablet clears its outbox only after it
has verified the master's signed ack (the sync protocol's rule).
"""
from __future__ import annotations

import base64
import functools
import hashlib
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import httpx

from wangge.core.errors import SyncError
from wangge.sync.attachments import BlobStore
from wangge.sync.server import HEADER_DEVICE, HEADER_SIGNATURE, HEADER_TIME, request_message

#: Large enough that a provisioning bundle takes few requests, small enough
#: that a bad link loses little when it drops.
CHUNK_BYTES = 1024 * 1024
RETRYABLE_STATUS = frozenset({502, 503, 504})


@dataclass
class Traffic:
    """What moved each way so far; `on_progress` receives it after every step."""

    bytes_up: int = 0
    bytes_down: int = 0
    ops_up: int = 0
    ops_down: int = 0
    total_up: int = 0  # bytes_up once the current transfer is done, for a progress bar
    total_down: int = 0  # likewise for bytes_down
    retries: int = 0
    stage: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Signer:
    """A device's identity for signed requests: its id and a sign(bytes) -> bytes."""

    device_id: str
    sign: Callable[[bytes], bytes]


class MasterClient:
    """A connection to one master at ``base_url``. Close it (or use ``with``) when done."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, attempts: int = 6,
                 backoff: Callable[[int], float] = lambda n: min(0.1 * 2**n, 5.0),
                 on_progress: Optional[Callable[[Traffic], None]] = None,
                 transport: Optional[httpx.BaseTransport] = None, verify=True,
                 sleep: Callable[[float], None] = time.sleep, chunk: int = CHUNK_BYTES):
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                 verify=_default_tls() if verify is True else verify)
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep
        self.chunk = chunk
        self.traffic = Traffic()
        self.on_progress = on_progress or (lambda traffic: None)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "MasterClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plain calls --------------------------------------------------------

    def health(self) -> dict:
        return self._call("GET", "/health").json()

    def enroll(self, request: dict) -> dict:
        return self._call("POST", "/enroll", json=request).json()

    def enrollment(self, device_id: str) -> dict:
        return self._call("GET", f"/enroll/{device_id}").json()

    # -- bundles ------------------------------------------------------------

    def exchange(self, bundle: bytes, *, ops: int = 0) -> tuple[bytes, dict]:
        """Send a bundle and return the master's reply bundle and its record.

        Raises `SyncError` if the master refuses the bundle or cannot be
        reached after the retries; the caller's outbox is untouched then.
        """
        sha = hashlib.sha256(bundle).hexdigest()
        self._stage("upload")
        self._upload(f"/uploads/{sha}", bundle)
        self.traffic.ops_up += ops
        self._stage("apply")
        record = self._call("POST", f"/exchange/{sha}").json()
        self._stage("download", total_down=self.traffic.bytes_down + int(record["size"]))
        reply = self._download(f"/replies/{record['reply']}", int(record["size"]))
        if hashlib.sha256(reply).hexdigest() != record["reply"]:
            raise SyncError(f"the reply from {self.base_url} does not match its hash; run the sync again")
        return reply, record

    def count_down(self, ops: int) -> None:
        """Record the ops a reply carried, once the caller has decoded it."""
        self.traffic.ops_down += ops
        self.on_progress(self.traffic)

    # -- attachments --------------------------------------------------------

    def blob_status(self, sha: str, signer: Signer) -> int:
        """How many bytes of photo ``sha`` the master holds (its size once complete). Raises `SyncError`."""
        return int(self._call("GET", f"/blobs/{sha}", signer=signer).json()["received"])

    def put_blob(self, blobs: BlobStore, sha: str, signer: Signer) -> None:
        """Upload one photo, resuming where the master's copy stops. Raises `SyncError`."""
        data = blobs.read(sha)
        self._stage("photos")
        self._upload(f"/blobs/{sha}", data, signer=signer)

    def get_blob(self, blobs: BlobStore, sha: str, signer: Signer, size: int = 0) -> None:
        """Download one photo (of ``size`` bytes, for progress) into ``blobs``, resuming a partial copy.

        Raises `SyncError`.
        """
        self._stage("photos", total_down=self.traffic.bytes_down + max(0, size - blobs.received(sha)))
        while not blobs.has(sha):
            offset = blobs.received(sha)
            response = self._call("GET", f"/blobs/{sha}/data", params={"offset": offset}, signer=signer)
            total = offset + len(response.content)
            blobs.write_chunk(sha, offset, response.content, total)
            self.traffic.bytes_down += len(response.content)
            self.on_progress(self.traffic)

    # -- the machinery ------------------------------------------------------

    def _upload(self, path: str, data: bytes, signer: Optional[Signer] = None) -> None:
        status = self._call("GET", path, signer=signer).json()
        if status.get("answered"):
            return  # the master applied this bundle already; only its reply is missing
        received = status["received"]
        # The bar's total grows by what this transfer still has to send (totals are cumulative).
        self._stage(self.traffic.stage, total_up=self.traffic.bytes_up + max(0, len(data) - received))
        while received < len(data):
            piece = data[received:received + self.chunk]
            params = {"offset": received, "total": len(data)}
            try:
                response = self._call("PUT", path, params=params, content=piece, signer=signer, retry=False)
            except _Transient:
                # Ask where the master's copy stops: part of the chunk may have landed.
                self._pause()
                received = self._call("GET", path, signer=signer).json()["received"]
                continue
            now = response.json()["received"]
            self.traffic.bytes_up += max(0, now - received)
            received = now
            self.on_progress(self.traffic)

    def _download(self, path: str, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            try:
                response = self._call("GET", path, params={"offset": len(data)}, retry=False)
            except _Transient:
                self._pause()
                continue
            data += response.content
            self.traffic.bytes_down += len(response.content)
            self.on_progress(self.traffic)
        return bytes(data)

    def _call(self, method: str, path: str, *, signer: Optional[Signer] = None, retry: bool = True, **kwargs):
        """One request; transient failures retried (if ``retry``) up to ``attempts`` times.

        Raises `SyncError` for a refusal or when retries run out, `_Transient`
        for a transient failure when not retrying.
        """
        for attempt in range(self.attempts):
            try:
                headers = _signed_headers(method, path, signer) if signer else None
                response = self.http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRYABLE_STATUS:
                    raise SyncError(f"the master at {self.base_url} refused {method} {path.split('?')[0]}: "
                                    f"{_reason(response)}")
                failure = f"HTTP {response.status_code}"
            if not retry:
                raise _Transient(failure)
            if attempt + 1 < self.attempts:
                self._pause(attempt)
        raise SyncError(
            f"cannot reach the master at {self.base_url} ({failure}) after {self.attempts} attempts; "
            "nothing was lost: run the sync again when the network is back"
        )

    def _pause(self, attempt: Optional[int] = None) -> None:
        self.traffic.retries += 1
        if self.traffic.retries > self.attempts * 4:
            raise SyncError(f"the connection to {self.base_url} keeps dropping ({self.traffic.retries} retries); "
                            "nothing was lost: run the sync again on a steadier network")
        self.sleep(self.backoff(self.traffic.retries if attempt is None else attempt))

    def _stage(self, stage: str, **totals) -> None:
        self.traffic.stage = stage
        for name, value in totals.items():
            setattr(self.traffic, name, value)
        self.on_progress(self.traffic)


@functools.lru_cache(maxsize=1)
def _default_tls() -> ssl.SSLContext:
    # Loading the CA bundle costs ~20 ms; httpx would do it for every client, even
    # for plain http. One context, shared (it is thread-safe), verifies as httpx's would.
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class _Transient(Exception):
    """A failure worth retrying from where the transfer stopped."""


def _signed_headers(method: str, path: str, signer: Signer) -> dict:
    stamp = str(int(time.time() * 1000))
    signature = signer.sign(request_message(method, path.split("?")[0], signer.device_id, stamp))
    return {HEADER_DEVICE: signer.device_id, HEADER_TIME: stamp,
            HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii")}


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]).splitlines()[0]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


# -- a progress bar -----------------------------------------------------------

class ProgressBar:
    """A rich progress display of ops and bytes each way; use as a context manager.

    Pass ``bar.update`` as a client's ``on_progress``.
    """

    def __init__(self, console=None):
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TextColumn("{task.fields[ops]}"),
                                 console=console, transient=False)
        self.up = self.progress.add_task("↑ to master  ", total=None, ops="")
        self.down = self.progress.add_task("↓ from master", total=None, ops="")

    def __enter__(self) -> "ProgressBar":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def update(self, traffic: Traffic) -> None:
        self.progress.update(self.up, completed=traffic.bytes_up, total=traffic.total_up or None,
                             ops=f"{traffic.ops_up} ops")
        self.progress.update(self.down, completed=traffic.bytes_down, total=traffic.total_down or None,
                             ops=f"{traffic.ops_down} ops")
