"""What the `wangge serve`, `wangge sync` and `wangge device` commands do.

The command line stays a thin shell; each function here opens the stores it
needs, does one job and returns the text to print. Errors are `WanggeError`s
with one-line messages.

The bundle exchange itself belongs to the sync protocol (`wangge.sync.protocol`):
`protocol_exchange` (the master's side) and `tablet_session` (the tablet's)
are where HTTP meets it, with the keys each store keeps (`wangge.sync.identity`).
"""
from __future__ import annotations

import json
import logging
import ssl
import time
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy import select

from wangge.core import casework, store
from wangge.core.errors import SyncError, UsageError, WanggeError
from wangge.core.models import Attachment
from wangge.core.report import table
from wangge.core.ruleset import Ruleset
from wangge.core.store import set_meta
from wangge.sync import atrest, enrollment, protocol, tables
from wangge.sync.enrollment import EnrollmentRequest
from wangge.sync.identity import store_keys
from wangge.sync.keys import PublicKeys
from wangge.sync.session import META_ENROLLED_WITH, DeviceSession

_attachment = Attachment.__table__
META_MASTER_URL = META_ENROLLED_WITH  # the URL `wangge device enroll --master` sent the request to


def protocol_exchange(master, rules: Callable[[], Optional[Ruleset]]) -> Callable[[bytes], tuple[bytes, str]]:
    """The sync protocol's bundle import for ``master``: bytes in, reply bytes and summary out.

    ``rules`` gives the ruleset to authorise with at each exchange, so a
    hot-reloaded rule file takes effect at the next bundle.
    """
    keys = store_keys(master)

    def exchange(bundle: bytes) -> tuple[bytes, str]:
        return protocol.MasterSync(master, keys, ruleset=rules()).exchange(bundle)

    return exchange


def installed_rules(master) -> Callable[[], Optional[Ruleset]]:
    """The ruleset installed on the store (`wangge init --rules`), if any."""
    def current() -> Optional[Ruleset]:
        with master.read() as conn:
            try:
                return casework.installed_ruleset(conn)
            except WanggeError:
                return None
    return current


def live_rules(live, fallback: Callable[[], Optional[Ruleset]]) -> Callable[[], Optional[Ruleset]]:
    """The hot-reloaded ruleset, or ``fallback``'s while the watched file has never loaded."""
    return lambda: live.current or fallback()


def _install(master, ruleset: Ruleset) -> None:
    # Installed on the store too, so the office's own commands (escalate, score)
    # and a restarted server run the last ruleset that passed its checks.
    with master.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)


def inbox_importer(exchange: Callable[[bytes], tuple[bytes, str]], replies: Path) -> Callable[[Path], str]:
    """Import a bundle file through ``exchange`` and write the master's reply to ``replies`` (atomically).

    The reply goes back to the tablet on the same USB stick: without it the
    tablet keeps its outbox and sends the same ops again (harmless, but it
    never learns they arrived).
    """
    from wangge.sync import files

    replies.mkdir(parents=True, exist_ok=True)

    def import_file(path: Path) -> str:
        reply, summary = exchange(files.read_bundle(path))
        target = files.write_atomic(replies / (path.name + ".reply"), reply)
        return f"{summary}; reply written to {target}"

    return import_file


def serve_master(target: str, *, host: str, port: int, rules_file: Optional[str] = None,
                 inbox: Optional[str] = None, certfile=None, keyfile=None, echo=print) -> None:
    """Serve a master store until interrupted, watching rules and the inbox if given."""
    from wangge.sync import server, watch
    from wangge.sync.office import Office

    if certfile or keyfile:
        check_tls(certfile, keyfile)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    observers = []
    with store.open(target, "master", extra_migrations=tables.MIGRATIONS) as master:
        live = None
        rules = installed_rules(master)
        if rules_file:
            live = watch.LiveRuleset(rules_file, on_change=lambda r: _install(master, r))
            observers.append(watch.watch_rules(live))
            rules = live_rules(live, rules)
        exchange = protocol_exchange(master, rules)
        if inbox:
            observers.append(watch.watch_inbox(watch.Inbox(inbox, inbox_importer(exchange, Path(inbox) / "replies"))))
        office = Office(master, exchange, live_rules=live, public_keys=store_keys(master).public)
        app = server.MasterApp(office, Path(target).parent / (Path(target).name + ".files"))
        from wangge.web.open311 import beside

        app = beside(app, master, rules)  # Open311 for the city hotline, at /open311/v2
        # Bound before announcing, so the line names the real port (--port 0 picks a free one).
        sock = server.bind(host, port)
        shown = f"[{host}]" if ":" in host else host
        echo(f"wangge master {master.device_id} serving {target} on "
             f"{'https' if certfile else 'http'}://{shown}:{sock.getsockname()[1]}")
        try:
            server.serve(app, sock, certfile=certfile, keyfile=keyfile, log_level="info")
        finally:
            for observer in observers:
                observer.stop()
                observer.join()


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


