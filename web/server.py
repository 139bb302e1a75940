"""The master's whole HTTP app, and `wangge serve`, which runs it under uvicorn.

`master_app` builds one Starlette app: the sync endpoints at the paths
devices know (`wangge.web.sync`), then whatever else the office mounts
(``mounts``, e.g. the office console at ``/``). Every error any of them
raises reaches the client as JSON ``{"error": ..., "status": N}``: a
`WanggeError` with its ``http_status``, a route that does not exist with
404 or 405, anything unforeseen with 500 and a line in the log (`AccessLog`).

`serve_master` is the `wangge serve` command: it opens the master store,
watches the rule file and the USB inbox if given (`wangge.sync.transport.watch`),
prints one line when a tablet enrolls or syncs and when the rule file
reloads, and serves until interrupted, in one process or, for a PostgreSQL
master, in several on one port (`wangge.web.workers`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from wangge.core.errors import SyncError, UsageError, WanggeError
from wangge.sync.attachments import BlobStore
from wangge.web.access import AccessLog
from wangge.web.connections import (ACCEPT_BATCH, DEFAULT_CAP, HEADER_TIMEOUT, MAX_HEAD_BYTES, ConnectionGuard,
                                    connection_cap, guarded_protocol, raise_file_limit)
from wangge.web.log_limits import limited_handler
from wangge.web.sync import Master, SyncEndpoints

log = logging.getLogger("wangge.server")
#: Seconds a kept-alive connection may sit between requests.
IDLE_TIMEOUT = 5


class MasterApp(Starlette):
    """A master's ASGI app; ``sync`` is its `SyncEndpoints` (and ``exchanges`` their count of applied bundles)."""

    def __init__(self, sync: SyncEndpoints, *, mounts: Sequence[BaseRoute] = (), debug: bool = False,
                 lifespan=None):
        self.sync = sync
        super().__init__(debug=debug, routes=[*sync.routes, *mounts], middleware=[Middleware(AccessLog)],
                         exception_handlers={WanggeError: _refusal, HTTPException: _http_error}, lifespan=lifespan)

    @property
    def exchanges(self) -> int:
        return self.sync.exchanges


def master_app(master: Master, folder: str | Path, *, mounts: Sequence[BaseRoute] = (),
               blobs: Optional[BlobStore] = None, on_event: Optional[Callable[[str], None]] = None,
               lifespan=None, **options) -> MasterApp:
    """The app `wangge serve` runs: sync endpoints over ``master`` (transfers kept in ``folder``), then ``mounts``.

    ``mounts`` are Starlette routes or mounts tried after the sync endpoints,
    e.g. ``[Mount("/", console)]``. ``on_event(text)`` hears of each
    enrollment and each applied bundle; ``lifespan`` is Starlette's (what
    runs as the server starts and stops). Other ``options`` go to `SyncEndpoints`.
    """
    return MasterApp(SyncEndpoints(master, folder, blobs=blobs, on_event=on_event, **options), mounts=mounts,
                     lifespan=lifespan)


#: Bundles one process applies at once on PostgreSQL: one holding the store's write lock, one ready to take
#: it (its bundle read and its connection open) the moment it is free. More would only park threads of the
#: process on the lock, threads its reads need.
APPLYING_ON_POSTGRESQL = 2


def office_app(office, target: str, *, https: bool = False, echo: Callable[[str], object] = print,
               mounts: Sequence[BaseRoute] = (), lifespan=None) -> MasterApp:
    """The whole app of `wangge serve` over an open `wangge.app.office.Office` at ``target``: the sync
    endpoints (transfers kept in the store's files folder), ``mounts``, the Open311 hotline, then the
    office console at ``/``. ``echo`` hears of each enrollment and applied bundle."""
    from wangge.sync.transport.fieldwork import files_folder
    from wangge.web import open311
    from wangge.web.console import console_mount

    folder = files_folder(target)
    blobs = BlobStore(folder / "blobs")  # one photo store: tablets fill it, the console shows it
    console = console_mount(office, blobs=blobs, https=https,
                            rules_error=lambda: office.live.last_errors if office.live is not None else None)
    hotline = open311.mount(office.store, office.installed_ruleset)  # before the console, which takes "/"
    applying = 1 if office.store.engine.dialect.name == "sqlite" else APPLYING_ON_POSTGRESQL
    return master_app(office.master_service(), folder, on_event=echo, blobs=blobs,
                      mounts=[*mounts, hotline, console], lifespan=lifespan, applying=applying)


