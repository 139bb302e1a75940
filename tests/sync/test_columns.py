"""Version 2 bundle bodies: ops in columns, encoded and decoded (`wangge.sync.log.columns`,
`wangge.sync.bundle`), and every malformed body refused in one line naming what is wrong."""
from __future__ import annotations

import copy

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from wangge.sync import bundle
from wangge.sync.keys import DeviceKeys
from wangge.sync.log import columns
from wangge.sync.log.ops import MAX_INT, KINDS, WireOp
from wangge.sync.protocol import body_ops

ENTITIES = ("household", "building", "visit", "case_event", "resident")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)
# District fields (no typed column of any entity): any JSON value goes.
names = st.text(alphabet="xyz区号", min_size=1, max_size=4).map(lambda name: "d_" + name)
ids = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1,
              max_size=12)
hlcs = st.integers(2, MAX_INT - 1)


@st.composite
def wire_ops(draw) -> WireOp:
    kind = draw(st.sampled_from(KINDS))
    fields = draw(st.dictionaries(names, json_values, max_size=4))
    hlc = draw(hlcs)
    seen = stamps = None
    if kind == "update" and fields and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, unique=True))
        stamps = {name: draw(st.integers(1, hlc)) for name in chosen}
    if kind == "insert" and fields and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, unique=True))
        stamps = {name: draw(st.integers(hlc + 1, MAX_INT)) for name in chosen}
    if kind == "update" and fields and draw(st.booleans()):
        seen = {name: [draw(st.integers(1, hlc)), draw(ids)] for name in fields}
    return WireOp(draw(ids), draw(st.sampled_from(ENTITIES)), draw(ids), hlc, draw(st.sampled_from(["w1", "w2"])),
                  draw(st.sampled_from(["tab", "tab-2"])), kind, fields, seen, draw(st.integers(0, MAX_INT)), stamps)


def opened(body: dict, version: int = 2) -> dict:
    """``body`` sent in a sealed bundle of format ``version`` and opened again, as a master does."""
    keys = DeviceKeys.generate()
    data = bundle.build("push", "b-1", "tab", "master", 1, body, keys, keys.public, version=version)
    envelope = bundle.parse(data)
    assert envelope.header.version == version
    return envelope.open(keys)


@settings(max_examples=150, deadline=None)
@given(st.lists(wire_ops(), max_size=12), st.integers(0, MAX_INT))
def test_a_version_2_body_gives_back_the_ops_and_fields_it_was_given(ops, cursor):
    body = opened({"ops": [op.to_wire() for op in ops], "cursor": cursor, "repair": False, "ruleset": "r 1"})
    assert body_ops(body, "bundle b-1") == ops
    assert {k: body[k] for k in ("cursor", "repair", "ruleset")} == {"cursor": cursor, "repair": False,
                                                                     "ruleset": "r 1"}


@settings(max_examples=40, deadline=None)
@given(st.lists(wire_ops(), max_size=8))
def test_both_versions_carry_the_same_ops(ops):
    wire = [op.to_wire() for op in ops]
    assert body_ops(opened({"ops": wire}, 1), "b") == body_ops(opened({"ops": wire}, 2), "b") == ops


def test_ops_of_one_shape_travel_as_one_group_with_the_device_said_once():
    ops = [WireOp(f"o{n}", "household", f"h{n}", 10 + n, "w1", "tab", "insert", {"grid_id": "g1", "address": str(n)},
                  None, n + 1) for n in range(50)]
    ops.insert(20, WireOp("o-x", "household", "h3", 99, "w1", "tab", "update", {"address": "x"}, None, 60))
    groups = columns.encode(ops)
    assert [(g["kind"], len(g["at"]), g["device"]) for g in groups] == [("insert", 50, "tab"), ("update", 1, "tab")]
    assert columns.decode(groups, "b") == ops


