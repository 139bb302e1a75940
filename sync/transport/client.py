"""The tablet's HTTP client for a master (served by `wangge.web.sync`), over httpx.

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
has verified the master's signed ack (the sync protocol's rule). Every
answer is checked to be what a master sends (JSON objects with the expected
fields, bytes for downloads, never a redirect), so a server that is not a
master, such as a Wi-Fi login page answering every URL, is named as such.
A URL that cannot name a master raises `UsageError` before any request
(see `check_master_url`).
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import httpx

from wangge.core.errors import SyncError, UsageError
from wangge.sync.attachments import BlobStore
from wangge.sync.request_auth import sign_headers

#: Large enough that a provisioning bundle takes few requests, small enough
#: that a bad link loses little when it drops.
CHUNK_BYTES = 1024 * 1024
RETRYABLE_STATUS = frozenset({502, 503, 504})
#: Shown in every message about a bad master URL.
EXAMPLE_URL = "http://10.0.0.2:8470"


def check_master_url(text: str) -> str:
    """``text`` checked as a master's URL; returned without surrounding spaces or a trailing slash.

    Call it on a URL from the user before storing it: a typo is then
    reported at once, instead of being remembered or retried as if the
    network were down. Raises `UsageError` naming the URL and what is wrong.
    """
    given = text.strip()
    problem = _url_problem(given)
    if problem:
        raise UsageError(f"bad master URL {text!r}: {problem}; expected http:// or https:// and a host, "
                         f"e.g. {EXAMPLE_URL}")
    return given.rstrip("/")


def _url_problem(text: str) -> Optional[str]:
    """What keeps ``text`` from being a master's URL, or None if nothing does."""
    if not text:
        return "it is empty"
    if any(c.isspace() for c in text):
        return "it contains a space or line break"
    scheme, sep, rest = text.partition("://")
    if not sep:
        return f"it does not start with http:// (did you mean http://{text}?)"
    if scheme.lower() not in ("http", "https"):
        return f"{scheme}:// is not a scheme a master serves"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if authority.startswith("[") and "]" not in authority:
        # httpx reports this as a bad port, which sends the user looking in the wrong place.
        return "its IPv6 address has no closing ']'"
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        return str(exc)[:1].lower() + str(exc)[1:]
    if not url.host:
        return "it names no host"
    if url.port is not None and not 0 < url.port < 65536:
        return f"port {url.port} is outside 1-65535"
    if url.query or url.fragment:
        # httpx would drop or misplace them when joining request paths onto the URL.
        return "a master's URL has no ?query or #fragment"
    return None


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
    """A connection to one master at ``base_url``. Close it (or use ``with``) when done.

    Raises `UsageError` if ``base_url`` cannot name a master (see `check_master_url`).
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0, attempts: int = 6,
                 backoff: Callable[[int], float] = lambda n: min(0.1 * 2**n, 5.0),
                 on_progress: Optional[Callable[[Traffic], None]] = None,
                 transport: Optional[httpx.BaseTransport] = None, verify=True,
                 sleep: Callable[[float], None] = time.sleep, chunk: int = CHUNK_BYTES):
        self.base_url = check_master_url(base_url)
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
        return self._ask("GET", "/health")

    def enroll(self, request: dict) -> dict:
        """Send an enrollment request; the master's answer has at least a text ``status``."""
        answer = self._ask("POST", "/enroll", json=request)
        self._expect(answer, "status", str, "POST /enroll")
        return answer

    def enrollment(self, device_id: str) -> dict:
        """A device's enrollment: a text ``status`` and, once approved, the ``master``'s id and keys."""
        path = f"/enroll/{device_id}"
        answer = self._ask("GET", path)
        self._expect(answer, "status", str, f"GET {path}")
        if "master" in answer:
            found = self._expect(answer, "master", dict, f"GET {path}")
            for name in ("id", "sign_key", "box_key"):
                self._expect(found, name, str, f"GET {path} (its master)")
        return answer

    # -- bundles ------------------------------------------------------------

    def exchange(self, bundle: bytes, *, ops: int = 0, signer: Optional[Signer] = None) -> tuple[bytes, dict]:
        """Send a bundle (its upload signed by ``signer``) and return the master's reply bundle and its record.

        Raises `SyncError` if the master refuses the bundle or cannot be
        reached after the retries; the caller's outbox is untouched then.
        """
        sha = hashlib.sha256(bundle).hexdigest()
        self._stage("upload")
        self._upload(f"/uploads/{sha}", bundle, signer=signer)
        self.traffic.ops_up += ops
        self._stage("apply")
        record = self._ask("POST", f"/exchange/{sha}")
        size = self._expect(record, "size", int, f"POST /exchange/{sha}")
        reply_sha = self._expect(record, "reply", str, f"POST /exchange/{sha}")
        if not _SHA.fullmatch(reply_sha):
            raise self._odd_answer(f"POST /exchange/{sha}", "a SHA-256 in hex for 'reply'", record)
        self._stage("download", total_down=self.traffic.bytes_down + size)
        reply = self._download(f"/replies/{reply_sha}", size)
        if hashlib.sha256(reply).hexdigest() != reply_sha:
            raise SyncError(f"the reply from {self.base_url} does not match its hash; run the sync again")
        return reply, record

    def count_down(self, ops: int) -> None:
        """Record the ops a reply carried, once the caller has decoded it."""
        self.traffic.ops_down += ops
        self.on_progress(self.traffic)

    # -- attachments --------------------------------------------------------

    def blob_status(self, sha: str, signer: Signer) -> int:
        """How many bytes of photo ``sha`` the master holds (its size once complete). Raises `SyncError`."""
        path = f"/blobs/{sha}"
        return self._expect(self._ask("GET", path, signer=signer), "received", int, f"GET {path}")

    def put_blob(self, blobs: BlobStore, sha: str, signer: Signer) -> None:
        """Upload one photo, resuming where the master's copy stops. Raises `SyncError`."""
        data = blobs.read(sha)
        self._stage("photos")
        self._upload(f"/blobs/{sha}", data, signer=signer)

    def get_blob(self, blobs: BlobStore, sha: str, signer: Signer, size: int = 0) -> None:
        """Download one photo (of ``size`` bytes, for progress) into ``blobs``, resuming a partial copy.

        Raises `SyncError`.
        """
        if blobs.has(sha):
            return
        # The master sends a photo in chunks; the whole size is what it holds, not the caller's
        # ``size`` (a record's claim) nor the first chunk's length.
        total = self.blob_status(sha, signer)
        self._stage("photos", total_down=self.traffic.bytes_down + max(0, (size or total) - blobs.received(sha)))
        path = f"/blobs/{sha}/data"
        while not blobs.has(sha):
            offset = blobs.received(sha)
            response = self._call("GET", path, params={"offset": offset}, signer=signer)
            piece = self._bytes("GET", path, response)
            if not piece:
                raise SyncError(f"photo {sha[:12]} from {self.base_url} stopped at byte {offset} of {total}; "
                                "sync again to fetch the rest")
            blobs.write_chunk(sha, offset, piece, total)
            self.traffic.bytes_down += len(piece)
            self.on_progress(self.traffic)

    # -- the machinery ------------------------------------------------------

    def _upload(self, path: str, data: bytes, signer: Optional[Signer] = None) -> None:
        status = self._ask("GET", path, signer=signer)
        if status.get("answered") is True:
            return  # the master applied this bundle already; only its reply is missing
        received = self._expect(status, "received", int, f"GET {path}")
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
                received = self._expect(self._ask("GET", path, signer=signer), "received", int, f"GET {path}")
                continue
            now = self._expect(self._object("PUT", path, response), "received", int, f"PUT {path}")
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
            piece = self._bytes("GET", path, response)
            if not piece:
                raise SyncError(f"the reply from {self.base_url} stopped at byte {len(data)} of {size}; "
                                "nothing was lost: run the sync again")
            data += piece
            self.traffic.bytes_down += len(piece)
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
                if _plain_http_answered(exc):  # retrying cannot help: the URL's scheme is wrong
                    plain = "http://" + self.base_url.split("://", 1)[-1]
                    raise SyncError(f"the master at {self.base_url} does not speak HTTPS: use {plain}") from None
                failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except httpx.DecodingError as exc:
                # A master never compresses its answers, so a body that does not decode came from elsewhere.
                raise SyncError(f"{self.base_url} does not answer as a wangge master: {_named(method, path)} "
                                f"got a body that does not decode ({exc})") from None
            else:
                status = response.status_code
                if status < 300:
                    return response
                if status < 400:  # a master never redirects
                    raise self._not_a_master(method, path, response, "an answer, not a redirect")
                if status not in RETRYABLE_STATUS:
                    reason = _reason(response)
                    if reason is None:  # a master words every refusal as a JSON error
                        raise self._not_a_master(method, path, response, "a JSON error from a master")
                    raise SyncError(f"the master at {self.base_url} refused {_named(method, path)}: {reason}")
                failure = f"HTTP {status}"
            if not retry:
                raise _Transient(failure)
            if attempt + 1 < self.attempts:
                self._pause(attempt)
        raise SyncError(
            f"cannot reach the master at {self.base_url} ({failure}) after {self.attempts} attempts; "
            "nothing was lost: run the sync again when the network is back"
        )

    def _ask(self, method: str, path: str, **kwargs) -> dict:
        """The JSON object the master answers a request with. Raises `SyncError` (see `_call`)."""
        return self._object(method, path, self._call(method, path, **kwargs))

    def _object(self, method: str, path: str, response: httpx.Response) -> dict:
        if _media_type(response) == "application/json":
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if isinstance(answer, dict):
                return answer
        raise self._not_a_master(method, path, response, "a JSON object")

    def _bytes(self, method: str, path: str, response: httpx.Response) -> bytes:
        if _media_type(response) != "application/octet-stream":
            raise self._not_a_master(method, path, response, "application/octet-stream")
        return response.content

    def _expect(self, answer: dict, name: str, kind: type, request: str):
        """``answer[name]`` if it is a ``kind`` (a count, for int); else `SyncError` naming the request."""
        value = answer.get(name)
        if kind is int:
            fits = type(value) is int and value >= 0  # bool is an int to isinstance
        else:
            fits = isinstance(value, kind)
        if not fits:
            wanted = {int: "a count", str: "a text", dict: "an object"}[kind]
            raise self._odd_answer(request, f"{wanted} for {name!r}", answer)
        return value

    def _odd_answer(self, request: str, wanted: str, answer: dict) -> SyncError:
        got = _clip(json.dumps(answer, ensure_ascii=False, default=str))
        return SyncError(f"{self.base_url} does not answer {_cut(request)} as a wangge master does: "
                         f"expected {wanted}, got {got}")

    def _not_a_master(self, method: str, path: str, response: httpx.Response, wanted: str) -> SyncError:
        return SyncError(f"{self.base_url} does not answer as a wangge master: {_named(method, path)} got "
                         f"{_described(response)}, expected {wanted}; check the URL, and whether a Wi-Fi login "
                         "page or a proxy answers in the master's place")

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
def _plain_http_answered(exc: Exception) -> bool:
    """True if a TLS handshake met a plain-HTTP server: OpenSSL reads its answer as a bad record."""
    text = f"{exc} {exc.__cause__ or ''} {exc.__context__ or ''}".lower()
    return "wrong version number" in text or "record layer failure" in text


