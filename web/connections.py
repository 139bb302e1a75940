"""Connection limits of the master's server: what keeps idle sockets from taking it down.

uvicorn closes a kept-alive connection after ``timeout_keep_alive``, and
answers 503 past ``limit_concurrency``, but it accepts any number of
connections and never closes one that connects and sends nothing: each such
socket holds a file descriptor until the process runs out (``accept`` then
fails with "Too many open files", once a second, for every client). Here:

* `raise_file_limit` lifts the process's soft ``RLIMIT_NOFILE`` to its hard
  limit at start, and `connection_cap` keeps the cap well below it (room for
  the database, the uploads and the log).
* `guarded_protocol` is uvicorn's h11 protocol with two more rules: a new
  connection past the cap evicts the oldest connection that is not in the
  middle of a request (or, if every one is busy, is closed itself), and a
  connection whose request head has not arrived ``header_timeout`` seconds
  after it opened, or after its last answer, is closed.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

log = logging.getLogger("wangge.server")

#: Connections asyncio accepts in one go before any is admitted (the listen backlog too).
ACCEPT_BATCH = 128
#: Descriptors kept back from the connection cap: one accept batch, and the store, uploads, logs, watchers.
RESERVED_FILES = ACCEPT_BATCH + 128
DEFAULT_CAP = 4096
#: Seconds a connection may take to send its request head (a tablet on 2G sends it in one packet).
HEADER_TIMEOUT = 15.0
#: Largest request head (request line and headers) accepted, in bytes.
MAX_HEAD_BYTES = 16 * 1024


def raise_file_limit() -> int:
    """Raise the soft limit of open files to the hard limit; return the soft limit now in force."""
    try:
        import resource
    except ImportError:  # not on this platform: leave it to the system
        return DEFAULT_CAP + RESERVED_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def connection_cap(file_limit: int, wanted: int = DEFAULT_CAP) -> int:
    """The most connections to hold open under ``file_limit`` descriptors: ``wanted`` or fewer."""
    return max(16, min(wanted, file_limit - RESERVED_FILES))


@dataclass
class ConnectionGuard:
    """The open connections of one server, oldest first, and the limits they live under."""

    cap: int = DEFAULT_CAP
    header_timeout: float = HEADER_TIMEOUT
    open: "OrderedDict[object, None]" = field(default_factory=OrderedDict)
    evicted: int = 0  # connections closed to make room, for tests and health

    def admit(self, protocol) -> None:
        """Record a new connection; close the oldest idle one (or this one) if that passes the cap."""
        self.open[protocol] = None
        if len(self.open) <= self.cap:
            return
        victim = next((p for p in self.open if p is not protocol and p.idle() and not p.closing()), protocol)
        self.evicted += 1
        victim.close_now()

    def forget(self, protocol) -> None:
        self.open.pop(protocol, None)


def guarded_protocol(guard: ConnectionGuard):
    """uvicorn's h11 protocol class, bound to ``guard``: pass it as ``uvicorn.Config(http=...)``."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._head_timer = None
            guard.admit(self)
            if not transport.is_closing():
                self._arm_head_timer()

        def connection_lost(self, exc) -> None:
            guard.forget(self)
            self._cancel_head_timer()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_timer()

        def idle(self) -> bool:
            """Whether no request is in progress: nothing lost by closing it."""
            return self.cycle is None or self.cycle.response_complete

        def closing(self) -> bool:
            return self.transport.is_closing()

        def close_now(self) -> None:
            if not self.transport.is_closing():
                self.transport.close()

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            waiting_for = self.cycle  # a new request head replaces the cycle
            self._head_timer = self.loop.call_later(guard.header_timeout, self._head_late, waiting_for)

        def _head_late(self, waiting_for) -> None:
            self._head_timer = None
            if self.cycle is waiting_for and self.idle():
                self.close_now()

        def _cancel_head_timer(self) -> None:
            timer = getattr(self, "_head_timer", None)
            if timer is not None:
                timer.cancel()
                self._head_timer = None

    return GuardedH11Protocol
