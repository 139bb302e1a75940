"""Photos and documents: a content-addressed blob store with resumable, chunked transfer.

A blob is named by the SHA-256 of its bytes, so the same photo attached to
two cases is stored and sent once (deduplication), and a receiver can check
every blob it gets. The `attachment` rows that point at blobs travel as
ordinary append-only ops; the bytes travel separately, in chunks, because a
photo taken on patrol may be several megabytes and a tablet's link may drop.

A transfer is resumable: the receiver keeps what arrived in a partial file
and tells the sender its length (`BlobStore.received`); the sender resumes
from there. A blob becomes visible only once complete and verified, and it
is written atomically (fsync, rename), so a cut transfer never leaves a
corrupt photo behind. Blobs are size-capped on both sides.

Several writers may share one store: threads of a server, and the worker
processes of `wangge serve --workers N`, each receiving chunks of the same
blob when a tablet retries on another connection. A chunk is appended under
an exclusive lock on the partial file (``flock``), after reading how much
arrived under that lock, so two copies of one chunk are written once; a
writer that waited for a partial file another finished or discarded opens
the current one instead.

Scope: a device may fetch a blob only if an `attachment` row in its grids
names it (`blobs_in_scope`, `may_fetch`); the master enforces this.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.engine import Connection

from wangge.core.errors import SyncError
from wangge.core.models import Attachment

#: A photo from a tablet camera is 2-6 MB; a scanned PDF may be larger.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
#: Small enough to resume cheaply on a bad 3G link, large enough to keep requests few.
CHUNK_BYTES = 256 * 1024
_SHA = re.compile(r"^[0-9a-f]{64}$")
_table = Attachment.__table__


class AttachmentError(SyncError, ValueError):
    """A blob was refused: bad name, too large, out of order, or corrupt."""

    http_status = 400


def check_sha(sha: str) -> str:
    """``sha`` if it is a lowercase hex SHA-256; raises `AttachmentError` otherwise."""
    if not isinstance(sha, str) or not _SHA.match(sha):
        raise AttachmentError(f"bad blob name {sha!r}: expected 64 lowercase hex digits (a SHA-256)")
    return sha


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Blobs under ``root``: ``root/ab/abcdef…`` for complete ones, ``root/partial/`` for transfers."""

    def __init__(self, root: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.partial = self.root / "partial"
        self.partial.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        check_sha(sha)
        return self.root / sha[:2] / sha

    def has(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def missing(self, shas: Iterable[str]) -> list[str]:
        """Those of ``shas`` not stored here, in order, without repeats."""
        seen, out = set(), []
        for sha in shas:
            if sha not in seen and not self.has(sha):
                out.append(sha)
            seen.add(sha)
        return out

    def size(self, sha: str) -> int:
        """Raises `AttachmentError` if the blob is not stored."""
        try:
            return self.path(sha).stat().st_size
        except FileNotFoundError:
            raise AttachmentError(f"no blob {sha} in {self.root}") from None

    def put(self, data: bytes) -> str:
        """Store ``data`` (once, however often it is put) and return its SHA-256.

        Raises `AttachmentError` if it exceeds the size cap.
        """
        self._check_size(len(data))
        sha = sha256(data)
        if not self.has(sha):
            self._publish(sha, data)
        return sha

    def read(self, sha: str) -> bytes:
        if not self.has(sha):
            raise AttachmentError(f"no blob {sha} in {self.root}")
        return self._code(sha, 0, self.path(sha).read_bytes())

    def chunks(self, sha: str, start: int = 0, chunk: int = CHUNK_BYTES) -> Iterator[tuple[int, bytes]]:
        """``(offset, bytes)`` of the blob from ``start`` on, for sending."""
        with self.path(sha).open("rb") as blob:
            blob.seek(start)
            while data := blob.read(chunk):
                yield start, self._code(sha, start, data)
                start += len(data)

    def remove(self, sha: str) -> None:
        """Remove blob ``sha`` and any partial transfer of it, if there are."""
        self.path(sha).unlink(missing_ok=True)
        (self.partial / sha).unlink(missing_ok=True)

    # -- receiving ----------------------------------------------------------

    def received(self, sha: str) -> int:
        """How many bytes of ``sha`` arrived so far: its size if complete, else the partial length."""
        # The complete file is looked at again last: another writer may publish it and remove the
        # partial between the first two looks.
        for path in (self.path(sha), self.partial / sha, self.path(sha)):
            try:
                return path.stat().st_size
            except FileNotFoundError:
                continue
        return 0

    def write_chunk(self, sha: str, offset: int, data: bytes, total: int) -> int:
        """Accept bytes ``offset…offset+len(data)`` of a blob of ``total`` bytes.

        Idempotent: a chunk already received is ignored. Returns the number of
        bytes now held. When the last chunk arrives the blob is verified
        against its name and published. Raises `AttachmentError` for a blob
        over the cap, a gap (``offset`` beyond what arrived), a chunk past
        ``total``, or content whose hash is not ``sha`` (the partial is
        discarded then, so a retry starts clean).
        """
        self._check_size(total)
        if self.has(sha):
            return total
        with self._locked_partial(sha) as part:
            if self.has(sha):  # another writer finished it while this one waited
                (self.partial / sha).unlink(missing_ok=True)
                return total
            have = os.fstat(part.fileno()).st_size
            if offset > have:
                raise AttachmentError(f"blob {sha}: chunk at byte {offset} but only {have} bytes arrived; "
                                      f"resume from {have}")
            if offset + len(data) > total:
                raise AttachmentError(f"blob {sha}: chunk ends at byte {offset + len(data)}, past its size {total}")
            fresh = data[have - offset:]
            if fresh:
                part.write(self._code(sha, have, fresh))
                part.flush()
            have += len(fresh)
            if have == total:
                self._finish(sha)
        return have

    @contextmanager
    def _locked_partial(self, sha: str) -> Iterator[BinaryIO]:
        """The partial file of ``sha``, open for appending, held exclusively until the block ends."""
        path = self.partial / check_sha(sha)
        while True:
            part = path.open("ab")
            try:
                _lock_exclusively(part)
                if _still_at(part, path):
                    yield part
                    return
                # Finished or discarded by the writer this one waited for: open the current file.
            finally:
                part.close()  # which releases the lock

    def _finish(self, sha: str) -> None:
        part = self.partial / sha
        data = self._code(sha, 0, part.read_bytes())
        if sha256(data) != sha:
            part.unlink()
            raise AttachmentError(f"blob {sha}: content hashes to {sha256(data)}; discarded, send it again")
        self._publish(sha, data)
        part.unlink()

    def _publish(self, sha: str, data: bytes) -> None:
        target = self.path(sha)
        target.parent.mkdir(exist_ok=True)
        # Named for this thread of this process: two writers of one blob never share a temporary file.
        tmp = target.with_name(target.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
        with tmp.open("wb") as out:
            out.write(self._code(sha, 0, data))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)

    def _code(self, sha: str, offset: int, data: bytes) -> bytes:
        """Bytes ``offset…`` of blob ``sha`` as kept on disk, or back: the identity here.

        A subclass may encrypt at rest with a length-preserving cipher (an
        involution at any offset, such as a stream cipher), so sizes, offsets
        and resumption work unchanged (`wangge.sync.device.tablet.SealedBlobStore`).
        """
        return data

    def _check_size(self, size: int) -> None:
        if size < 0 or size > self.max_bytes:
            raise AttachmentError(
                f"a blob of {size} bytes is over the cap of {self.max_bytes} bytes: "
                "resize the photo or split the document"
            )


def _lock_exclusively(file: BinaryIO) -> None:
    """Wait for an exclusive lock on ``file``, held until it is closed (POSIX ``flock``)."""
    import fcntl

    fcntl.flock(file.fileno(), fcntl.LOCK_EX)


def _still_at(file: BinaryIO, path: Path) -> bool:
    """Whether the open ``file`` is still the one at ``path`` (not removed or replaced meanwhile)."""
    try:
        return os.path.samestat(os.fstat(file.fileno()), path.stat())
    except FileNotFoundError:
        return False


# -- scope ---------------------------------------------------------------------

def blobs_in_scope(conn: Connection, grid_ids: Iterable[str]) -> set[str]:
    """The SHA-256 of every live attachment in ``grid_ids``: what a device there may hold."""
    grids = list(grid_ids)
    if not grids:
        return set()
    query = select(_table.c.sha256).where(_table.c.grid_id.in_(grids), _table.c.deleted.is_(None))
    return set(conn.execute(query).scalars())


def may_fetch(conn: Connection, sha: str, grid_ids: Iterable[str]) -> bool:
    """Whether some live attachment in ``grid_ids`` names blob ``sha``."""
    grids = list(grid_ids)
    if not grids:
        return False
    query = select(_table.c.id).where(
        _table.c.sha256 == check_sha(sha), _table.c.grid_id.in_(grids), _table.c.deleted.is_(None)
    ).limit(1)
    return conn.execute(query).first() is not None
