"""Convergence: random edits, moves and appends on a master and three tablets, with bundles
delivered in any order, duplicated, dropped and re-sent. After a final full sync every tablet
equals the master within its scope, no acknowledged edit is lost (an update may travel folded
into a later update of its row) and none is applied twice."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import select, text

from wangge.core.capture import table_of
from wangge.core.errors import SyncError
from wangge.sync import scope

from .conftest import Net, small_ruleset

TABLETS = {"a": ("g1",), "b": ("g1", "g2"), "c": ("g2",)}
FIELDS = ("address", "head_name", "pets", "income")


def snapshot(s, grids):
    """Every in-scope row per entity, as plain sorted data; ``grids=None`` means all rows held."""
    out = {}
    with s.read() as conn:
        for entity in scope.synced_entities():
            table = table_of(entity)
            ids = set(conn.execute(scope.rows_in_scope(conn, entity, grids)).scalars())
            found = conn.execute(select(table).where(table.c.id.in_(ids))).mappings() if ids else []
            out[entity] = sorted(json.dumps(dict(r), sort_keys=True, default=str) for r in found)
    return out


def local(target, sql, **params):
    with target.read() as conn:
        return conn.execute(text(sql), params).all()


def _edits(target, where: str, **params) -> set[tuple]:
    """(op id, device, row id, field names) of the ops in ``target``'s log that ``where`` selects."""
    rows = local(target, f"SELECT op_id, device, entity_id, fields FROM op {where}", **params)
    return {(op_id, device, row, frozenset(json.loads(fields))) for op_id, device, row, fields in rows}


def _missing_on(master, edits: set[tuple]) -> list[tuple]:
    """Edits the master's log lacks, as themselves or folded into a later update of the same row by the same device."""
    held = _edits(master, "")
    ids = {op_id for op_id, *_ in held}
    later: dict[tuple, list] = {}
    for op_id, device, row, names in held:
        later.setdefault((device, row), []).append((op_id, names))
    return [(op_id, device, row, names) for op_id, device, row, names in edits
            if op_id not in ids and not any(other >= op_id and names <= kept for other, kept in later.get((device, row), []))]