def _default_tls() -> ssl.SSLContext:
    # Loading the CA bundle costs ~20 ms; httpx would do it for every client, even
    # for plain http. One context, shared (it is thread-safe), verifies as httpx's would.
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class _Transient(Exception):
    """A failure worth retrying from where the transfer stopped."""


def _signed_headers(method: str, path: str, signer: Signer) -> dict:
    return sign_headers(method, path, signer.device_id, signer.sign, int(time.time() * 1000))


_SHA = re.compile(r"[0-9a-f]{64}")


def _reason(response: httpx.Response) -> Optional[str]:
    """The first line of a master's JSON error, or None if ``response`` is not one."""
    if _media_type(response) != "application/json":
        return None
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return None
    lines = str(error).splitlines()
    return lines[0] if lines else f"HTTP {response.status_code}"


def _named(method: str, path: str) -> str:
    return f"{method} {_cut(path)}"


def _cut(request: str) -> str:
    """A request as a message names it: no query, and bundle and photo hashes cut to 12 digits."""
    return _SHA.sub(lambda found: found[0][:12] + "…", request.split("?")[0])


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def _described(response: httpx.Response) -> str:
    """A response in a few words: its status, and where it redirects or what kind of content it holds."""
    said = f"HTTP {response.status_code}"
    if 300 <= response.status_code < 400:
        location = response.headers.get("location")
        return f"{said} redirecting to {_clip(location)}" if location else f"{said} (a redirect)"
    kind = _media_type(response)
    return f"{said} {kind}" if kind else f"{said} with no content type"


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


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
