"""What an exchange keeps between exchanges stays exact: the whole-table digests and the grid tree
kept under their tables' change marks, and the installed ruleset parsed once per stored text."""
from __future__ import annotations

import itertools
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wangge.app import stores
from wangge.core import casework
from wangge.sync.log import apply, scope
from wangge.sync.log.ops import WireOp
from wangge.sync.transport.fieldwork import exchange_once, installed_rules

from .conftest import small_ruleset


def recomputed(conn, grids):
    """Every entity's digest worked out afresh, nothing kept."""
    return {entity: scope._digest(conn, entity, grids if entity not in scope.SHARED else None)
            for entity in scope.synced_entities()}


def cells_at_or_below_in_sql(conn, codes):
    found = set()
    for code in codes:
        found.update(conn.exec_driver_sql("SELECT id FROM grid_cell WHERE code = ? OR substr(code, 1, ?) = ?",
                                          (code, len(code) + 1, code + ".")).scalars())
    return found


# One step changes a shared table the way a master does: the office writes, a bundle applies, or a
# write fails and rolls back after the digests were read inside it.
steps = st.lists(st.tuples(st.sampled_from(["office insert", "office update", "office delete", "applied",
                                            "rolled back"]),
                           st.sampled_from(["grid_cell", "worker", "assignment"]),
                           st.integers(0, 50)), min_size=1, max_size=12)


class Rollback(Exception):
    pass


def step(s, kind, entity, n, made, stamps) -> None:
    ids = made[entity]
    if kind == "applied":
        new_id, ops = f"{entity}-{next(stamps)}", []
        fields = {"grid_cell": {"code": f"9.{new_id}", "level": "grid", "name": "applied"},
                  "worker": {"name": "applied", "role": "网格员"},
                  "assignment": {"worker_id": f"w-{new_id}", "grid_id": made["grid_cell"][n % len(made["grid_cell"])]},
                  }[entity]
        if entity == "assignment":  # a worker of its own: one assignment per worker and grid
            ops.append(WireOp(f"op-w-{new_id}", "worker", f"w-{new_id}", 2**60 + next(stamps), "o", "other-master",
                              "insert", {"name": "applied", "role": "网格员"}))
        ops.append(WireOp(f"op-{new_id}", entity, new_id, 2**60 + next(stamps), "o", "other-master", "insert", fields))
        with s.write() as rec:
            assert len(apply.apply_ops(rec.conn, ops).applied) == len(ops)
        ids.append(new_id)
        return
    try:
        with s.write(actor="office") as rec:
            if kind == "office insert" or kind == "rolled back":
                values = {"grid_cell": {"code": f"0.{n}.{next(stamps)}", "level": "grid", "name": "g"},
                          "worker": {"name": f"w{n}", "role": "网格员"},
                          "assignment": {"grid_id": made["grid_cell"][n % len(made["grid_cell"])]}}[entity]
                if entity == "assignment":  # a worker of its own: one assignment per worker and grid
                    values["worker_id"] = rec.insert("worker", {"name": f"for assignment {n}", "role": "网格员"})
                new_id = rec.insert(entity, values)
                if kind == "rolled back":
                    scope.checksums(rec.conn, None)  # kept under the mark of a write that never commits
                    scope.worker_grids(rec.conn, made["worker"][0])
                    raise Rollback()
                ids.append(new_id)
            elif not ids:
                return
            elif kind == "office update":
                field = {"grid_cell": "name", "worker": "name", "assignment": "active"}[entity]
                rec.update(entity, ids[n % len(ids)], {field: (n % 2 == 0) if field == "active" else f"x{n}"})
            elif len(ids) > 1:
                rec.delete(entity, ids.pop(n % len(ids)))
    except Rollback:
        pass


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps)
def test_kept_digests_and_grid_tree_equal_a_full_recomputation_after_any_writes(tmp_path, changes):
    stamps = itertools.count(1)
    with stores.create_master(str(tmp_path / f"{uuid.uuid4().hex}.db"), device_id="m") as s:
        with s.write(actor="office") as rec:
            top = rec.insert("grid_cell", {"code": "0", "level": "community", "name": "c"})
            grid = rec.insert("grid_cell", {"code": "0.1", "level": "grid", "name": "g", "upper_id": top})
            worker = rec.insert("worker", {"name": "w", "role": "网格员"})
            rec.insert("assignment", {"worker_id": worker, "grid_id": top})
        made = {"grid_cell": [top, grid], "worker": [worker], "assignment": []}
        with s.read() as conn:
            codes = [c for (c,) in conn.exec_driver_sql("SELECT code FROM grid_cell")]
            assert scope.checksums(conn, [grid]) == recomputed(conn, [grid])
        for kind, entity, n in changes:
            step(s, kind, entity, n, made, stamps)
            with s.read() as conn:
                assert scope.checksums(conn, [grid]) == recomputed(conn, [grid]), (kind, entity)
                assert scope.checksums(conn, None) == recomputed(conn, None), (kind, entity)
                codes = [c for (c,) in conn.exec_driver_sql("SELECT code FROM grid_cell")]
                for code in codes[:3]:
                    assert scope._cells_at_or_below(conn, [code]) == cells_at_or_below_in_sql(conn, [code])