class Convergence(RuleBasedStateMachine):
    @initialize()
    def start(self):
        import tempfile
        from pathlib import Path

        self.folder = tempfile.TemporaryDirectory()
        self.net = Net(Path(self.folder.name), small_ruleset())
        for name, grids in TABLETS.items():
            self.net.sync(self.net.add_tablet(name, grids=grids))
        with self.net.master_store.write(actor="office") as rec:
            rec.insert("worker", {"id": "boss", "name": "主任", "role": "主任"})
        self.pushes: list[tuple[str, bytes]] = []
        self.replies: list[tuple[str, bytes]] = []
        self.created: dict[str, set[str]] = {name: set() for name in TABLETS}
        self.acked: set[str] = set()

    def teardown(self):
        if hasattr(self, "net"):
            self.net.close()
            self.folder.cleanup()

    def tablet(self, name):
        return self.net.tablets[name]

    @rule(name=st.sampled_from(sorted(TABLETS)), which=st.integers(0, 1), pets=st.integers(0, 5))
    def insert_household(self, name, which, pets):
        grids = TABLETS[name]
        t = self.tablet(name)
        if not local(t.store, "SELECT id FROM grid_cell"):
            return  # no grid tree yet: the tablet has not synced once
        with t.store.write(actor=t.worker) as rec:
            rec.insert("household", {"grid_id": grids[which % len(grids)], "address": f"{name}-{pets}", "pets": pets})

    @rule(name=st.sampled_from(sorted(TABLETS)), pick=st.integers(0, 50), field=st.sampled_from(FIELDS),
          value=st.integers(0, 9))
    def update_household(self, name, pick, field, value):
        t = self.tablet(name)
        ids = [r[0] for r in local(t.store, "SELECT id FROM household WHERE deleted IS NULL ORDER BY id")]
        if ids:
            with t.store.write(actor=t.worker) as rec:
                rec.update("household", ids[pick % len(ids)], {field: value if field in ("pets", "income") else f"v{value}"})

    @rule(pick=st.integers(0, 50), value=st.integers(0, 9))
    def office_edit(self, pick, value):
        s = self.net.master_store
        ids = [r[0] for r in local(s, "SELECT id FROM household WHERE deleted IS NULL ORDER BY id")]
        if ids:
            with s.write(actor="office") as rec:
                rec.update("household", ids[pick % len(ids)], {"address": f"office-{value}"})

    @rule(name=st.sampled_from(sorted(TABLETS)), pick=st.integers(0, 50))
    def delete_household(self, name, pick):
        t = self.tablet(name)
        ids = [r[0] for r in local(t.store, "SELECT id FROM household WHERE deleted IS NULL ORDER BY id")]
        if ids:
            with t.store.write(actor=t.worker) as rec:
                rec.delete("household", ids[pick % len(ids)])

    @rule(name=st.sampled_from(sorted(TABLETS)), pick=st.integers(0, 50))
    def visit(self, name, pick):
        t = self.tablet(name)
        rows = local(t.store, "SELECT id, grid_id FROM household ORDER BY id")
        if rows:
            hid, grid = rows[pick % len(rows)]
            with t.store.write(actor=t.worker) as rec:
                rec.insert("visit", {"household_id": hid, "grid_id": grid, "worker_id": t.worker, "minutes": pick})

    @rule(name=st.sampled_from(sorted(TABLETS)))
    def report_case(self, name):
        t = self.tablet(name)
        if local(t.store, "SELECT id FROM grid_cell"):
            with t.store.write(actor=t.worker) as rec:
                rec.insert("case", {"item_code": "x", "grid_id": TABLETS[name][0]})

    @rule(name=st.sampled_from(sorted(TABLETS)), pick=st.integers(0, 50), move=st.sampled_from(["立案", "处置"]))
    def move_case(self, name, pick, move):
        t = self.tablet(name)
        ids = [r[0] for r in local(t.store, "SELECT id FROM cases ORDER BY id")]
        if ids:
            with t.store.write(actor=t.worker) as rec:
                rec.insert("case_event", {"case_id": ids[pick % len(ids)], "move": move, "role": "网格员"})

    @rule(pick=st.integers(0, 50))
    def office_closes(self, pick):
        s = self.net.master_store
        ids = [r[0] for r in local(s, "SELECT id FROM cases ORDER BY id")]
        if ids:
            with s.write(actor="boss") as rec:
                rec.insert("case_event", {"case_id": ids[pick % len(ids)], "move": "结案", "role": "主任"})

    @rule(name=st.sampled_from(sorted(TABLETS)))
    def push(self, name):
        self.pushes.append((name, self.tablet(name).sync.make_push()))

    @precondition(lambda self: self.pushes)
    @rule(pick=st.integers(0, 50), keep=st.booleans())
    def deliver_push(self, pick, keep):
        name, data = self.pushes[pick % len(self.pushes)]
        if not keep:
            self.pushes.remove((name, data))
        try:
            reply, _ = self.net.master.exchange(data)
        except SyncError as exc:
            assert "replay" in str(exc)
            return
        self.replies.append((name, reply))

    @precondition(lambda self: self.replies)
    @rule(pick=st.integers(0, 50), keep=st.booleans())
    def deliver_reply(self, pick, keep):
        name, data = self.replies[pick % len(self.replies)]
        if not keep:
            self.replies.remove((name, data))
        t = self.tablet(name)
        try:
            t.sync.accept_reply(data)
        except SyncError as exc:
            assert "expected a reply to push" in str(exc) or "acknowledges bundle" in str(exc)
            return
        through = int(local(t.store, "SELECT value FROM store_meta WHERE key = 'sync.through'")[0][0])
        self.acked |= _edits(t.store, "WHERE device = :d AND seq <= :s", d=t.store.device_id, s=through)

    @precondition(lambda self: self.pushes or self.replies)
    @rule(pick=st.integers(0, 50))
    def drop(self, pick):
        queue = self.pushes if self.pushes and (pick % 2 or not self.replies) else self.replies
        queue.pop(pick % len(queue))

    @invariant()
    def acknowledged_ops_are_on_the_master(self):
        if hasattr(self, "net") and self.acked:
            assert not _missing_on(self.net.master_store, self.acked)

    def check_final(self):
        for _ in range(2):
            for name in TABLETS:
                self.net.sync(self.tablet(name))
        master_visits = local(self.net.master_store, "SELECT COUNT(*), COUNT(DISTINCT id) FROM visit")[0]
        assert master_visits[0] == master_visits[1]
        append_ops = local(self.net.master_store, "SELECT COUNT(*) FROM op WHERE entity = 'visit'")[0][0]
        assert append_ops == master_visits[0]  # every visit once, no op applied twice
        for name, grids in TABLETS.items():
            t = self.tablet(name)
            own = _edits(t.store, "WHERE device = :d", d=t.store.device_id)
            assert not _missing_on(self.net.master_store, own), name
            assert snapshot(t.store, None) == snapshot(self.net.master_store, list(grids)), name


def test_convergence():
    class Final(Convergence):
        def teardown(self):
            if hasattr(self, "net"):
                self.check_final()
            super().teardown()

    Final.TestCase.settings = settings(max_examples=12, stateful_step_count=30, deadline=None,
                                       suppress_health_check=list(HealthCheck),
                                       # Shrinking a stateful run of real databases takes minutes.
                                       phases=[Phase.explicit, Phase.reuse, Phase.generate])
    Final.TestCase().runTest()
