"""Convergence: random edits, moves and appends on a master and three tablets, with bundles
delivered in any order, duplicated, dropped and re-sent, while the office reassigns workers to
other grids and back, moves households between grids and collects tombstones, time passes (a
tablet away for a month comes back below the collection horizon) and a tablet's clock runs years
ahead for a while. After a final full sync every tablet equals the master within the scope its
worker has then, and holds nothing outside it; no edit a tablet recorded is lost (an update may
travel folded into a later update of its row, the master may hold it in quarantine, or its row
may have been deleted and collected) and none is applied twice.

The plain tests at the end replay, cut down, what the machine found, each fixed since and kept
so that it stays fixed. Set WANGGE_CONVERGENCE_EXAMPLES and WANGGE_CONVERGENCE_STEPS
for a longer search than the default run."""
from __future__ import annotations

import hashlib
import itertools
import json
import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import select, text

from wangge.core.capture import table_of
from wangge.core.hlc import wall_of
from wangge.sync import protocol
from wangge.sync.master import exchange as master_exchange
from wangge.sync.log import scope
from wangge.sync.master import tombstones

from .conftest import Net, small_ruleset
from .test_quarantine import YEAR_2036_MS, _jump_to_2036
from .test_left_scope import _synced_household
from .test_session import rows

#: Each tablet's grids at enrollment; the office changes them as the run goes.
TABLETS = {"a": ("g1",), "b": ("g1", "g2"), "c": ("g2",)}
GRIDS = ("g1", "g2", "g3")
FIELDS = ("address", "head_name", "pets", "income")
#: Household fields that are not critical, so a tablet folds their unsent updates into one op.
FOLDABLE = ("pets", "income")
DAY_MS = 24 * 3600 * 1000


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


def meta(target, key: str, default: str = "0") -> str:
    found = local(target, "SELECT value FROM store_meta WHERE key = :k", k=key)
    return found[0][0] if found else default


def _edits(target, where: str, **params) -> set[tuple]:
    """(op id, device, row id, field names) of the ops in ``target``'s log that ``where`` selects."""
    found = local(target, f"SELECT op_id, device, entity_id, fields FROM op {where}", **params)
    return {(op_id, device, row, frozenset(json.loads(fields))) for op_id, device, row, fields in found}


def _held(master) -> set[tuple]:
    """The ops the master keeps in quarantine, as `_edits` gives them: acknowledged, not applied."""
    found = local(master, "SELECT op FROM sync_quarantine")
    ops = [op if isinstance(op, list) else json.loads(op) for (op,) in found]
    return {(op[0], op[5], op[2], frozenset(op[7])) for op in ops}


