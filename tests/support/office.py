"""A street office with its console, served exactly as `wangge serve` serves it, and a tablet
that reports a case with a photo and syncs it over HTTP.

The accounts: 张主任 (指挥中心, the command centre, all grids), 电信维修 (专业部门, a
department), 网格员1 (the grid worker of T.00 who reports, and so confirms on
site), 网格员2 (grid T.01 only), 王评估 (第三方, the evaluator).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from support import street as st
from wangge.app import accounts
from wangge.core import casework
from wangge.core.models import Case, Household
from wangge.sync.attachments import BlobStore
from wangge.sync.transport.client import MasterClient
from wangge.sync.transport.fieldwork import tablet_session

PASSWORD = "correct horse 9"
ACCOUNTS = {"张主任": ("指挥中心", None), "电信维修": ("专业部门", None), "网格员1": ("网格员", "T.00"),
            "网格员2": ("网格员", "T.01"), "王评估": ("第三方", None)}


def photo_bytes(colour: tuple[int, int, int] = (200, 60, 40)) -> bytes:
    """A small real PNG, made without an imaging library."""
    import struct
    import zlib

    width = height = 8
    raw = b"".join(b"\x00" + bytes(colour) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@dataclass
class Office:
    street: st.Street
    app: object  # the ASGI app `wangge serve` runs: sync endpoints and the console beside them
    blobs: BlobStore
    tablet: object = None  # the reporting worker's tablet, once `report_from_tablet` made it

    @property
    def store(self):
        return self.street.store


def office(folder: Path, target: str | None = None) -> Office:
    """A TEDA street master (an SQLite file in ``folder``, or at ``target``, e.g. a PostgreSQL
    URL) with the office accounts, and its served app."""
    street = st.street(folder) if target is None else _street_at(target, folder)
    for name, (role, grid) in ACCOUNTS.items():
        accounts.add(street.store, name, role, PASSWORD, grid=grid)
    return Office(street, *served(street))


def served(street: st.Street):
    """The app `wangge serve` runs over the street's master (sync endpoints, then the console at /),
    and the photo store they share."""
    from wangge.app.office import Office as AppOffice
    from wangge.sync.transport.fieldwork import installed_rules, protocol_exchange
    from wangge.sync.identity import store_keys
    from wangge.sync.office import Office as SyncOffice
    from wangge.web.console import console_mount
    from wangge.web.server import master_app

    blobs = BlobStore(street.folder / "files" / "blobs")
    office = SyncOffice(street.store, protocol_exchange(street.store, installed_rules(street.store)),
                        public_keys=store_keys(street.store).public)
    console = console_mount(AppOffice(street.store), blobs=blobs)
    return master_app(office, street.folder / "files", blobs=blobs, mounts=[console]), blobs


def _street_at(target: str, folder: Path) -> st.Street:
    """`support.street.street`'s street, with its master at ``target``."""
    from wangge import rulesets
    from wangge.core import store
    from wangge.sync.log import tables

    compiled = rulesets.load("teda")
    master = store.init(target, "master", extra_migrations=tables.MIGRATIONS)
    with master.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, compiled)
        top = rec.insert("grid_cell", {"code": "T", "level": "社区", "name": "泰丰"})
        cells = rec.insert_many("grid_cell", [{"code": f"T.{n:02d}", "level": "网格", "name": f"{n + 1}网格",
                                               "upper_id": top} for n in range(2)])
        people = rec.insert_many("worker", [{"name": f"网格员{n + 1}", "role": "网格员"} for n in range(2)])
        rec.insert_many("assignment", [{"worker_id": w, "grid_id": g} for w, g in zip(people, cells)])
    return st.Street(master, compiled, folder, list(cells), list(people))


def report_at_office(built: Office, text: str, n: int = 0, moves: tuple[tuple[str, str, tuple], ...] = ()) -> str:
    """A case reported in grid ``n`` and moved to 立案 (a hotline clerk typing it in, say), then
    moved on by ``moves`` ((move, role, evidence), ...); returns its number."""
    street = built.street
    with street.store.write(actor="office") as rec:
        reported = casework.report_case(rec, street.ruleset, item="0103", grid_id=street.grids[n], channel="巡查",
                                        reporter_id=street.workers[n], at=st.PATROL, description=text, photos=["sha256:p"])
        steps = (("上报", "网格员", ("photo",)),) + tuple(moves)
        for move, role, evidence in steps:
            casework.move_case(rec, street.ruleset, reported.case_id, move, role=role, at=st.PATROL,
                               actor_id=street.workers[n], evidence=evidence)
    return reported.number


def report_from_tablet(built: Office, url: str, text: str = "电信通讯箱破损,电线裸露", n: int = 0) -> str:
    """Grid ``n``'s worker reports a case with a photo on a tablet, moves it to 立案 there, and
    syncs it (photo included) over HTTP; returns the case's number."""
    street = built.street
    tablet = st.tablet(street, url, n)
    photos = BlobStore(street.folder / f"tablet{n}.photos")
    with MasterClient(url, sleep=lambda s: None) as client:
        tablet_session(tablet, client)  # the first sync brings the worker's grids
    data = photo_bytes()
    sha = photos.put(data)
    with tablet.write(actor=street.workers[n]) as rec:
        reported = casework.report_case(rec, street.ruleset, item="0103", grid_id=street.grids[n], channel="巡查",
                                        reporter_id=street.workers[n], at=st.PATROL, description=text, photos=[sha])
        rec.insert("attachment", {"sha256": sha, "size": len(data), "media_type": "image/png",
                                  "case_id": reported.case_id, "grid_id": street.grids[n], "name": "现场照片.png"})
        casework.move_case(rec, street.ruleset, reported.case_id, "上报", role="网格员", actor_id=street.workers[n],
                           at=st.PATROL + timedelta(minutes=30), evidence=["photo"])
    with MasterClient(url, sleep=lambda s: None) as client:
        tablet_session(tablet, client, photos=photos)
    with street.store.read() as conn:
        number = conn.execute(select(Case.__table__.c.number).where(Case.__table__.c.id == reported.case_id)).scalar()
    built.tablet = tablet
    return number


def critical_conflict(built: Office, url: str) -> None:
    """A household's head (a critical field) edited on the tablet and at the office: queued for review."""
    street = built.street
    with street.store.write(actor="office") as rec:
        home = rec.insert("household", {"grid_id": street.grids[0], "address": "泰丰里3-2-301", "head_name": "赵"})
    tablet = built.tablet
    with MasterClient(url, sleep=lambda s: None) as client:
        tablet_session(tablet, client)
    with tablet.write(actor=street.workers[0]) as rec:
        rec.update("household", home, {"head_name": "赵建国"})
    with street.store.write(actor="张主任") as rec:
        rec.update("household", home, {"head_name": "赵建华"})
    with MasterClient(url, sleep=lambda s: None) as client:
        tablet_session(tablet, client)


def xlsx_rows(data: bytes) -> list[tuple]:
    from openpyxl import load_workbook

    return list(load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True))


def household_head(built: Office) -> str:
    with built.store.read() as conn:
        return conn.execute(select(Household.__table__.c.head_name)).scalar()
