"""Serving a master to tablets: what `wangge serve` runs.

The office is opened with its rule file watched (a version that fails its
checks never replaces the running one) and, if given, a folder watched for
bundles dropped from USB sticks, whose replies go to ``replies/`` beside
them. Photos and uploads live next to the store (``office.db.files``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from wangge.app.office import Office


def serve(target: str, *, host: str, port: int, rules_file: Optional[str] = None, inbox: Optional[str] = None,
          certfile: Optional[str] = None, keyfile: Optional[str] = None,
          echo: Callable[[str], object] = print) -> None:
    """Serve the master store at ``target`` until interrupted; ``echo`` the address once bound.

    Raises `UsageError` for TLS files that do not load or a port taken,
    before anything is announced.
    """
    from wangge.sync import server
    from wangge.sync.transport import fieldwork, watch

    if certfile or keyfile:
        fieldwork.check_tls(certfile, keyfile)
    with Office.open(target, rules=rules_file, watch=True) as office:
        observers = []
        if inbox:
            importer = fieldwork.inbox_importer(office.exchange, Path(inbox) / "replies")
            observers.append(watch.watch_inbox(watch.Inbox(inbox, importer)))
        app = server.MasterApp(office.master_service(), Path(target).parent / (Path(target).name + ".files"))
        # Bound before announcing, so the line names the real port (--port 0 picks a free one).
        sock = server.bind(host, port)
        shown = f"[{host}]" if ":" in host else host
        echo(f"wangge master {office.device_id} serving {target} on "
             f"{'https' if certfile else 'http'}://{shown}:{sock.getsockname()[1]}")
        try:
            server.serve(app, sock, certfile=certfile, keyfile=keyfile, log_level="info")
        finally:
            for observer in observers:
                observer.stop()
                observer.join()
