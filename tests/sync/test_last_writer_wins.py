"""Last writer wins, per field, against a reference model small enough to be obviously right.

The model keeps every write and answers, per field, the value of the write
with the greatest ``(hlc, device)``. The one merge (`merge.winners`) and the
store's appliers (the SQLite fast path that patches JSON, and the general
path a critical field takes) must agree with it whatever order the writes
arrive in, one exchange at a time.
"""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wangge.app import stores
from wangge.core.models import Household
from wangge.sync.log import apply, merge
from wangge.sync.log.ops import WireOp

INSERT = (1, "office")
_devices = st.sampled_from(["dev-a", "dev-b", "dev-c"])
_hlcs = st.integers(min_value=1, max_value=40)  # narrow, so ties of clocks come up and devices break them


def reference(initial: dict, writes: list[tuple[str, object, int, str]]) -> dict:
    """Each field's value: that of its greatest-stamped write, or the insert's."""
    state = {name: (value, INSERT) for name, value in initial.items()}
    for name, value, hlc, device in writes:
        if name not in state or (hlc, device) > state[name][1]:
            state[name] = (value, (hlc, device))
    return {name: value for name, (value, _) in state.items()}


def _writes(names):
    return st.lists(st.tuples(st.sampled_from(names), st.integers(0, 99), _hlcs, _devices), max_size=12,
                    unique_by=lambda w: (w[2], w[3], w[0]))


@given(writes=_writes(["a", "b", "c"]), order=st.randoms(use_true_random=False))
def test_the_merge_agrees_with_the_model_in_any_order(writes, order):
    row, stamps = {"a": 0, "b": 0, "c": 0}, {}
    shuffled = list(writes)
    order.shuffle(shuffled)
    for name, value, hlc, device in shuffled:
        for won, (kept, at) in merge.winners({name: value}, stamps, INSERT, hlc, device).items():
            row[won], stamps[won] = kept, [at, device]
    assert row == reference({"a": 0, "b": 0, "c": 0}, writes)


@given(writes=_writes(["a", "b"]), own=st.dictionaries(st.sampled_from(["a", "b"]), _hlcs, max_size=2))
def test_a_folded_write_counts_each_field_at_its_own_stamp(writes, own):
    stamps = {name: [hlc, device] for name, _, hlc, device in writes}
    won = merge.winners({"a": 1, "b": 2}, stamps, INSERT, 20, "dev-b", own)
    for name in ("a", "b"):
        held = tuple(stamps[name]) if name in stamps else INSERT
        assert (name in won) == ((own.get(name, 20), "dev-b") > held)


# Custom fields only: the SQLite fast path. With ``address`` (a critical column): the general path.
@settings(max_examples=25, deadline=None)
@given(writes=_writes(["产权", "车牌", "address"]), order=st.randoms(use_true_random=False))
def test_the_stores_appliers_agree_with_the_model_one_exchange_at_a_time(tmp_path_factory, writes, order):
    initial = {"产权": "商品房", "车牌": "", "address": "1-101"}
    with stores.create(str(tmp_path_factory.mktemp("lww") / "r.db"), "master", device_id="office") as s:
        with s.write() as rec:
            home = rec.insert("grid_cell", {"code": "G", "level": "网格", "name": "g"})
            rec.conn.execute(Household.__table__.insert().values(
                id="h", grid_id=home, address=initial["address"], hlc=INSERT[0], origin=INSERT[1], stamps={},
                fields={k: v for k, v in initial.items() if k != "address"}))
        shuffled = list(enumerate(writes))
        order.shuffle(shuffled)
        for n, (name, value, hlc, device) in shuffled:
            op = WireOp(f"op-{n:03d}", "household", "h", hlc, "w", device, "update", {name: str(value)})
            with s.write() as rec:
                apply.apply_ops(rec.conn, [op])
        with s.read() as conn:
            row = conn.execute(Household.__table__.select()).mappings().one()
    held = {"address": row["address"], **{k: v for k, v in row["fields"].items()}}
    assert held == reference(initial, [(name, str(value), hlc, device) for name, value, hlc, device in writes])
