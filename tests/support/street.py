"""A street master on the real sync protocol, and tablets that enroll with it over HTTP.

Shared by the transport tests: the master runs `MasterSync` behind `Office`
exactly as `wangge serve` does, and tablets run `DeviceSync` through
`tablet_session` exactly as `wangge sync` does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from wangge import rulesets
from wangge.app import stores
from wangge.core import casework, store
from wangge.core.models import Case
from wangge.core.ruleset import Ruleset
from wangge.sync import enrollment
from wangge.sync.transport.client import MasterClient
from wangge.sync.transport.fieldwork import installed_rules, protocol_exchange, tablet_session
from wangge.sync.identity import store_keys
from wangge.sync.office import Office
from wangge.web.server import MasterApp, master_app
from wangge.sync.device.tablet import enrollment_request

CST = timezone(timedelta(hours=8))
PATROL = datetime(2026, 10, 13, 10, 0, tzinfo=CST)


@dataclass
class Street:
    """A master store with one community of ``len(grids)`` grids, one worker per grid."""

    store: store.Store
    ruleset: Ruleset
    folder: Path
    grids: list[str] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)

    def app(self) -> MasterApp:
        """The master's ASGI app, as `wangge serve` builds it."""
        office = Office(self.store, protocol_exchange(self.store, installed_rules(self.store)),
                        public_keys=store_keys(self.store).public)
        return master_app(office, self.folder / "files")

    def report(self, s: store.Store, n: int, text: str, worker: int | None = None, item: str = "0103") -> None:
        """Record a patrol case in grid ``n`` on store ``s`` (the master or a tablet)."""
        with s.write(actor=self.workers[n]) as rec:
            casework.report_case(rec, self.ruleset, item=item, grid_id=self.grids[n], channel="巡查",
                                 reporter_id=self.workers[n if worker is None else worker], at=PATROL,
                                 description=text, photos=["sha256:p"])


def street(folder: Path, grids: int = 2, ruleset: str = "teda") -> Street:
    compiled = rulesets.load(ruleset)
    master = stores.create_master(str(folder / "master.db"))
    with master.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, compiled)
        top = rec.insert("grid_cell", {"code": "T", "level": "社区", "name": "泰丰"})
        cells = rec.insert_many("grid_cell", [{"code": f"T.{n:02d}", "level": "网格", "name": f"{n + 1}网格",
                                               "upper_id": top} for n in range(grids)])
        people = rec.insert_many("worker", [{"name": f"网格员{n + 1}", "role": "网格员"} for n in range(grids)])
        rec.insert_many("assignment", [{"worker_id": w, "grid_id": g} for w, g in zip(people, cells)])
    return Street(master, compiled, folder, list(cells), list(people))


def tablet(street_: Street, url: str, n: int, *, encrypted: bool = False) -> store.Store:
    """A tablet for grid ``n``'s worker, enrolled over HTTP and approved at the office."""
    path = street_.folder / f"tablet{n}.db"
    if encrypted:
        opened = stores.create_tablet(path, "passphrase", scrypt_n=2**10)
    else:
        opened = stores.create(str(path), "device")
    with MasterClient(url) as client:
        client.enroll(enrollment_request(opened, f"tablet{n}").__dict__)
    with street_.store.write(actor="office") as rec:
        enrollment.approve(rec, opened.device_id, street_.workers[n])
    return opened


def sync(tablet_: store.Store, url: str, **options) -> str:
    with MasterClient(url, sleep=lambda s: None, **options) as client:
        return tablet_session(tablet_, client)


def cases(s: store.Store) -> list[str]:
    with s.read() as conn:
        return sorted(conn.execute(select(Case.__table__.c.description)).scalars())