def enroll_tablet(target: str, passphrase: str, name: str, master_url: Optional[str] = None) -> str:
    """Create the tablet's keys if needed and return its request as text (and send it, if a URL is given)."""
    from wangge.sync.client import check_master_url
    from wangge.sync.tablet import enrollment_request

    # Checked before anything is made or remembered: a typo is said at once, never stored.
    master_url = check_master_url(master_url) if master_url is not None else None
    opened = (atrest.init_tablet(target, passphrase, extra_migrations=tables.MIGRATIONS) if not Path(target).exists()
              else atrest.open_tablet(target, passphrase, for_sync=True, extra_migrations=tables.MIGRATIONS))
    with opened:
        request = enrollment_request(opened, name)
        if master_url:
            # Remembered so that a first `wangge bundle export` can still learn the master's keys.
            with opened.write(actor="enrollment") as rec:
                set_meta(rec.conn, META_MASTER_URL, master_url)
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
    card = master_card(master, device_id)
    return (f"device {device_id} approved for {worker}\n"
            f"a tablet with no network learns this master by scanning (wangge device trust):\n{card}")


def master_card(master, device_id: str) -> str:
    """The master's id and public keys for ``device_id``, signed, as one line of text."""
    keys = store_keys(master)
    sign, box = keys.public.b64()
    return enrollment.make_card(master.device_id, sign, box, device_id, keys.sign).to_text()


def trust_card(target: str, passphrase: str, text: str) -> str:
    """Record the master a card names on an encrypted tablet. Raises `EnrollmentError`."""
    with atrest.open_tablet(target, passphrase, for_sync=True, extra_migrations=tables.MIGRATIONS) as tablet:
        card = enrollment.MasterCard.from_text(text, tablet.device_id)
        protocol.trust_master(tablet, protocol.Peer(card.master_id, PublicKeys.from_b64(card.sign_key, card.box_key)))
    return f"this tablet now syncs with master {card.master_id}"


def revoke_device(target: str, device_id: str) -> str:
    with store.open(target, "master") as master, master.write(actor="office") as rec:
        enrollment.revoke(rec, device_id)
    return f"device {device_id} revoked: its next sync will be refused"


def device_table(target: str) -> str:
    from wangge.sync import registry

    with store.open(target, "master") as master, master.read() as conn:
        rows = enrollment.list_devices(conn)
        version = registry.version(conn)
    return table(["device", "name", "status", "worker", "fingerprint"],
                 [[r["device_id"], r["name"], r["status"], r["worker"], r["fingerprint"]] for r in rows],
                 title=f"Devices (registry version {version})")


def registry_snapshot(target: str, out: str) -> str:
    """Write the master's signed registry snapshot to ``out`` (atomically); say what was written."""
    from wangge.sync import registry
    from wangge.sync.files import write_atomic

    with store.open(target, "master", extra_migrations=tables.MIGRATIONS) as master:
        keys = store_keys(master)
        with master.read() as conn:
            data = registry.snapshot(conn, master.device_id, keys)
    body = json.loads(json.loads(data)["snapshot"])
    path = write_atomic(out, data)
    return f"registry version {body['version']} ({len(body['devices'])} devices), signed by {body['master']}: {path}"


