"""Sync from the field app: one button, a result in plain words, and the USB path.

The exchange is the sync protocol's own (`wangge.sync.protocol`, through
`wangge.sync.transport.fieldwork` for photos and the master's keys); this module keeps
what a worker needs to read afterwards — how many changes went up and came
down, which are waiting for the office, which the office held and why, or why
it refused the whole bundle — in the tablet's store (``field.last_sync``), so
the home page can say it after a restart too.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy import select

from wangge.app.fieldtablet import META_LAST_SYNC, META_WORKER, FieldTablet
from wangge.core.errors import SyncError, UsageError, WanggeError
from wangge.core.models import Op
from wangge.core.store import get_meta, set_meta
from wangge.sync.transport import files
from wangge.sync.device import exchange as device_exchange

_op = Op.__table__


@dataclass
class Outcome:
    """What one sync did, in figures a worker reads (`words`)."""

    ok: bool
    at_ms: int
    how: str = "network"  # network | usb-export | usb-import
    sent: int = 0
    received: int = 0
    proposals: int = 0
    held: list = field(default_factory=list)  # [entity, kind, reason] of each change the office set aside
    photos_sent: int = 0
    photos_received: int = 0
    photos_waiting: int = 0
    error: str = ""
    file: str = ""

    def words(self, lang: str = "zh") -> list[str]:
        """The result as short sentences: 上传 4 条, 收到 1 条, 1 条待办公室审核."""
        zh = lang != "en"
        if not self.ok:
            return [("同步没有完成:" if zh else "The sync did not finish: ") + self.error,
                    "您的记录都还在平板上,下次同步会再发送。" if zh else "Your records are all still on the tablet "
                    "and go with the next sync."]
        if self.how == "usb-export":
            return [(f"已把 {self.sent} 条记录写入 {self.file}:请把它交给办公室导入,再把回执导回平板。" if zh else
                     f"Wrote {self.sent} records to {self.file}: give it to the office to import, "
                     f"then bring its reply back to this tablet.")]
        lines = [f"上传 {self.sent} 条" if zh else f"Sent {self.sent}",
                 f"收到 {self.received} 条" if zh else f"received {self.received}"]
        if self.proposals:
            lines.append(f"{self.proposals} 条待办公室审核" if zh else f"{self.proposals} awaiting the office's review")
        if self.photos_sent or self.photos_received:
            lines.append(f"照片 上传 {self.photos_sent} 张、收到 {self.photos_received} 张" if zh else
                         f"photos: {self.photos_sent} sent, {self.photos_received} received")
        if self.photos_waiting:
            lines.append(f"{self.photos_waiting} 张照片办公室还没有,下次再取" if zh else
                         f"{self.photos_waiting} photos are not at the office yet")
        if self.held:
            lines.append(f"办公室暂扣 {len(self.held)} 条" if zh else f"the office held {len(self.held)}")
        return lines


def _proposals(conn, device_id: str, after: int, through: int) -> int:
    """Own case moves among the ops just acknowledged that were recorded as proposals for the office."""
    rows = conn.execute(select(_op.c.fields).where(_op.c.device == device_id, _op.c.entity == "case_event",
                                                   _op.c.seq > after, _op.c.seq <= through)).scalars()
    return sum("proposal" in str((json.loads(f) if isinstance(f, str) else f or {}).get("note") or "") for f in rows)


def _held(conn, quarantined: list) -> list:
    """Each op the office held, as [entity, kind, the office's reason]."""
    out = []
    for op_id, reason in quarantined:
        row = conn.execute(select(_op.c.entity, _op.c.kind).where(_op.c.op_id == op_id)).first()
        out.append([row.entity, row.kind, reason] if row else ["", "", reason])
    return out


def _record(tablet: FieldTablet, outcome: Outcome) -> Outcome:
    with tablet.store.write(actor="sync") as rec:
        set_meta(rec.conn, META_LAST_SYNC, json.dumps(asdict(outcome), ensure_ascii=False))
    return outcome


def last(tablet: FieldTablet) -> Optional[Outcome]:
    with tablet.store.read() as conn:
        text = get_meta(conn, META_LAST_SYNC)
    return Outcome(**json.loads(text)) if text else None


def _apply(tablet: FieldTablet, device: device_exchange.DeviceSync, reply: bytes, outcome: Outcome) -> device_exchange.DeviceResult:
    with tablet.store.read() as conn:
        before = tablet.session(conn).through
    result = device.accept_reply(reply)
    with tablet.store.read() as conn:
        through = tablet.session(conn).through
        outcome.proposals += _proposals(conn, tablet.device_id, before, through)
        outcome.held += _held(conn, result.quarantined)
    outcome.sent += result.acked
    outcome.received += result.applied
    return result


def sync_now(tablet: FieldTablet, master_url: str, *, on_progress: Optional[Callable] = None,
             client_options: Optional[dict] = None, rounds: int = 3) -> Outcome:
    """Sync with the master at ``master_url``: push, apply the reply, photos; renew the lease.

    Never raises for a failed exchange: the outcome says why in one line
    (nothing is lost: the outbox stays until a signed ack).
    """
    from wangge.sync.transport.client import MasterClient, Signer
    from wangge.sync.transport.fieldwork import _master_of, sync_photos

    outcome = Outcome(ok=False, at_ms=tablet.now_ms())
    try:
        with MasterClient(master_url, on_progress=on_progress, **(client_options or {})) as client:
            keys = tablet.keys
            device = device_exchange.DeviceSync(tablet.store, keys, _master_of(tablet.store, client))
            signer = Signer(tablet.device_id, keys.sign)  # uploads are for enrolled devices only
            _learn_worker(tablet, client)
            for _ in range(rounds):
                push = device.make_push()
                reply, _record_ = client.exchange(push, ops=device.pushed, signer=signer)
                result = _apply(tablet, device, reply, outcome)
                client.count_down(result.applied)
                if not result.again:
                    break
            photos = sync_photos(tablet.store, client, tablet.photos, keys)
            outcome.photos_sent, outcome.photos_received, outcome.photos_waiting = _photo_counts(photos)
        outcome.ok = True  # the reply renewed the lease, at the master's signed clock
    except WanggeError as exc:
        outcome.error = str(exc)
    return _record(tablet, outcome)


def _learn_worker(tablet: FieldTablet, client) -> None:
    """Ask the office whose tablet this is (enrollment binds a device to a worker)."""
    try:
        answer = client.enrollment(tablet.device_id)
    except SyncError:
        return
    worker_id = answer.get("worker_id")
    if isinstance(worker_id, str) and worker_id:
        with tablet.store.write(actor="sync") as rec:
            set_meta(rec.conn, META_WORKER, worker_id)


def _photo_counts(summary: str) -> tuple[int, int, int]:
    # `sync_photos` says what it did in one line ("photos: 1 sent, 2 received, 3 not at the master
    # yet"); its figures are read back from there rather than moved twice.
    sent = re.search(r"(\d+) sent", summary)
    received = re.search(r"(\d+) received", summary)
    waiting = re.search(r"(\d+) not at the master", summary)
    return tuple(int(m.group(1)) if m else 0 for m in (sent, received, waiting))


# -- the USB path -----------------------------------------------------------------------------

def export_bundle(tablet: FieldTablet, folder: str) -> Outcome:
    """Write the tablet's unsent changes as a bundle file into ``folder`` (a USB stick). Raises `UsageError`."""
    target = _folder(folder) / f"wangge-{tablet.device_id[-8:]}-{tablet.now_ms()}.wgb"
    with tablet.store.read() as conn:
        waiting = tablet.waiting(conn)
    device = device_exchange.DeviceSync(tablet.store, tablet.keys, device_exchange.trusted_master(tablet.store))
    device.make_push(deliver=lambda made: files.write_atomic(target, made))
    return _record(tablet, Outcome(ok=True, at_ms=tablet.now_ms(), how="usb-export", sent=waiting, file=str(target)))


def import_reply(tablet: FieldTablet, path: str) -> Outcome:
    """Apply the office's reply file (``PUSH.wgb.reply``) and renew the lease. Raises `WanggeError`."""
    data = files.read_bundle(path)
    device = device_exchange.DeviceSync(tablet.store, tablet.keys, device_exchange.trusted_master(tablet.store))
    outcome = Outcome(ok=False, at_ms=tablet.now_ms(), how="usb-import", file=str(path))
    _apply(tablet, device, data, outcome)  # an accepted reply renews the lease, at the master's signed clock
    outcome.ok = True
    return _record(tablet, outcome)


def _folder(text: str) -> Path:
    folder = Path(text.strip()).expanduser()
    if not text.strip() or not folder.is_dir():
        raise UsageError(f"no folder {text!r}: choose the USB stick's folder")
    return folder