def test_a_write_to_a_shared_table_sets_a_new_mark_and_an_exchange_alone_does_not(any_net):
    net = any_net
    a = net.add_tablet("a")
    net.sync(a)
    with net.master_store.read() as conn:
        before = scope._marks(conn)
    assert set(before) == set(scope.SHARED)
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "1-1"})
    net.sync(a)
    with net.master_store.read() as conn:
        assert scope._marks(conn) == before  # nothing shared changed: the kept digests still hold
    with net.master_store.write(actor="office") as rec:
        rec.update("worker", a.worker, {"name": "renamed"})
    with net.master_store.read() as conn:
        after = scope._marks(conn)
        assert after["worker"] != before["worker"]
        assert {e: after[e] for e in after if e != "worker"} == {e: before[e] for e in before if e != "worker"}
        assert scope.checksums(conn, ["g1"]) == recomputed(conn, ["g1"])
    net.sync(a)  # the tablet agrees with the new digest: no repair loop


def test_a_store_without_the_marks_digests_every_time(tmp_path):
    from wangge.core import store

    with store.init(str(tmp_path / "plain.db"), "master", device_id="m") as s:  # no sync tables
        with s.write() as rec:
            rec.insert("worker", {"name": "w", "role": "网格员"})
        with s.read() as conn:
            first = scope.checksums(conn, None)
        with s.write() as rec:
            rec.insert("worker", {"name": "v", "role": "网格员"})
        with s.read() as conn:
            assert scope.checksums(conn, None)["worker"] != first["worker"]
            assert scope.checksums(conn, None) == recomputed(conn, None)


def test_the_installed_ruleset_is_parsed_once_and_a_changed_one_is_picked_up_at_the_next_exchange(net):
    a = net.add_tablet("a")
    first = small_ruleset()
    with net.master_store.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, first)
    rules = installed_rules(net.master_store)

    def exchange(data: bytes) -> bytes:
        return exchange_once(net.master_store, net.master_keys, rules(), data).reply

    assert rules() is rules()  # the same text: not parsed again
    a.sync.accept_reply(exchange(a.sync.make_push()))
    with a.store.read() as conn:
        assert casework.installed_ruleset(conn).version == first.version
    second = first.model_copy(update={"name": "t-second"})
    assert second.version != first.version
    with net.master_store.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, second)
    assert rules().version == second.version
    a.sync.accept_reply(exchange(a.sync.make_push()))
    with a.store.read() as conn:
        assert casework.installed_ruleset(conn).version == second.version


def test_no_installed_ruleset_is_none(net):
    assert installed_rules(net.master_store)() is None


@pytest.mark.parametrize("grids", [0, 1, 3])
def test_the_op_query_is_written_once_per_grid_count(grids):
    from wangge.sync.master import exchange as master_exchange

    sql, repeat = master_exchange._ops_since_sql("qmark", grids)
    assert master_exchange._ops_since_sql("qmark", grids)[0] is sql
    assert sql.count("?") == 2 + grids * repeat