def _body() -> dict:
    """A good version 2 body of three household ops in two groups, decoded as a receiver holds it."""
    ops = [["o1", "household", "h1", 100, "w1", "tab", "insert", {"grid_id": "g1", "address": "a"}, None, 1],
           ["o2", "household", "h2", 101, "w1", "tab", "insert", {"grid_id": "g1", "address": "b"}, None, 2],
           ["o3", "household", "h1", 102, "w1", "tab", "update", {"address": "c", "members": 2}, None, 3,
            {"members": 101}]]
    body = msgpack.unpackb(bundle.encode_body({"ops": ops, "cursor": 0}, 2))
    body["ops"] = columns.Groups(body["ops"])  # sent as they are, not as ops to put in columns
    return body


def _refusal(change) -> str:
    body = _body()
    change(body)
    with pytest.raises(bundle.BundleError) as refused:
        body_ops(opened(body), "bundle b-1")
    said = str(refused.value)
    assert "\n" not in said and said.startswith("bundle b-1"), said
    return said


def _set(path, value):
    def change(body):
        target = body
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return change


@pytest.mark.parametrize("change, words", [
    (_set(["ops"], {"a": 1}), "body field 'ops' must be a list of op groups, got dict"),
    (_set(["ops", 0], [1, 2]), "op group 0: expected a map of columns"),
    (lambda body: body["ops"][0].pop("hlc"), "expected the columns entity, kind, names"),
    (_set(["ops", 0, "extra"], []), "got actor, at, device, entity, entity_id, extra"),
    (_set(["ops", 0, "entity"], "nope"), "op group 0: names unknown entity 'nope'"),
    (_set(["ops", 1, "kind"], "upsert"), "op group 1: has unknown kind 'upsert': expected one of insert"),
    (_set(["ops", 0, "names"], ["grid_id", "grid_id"]), "column 'names' must list distinct field names"),
    (_set(["ops", 0, "hlc"], [100]), "column 'hlc' must be a list of 2 items, one per op, got [100]"),
    (_set(["ops", 0, "hlc"], [100, "101"]), "op group 0 (insert household) op 1: column 'hlc' must hold integers "
                                           "in 1..9223372036854775807, got '101'"),
    (_set(["ops", 0, "hlc"], [100, 0]), "column 'hlc' must hold integers in 1.."),
    (_set(["ops", 0, "seq"], [1, True]), "column 'seq' must hold integers in 0..9223372036854775807, got True"),
    (_set(["ops", 0, "seq"], [1, 2**64 - 1]), "got 18446744073709551615"),
    (_set(["ops", 0, "op_id"], ["o1", ""]), "column 'op_id' must hold non-empty text without NUL, got ''"),
    (_set(["ops", 0, "entity_id"], ["h1", "h\x002"]), "column 'entity_id' must hold non-empty text without NUL"),
    (_set(["ops", 0, "device"], "t\x00b"), "device must be text without NUL"),
    (_set(["ops", 0, "actor"], 7), "column 'actor' must be a list of 2 items"),
    (_set(["ops", 0, "values"], [["g1", "g1"]]), "column 'values' must hold one column per name (2)"),
    (_set(["ops", 0, "values", 1], ["a"]), "the values of field 'address' must be a list of 2 items"),
    (_set(["ops", 0, "values", 1], ["a", b"\x01"]), "op 1: field household.address holds bytes"),
    (_set(["ops", 0, "values", 1], ["a", {b"k": "x"}]), "holds a map key b'k', which JSON has not"),
    (_set(["ops", 0, "values", 1], ["a", [float("nan")]]), "holds the number nan"),
    (_set(["ops", 0, "values", 1], [float("inf"), "a"]), "op 0: field household.address must be a finite number"),
    (_set(["ops", 0, "values", 0], ["g1", "g\x001"]), "field household.grid_id holds a NUL character"),
    (_set(["ops", 1, "values", 1], [2**63]), "field household.members must fit a signed 64-bit column"),
    (_set(["ops", 1, "stamps"], [{"members": 103}]), "field stamp 'members' must name one of its fields and be a "
                                                     "stamp in 1..102, got 103"),
    (_set(["ops", 1, "stamps"], [{"pets": 1}]), "field stamp 'pets' must name one of its fields"),
    (_set(["ops", 1, "stamps"], ["x"]), "column 'stamps' must hold maps or nulls, got 'x'"),
    (_set(["ops", 1, "seen"], [{"address": [200, "tab"]}]), "seen stamp 'address' (item 8) is 200, newer than"),
    (_set(["ops", 1, "at"], [0]), "op o3 has position 0 (column 'at'): each op needs its own position in 0..2"),
    (_set(["ops", 1, "at"], [7]), "has position 7"),
    (_set(["ops", 1, "at"], ["2"]), "has position '2'"),
])
def test_a_malformed_version_2_body_is_refused_naming_what_and_where(change, words):
    assert words in _refusal(change)


