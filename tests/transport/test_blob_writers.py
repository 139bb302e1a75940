"""Several writers of one blob store at once: threads of a server and processes of `wangge serve --workers N`.

A tablet that retries on another connection sends the same chunks to
another thread or process while the first still writes them. Each chunk
must land once, the blob must be published whole, and no writer may fail
on a partial file another one finished.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading

from wangge.sync.attachments import BlobStore

CHUNK = 4096


def _blob() -> bytes:
    return b"".join(hashlib.sha256(str(n).encode()).digest() for n in range(2000))  # 64,000 bytes


def _send_all(root: str, data: bytes, start: threading.Barrier | None = None) -> list[int]:
    """Send every chunk of ``data`` in order, as a tablet does; what the store said it held after each."""
    store, sha = BlobStore(root), hashlib.sha256(data).hexdigest()
    if start is not None:
        start.wait(30)
    return [store.write_chunk(sha, offset, data[offset:offset + CHUNK], len(data))
            for offset in range(0, len(data), CHUNK)]


def test_threads_sending_the_same_chunks_at_once_publish_the_blob_whole(tmp_path):
    data, writers = _blob(), 8
    start, held = threading.Barrier(writers), []
    threads = [threading.Thread(target=lambda: held.append(_send_all(str(tmp_path), data, start)))
               for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    store = BlobStore(tmp_path)
    assert store.read(hashlib.sha256(data).hexdigest()) == data
    assert [answers[-1] for answers in held] == [len(data)] * writers
    assert list(store.partial.iterdir()) == []  # no partial left behind, none half-written


def _process_sends(root: str, data: bytes, ready, go, done) -> None:
    ready.put(os.getpid())
    go.wait(30)
    try:
        done.put(_send_all(root, data)[-1])
    except Exception as exc:  # shown by the test's assertion instead of a silent, empty queue
        done.put(repr(exc))


def test_processes_sending_the_same_chunks_at_once_publish_the_blob_whole(tmp_path):
    data, writers = _blob(), 4
    spawn = multiprocessing.get_context("spawn")  # as uvicorn starts the workers of `wangge serve`
    ready, done, go = spawn.Queue(), spawn.Queue(), spawn.Event()
    processes = [spawn.Process(target=_process_sends, args=(str(tmp_path), data, ready, go, done))
                 for _ in range(writers)]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=60)
    go.set()
    held = [done.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(60)
    store = BlobStore(tmp_path)
    assert store.read(hashlib.sha256(data).hexdigest()) == data
    assert held == [len(data)] * writers and [p.exitcode for p in processes] == [0] * writers
