"""A logging filter that lets one kind of message through once per interval, then says how many it held back.

A server that fails the same way for every client (a full disk, the file
limit reached, a database gone) would otherwise write the same line and
traceback for every request, and fill the disk it logs to. A "kind" is the
logger and the message's format string (``record.msg``), so "cannot open
%s" with different files is one kind.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable


class RepeatLimit(logging.Filter):
    """Pass the first warning or error of each kind, then at most one per ``interval`` seconds.

    The record that passes after a quiet spell carries "(N more like this
    held back)". ``clock`` is monotonic seconds (injectable for tests).
    Keeps at most ``kinds`` kinds (the oldest is forgotten first).
    """

    def __init__(self, interval: float = 60.0, *, kinds: int = 1000, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval, self.kinds, self.clock = interval, kinds, clock
        self._seen: dict[tuple[str, str], list] = {}  # kind -> [last passed at, held back since]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True  # the access log and progress lines are one per event by design
        kind = (record.name, str(record.msg))
        now = self.clock()
        with self._lock:
            seen = self._seen.get(kind)
            if seen is not None and now - seen[0] < self.interval:
                seen[1] += 1
                return False
            held = seen[1] if seen else 0
            self._seen.pop(kind, None)
            self._seen[kind] = [now, 0]
            if len(self._seen) > self.kinds:
                self._seen.pop(next(iter(self._seen)))
        if held:
            record.msg = f"{record.msg} ({held} more like this held back in the last {self.interval:.0f} s)"
        return True


def limited_handler(interval: float = 60.0, stream=None) -> logging.Handler:
    """A stream handler (stderr by default) that lets each warning or error through at most once per
    ``interval``: the one the command line installs. It filters only its own output, so another
    handler (a test's capture, a log shipper) still sees every record."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatLimit(interval))
    return handler