def _missing_on(master, edits: set[tuple]) -> list[tuple]:
    """Edits the master has neither applied (as themselves, or folded into a later update of the
    same row by the same device) nor held, leaving aside rows whose tombstones it collected."""
    known = _edits(master, "") | _held(master)
    ids = {op_id for op_id, *_ in known}
    collected = {row for (row,) in local(master, "SELECT entity_id FROM sync_collected")}
    later: dict[tuple, list] = {}
    for op_id, device, row, names in known:
        later.setdefault((device, row), []).append((op_id, names))
    return [(op_id, device, row, names) for op_id, device, row, names in edits
            if op_id not in ids and row not in collected
            and not any(other >= op_id and names <= kept for other, kept in later.get((device, row), []))]


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
        # (tablet, bundle, what the tablet had when it made the push)
        self.pushes: list[tuple[str, bytes, dict]] = []
        self.replies: list[tuple[str, bytes, dict]] = []
        self.horizons: dict[bytes, int] = {}  # the collection horizon when the master first answered a push
        self.acked: set[tuple] = set()
        self.recorded: dict[str, set[tuple]] = {name: set() for name in TABLETS}
        self.jumped = False
        self.months = 0

    def teardown(self):
        if hasattr(self, "net"):
            self.net.close()
            self.folder.cleanup()

    def tablet(self, name):
        return self.net.tablets[name]

    def believed(self, name) -> list[str]:
        """The grids the tablet thinks its worker has (its copy of the assignments): where the
        worker records new households and cases."""
        t = self.tablet(name)
        with t.store.read() as conn:
            return sorted(scope.worker_grids(conn, t.worker))

    def assigned(self, name) -> list[str]:
        """The grids the worker has at the office now."""
        with self.net.master_store.read() as conn:
            return sorted(scope.worker_grids(conn, self.tablet(name).worker))

    def households(self, name, live=True) -> list[tuple[str, str]]:
        where = "WHERE deleted IS NULL" if live else ""
        found = local(self.tablet(name).store, f"SELECT id, grid_id FROM household {where} ORDER BY id")
        return [tuple(r) for r in found]

    def own_ops(self, name) -> dict[str, int]:
        t = self.tablet(name)
        return dict(local(t.store, "SELECT op_id, seq FROM op WHERE device = :d", d=t.store.device_id))

    def recorded_on(self, name) -> None:
        t = self.tablet(name)
        self.recorded[name] |= _edits(t.store, "WHERE device = :d", d=t.store.device_id)

    # -- the tablets ------------------------------------------------------------------------------

    @rule(name=st.sampled_from(sorted(TABLETS)), which=st.integers(0, 2), pets=st.integers(0, 5))
    def insert_household(self, name, which, pets):
        grids = self.believed(name)
        if grids:
            t = self.tablet(name)
            with t.store.write(actor=t.worker) as rec:
                rec.insert("household", {"grid_id": grids[which % len(grids)], "address": f"{name}-{pets}",
                                         "pets": pets})
            self.recorded_on(name)

    @rule(name=st.sampled_from(sorted(TABLETS)), pick=st.integers(0, 50), field=st.sampled_from(FIELDS),
          value=st.integers(0, 9))
    def update_household(self, name, pick, field, value):
        self.on_household(name, pick, lambda rec, home: rec.update(
            "household", home, {field: value if field in FOLDABLE else f"v{value}"}))

    @rule(name=st.sampled_from(sorted(TABLETS)), pick=st.integers(0, 50))
    def delete_household(self, name, pick):
        self.on_household(name, pick, lambda rec, home: rec.delete("household", home))

    def on_household(self, name, pick, change) -> None:
        """``change(rec, household id)`` on one of the households the tablet shows, whether or not
        its grid is still the worker's."""
        homes = self.households(name)
        if homes:
            t = self.tablet(name)
            with t.store.write(actor=t.worker) as rec:
                change(rec, homes[pick % len(homes)][0])
            self.recorded_on(name)

    @rule(name=st.sampled_from(sorted(TABLETS)), pick=st.integers(0, 50))
    def visit(self, name, pick):
        homes = self.households(name, live=False)
        if homes:
            hid, grid = homes[pick % len(homes)]
            t = self.tablet(name)
            with t.store.write(actor=t.worker) as rec:
                rec.insert("visit", {"household_id": hid, "grid_id": grid, "worker_id": t.worker, "minutes": pick})
            self.recorded_on(name)

    @rule(name=st.sampled_from(sorted(TABLETS)), pick=st.integers(0, 50))
    def add_resident(self, name, pick):
        homes = self.households(name)
        if homes:
            hid, grid = homes[pick % len(homes)]
            t = self.tablet(name)
            with t.store.write(actor=t.worker) as rec:
                rec.insert("resident", {"household_id": hid, "grid_id": grid, "name": f"r{pick}"})
            self.recorded_on(name)

    @rule(name=st.sampled_from(sorted(TABLETS)), which=st.integers(0, 2))
    def report_case(self, name, which):
        grids, homes = self.believed(name), self.households(name)
        if grids:
            t = self.tablet(name)
            # Some about a household: they go with it when the office moves it.
            home = homes[which % len(homes)] if homes and which == 2 else (None, grids[which % len(grids)])
            with t.store.write(actor=t.worker) as rec:
                rec.insert("case", {"item_code": "x", "grid_id": home[1], "household_id": home[0]})
            self.recorded_on(name)

    @rule(name=st.sampled_from(sorted(TABLETS)), pick=st.integers(0, 50), move=st.sampled_from(["立案", "处置"]))
    def move_case(self, name, pick, move):
        t = self.tablet(name)
        ids = [r[0] for r in local(t.store, "SELECT id FROM cases ORDER BY id")]
        if ids:
            with t.store.write(actor=t.worker) as rec:
                rec.insert("case_event", {"case_id": ids[pick % len(ids)], "move": move, "role": "网格员"})
            self.recorded_on(name)

    # Once a run: everything the tablet records until a reply sets its clock back waits at the
    # office, so more jumps would leave little else to merge.
    @precondition(lambda self: not self.jumped)
    @rule(name=st.sampled_from(sorted(TABLETS)), pick=st.integers(0, 50), new=st.booleans(), pets=st.integers(0, 9))
    def clock_runs_ahead(self, name, pick, new, pets):
        """The tablet's clock jumps to 2036 for an edit; it stays there until a reply sets it back,
        so what the worker records meanwhile is stamped in 2036 too and waits at the office."""
        t = self.tablet(name)
        _jump_to_2036(t)
        self.jumped = True
        homes, grids = self.households(name), self.believed(name)
        if new and grids:
            with t.store.write(actor=t.worker) as rec:
                rec.insert("household", {"grid_id": grids[pick % len(grids)], "address": f"2036-{pets}",
                                         "pets": pets})
        elif homes:
            with t.store.write(actor=t.worker) as rec:
                rec.update("household", homes[pick % len(homes)][0], {"pets": pets})
        self.recorded_on(name)

    # -- the office -------------------------------------------------------------------------------

    @rule(pick=st.integers(0, 50), value=st.integers(0, 9))
    def office_edit(self, pick, value):
        s = self.net.master_store
        ids = [r[0] for r in local(s, "SELECT id FROM household WHERE deleted IS NULL ORDER BY id")]
        if ids:
            with s.write(actor="office") as rec:
                rec.update("household", ids[pick % len(ids)], {"address": f"office-{value}"})

    @rule(pick=st.integers(0, 50))
    def office_closes(self, pick):
        s = self.net.master_store
        ids = [r[0] for r in local(s, "SELECT id FROM cases ORDER BY id")]
        if ids:
            with s.write(actor="boss") as rec:
                rec.insert("case_event", {"case_id": ids[pick % len(ids)], "move": "结案", "role": "主任"})

    @rule(pick=st.integers(0, 50), to=st.sampled_from(GRIDS))
    def office_moves_household(self, pick, to):
        """A boundary change: a household goes to another grid with everything of it, whoever
        holds or edits it."""
        s = self.net.master_store
        homes = [i for i, g in local(s, "SELECT id, grid_id FROM household WHERE deleted IS NULL ORDER BY id")
                 if g != to]
        if homes:
            hid = homes[pick % len(homes)]
            with s.write(actor="office") as rec:
                rec.update("household", hid, {"grid_id": to})

    @rule(name=st.sampled_from(sorted(TABLETS)), grids=st.sets(st.sampled_from(GRIDS)))
    def reassign(self, name, grids):
        """The office gives the worker these grids: other ones, more, fewer, none (between two
        jobs), or the old ones back."""
        t = self.tablet(name)
        with self.net.master_store.write(actor="office") as rec:
            for grid in GRIDS:
                aid = f"a-{name}-{grid}"
                row = rec.conn.execute(text("SELECT active FROM assignment WHERE id = :i"), {"i": aid}).first()
                if grid in grids:
                    if row is None:
                        rec.insert("assignment", {"id": aid, "worker_id": t.worker, "grid_id": grid})
                    elif not row[0]:
                        rec.update("assignment", aid, {"active": True})
                elif row is not None and row[0]:
                    rec.update("assignment", aid, {"active": False})

    # Only with something to collect: a rule without arguments is drawn often, and idle it would
    # crowd out the rest.
    @precondition(lambda self: local(self.net.master_store, "SELECT 1 FROM household WHERE deleted IS NOT NULL"))
    @rule()
    def collect_tombstones(self):
        tombstones.collect(self.net.master_store)

    # Twice at most: each sends a tablet back below the horizon, more only push the clock on.
    @precondition(lambda self: self.months < 2)
    @rule(away=st.sampled_from(sorted(TABLETS)))
    def a_month_passes(self, away):
        """A month on, the other tablets sync, ``away`` does not (on a long patrol, or its pushes
        still on their way) and the office collects: it downloads afresh when it is back."""
        self.months += 1
        # Every store reads this one clock: whoever does not sync within the month is absent.
        self.net.clock.ticks = itertools.count(next(self.net.clock.ticks) + 31 * DAY_MS)
        for _ in range(2):
            for name in sorted(set(TABLETS) - {away}):
                self.full_sync(name)
        tombstones.collect(self.net.master_store)

    # -- the wire ---------------------------------------------------------------------------------

    def _push(self, name) -> tuple[bytes, dict]:
        t = self.tablet(name)
        top = max(self.own_ops(name).values(), default=0)
        cursor = int(meta(t.store, "sync.cursor"))
        return t.sync.make_push(), {"top": top, "cursor": cursor}

    def _answer(self, data: bytes, sent: dict):
        """The master's reply to a push, or None if it refuses it as a replay."""
        key = hashlib.sha256(data).digest()
        horizon = int(meta(self.net.master_store, "sync.gc_horizon"))
        try:
            reply, _ = self.net.master.exchange(data)
        except protocol.Replayed:  # an older push after a newer one, or one answered before the latest
            return None
        self.horizons.setdefault(key, horizon)  # a repeat gets the first answer again
        return reply, {**sent, "horizon": self.horizons[key]}

    def _accept(self, name, data: bytes, sent: dict):
        """The tablet takes a reply in; None if it answers another push than the one pending."""
        t = self.tablet(name)
        before = self.own_ops(name)
        try:
            result = t.sync.accept_reply(data)
        except protocol.Replayed:  # the tablet has made another push since, or took this reply in already
            return None
        if sent["cursor"] < sent["horizon"]:
            # Away longer than the collection allows: its work applied, it downloads afresh.
            assert result.reset, name
        # What the worker recorded while the push travelled survives a download afresh or an
        # eviction, to go with the next push.
        after = self.own_ops(name)
        lost = sorted(op_id for op_id, seq in before.items() if seq > sent["top"] and op_id not in after)
        assert not lost, (name, lost)
        through = int(meta(t.store, "sync.through"))
        self.acked |= _edits(t.store, "WHERE device = :d AND seq <= :s", d=t.store.device_id, s=through)
        return result

    def full_sync(self, name, rounds: int = 3) -> None:
        """Exchanges over a good line until the checksums agree, as `Net.sync` does."""
        for _ in range(rounds):
            data, sent = self._push(name)
            answered = self._answer(data, sent)
            assert answered is not None, name  # a fresh push is never a replay
            result = self._accept(name, *answered)
            assert result is not None, name
            if not result.again:
                return
        raise AssertionError(f"{name} still differs from the master after {rounds} rounds")

    @rule(name=st.sampled_from(sorted(TABLETS)))
    def push(self, name):
        self.pushes.append((name, *self._push(name)))

    @precondition(lambda self: self.pushes)
    @rule(pick=st.integers(0, 50), keep=st.booleans())
    def deliver_push(self, pick, keep):
        name, data, sent = self.pushes[pick % len(self.pushes)]
        if not keep:
            self.pushes.remove((name, data, sent))
        answered = self._answer(data, sent)
        if answered:
            self.replies.append((name, *answered))

    @precondition(lambda self: self.replies)
    @rule(pick=st.integers(0, 50), keep=st.booleans())
    def deliver_reply(self, pick, keep):
        name, data, sent = self.replies[pick % len(self.replies)]
        if not keep:
            self.replies.remove((name, data, sent))
        self._accept(name, data, sent)

    @rule(name=st.sampled_from(sorted(TABLETS)))
    def sync(self, name):
        self.full_sync(name)

    @rule()
    def everyone_syncs(self):
        # Twice, so each acknowledges what the others sent: the collection horizon moves on.
        for _ in range(2):
            for name in sorted(TABLETS):
                self.full_sync(name)

    @precondition(lambda self: self.pushes or self.replies)
    @rule(pick=st.integers(0, 50))
    def drop(self, pick):
        queue = self.pushes if self.pushes and (pick % 2 or not self.replies) else self.replies
        queue.pop(pick % len(queue))

    @invariant()
    def acknowledged_ops_are_on_the_master(self):
        if hasattr(self, "net") and self.acked:
            missing = _missing_on(self.net.master_store, self.acked)
            assert not missing, missing

    def check_final(self):
        for _ in range(2):
            for name in TABLETS:
                self.full_sync(name)
        master = self.net.master_store
        # Only what the 2036 clock stamped waits for its clock: the tablet's honest edits do not.
        for (op,) in local(master, "SELECT op FROM sync_quarantine WHERE reason LIKE 'stamped %'"):
            op = op if isinstance(op, list) else json.loads(op)
            assert wall_of(max([op[3], *(op[10] if len(op) > 10 else {}).values()])) >= YEAR_2036_MS, op
        for entity, table in (("visit", "visit"), ("case_event", "case_event")):
            count, distinct = local(master, f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {table}")[0]
            ops = local(master, "SELECT COUNT(*) FROM op WHERE entity = :e", e=entity)[0][0]
            assert count == distinct == ops, entity  # every append once, no op applied twice
        for name in TABLETS:
            t = self.tablet(name)
            through = int(meta(t.store, "sync.through"))
            assert max(self.own_ops(name).values(), default=0) <= through, name  # nothing left to send
            missing = _missing_on(master, self.recorded[name] | _edits(t.store, "WHERE device = :d",
                                                                          d=t.store.device_id))
            assert not missing, (name, missing)
            grids = self.assigned(name)
            assert snapshot(t.store, None) == snapshot(master, grids), (name, grids)
            # Evicted rows leave with their ops: the log holds nothing of a grid left behind. But
            # for the tablet's own edits the master holds, which stay once pushed
            # (test_an_edit_kept_through_an_eviction_leaves_the_tablet_once_pushed).
            waiting = {row for _, device, row, _ in _held(master) if device == t.store.device_id}
            for entity in scope.SCOPED:
                kept = {r[0] for r in local(t.store, f"SELECT id FROM {table_of(entity).name}")}
                logged = {r[0] for r in local(t.store, "SELECT entity_id FROM op WHERE entity = :e", e=entity)}
                assert logged <= kept | waiting, (name, entity, logged - kept - waiting)


def test_convergence():
    class Final(Convergence):
        def teardown(self):
            if hasattr(self, "net"):
                self.check_final()
            super().teardown()

    Final.TestCase.settings = settings(max_examples=int(os.environ.get("WANGGE_CONVERGENCE_EXAMPLES", 15)),
                                       stateful_step_count=int(os.environ.get("WANGGE_CONVERGENCE_STEPS", 50)),
                                       deadline=None, suppress_health_check=list(HealthCheck),
                                       # Shrinking a stateful run of real databases takes minutes.
                                       phases=[Phase.explicit, Phase.reuse, Phase.generate])
    Final.TestCase().runTest()


# -- found by the machine ----------------------------------------------------------------------
# Each cut down to the fewest steps.


def _move_worker(net, tablet, away, to=None):
    """The office takes grid ``away`` from the tablet's worker, and gives it ``to`` instead."""
    with net.master_store.write(actor="office") as rec:
        rec.update("assignment", f"a-{tablet.name}-{away}", {"active": False})
        if to:
            rec.insert("assignment", {"id": f"a-{tablet.name}-{to}", "worker_id": tablet.worker, "grid_id": to})


def _household(tablet, grid="g1", address="1-1"):
    with tablet.store.write(actor=tablet.worker) as rec:
        return rec.insert("household", {"grid_id": grid, "address": address})


def _quarantined(net) -> list[dict]:
    return [c for c in master_exchange.conflicts(net.master_store) if c["kind"] == "quarantine"]


def test_a_tablet_present_throughout_a_collection_drops_the_tombstone_without_downloading_afresh(net):
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    house, other = _household(a), _household(a, address="1-2")
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        rec.delete("household", house)
    net.sync(a), net.sync(a)
    assert tombstones.collect(net.master_store).removed == 1
    result = a.sync.accept_reply(net.master.exchange(a.sync.make_push())[0])
    assert not result.again and not result.reset
    assert rows(a.store, "household") == [(other,)]


def test_what_a_tablet_records_while_a_repair_push_travels_reaches_the_master(net):
    a, house = _synced_household(net)
    with a.store.write() as rec:  # a row lost on the tablet outside the op log (a botched restore)
        rec.conn.execute(text("DELETE FROM household WHERE id = :i"), {"i": house})
    assert a.sync.accept_reply(net.master.exchange(a.sync.make_push())[0]).again  # a repair is due
    push = a.sync.make_push()  # asks for it; on its way to the office on a USB stick
    _household(a, address="recorded meanwhile")
    assert a.sync.accept_reply(net.master.exchange(push)[0]).reset
    net.sync(a)
    assert rows(net.master_store, "household", "address") == [("1-1",), ("recorded meanwhile",)]
    assert rows(a.store, "household", "address") == [("1-1",), ("recorded meanwhile",)]


def test_an_edit_made_while_the_reassignment_travels_is_held_and_leaves_the_tablet(net):
    a, house = _synced_household(net)
    push = a.sync.make_push()
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", house, {"pets": 3})
    _move_worker(net, a, "g1", to="g2")
    a.sync.accept_reply(net.master.exchange(push)[0])  # evicts g1, keeps the unsent edit
    net.sync(a), net.sync(a)  # the edit is pushed and held, not dropped; then acknowledged
    assert [c["entity_id"] for c in _quarantined(net)] == [house]
    assert local(a.store, "SELECT kind, fields FROM op WHERE entity_id = :h", h=house) == []  # got the update


def test_a_household_recorded_while_the_reassignment_travels_is_held(net):
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    push = a.sync.make_push()
    house = _household(a)  # in g1, which the tablet still holds
    _move_worker(net, a, "g1", to="g2")
    a.sync.accept_reply(net.master.exchange(push)[0])
    net.sync(a)  # not refused for a grid the worker no longer has
    assert [c["entity_id"] for c in _quarantined(net)] == [house]


def test_an_edit_of_a_household_left_behind_is_held(net):
    a, house = _synced_household(net)
    with net.master_store.write(actor="office") as rec:
        rec.update("household", house, {"grid_id": "g3"})
    _move_worker(net, a, "g1", to="g2")
    push = a.sync.make_push()
    with a.store.write(actor=a.worker) as rec:  # while the push travels
        rec.update("household", house, {"pets": 2})
    assert a.sync.accept_reply(net.master.exchange(push)[0]).evicted == 1  # the edit stays, to be pushed
    net.sync(a)
    assert [c["entity_id"] for c in _quarantined(net)] == [house]
    assert rows(a.store, "household") == []


def test_an_update_before_and_after_the_clock_is_set_back_is_held_and_merged(net):
    a, house = _synced_household(net)
    push = a.sync.make_push()
    _jump_to_2036(a)
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", house, {"pets": 1})  # stamped 2036, after the push was made
    a.sync.accept_reply(net.master.exchange(push)[0])  # sets the clock back
    with a.store.write(actor=a.worker) as rec:
        rec.update("household", house, {"income": 7})  # honest; the two would fold into one op
    net.sync(a)
    assert len(_quarantined(net)) == 1
    assert json.loads(rows(net.master_store, "household", "fields")[0][0]) == {"income": 7}


def test_a_worker_left_without_grids_still_converges(net):
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    _move_worker(net, a, "g1")  # between two jobs
    _household(a)  # before it hears: held at the office; the tablet's copy asks for a repair
    net.sync(a)
    assert len(rows(a.store, "grid_cell")) == 4 and rows(a.store, "household") == []


def test_a_visit_held_for_a_grid_taken_away_leaves_with_its_household(net):
    a, house = _synced_household(net)
    _move_worker(net, a, "g1", to="g2")
    with a.store.write(actor=a.worker) as rec:  # before it hears
        rec.insert("visit", {"household_id": house, "grid_id": "g1", "worker_id": a.worker, "minutes": 5})
    a.sync.accept_reply(net.master.exchange(a.sync.make_push())[0])
    assert rows(a.store, "household") == rows(a.store, "visit") == []
    assert [c["entity"] for c in _quarantined(net)] == ["visit"]


def test_a_lost_reply_that_brings_a_grid_is_made_good(net):
    a, c = net.add_tablet("a", grids=("g1",)), net.add_tablet("c", grids=("g2",))
    net.sync(a), net.sync(c)
    house = _household(c, grid="g2")
    net.sync(c), net.sync(a)
    with net.master_store.write(actor="office") as rec:
        rec.insert("assignment", {"id": "a-a-g2", "worker_id": a.worker, "grid_id": "g2"})
    net.master.exchange(a.sync.make_push())  # its reply, with g2's households, is lost
    with c.store.write(actor=c.worker) as rec:
        rec.insert("visit", {"household_id": house, "grid_id": "g2", "worker_id": c.worker, "minutes": 5})
    net.sync(c)
    net.sync(a)
    assert rows(a.store, "household") == [(house,)] and len(rows(a.store, "visit")) == 1


def test_collecting_the_newest_ops_never_gives_their_log_positions_away(any_net):
    net = any_net  # on PostgreSQL the mark that holds the top position must move the sequence on too
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    stays, goes = _household(a, address="stays"), _household(a, address="goes")
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        rec.delete("household", goes)
    net.sync(a), net.sync(a)  # the deletion is the newest op, and acknowledged
    assert tombstones.collect(net.master_store).removed == 1
    with net.master_store.write(actor="office") as rec:
        rec.update("household", stays, {"address": "office"})  # the next op after the collected ones
    net.sync(a)
    assert rows(a.store, "household", "address") == [("office",)]


def test_an_eviction_never_gives_acknowledged_log_positions_away(net):
    a = net.add_tablet("a", grids=("g1", "g2"))
    net.sync(a)
    _household(a, grid="g2", address="2-1"), _household(a, grid="g2", address="2-2")
    net.sync(a)
    _move_worker(net, a, "g2")
    net.sync(a)  # evicts g2's two households and their ops, the newest in the tablet's log
    _household(a, address="1-1")
    net.sync(a)
    assert rows(net.master_store, "household", "address") == [("1-1",), ("2-1",), ("2-2",)]