def error_response(status: int, message: str, headers: Optional[dict] = None) -> Response:
    """The one shape of every error answer: ``{"error": message, "status": status}``."""
    body = json.dumps({"error": message, "status": status}, ensure_ascii=False).encode("utf-8")
    return Response(body, status, headers=headers, media_type="application/json")


async def _refusal(request: Request, exc: Exception) -> Response:
    return error_response(getattr(exc, "http_status", 422), str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no endpoint {request.method} {request.url.path}: see GET /health for the master"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, exc.headers)


# -- running it ----------------------------------------------------------------


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket; port 0 picks a free one. Raises `UsageError` if the port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from None
    sock.listen(ACCEPT_BATCH)
    return sock


def _config(app, *, guard: Optional[ConnectionGuard] = None, **options):
    import uvicorn

    guard = guard or ConnectionGuard()
    settings = _settings(**options)
    guard.cap, guard.header_timeout = settings.pop("cap"), settings.pop("header_timeout")
    return uvicorn.Config(app, http=guarded_protocol(guard), **settings)


def _settings(*, certfile: Optional[str] = None, keyfile: Optional[str] = None, log_level: str = "warning",
              max_connections: int = DEFAULT_CAP, header_timeout: float = HEADER_TIMEOUT,
              idle_timeout: int = IDLE_TIMEOUT) -> dict:
    """uvicorn's settings for a master, and the connection guard's ``cap`` and ``header_timeout``."""
    if bool(certfile) != bool(keyfile):
        raise UsageError("TLS needs both a certificate file and its key file (--cert and --key)")
    cap = connection_cap(raise_file_limit(), max_connections)
    # limit_concurrency past the cap: the guard evicts idle connections before uvicorn would answer 503.
    return dict(cap=cap, header_timeout=header_timeout, lifespan="on", log_level=log_level, ssl_certfile=certfile,
                ssl_keyfile=keyfile, h11_max_incomplete_event_size=MAX_HEAD_BYTES, timeout_keep_alive=idle_timeout,
                limit_concurrency=cap + 1, backlog=ACCEPT_BATCH, access_log=False, log_config=None)


def serve(app, sock: socket.socket, **options) -> None:
    """Serve ``app`` on the listening ``sock`` (from `bind`) until interrupted."""
    import uvicorn

    uvicorn.Server(_config(app, **options)).run(sockets=[sock])


@contextlib.contextmanager
def running(app, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 10.0, **options) -> Iterator[str]:
    """Serve ``app`` in a background thread; yield its base URL; stop it on leaving.

    Waits (bounded) for the server to start. Raises `SyncError` if it does not.
    """
    import uvicorn

    class _Server(uvicorn.Server):
        def install_signal_handlers(self) -> None:  # not the main thread
            pass

    sock = bind(host, port)
    server = _Server(_config(app, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="wangge-master")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise SyncError(f"the master server did not start on {host}:{sock.getsockname()[1]}")
        time.sleep(0.005)
    scheme = "https" if options.get("certfile") else "http"
    try:
        yield f"{scheme}://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


# -- `wangge serve` -------------------------------------------------------------


def serve_master(target: str, *, host: str, port: int, rules_file: Optional[str] = None,
                 inbox: Optional[str] = None, certfile=None, keyfile=None, echo=print,
                 mounts: Sequence[BaseRoute] = (), on_listening: Optional[Callable[[str], None]] = None,
                 workers: int = 1) -> None:
    """Serve a master store until interrupted, watching the rule file and the inbox if given;
    the office console (`wangge.web.console`) is at ``/``, after the sync endpoints and ``mounts``.
    ``on_listening(url)`` runs once the address is bound and announced, before serving.
    With ``workers`` above 1, that many processes serve a PostgreSQL master (`wangge.web.workers`);
    ``echo`` then goes to each of them (a module-level function such as `print`), ``mounts`` cannot.

    Prints (through ``echo``) the address, then one line per enrollment,
    applied bundle and rule-file reload. Raises `UsageError` for a bad TLS
    pair, a taken port, or several workers on SQLite, `StoreError` for a
    store that cannot be opened.
    """
    from wangge.app.office import Office
    from wangge.sync.transport import watch
    from wangge.sync.transport.fieldwork import inbox_importer
    from wangge.web import workers as processes

    if certfile or keyfile:
        check_tls(certfile, keyfile)
    if workers > 1 and mounts:
        raise UsageError("other apps mounted beside the master's are served by one process: use workers=1")

    def reloaded(ruleset) -> None:
        echo(f"rule file {rules_file} reloaded: now running version {ruleset.version[:12]}")

    with Office.open(target, rules=rules_file, watch=True, on_reload=reloaded) as office:
        processes.check(workers, office.store.engine.dialect.name)
        observers = []
        if inbox:
            importer = inbox_importer(office.exchange, Path(inbox) / "replies")
            observers.append(watch.watch_inbox(watch.Inbox(inbox, importer, on_event=echo)))
        # Bound before announcing, so the line names the real port (--port 0 picks a free one).
        sock = bind(host, port)
        shown = f"[{host}]" if ":" in host else host
        url = f"{'https' if certfile else 'http'}://{shown}:{sock.getsockname()[1]}"
        many = f" in {workers} processes" if workers > 1 else ""
        echo(f"wangge master {office.device_id} serving {target} on {url}{many}")
        try:
            if on_listening is not None:
                on_listening(url)
            if workers == 1:
                app = office_app(office, target, https=bool(certfile), echo=echo, mounts=mounts)
                serve(app, sock, certfile=certfile, keyfile=keyfile, log_level="info")
            else:
                worker = processes.Worker(target, rules_file, https=bool(certfile), echo=echo,
                                          logging=_logging_configured())
                processes.serve(worker, sock, workers, **_settings(certfile=certfile, keyfile=keyfile,
                                                                   log_level="info"))
        finally:
            for observer in observers:
                observer.stop()
                observer.join()


_HANDLER = "wangge.serve"


def configure_logging() -> None:
    """Log wangge's own lines (access log, rule-file errors, inbox) at INFO, other libraries' warnings,
    and any one warning or error at most once a minute (`RepeatLimit`), to stderr. Called by the
    command line only, once per process (again, it changes nothing)."""
    if _logging_configured():
        return
    root = logging.getLogger()
    handler = limited_handler()
    handler.set_name(_HANDLER)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    root.addHandler(handler)
    logging.getLogger("wangge").setLevel(logging.INFO)
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)


def _logging_configured() -> bool:
    return any(h.get_name() == _HANDLER for h in logging.getLogger().handlers)


def check_tls(certfile: Optional[str], keyfile: Optional[str]) -> None:
    """Raise `UsageError` unless the certificate (and key) load for serving: before the master
    announces an address it would then not serve."""
    if certfile is None:
        raise UsageError(f"a TLS key ({keyfile}) needs its certificate: give --cert too")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        key = f" and key {keyfile}" if keyfile else " (holding its key)"
        raise UsageError(f"cannot serve TLS with certificate {certfile}{key}: "
                         f"{getattr(exc, 'reason', None) or exc.strerror or exc}: expected PEM files of a "
                         f"certificate and its private key") from None
