"""What the `wangge serve`, `wangge sync` and `wangge device` commands do.

The command line stays a thin shell; each function here opens the stores it
needs, does one job and returns the text to print. Errors are `WanggeError`s
with one-line messages.

The bundle exchange itself belongs to the sync protocol (`wangge.sync.protocol`
and `wangge.sync.bundle`); `protocol_exchange` and `tablet_session` are the two
seams where HTTP meets it.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional

from wangge.core import store
from wangge.core.errors import SyncError
from wangge.core.report import table
from wangge.sync import atrest, enrollment
from wangge.sync.enrollment import EnrollmentRequest


def protocol_exchange(master) -> Callable[[bytes], tuple[bytes, str]]:
    """The sync protocol's bundle import for ``master``: bytes in, reply bytes and summary out.

    Raises `SyncError` if this build has no sync protocol.
    """
    try:
        from wangge.sync import protocol  # noqa: F401 - the sync core (issue 6)
    except ImportError:
        protocol = None
    handler = getattr(protocol, "http_exchange", None) if protocol else None
    if handler is None:
        def refuse(bundle: bytes):
            raise SyncError("this master has no sync protocol to apply bundles with (wangge.sync.protocol.http_exchange)")
        return refuse
    return lambda bundle: handler(master, bundle)


def serve_master(target: str, *, host: str, port: int, rules_file: Optional[str] = None,
                 inbox: Optional[str] = None, certfile=None, keyfile=None, echo=print) -> None:
    """Serve a master store until interrupted, watching rules and the inbox if given."""
    from wangge.sync import server, watch
    from wangge.sync.office import Office

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    observers = []
    with store.open(target, "master") as master:
        exchange = protocol_exchange(master)
        live = None
        if rules_file:
            live = watch.LiveRuleset(rules_file)
            observers.append(watch.watch_rules(live))
        if inbox:
            def import_file(path: Path) -> str:
                return exchange(path.read_bytes())[1]
            observers.append(watch.watch_inbox(watch.Inbox(inbox, import_file)))
        app = server.MasterApp(Office(master, exchange, live_rules=live), Path(target).parent / (Path(target).name + ".files"))
        echo(f"wangge master {master.device_id} serving {target} on {'https' if certfile else 'http'}://{host}:{port}")
        try:
            server.serve(app, host, port, certfile=certfile, keyfile=keyfile, log_level="info")
        finally:
            for observer in observers:
                observer.stop()
                observer.join()


def enroll_tablet(target: str, passphrase: str, name: str, master_url: Optional[str] = None) -> str:
    """Create the tablet's keys if needed and return its request as text (and send it, if a URL is given)."""
    from wangge.sync.tablet import enrollment_request

    opened = (atrest.init_tablet(target, passphrase) if not Path(target).exists()
              else atrest.open_tablet(target, passphrase, for_sync=True))
    with opened:
        request = enrollment_request(opened, name)
    lines = [f"device {request.device_id} ({name})", f"fingerprint: {request.fingerprint}",
             "request (show as a QR code or copy to the office):", request.to_text()]
    if master_url:
        from wangge.sync.client import MasterClient

        with MasterClient(master_url) as client:
            answer = client.enroll(request.__dict__)
        lines.append(f"sent to {master_url}: {answer['status']}")
    return "\n".join(lines)


def approve_device(target: str, request: str, worker: str) -> str:
    """Approve a device by id or by its request text, binding it to ``worker``."""
    with store.open(target, "master") as master, master.write(actor="office") as rec:
        if request.startswith(enrollment.TEXT_PREFIX):
            parsed = EnrollmentRequest.from_text(request)
            enrollment.submit(rec, parsed)
            device_id = parsed.device_id
        else:
            device_id = request
        enrollment.approve(rec, device_id, worker)
    return f"device {device_id} approved for {worker}"


def revoke_device(target: str, device_id: str) -> str:
    with store.open(target, "master") as master, master.write(actor="office") as rec:
        enrollment.revoke(rec, device_id)
    return f"device {device_id} revoked: its next sync will be refused"


def device_table(target: str) -> str:
    with store.open(target, "master") as master, master.read() as conn:
        rows = enrollment.list_devices(conn)
    return table(["device", "name", "status", "worker", "fingerprint"],
                 [[r["device_id"], r["name"], r["status"], r["worker"], r["fingerprint"]] for r in rows],
                 title="Devices")


def sync_tablet(target: str, master_url: str, passphrase: str, *, progress: bool = False,
                now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> str:
    """One sync of an encrypted tablet with a master over HTTP; renews the lease on success.

    Raises `WrongPassphrase`, or `SyncError` in one line with nothing lost.
    """
    from wangge.sync.client import MasterClient, ProgressBar

    with atrest.open_tablet(target, passphrase, for_sync=True) as tablet:
        bar = ProgressBar() if progress else None
        with MasterClient(master_url, on_progress=bar.update if bar else None) as client:
            if bar:
                bar.__enter__()
            try:
                summary = tablet_session(tablet, client)
            finally:
                if bar:
                    bar.__exit__(None, None, None)
        with tablet.write(actor="sync") as rec:
            atrest.renew_lease(rec.conn, now_ms())
    return summary


def tablet_session(tablet, client) -> str:
    """Build the tablet's bundle, exchange it, apply the reply: the sync protocol's device side."""
    try:
        from wangge.sync import protocol
    except ImportError:
        protocol = None
    session = getattr(protocol, "http_session", None) if protocol else None
    if session is None:
        raise SyncError("this tablet has no sync protocol to build bundles with (wangge.sync.protocol.http_session)")
    return session(tablet, client)