def sync_tablet(target: str, master_url: str, passphrase: str, *, progress: bool = False,
                now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> str:
    """One sync of an encrypted tablet with a master over HTTP, photos included; renews the lease.

    The lease is the ruleset's (`lease` in its settings), as the master last
    sent it. Raises `WrongPassphrase`, or `SyncError` in one line with nothing lost.
    """
    from wangge.sync.client import MasterClient, ProgressBar, check_master_url
    from wangge.sync.tablet import tablet_photos

    master_url = check_master_url(master_url)
    with atrest.open_tablet(target, passphrase, for_sync=True, extra_migrations=tables.MIGRATIONS) as tablet:
        bar = ProgressBar() if progress else None
        with MasterClient(master_url, on_progress=bar.update if bar else None) as client:
            if bar:
                bar.__enter__()
            try:
                summary = tablet_session(tablet, client, photos=tablet_photos(tablet, target))
            finally:
                if bar:
                    bar.__exit__(None, None, None)
        with tablet.write(actor="sync") as rec:
            stored = DeviceSession.load(rec.conn).ruleset
            atrest.renew_lease(rec.conn, now_ms(), Ruleset.from_json(stored).settings.lease_days if stored else None)
    return summary


def tablet_session(tablet, client, *, rounds: int = 3, photos=None) -> str:
    """One sync: learn the master at first contact, push the outbox, apply the reply, then photos.

    Repeats (at most ``rounds`` times) while the master asks for a scope
    repair. With ``photos`` (the tablet's `BlobStore`), sends the photos the
    master lacks and fetches those of the tablet's records it lacks. Raises
    `SyncError` in one line; the outbox is kept until a signed ack is
    verified, so nothing is lost.
    """
    keys = store_keys(tablet)
    master = _master_of(tablet, client)
    device = protocol.DeviceSync(tablet, keys, master)
    lines = []
    for _ in range(rounds):
        push = device.make_push()
        reply, record = client.exchange(push, ops=device.pushed)
        result = device.accept_reply(reply)
        client.count_down(result.applied)
        lines.append(f"sent {len(push):,} bytes, received {len(reply):,}: {result.acked} ops acknowledged, "
                     f"{result.applied} applied, {result.evicted} evicted")
        if not result.again:
            break
    if photos is not None:
        lines.append(sync_photos(tablet, client, photos, keys))
    return "; ".join(lines)


def sync_photos(tablet, client, photos, keys=None) -> str:
    """Send the photos the master lacks; fetch the photos of the tablet's records that it lacks.

    Runs after the bundle exchange, so the master already holds the
    attachment rows that put a photo in the tablet's scope. A photo whose
    author has not sent it yet is left for a later sync, not an error.
    Raises `SyncError` in one line.
    """
    from wangge.sync.attachments import AttachmentError, check_sha
    from wangge.sync.client import Signer

    signer = Signer(tablet.device_id, (keys or store_keys(tablet)).sign)
    with tablet.read() as conn:
        rows = conn.execute(select(_attachment.c.sha256, _attachment.c.size)
                            .where(_attachment.c.deleted.is_(None))).all()
    sizes = {}
    for sha, size in rows:
        try:
            sizes[check_sha(sha)] = size
        except AttachmentError:
            continue  # a malformed name cannot name a blob; the master refuses it anyway
    # Marks of photos the master is known to hold, so a sync does not ask about every old photo.
    marks = photos.root / "at-master"
    marks.mkdir(exist_ok=True)
    sent = received = waiting = 0
    for sha in sizes:
        if (marks / sha).exists():
            continue
        if photos.has(sha):
            client.put_blob(photos, sha, signer)
            sent += 1
        elif client.blob_status(sha, signer) >= sizes[sha]:
            client.get_blob(photos, sha, signer, size=sizes[sha])
            received += 1
        else:
            waiting += 1
            continue
        (marks / sha).touch()
    # A photo no record here names any more (its grid left the tablet's scope, or the
    # tablet downloaded afresh) goes too, once the master is known to hold it: no
    # resident's photo stays behind on a tablet that left their grid.
    removed = 0
    for mark in list(marks.iterdir()):
        try:
            check_sha(mark.name)
        except AttachmentError:
            continue  # not a mark of ours
        if mark.name not in sizes:
            photos.remove(mark.name)
            mark.unlink()
            removed += 1
    return (f"photos: {sent} sent, {received} received" + (f", {waiting} not at the master yet" if waiting else "")
            + (f", {removed} removed (no longer in this tablet's grids)" if removed else ""))


def known_master(tablet) -> protocol.Peer:
    """The master this tablet trusts, asking the master it enrolled with if it has not learnt it yet.

    For `wangge bundle export` right after enrollment. Raises `SyncError` in
    one line saying how the tablet can learn its master.
    """
    try:
        return protocol.trusted_master(tablet)
    except SyncError:
        with tablet.read() as conn:
            url = DeviceSession.load(conn).enrolled_with
        if url is None:
            raise SyncError("this tablet knows no master yet: sync once with `wangge sync --master URL`, or scan "
                            "the card `wangge device approve` printed with `wangge device trust`") from None
    from wangge.sync.client import MasterClient

    with MasterClient(url, attempts=2) as client:
        return _master_of(tablet, client)


def _master_of(tablet, client) -> protocol.Peer:
    """The master this tablet trusts; learnt from the office once the tablet is approved."""
    try:
        return protocol.trusted_master(tablet)
    except SyncError:
        answer = client.enrollment(tablet.device_id)
        state = answer.get("status", "unknown")
        if state == "revoked":
            raise SyncError("this tablet is revoked at the master: its syncs are refused; the office can "
                            "enroll it again as a new device") from None
        if state != "active" or "master" not in answer:
            raise SyncError(f"this tablet is {state} at the master: "
                            "ask the office to approve it (wangge device approve)") from None
        found = answer["master"]
        peer = protocol.Peer(found["id"], PublicKeys.from_b64(found["sign_key"], found["box_key"]))
        protocol.trust_master(tablet, peer)
        return peer
