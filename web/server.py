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
reloads, and serves until interrupted.
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

    def __init__(self, sync: SyncEndpoints, *, mounts: Sequence[BaseRoute] = (), debug: bool = False):
        self.sync = sync
        super().__init__(debug=debug, routes=[*sync.routes, *mounts], middleware=[Middleware(AccessLog)],
                         exception_handlers={WanggeError: _refusal, HTTPException: _http_error})

    @property
    def exchanges(self) -> int:
        return self.sync.exchanges


def master_app(master: Master, folder: str | Path, *, mounts: Sequence[BaseRoute] = (),
               blobs: Optional[BlobStore] = None, on_event: Optional[Callable[[str], None]] = None,
               **options) -> MasterApp:
    """The app `wangge serve` runs: sync endpoints over ``master`` (transfers kept in ``folder``), then ``mounts``.

    ``mounts`` are Starlette routes or mounts tried after the sync endpoints,
    e.g. ``[Mount("/", console)]``. ``on_event(text)`` hears of each
    enrollment and each applied bundle. Other ``options`` go to `SyncEndpoints`.
    """
    return MasterApp(SyncEndpoints(master, folder, blobs=blobs, on_event=on_event, **options), mounts=mounts)


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


def _config(app, *, certfile: Optional[str] = None, keyfile: Optional[str] = None, log_level: str = "warning",
            max_connections: int = DEFAULT_CAP, header_timeout: float = HEADER_TIMEOUT,
            idle_timeout: int = IDLE_TIMEOUT, guard: Optional[ConnectionGuard] = None):
    import uvicorn

    if bool(certfile) != bool(keyfile):
        raise UsageError("TLS needs both a certificate file and its key file (--cert and --key)")
    guard = guard or ConnectionGuard()
    guard.cap = connection_cap(raise_file_limit(), max_connections)
    guard.header_timeout = header_timeout
    # limit_concurrency past the cap: the guard evicts idle connections before uvicorn would answer 503.
    return uvicorn.Config(app, lifespan="on", log_level=log_level, ssl_certfile=certfile, ssl_keyfile=keyfile,
                          http=guarded_protocol(guard), h11_max_incomplete_event_size=MAX_HEAD_BYTES,
                          timeout_keep_alive=idle_timeout, limit_concurrency=guard.cap + 1, backlog=ACCEPT_BATCH,
                          access_log=False, log_config=None)


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
                 mounts: Sequence[BaseRoute] = (), on_listening: Optional[Callable[[str], None]] = None) -> None:
    """Serve a master store until interrupted, watching the rule file and the inbox if given;
    the office console (`wangge.web.console`) is at ``/``, after the sync endpoints and ``mounts``.
    ``on_listening(url)`` runs once the address is bound and announced, before serving.

    Prints (through ``echo``) the address, then one line per enrollment,
    applied bundle and rule-file reload. Raises `UsageError` for a bad TLS
    pair or a taken port, `StoreError` for a store that cannot be opened.
    """
    from wangge.app.office import Office
    from wangge.sync.transport import watch
    from wangge.sync.transport.fieldwork import files_folder, inbox_importer
    from wangge.web import open311
    from wangge.web.console import console_mount

    if certfile or keyfile:
        check_tls(certfile, keyfile)

    def reloaded(ruleset) -> None:
        echo(f"rule file {rules_file} reloaded: now running version {ruleset.version[:12]}")

    with Office.open(target, rules=rules_file, watch=True, on_reload=reloaded) as office:
        observers = []
        if inbox:
            importer = inbox_importer(office.exchange, Path(inbox) / "replies")
            observers.append(watch.watch_inbox(watch.Inbox(inbox, importer, on_event=echo)))
        folder = files_folder(target)
        blobs = BlobStore(folder / "blobs")  # one photo store: tablets fill it, the console shows it
        console = console_mount(office, blobs=blobs, https=bool(certfile),
                                rules_error=lambda: office.live.last_errors if office.live is not None else None)
        hotline = open311.mount(office.store, office.installed_ruleset)  # before the console, which takes "/"
        app = master_app(office.master_service(), folder, on_event=echo, blobs=blobs,
                         mounts=[*mounts, hotline, console])
        # Bound before announcing, so the line names the real port (--port 0 picks a free one).
        sock = bind(host, port)
        shown = f"[{host}]" if ":" in host else host
        url = f"{'https' if certfile else 'http'}://{shown}:{sock.getsockname()[1]}"
        echo(f"wangge master {office.device_id} serving {target} on {url}")
        try:
            if on_listening is not None:
                on_listening(url)
            serve(app, sock, certfile=certfile, keyfile=keyfile, log_level="info")
        finally:
            for observer in observers:
                observer.stop()
                observer.join()


_HANDLER = "wangge.serve"


def configure_logging() -> None:
    """Log wangge's own lines (access log, rule-file errors, inbox) at INFO, other libraries' warnings,
    and any one warning or error at most once a minute (`RepeatLimit`), to stderr. Called by the
    command line only, once per process (again, it changes nothing)."""
    root = logging.getLogger()
    if any(h.get_name() == _HANDLER for h in root.handlers):
        return
    handler = limited_handler()
    handler.set_name(_HANDLER)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    root.addHandler(handler)
    logging.getLogger("wangge").setLevel(logging.INFO)
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)


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
