"""A street master on loopback and an enrolled, encrypted tablet, for the field app's tests.

The master is TEDA's street office exactly as `wangge serve` runs it; the
tablet enrolls over HTTP, is approved for the grid worker 赵巧珍 and syncs
once, as a worker's tablet would be handed out.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from wangge import rulesets
from wangge.app import stores
from wangge.core import casework
from wangge.core.store import Store
from wangge.core.ruleset import Ruleset
from wangge.sync import enrollment
from wangge.sync.transport.client import MasterClient
from wangge.sync.transport.fieldwork import installed_rules, protocol_exchange
from wangge.sync.identity import store_keys
from wangge.sync.office import Office
# The one place these tests name the master's HTTP layer (it moves to wangge.web.server with Starlette).
from wangge.web.server import MasterApp, master_app, running  # noqa: F401 - running is the tests' server
from wangge.sync.device.tablet import enrollment_request

PASSPHRASE = "网格员口令 field-test"
#: A cheap scrypt: the tests unlock many times.
TEST_SCRYPT_N = 2**10


@dataclass
class Office_:
    """The street office: its store, ruleset and the ids the tests name."""

    store: Store
    ruleset: Ruleset
    folder: Path
    ids: dict

    def app(self) -> MasterApp:
        office = Office(self.store, protocol_exchange(self.store, installed_rules(self.store)),
                        public_keys=store_keys(self.store).public)
        return master_app(office, self.folder / "master-files")


def street_office(folder: Path, ruleset: Ruleset | None = None, households: int = 6, role: str = "网格员") -> Office_:
    """TEDA's street (or ``ruleset``'s): two grids of ``households`` each, 赵巧珍 in grid 1 as ``role``,
    李明 in grid 2, the system centre and a department."""
    ruleset = ruleset or rulesets.load("teda")
    master = stores.create_master(str(folder / "master.db"))
    with master.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        ids = {"area": rec.insert("grid_cell", {"code": "TD", "level": "区", "name": "泰达开发区"})}
        ids["street"] = rec.insert("grid_cell", {"code": "TD.1", "level": "街道", "name": "泰达街道", "upper_id": ids["area"]})
        ids["taifeng"] = rec.insert("grid_cell", {"code": "TD.1.TF", "level": "社区", "name": "泰丰社区",
                                                  "upper_id": ids["street"]})
        for n in (1, 2):
            ids[f"grid{n}"] = rec.insert("grid_cell", {"code": f"TD.1.TF.{n:02d}", "level": "网格",
                                                       "name": f"泰丰{n}网格", "upper_id": ids["taifeng"], "grade": "A"})
            ids[f"building{n}"] = rec.insert("building", {"grid_id": ids[f"grid{n}"], "code": f"{n}号楼", "name": f"泰丰{n}号楼"})
            ids[f"homes{n}"] = rec.insert_many("household", [
                {"grid_id": ids[f"grid{n}"], "building_id": ids[f"building{n}"], "address": f"{n}号楼{unit:02d}室",
                 "户主": f"住户{n}-{unit}", "人口": 3} for unit in range(1, households + 1)])
        for name, as_, grid in (("赵巧珍", role, "grid1"), ("李明", "网格员", "grid2"),
                                ("系统中心", "指挥中心", "street"), ("电信维修", "专业部门", "area")):
            ids[name] = rec.insert("worker", {"name": name, "role": as_})
            rec.insert("assignment", {"worker_id": ids[name], "grid_id": ids[grid]})
    return Office_(master, ruleset, folder, ids)


def enrolled_tablet(office: Office_, url: str, name: str = "zhao-tablet", worker: str = "赵巧珍") -> Path:
    """Make an encrypted tablet, enroll it over HTTP and approve it for ``worker``; return its path (closed)."""
    path = office.folder / f"{name}.db"
    tablet = stores.create_tablet(path, PASSPHRASE, scrypt_n=TEST_SCRYPT_N)
    with tablet:
        with MasterClient(url) as client:
            client.enroll(enrollment_request(tablet, name).__dict__)
        with office.store.write(actor="office") as rec:
            enrollment.approve(rec, tablet.device_id, worker)
    return path


def png(width: int = 64, height: int = 48, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A small, valid PNG of one colour: a 'photo' the browser really draws."""
    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
