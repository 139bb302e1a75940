"""A master and enrolled tablets on real SQLite files, wired by an in-memory link."""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import pytest

from wangge.app import stores
from wangge.core import store
from wangge.core.ruleset import Lifecycle, Role, Ruleset, State, Transition
from wangge.sync import enrollment
from wangge.sync.keys import DeviceKeys
from wangge.sync.device.exchange import DeviceSync
from wangge.sync.master.exchange import MasterSync
from wangge.sync.protocol import Peer

GRIDS = {"g1": "01.01", "g2": "01.02", "g3": "01.03"}


def small_ruleset() -> Ruleset:
    states = tuple(State(code=c, initial=(c == "发现"), final=(c == "结案")) for c in ("发现", "立案", "处置", "结案"))
    moves = (
        Transition(code="立案", sources=("发现",), target="立案", roles=("网格员", "主任")),
        Transition(code="处置", sources=("立案",), target="处置", roles=("网格员", "主任")),
        Transition(code="结案", sources=("处置",), target="结案", roles=("主任",), office=True),
    )
    return Ruleset(name="t", roles=(Role(code="网格员"), Role(code="主任", office=True)),
                   lifecycle=Lifecycle(states=states, transitions=moves))


class Clock:
    """A test clock the stores read through ``now_ms``: advances 1 ms per reading."""

    def __init__(self, start: int | None = None):
        # Near the real time, so stores opened by the command line (real clock) agree within the drift bound.
        self.ticks = itertools.count(start or int(time.time() * 1000))

    def __call__(self) -> int:
        return next(self.ticks)


@dataclass
class Tablet:
    name: str
    store: store.Store
    keys: DeviceKeys
    sync: DeviceSync
    worker: str


class Net:
    """One master and its tablets. ``sync(tablet)`` runs a full exchange through bytes only."""

    def __init__(self, folder, ruleset=None, master_at=None):
        self.folder, self.clock, self.ruleset = folder, Clock(), ruleset
        self.master_keys = DeviceKeys.generate()
        self.master_store = stores.create_master(master_at or str(folder / "master.db"), device_id="master",
                                                 now_ms=self.clock)
        self.master = MasterSync(self.master_store, self.master_keys, ruleset=ruleset)
        self.tablets: dict[str, Tablet] = {}
        with self.master_store.write(actor="office") as rec:
            rec.insert("grid_cell", {"id": "root", "code": "01", "level": "community", "name": "社区"})
            for gid, code in GRIDS.items():
                rec.insert("grid_cell", {"id": gid, "code": code, "level": "grid", "name": gid, "upper_id": "root"})

    def add_tablet(self, name: str, grids=("g1",), role: str = "网格员") -> Tablet:
        keys = DeviceKeys.generate()
        device_id = "dev-" + name
        with self.master_store.write(actor="office") as rec:
            worker = rec.insert("worker", {"id": "w-" + name, "name": name, "role": role})
            for grid in grids:
                rec.insert("assignment", {"id": f"a-{name}-{grid}", "worker_id": worker, "grid_id": grid})
            request = enrollment.make_request(device_id, name, keys.public.sign, keys.public.box, keys.sign)
            enrollment.submit(rec, request)
            enrollment.approve(rec, device_id, worker)
        tablet_store = stores.create(str(self.folder / f"{name}.db"), "device", device_id=device_id,
                                     now_ms=self.clock)
        sync = DeviceSync(tablet_store, keys, Peer("master", self.master_keys.public))
        tablet = Tablet(name, tablet_store, keys, sync, worker)
        self.tablets[name] = tablet
        return tablet

    def sync(self, tablet: Tablet, rounds: int = 3):
        for _ in range(rounds):
            reply, _ = self.master.exchange(tablet.sync.make_push())
            result = tablet.sync.accept_reply(reply)
            if not result.again:
                return result
        from wangge.sync.log import scope

        with tablet.store.read() as conn:
            mine = scope.checksums(conn, None)
        with self.master_store.read() as conn:
            theirs = scope.checksums(conn, scope.worker_grids(conn, tablet.worker))
        differ = sorted(e for e in mine if mine[e] != theirs[e])
        raise AssertionError(f"{tablet.name} still differs from the master after {rounds} rounds in {differ}")

    def reopen_master(self):
        """Open the master's store again (after a command line closed it)."""
        self.master_store = stores.open_master(str(self.folder / "master.db"), now_ms=self.clock)
        self.master = MasterSync(self.master_store, self.master_keys, ruleset=self.ruleset)

    def close(self):
        for t in self.tablets.values():
            t.store.close()
        self.master_store.close()


@pytest.fixture
def net(tmp_path):
    n = Net(tmp_path, small_ruleset())
    yield n
    n.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_net(request, tmp_path):
    """A net whose master is an SQLite file, then a PostgreSQL schema."""
    at = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    n = Net(tmp_path, small_ruleset(), master_at=at)
    yield n
    n.close()
