"""Pausing Python's cyclic garbage collector around bulk work.

A bulk write or a large import allocates hundreds of thousands of small
containers (op tuples, field dicts) that form no cycles; the collector's
generation-2 passes re-scan all of them again and again, which cost a
100k-change batch a quarter of its time (bench/bench_capture.py) and a
5,000-item rule file 1.5x more per item than a 314-item one
(bench/bench_compile.py). Reference counting still frees everything.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_resume = False


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cyclic collector off; nested and concurrent pauses end with the last."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
