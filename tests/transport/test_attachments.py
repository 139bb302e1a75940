"""The content-addressed blob store: dedup, resumable chunks, caps, scope."""
from __future__ import annotations

import pytest

from wangge.core import store
from wangge.sync.attachments import AttachmentError, BlobStore, blobs_in_scope, may_fetch, sha256


def test_put_is_content_addressed_and_deduplicated(tmp_path):
    blobs = BlobStore(tmp_path)
    first = blobs.put(b"photo of a broken telecom box")
    assert first == blobs.put(b"photo of a broken telecom box") == sha256(b"photo of a broken telecom box")
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1
    assert blobs.missing([first, "0" * 64, first]) == ["0" * 64]


def test_a_cut_transfer_resumes_where_it_stopped(tmp_path):
    data = bytes(range(256)) * 4000  # ~1 MB, several chunks
    sender, receiver = BlobStore(tmp_path / "a"), BlobStore(tmp_path / "b")
    sha = sender.put(data)
    for offset, chunk in sender.chunks(sha, chunk=100_000):
        if offset >= 300_000:
            break  # the link drops
        receiver.write_chunk(sha, offset, chunk, len(data))
    assert not receiver.has(sha) and receiver.received(sha) == 300_000
    # a chunk resent after the cut is ignored, then the rest follows
    receiver.write_chunk(sha, 200_000, data[200_000:300_000], len(data))
    for offset, chunk in sender.chunks(sha, start=receiver.received(sha), chunk=100_000):
        receiver.write_chunk(sha, offset, chunk, len(data))
    assert receiver.read(sha) == data


def test_gaps_corruption_and_oversize_are_refused(tmp_path):
    blobs = BlobStore(tmp_path, max_bytes=1000)
    sha = sha256(b"x" * 10)
    with pytest.raises(AttachmentError, match="resume from 0"):
        blobs.write_chunk(sha, 5, b"xxxxx", 10)
    with pytest.raises(AttachmentError, match="discarded"):
        blobs.write_chunk(sha, 0, b"y" * 10, 10)
    assert blobs.received(sha) == 0 and not blobs.has(sha)
    with pytest.raises(AttachmentError, match="over the cap"):
        blobs.put(b"z" * 1001)
    with pytest.raises(AttachmentError, match="bad blob name"):
        blobs.has("../../etc/passwd")


def test_only_devices_whose_grids_hold_an_attachment_may_fetch_it(tmp_path):
    with store.init(str(tmp_path / "m.db"), "master") as master:
        with master.write() as rec:
            mine = rec.insert("grid_cell", {"code": "01", "level": "网格", "name": "甲"})
            other = rec.insert("grid_cell", {"code": "02", "level": "网格", "name": "乙"})
            rec.insert("attachment", {"sha256": "a" * 64, "size": 3, "media_type": "image/jpeg", "grid_id": mine})
            rec.insert("attachment", {"sha256": "b" * 64, "size": 3, "media_type": "image/jpeg", "grid_id": other})
        with master.read() as conn:
            assert blobs_in_scope(conn, [mine]) == {"a" * 64}
            assert may_fetch(conn, "a" * 64, [mine]) and not may_fetch(conn, "b" * 64, [mine])
            assert not may_fetch(conn, "a" * 64, [])


def test_a_tablets_photos_are_sealed_at_rest_and_resume_at_any_offset(tmp_path):
    from wangge.sync.device.tablet import SealedBlobStore

    data = bytes(range(256)) * 300 + b"tail"  # offsets below fall inside cipher blocks
    sealed = SealedBlobStore(tmp_path / "t", b"k" * 32)
    sha = sealed.put(data)
    assert data[:64] not in sealed.path(sha).read_bytes() and sealed.size(sha) == len(data)
    assert sealed.read(sha) == data
    receiver = SealedBlobStore(tmp_path / "r", b"r" * 32)
    for offset in range(0, len(data), 7_777):  # a download cut into odd pieces
        receiver.write_chunk(sha, offset, data[offset:offset + 7_777], len(data))
    assert receiver.read(sha) == data and b"".join(c for _, c in receiver.chunks(sha, 0, 5_000)) == data
    with pytest.raises(AttachmentError, match="another tablet"):
        SealedBlobStore(tmp_path / "t", b"x" * 32).read(sha)
