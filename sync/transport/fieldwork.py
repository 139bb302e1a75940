"""Where transports meet the sync protocol, for the application layer (`wangge.app`).

`protocol_exchange` (the master's side) and `tablet_session` (the tablet's)
run the bundle exchange with the keys each store keeps
(`wangge.sync.identity`); `sync_photos` moves photos after it; `known_master`
and `_master_of` find the master a tablet trusts; `inbox_importer` turns a
bundle file into an exchange and a reply file. Nothing here opens a store:
callers pass them in open. Errors are `WanggeError`s with one-line messages.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple, Optional

from sqlalchemy import select

from wangge.core import casework
from wangge.core.errors import SyncError, WanggeError
from wangge.core.models import Attachment
from wangge.core.ruleset import Ruleset
from wangge.core.store import database_url
from wangge.sync import enrollment, protocol
from wangge.sync.identity import store_keys
from wangge.sync.keys import PublicKeys
from wangge.sync.device.session import META_ENROLLED_WITH, DeviceSession
from wangge.sync.device import exchange as device_exchange
from wangge.sync.master import exchange as master_exchange

_attachment = Attachment.__table__
META_MASTER_URL = META_ENROLLED_WITH  # the URL `wangge device enroll --master` sent the request to


class Exchanged(NamedTuple):
    """What the master made of one bundle: its reply, a one-line summary, and who sent how many ops."""

    reply: bytes
    summary: str
    device: str
    ops_in: int
    ops_out: int


def protocol_exchange(master, rules: Callable[[], Optional[Ruleset]]) -> Callable[[bytes], Exchanged]:
    """The sync protocol's bundle import for ``master``: bytes in, an `Exchanged` out.

    ``rules`` gives the ruleset to authorise with at each exchange, so a
    hot-reloaded rule file takes effect at the next bundle. Raises what
    `MasterSync.exchange` raises.
    """
    keys = store_keys(master)
    return lambda data: exchange_once(master, keys, rules(), data)


def exchange_once(master, keys, ruleset: Optional[Ruleset], data: bytes) -> Exchanged:
    """Apply one bundle at ``master`` under ``ruleset``: an `Exchanged`. Raises what `MasterSync.exchange` raises."""
    sync = master_exchange.MasterSync(master, keys, ruleset=ruleset)
    reply, summary = sync.exchange(data)
    return Exchanged(reply, summary, sync.sender, *sync.counted)


def installed_rules(master) -> Callable[[], Optional[Ruleset]]:
    """The ruleset installed on the store (`wangge init --rules`), if any, read at each call.

    Parsed again only when the stored text changed: parsing (and hashing, for
    its version) took a tenth of an exchange. Comparing the stored text with
    the one parsed last is a compare of memory; the text is what the ruleset's
    version hashes, so an equal text is the same version.
    """
    parsed: list = [None, None]  # the stored text, its ruleset

    def current() -> Optional[Ruleset]:
        with master.read() as conn:
            text = casework.installed_json(conn)
        if not text:
            return None
        if text != parsed[0]:
            try:
                parsed[:] = [text, Ruleset.from_json(text)]
            except WanggeError:
                return None
        return parsed[1]
    return current


def live_rules(live, fallback: Callable[[], Optional[Ruleset]]) -> Callable[[], Optional[Ruleset]]:
    """The hot-reloaded ruleset, or ``fallback``'s while the watched file has never loaded."""
    return lambda: live.current or fallback()


def inbox_importer(exchange: Callable[[bytes], Exchanged], replies: Path) -> Callable[[Path], str]:
    """Import a bundle file through ``exchange`` and write the master's reply to ``replies`` (atomically).

    The reply goes back to the tablet on the same USB stick: without it the
    tablet keeps its outbox and sends the same ops again (harmless, but it
    never learns they arrived).
    """
    from wangge.sync.transport import files

    replies.mkdir(parents=True, exist_ok=True)

    def import_file(path: Path) -> str:
        reply, summary = exchange(files.read_bundle(path))[:2]
        target = files.write_atomic(replies / (path.name + ".reply"), reply)
        return f"{summary}; reply written to {target}"

    return import_file


def files_folder(target: str) -> Path:
    """Where a master keeps uploads, replies and photos: beside an SQLite file, or in the working
    folder for a PostgreSQL master (named after its database)."""
    if "://" in target:
        from sqlalchemy.engine import make_url

        return Path.cwd() / f"{make_url(database_url(target)).database or 'master'}.files"
    return Path(target).parent / (Path(target).name + ".files")


def master_card(master, device_id: str) -> str:
    """The master's id and public keys for ``device_id``, signed, as one line of text."""
    keys = store_keys(master)
    sign, box = keys.public.b64()
    return enrollment.make_card(master.device_id, sign, box, device_id, keys.sign).to_text()


def tablet_session(tablet, client, *, rounds: int = 3, photos=None) -> str:
    """One sync: learn the master at first contact, push the outbox, apply the reply, then photos.

    Repeats (at most ``rounds`` times) while the master asks for a scope
    repair. With ``photos`` (the tablet's `BlobStore`), sends the photos the
    master lacks and fetches those of the tablet's records it lacks. Raises
    `SyncError` in one line; the outbox is kept until a signed ack is
    verified, so nothing is lost.
    """
    from wangge.sync.transport.client import Signer

    keys = store_keys(tablet)
    master = _master_of(tablet, client)
    device = device_exchange.DeviceSync(tablet, keys, master)
    signer = Signer(tablet.device_id, keys.sign)
    lines = []
    for _ in range(rounds):
        push = device.make_push()
        reply, record = client.exchange(push, ops=device.pushed, signer=signer)
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
    from wangge.sync.transport.client import Signer

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
    up, down = client.traffic.bytes_up, client.traffic.bytes_down
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
    up, down = client.traffic.bytes_up - up, client.traffic.bytes_down - down
    moved = f" ({up:,} bytes up, {down:,} down)" if sent or received else ""
    return (f"photos: {sent} sent, {received} received{moved}"
            + (f", {waiting} not at the master yet" if waiting else "")
            + (f", {removed} removed (no longer in this tablet's grids)" if removed else ""))


def known_master(tablet) -> protocol.Peer:
    """The master this tablet trusts, asking the master it enrolled with if it has not learnt it yet.

    For `wangge bundle export` right after enrollment. Raises `SyncError` in
    one line saying how the tablet can learn its master.
    """
    try:
        return device_exchange.trusted_master(tablet)
    except SyncError:
        with tablet.read() as conn:
            url = DeviceSession.load(conn).enrolled_with
        if url is None:
            raise SyncError("this tablet knows no master yet: sync once with `wangge sync --master URL`, or scan "
                            "the card `wangge device approve` printed with `wangge device trust`") from None
    from wangge.sync.transport.client import MasterClient

    with MasterClient(url, attempts=2) as client:
        return _master_of(tablet, client)


def _master_of(tablet, client) -> protocol.Peer:
    """The master this tablet trusts; learnt from the office once the tablet is approved."""
    try:
        return device_exchange.trusted_master(tablet)
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
        device_exchange.trust_master(tablet, peer)
        return peer
