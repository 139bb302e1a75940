"""Serving the field app on the tablet: `wangge field`.

The app listens on loopback only: a worker's data never answers the street's
Wi-Fi. Unlocked at start (the passphrase from the prompt or
WANGGE_PASSPHRASE), it prints a one-time link that starts a session in the
browser; otherwise the browser's unlock page asks for the passphrase.
"""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Callable, Optional

from wangge.core.errors import UsageError
from wangge.web.field.guard import is_loopback

DEFAULT_PORT = 8471


def check_host(host: str) -> str:
    """``host`` if it is a loopback address; raises `UsageError` for any other."""
    if not is_loopback(host):
        raise UsageError(f"the field app listens on loopback only (127.0.0.1, ::1 or localhost), not {host!r}: "
                         f"a worker's data must not answer the network")
    return host


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on loopback ``host``; port 0 picks a free one. Raises `UsageError` if it is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart right after a stop finds its port
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from None
    sock.listen(64)
    return sock


def serve_field(path: str, *, port: int = DEFAULT_PORT, host: str = "127.0.0.1", master_url: Optional[str] = None,
                passphrase: Optional[str] = None, echo: Callable[[str], None] = print) -> None:
    """Serve the field app for the tablet at ``path`` until interrupted.

    Raises `UsageError` for a non-loopback host, a missing tablet or a bad
    master URL, `WrongPassphrase` for a passphrase that does not fit: all
    before anything listens.
    """
    from wangge.app.fieldtablet import FieldTablet
    from wangge.sync.device import atrest
    from wangge.sync.transport.client import check_master_url
    from wangge.web.field.app import field_app

    check_host(host)
    master_url = check_master_url(master_url) if master_url else None
    if not Path(path).exists() or not atrest.keyfile_path(path).exists():
        atrest.open_tablet(path, passphrase or "", for_sync=True)  # raises the one-line reason
    tablet = FieldTablet.open(path, passphrase) if passphrase else None
    app = field_app(tablet, path=path, master_url=master_url)
    sock = listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{sock.getsockname()[1]}"
    if tablet is not None:
        echo(f"wangge field: {path} unlocked; open {base}/login?token={app.state.field.guard.new_login()}")
    else:
        echo(f"wangge field: open {base} and unlock with the worker's passphrase")
    try:
        import uvicorn

        # One process, one worker: the tablet's store is opened once, by this app.
        uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
    finally:
        if app.state.field.tablet is not None:
            app.state.field.tablet.close()
