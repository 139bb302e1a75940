"""What an office account does to the store: move a case, answer a conflict, approve or revoke
a tablet, run the escalation sweep.

Each use case checks what the account may do (its grid for cases, an office
role for reviews, devices and sweeps), then calls the one engine that
decides (the lifecycle through `casework.move_case`, `review.answer`,
`enrollment`), and writes a line of the audit trail naming the account.
A refusal raises, in the engine's own words, and writes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Optional

from sqlalchemy import select

from wangge.app import accounts
from wangge.app.accounts import Account, AccountError
from wangge.app.queries import current_ruleset, find_case
from wangge.core import casework
from wangge.core.errors import UsageError
from wangge.core.escalation import Escalation
from wangge.core.store import Store
from wangge.sync import enrollment
from wangge.sync.master import review
from wangge.sync.attachments import BlobStore

#: Image types a photo given as evidence may have, by their first bytes.
PHOTO_TYPES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"RIFF", "image/webp"))


class NotAllowed(AccountError):
    """The account's role may not do this at all (not a lifecycle move: reviews, devices, sweeps)."""


@dataclass(frozen=True)
class PhotoUpload:
    data: bytes
    name: str


def photo_type(data: bytes) -> str:
    """The image type of ``data``; raises `UsageError` for anything but a JPEG, PNG or WebP photo."""
    for magic, media in PHOTO_TYPES:
        if data.startswith(magic) and (media != "image/webp" or data[8:12] == b"WEBP"):
            return media
    raise UsageError("the photo is not a JPEG, PNG or WebP image: take or choose a photo")


def move(store: Store, account: Account, case_ref: str, move_code: str, *, now: datetime,
         evidence: Iterable[str] = (), note: str = "", satisfied: Optional[bool] = None,
         photo: Optional[PhotoUpload] = None, blobs: Optional[BlobStore] = None) -> str:
    """Make lifecycle move ``move_code`` on a case as ``account``; return the case's new status.

    A photo, when given, is stored and attached to the case in the same
    transaction and counts as the "photo" evidence. Raises `NotVisible`
    for a case outside the account's grids, `TransitionError` in the
    lifecycle's words for a move its role, the state or the evidence does not
    allow, `UsageError` for a bad photo; nothing is written then.
    """
    evidence = set(evidence)
    media = photo_type(photo.data) if photo is not None else None
    if photo is not None and blobs is None:
        raise UsageError("this office keeps no photo folder: serve the console with `wangge serve` to attach photos")
    with store.write(actor=account.name) as rec:
        ruleset = current_ruleset(rec.conn)
        row = find_case(rec.conn, account, case_ref)
        if account.worker_id is None:
            raise AccountError(f"account {account.name} acts for no worker: recreate it with `wangge user add`")
        if photo is not None:
            sha = blobs.put(photo.data)
            rec.insert("attachment", {"sha256": sha, "size": len(photo.data), "media_type": media,
                                      "case_id": row.id, "grid_id": row.grid_id, "name": photo.name[:200]})
            evidence.add("photo")
        status = casework.move_case(rec, ruleset, row.id, move_code, role=account.role, actor_id=account.worker_id,
                                    at=now, evidence=sorted(evidence), note=note.strip()[:2000], satisfied=satisfied)
        accounts.record(rec.conn, account.name, "move", row.number,
                        f"{move_code}: {row.status} → {status}" + (f"; {note.strip()}" if note.strip() else ""), now)
    return status


def _office_only(store: Store, account: Account, what: str) -> None:
    with store.read() as conn:
        ruleset = current_ruleset(conn)
    if not account.office(ruleset):
        office = ", ".join(r.code for r in ruleset.roles if r.office)
        raise NotAllowed(f"{what} is for office roles ({office}); account {account.name} is a {account.role}")


def resolve(store: Store, account: Account, conflict_id: int, how: str, *, note: str = "",
            now: datetime) -> str:
    """Answer a conflict sync queued for review (`wangge.sync.master.review`) as ``account``."""
    _office_only(store, account, "answering conflicts")
    done = review.answer(store, conflict_id, how, by=account.name, note=note.strip()[:2000], now=now)
    with store.write(actor=account.name) as rec:
        accounts.record(rec.conn, account.name, "resolve", f"#{conflict_id}", f"{how}: {done}", now)
    return done


def approve_device(store: Store, account: Account, device_id: str, worker: str, *, now: datetime) -> str:
    """Approve a pending tablet, binding it to ``worker`` (id or name)."""
    _office_only(store, account, "approving tablets")
    if not worker.strip():
        raise UsageError("choose the worker the tablet belongs to")
    with store.write(actor=account.name) as rec:
        enrollment.approve(rec, device_id, worker.strip())
        accounts.record(rec.conn, account.name, "approve_device", device_id, f"for {worker}", now)
    return f"device {device_id} approved for {worker}"


def revoke_device(store: Store, account: Account, device_id: str, *, now: datetime) -> str:
    _office_only(store, account, "revoking tablets")
    with store.write(actor=account.name) as rec:
        enrollment.revoke(rec, device_id)
        accounts.record(rec.conn, account.name, "revoke_device", device_id, "", now)
    return f"device {device_id} revoked: its next sync will be refused"


@dataclass(frozen=True)
class SweepResult:
    moved: list[Escalation]
    at_ceiling: list[str]  # case ids
    numbers: dict[str, str]  # case id -> number


def sweep(store: Store, account: Account, *, now: datetime) -> SweepResult:
    """Run the escalation sweep now (as `wangge escalate` does) and say what moved and why."""
    _office_only(store, account, "running the escalation sweep")
    from wangge.core.models import Case

    cases = Case.__table__
    with store.write(actor="escalation") as rec:
        ruleset = current_ruleset(rec.conn)
        moved, stuck = casework.sweep(rec, ruleset, now)
        ids = sorted({m.case for m in moved} | set(stuck))
        numbers = dict(rec.conn.execute(select(cases.c.id, cases.c.number).where(cases.c.id.in_(ids))).all()) if ids else {}
        accounts.record(rec.conn, account.name, "sweep", "", f"{len(moved)} escalated, {len(stuck)} at ceiling", now)
    return SweepResult(list(moved), list(stuck), numbers)