@pytest.mark.parametrize("raw, words", [
    (b"\xc1", "is not MessagePack we take"),
    (msgpack.packb({"ops": []}) + b"\x00", "is not MessagePack we take: ExtraData"),
    (msgpack.packb([1, 2]), "must be a MessagePack map, got list"),
    (msgpack.packb({"ops": [], "cursor": msgpack.ExtType(5, b"x")}), "extension type 5"),
    (msgpack.packb({"ops": [], 7: 1}, strict_types=False), "is not MessagePack we take"),
    (msgpack.packb({"ops": [], "evict": {"h": [b"\x00"]}}), "holds bytes"),
    (msgpack.packb({"ops": [], "clock": float("inf")}), "holds the number inf"),
    (b"\x91" * 100_000, "is not MessagePack we take"),  # nested past any stack
])
def test_a_version_2_body_that_is_not_a_map_of_json_values_is_refused(raw, words):
    keys = DeviceKeys.generate()
    eph, encrypt = bundle.begin_seal(keys.public.box)
    header = bundle.Header("push", "b-2", "tab", "master", 1, eph, len(raw), 2).to_bytes()
    import struct
    import zlib
    payload = encrypt(zlib.compress(raw), header)
    signed = bundle.MAGIC + struct.pack(">I", len(header)) + header + struct.pack(">I", len(payload)) + payload
    with pytest.raises(bundle.BundleError) as refused:
        bundle.parse(signed + keys.sign(signed)).open(keys)
    assert words in str(refused.value) and "\n" not in str(refused.value)


def test_a_header_of_an_unknown_format_version_names_the_versions_read():
    keys = DeviceKeys.generate()
    data = bundle.build("push", "b-3", "tab", "master", 1, {"ops": []}, keys, keys.public, version=2)
    forged = data.replace(b'"v":2', b'"v":3')
    with pytest.raises(bundle.BundleError, match="format version 3 is not supported: expected one of 1, 2"):
        bundle.parse(forged)


def test_an_op_that_cannot_go_in_columns_is_refused_when_building():
    keys = DeviceKeys.generate()
    with pytest.raises(bundle.BundleError, match="op 1: an op to put in columns must be a list of 10 or 11 items"):
        bundle.build("push", "b-4", "tab", "master", 1, {"ops": [copy.deepcopy(_op()), ["short"]]}, keys,
                     keys.public, version=2)


def _op() -> list:
    return ["o1", "household", "h1", 100, "w1", "tab", "insert", {"grid_id": "g1"}, None, 1]


@pytest.mark.parametrize("writes", [1, 2])
def test_the_master_answers_a_push_in_the_version_it_came_in(any_net, monkeypatch, writes):
    # A tablet upgraded late still writes version 1, and must be able to read the reply.
    monkeypatch.setattr(bundle, "VERSION", writes)
    tablet = any_net.add_tablet("a")
    any_net.sync(tablet)
    with tablet.store.write(actor=tablet.worker) as rec:
        house = rec.insert("household", {"grid_id": "g1", "address": "泰丰路1号", "members": 3, "人口": 3})
        rec.update("household", house, {"address": "泰丰路2号"})
    push = tablet.sync.make_push()
    assert bundle.parse(push).header.version == writes
    reply, _ = any_net.master.exchange(push)
    assert bundle.parse(reply).header.version == writes
    assert tablet.sync.accept_reply(reply).acked == 2
    with any_net.master_store.read() as conn:
        stored = conn.exec_driver_sql(f"SELECT address, members FROM household WHERE id = '{house}'").one()
    assert tuple(stored) == ("泰丰路2号", 3)
