"""`wangge serve --workers N`: N processes of the master's app answering on one port.

uvicorn's own supervisor (`uvicorn.supervisors.Multiprocess`) runs them: it
starts each process fresh (spawned, so no thread, lock or database
connection of the parent is inherited), hands each the listening socket
`wangge.web.server.serve_master` bound (the kernel spreads the connections),
replaces a process that dies, and stops them all on Ctrl-C or SIGTERM. Each
process opens the master store itself, watches the rule file itself and
serves the whole app; the parent keeps what must happen once: the USB inbox
and the line announcing a rule-file reload.

Only a PostgreSQL master runs several processes. PostgreSQL orders the
writers of all of them (`wangge.core.store.WRITE_LOCK`), while what each
request does outside a write (TLS, HTTP, chunked transfers, signatures of
signed requests, reads) runs side by side. SQLite has one writer per file:
more processes would only wait for it, each with a queue of its own instead
of one, so `check` refuses them.

What the processes share besides the database is the files folder
(uploads, replies, photos): see `wangge.web.sync` for how two of them
answering one bundle agree. ``health``'s count of exchanges is per process.
"""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Callable, Optional

import uvicorn
from uvicorn.supervisors import Multiprocess

from wangge.core.errors import UsageError
from wangge.web.connections import ConnectionGuard, guarded_protocol


def check(workers: int, backend: str) -> None:
    """Raise `UsageError` unless ``workers`` processes may serve a master on ``backend`` (an SQLAlchemy dialect)."""
    if workers < 1:
        raise UsageError(f"--workers {workers}: expected a number of processes, at least 1")
    if workers > 1 and backend != "postgresql":
        raise UsageError(f"--workers {workers}: an {_NAMES.get(backend, backend)} master has one writer, so more "
                         f"processes would only queue for it; serve it with --workers 1 (the default), or run the "
                         f"district's master on PostgreSQL (docs/deploy.md)")


_NAMES = {"sqlite": "SQLite"}

#: Seconds the supervisor waits for a process to answer its ping before replacing it as hung. uvicorn's 5 s
#: is short for a fresh interpreter importing wangge on a machine busy with the end of a shift.
HEALTHCHECK_SECONDS = 20


@dataclass(frozen=True)
class Worker:
    """What one process needs to open the master and build its app; sent to each process (picklable)."""

    target: str
    rules_file: Optional[str]
    https: bool
    echo: Callable[[str], object]
    #: Whether the command line set up logging in the parent (`configure_logging`): then each process does too.
    logging: bool

    def app(self):
        """The master's app over a store this process opens; the store closes when the server stops."""
        from wangge.app.office import Office
        from wangge.web import server

        if self.logging:
            server.configure_logging()
        office = Office.open(self.target, rules=self.rules_file, watch=True)  # the parent announces reloads

        @contextlib.asynccontextmanager
        async def closing(_app):
            try:
                yield
            finally:
                await asyncio.to_thread(office.close)

        return server.office_app(office, self.target, https=self.https, echo=self.echo, lifespan=closing)


class WorkerConfig(uvicorn.Config):
    """A uvicorn configuration that each process loads by building its own app and connection guard.

    Built in the parent and pickled to each process: it holds only the `Worker`
    and plain settings; the app, its store and the guard are made by `load`.
    """

    def __init__(self, worker: Worker, *, cap: int, header_timeout: float, **options):
        super().__init__(app=None, **options)
        self.worker, self.cap, self.header_timeout = worker, cap, header_timeout

    def load(self) -> None:
        self.app = self.worker.app()
        self.http = guarded_protocol(ConnectionGuard(cap=self.cap, header_timeout=self.header_timeout))
        super().load()


def serve(worker: Worker, sock, workers: int, **options) -> None:
    """Serve ``worker``'s app in ``workers`` processes on the listening ``sock`` until interrupted.

    ``options`` are `WorkerConfig`'s (the connection cap and header timeout) and uvicorn's.
    """
    config = WorkerConfig(worker, workers=workers, timeout_worker_healthcheck=HEALTHCHECK_SECONDS, **options)
    Multiprocess(config, sockets=[sock]).run()
