"""Every hostile or broken bundle is refused with a clear reason, and the master's database is unchanged."""
from __future__ import annotations

import sqlite3
import struct
import zlib

import pytest

from wangge.core.errors import SyncError
from wangge.sync import bundle
from wangge.sync.keys import DeviceKeys

from .test_session import rows


def dump(net) -> list[str]:
    path = net.master_store.engine.url.database
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


@pytest.fixture
def ready(net):
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "1-101"})
    return net, a


def refused(net, data: bytes, reason: str) -> None:
    before = dump(net)
    with pytest.raises(SyncError, match=reason):
        net.master.exchange(data)
    assert dump(net) == before


def test_a_flipped_byte_fails_the_signature(ready):
    net, a = ready
    data = bytearray(a.sync.make_push())
    data[-100] ^= 0x01
    refused(net, bytes(data), "signature of bundle .* does not verify")


def test_a_truncated_bundle_is_refused_before_anything_else(ready):
    net, a = ready
    data = a.sync.make_push()
    refused(net, data[:-10], "truncated")
    refused(net, data[:7], "not a wangge bundle")


@pytest.mark.parametrize("cut, reason", [(lambda packed: packed[:-4], "its end and checksum are missing"),
                                         (lambda packed: packed + b"\x00", "bytes follow its end")])
def test_a_body_that_is_not_one_whole_zlib_stream_is_refused(ready, monkeypatch, cut, reason):
    net, a = ready
    whole = zlib.compress
    monkeypatch.setattr(zlib, "compress", lambda raw, level: cut(whole(raw, level)))
    data = a.sync.make_push()
    monkeypatch.undo()
    refused(net, data, f"body is not one whole zlib stream: {reason}")


def test_a_payload_shorter_than_its_tag_is_refused(ready):
    net, a = ready
    header = bundle.Header("push", "short-1", a.store.device_id, "master", 9, bytes(32), 0).to_bytes()
    signed = bundle.MAGIC + struct.pack(">I", len(header)) + header + struct.pack(">I", 3) + b"abc"
    refused(net, signed + a.keys.sign(signed), "payload of 3 bytes is outside 16..")


def test_a_bundle_re_signed_by_another_device_is_refused(ready):
    net, a = ready
    other = DeviceKeys.generate()
    forged = bundle.build("push", "forged-1", a.store.device_id, "master", 99,
                          {"ops": [], "cursor": 0, "repair": False, "ruleset": ""}, other, net.master_keys.public)
    refused(net, forged, "signed by another key")


def test_a_replayed_bundle_is_refused(ready):
    net, a = ready
    old = a.sync.make_push()
    net.master.exchange(old)
    newer = a.sync.make_push()
    net.master.exchange(newer)
    refused(net, old, "replay")


def test_re_importing_the_latest_bundle_returns_the_same_reply_and_applies_nothing(ready):
    net, a = ready
    data = a.sync.make_push()
    reply, _ = net.master.exchange(data)
    before = dump(net)
    again, summary = net.master.exchange(data)
    assert again == reply and "imported before" in summary and dump(net) == before


def test_a_revoked_device_is_refused_its_bundle_kept_and_reported(ready):
    net, a = ready
    from wangge.sync import enrollment
    from wangge.sync.master import exchange as master_exchange
    from wangge.sync.master import review

    with net.master_store.write(actor="office") as rec:
        enrollment.revoke(rec, a.store.device_id)
    forged = bundle.build("push", "forged-2", a.store.device_id, "master", 99,
                          {"ops": [], "cursor": 0, "repair": False, "ruleset": ""}, DeviceKeys.generate(),
                          net.master_keys.public)
    refused(net, forged, "signed by another key")  # in its name but not its own: kept nowhere
    before = dump(net)
    push = a.sync.make_push()
    for _ in range(2):
        with pytest.raises(SyncError, match="revoked, not active; the bundle (is|was) kept"):
            net.master.exchange(push)
    added = [line for line in dump(net) if line not in before]
    assert len(added) == 2 and "sync_revoked" in added[0] + added[1] and "sync_conflict" in added[0] + added[1]
    assert rows(net.master_store, "household") == []  # nothing in it applied
    (listed,) = master_exchange.conflicts(net.master_store)
    assert (listed["kind"], listed["entity_id"], listed["lost"]["bytes"]) == ("revoked", a.store.device_id, len(push))
    with net.master_store.read() as conn:
        kept = conn.exec_driver_sql("SELECT data FROM sync_revoked").scalar()
    assert bytes(kept) == push  # as it came, still sealed to the master
    said = review.answer(net.master_store, listed["id"], "ack", by="系统中心")
    assert said.endswith(f"noted: the bundle from revoked device {a.store.device_id} stays kept, unapplied")


def test_an_op_for_another_grid_is_refused(ready):
    net, a = ready
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g2", "address": "2-202"})
    refused(net, a.sync.make_push(), "grid g2 is not among the worker's grids")
    assert rows(net.master_store, "household") == []


def _forge(tablet, entity: str, fields: dict) -> str:
    """An op the tablet's own store would refuse (its foreign keys), written straight into its log."""
    import json

    from wangge.core.ids import uuid7

    with tablet.store.write(actor=tablet.worker) as rec:
        rec.conn.exec_driver_sql(
            "INSERT INTO op (op_id, entity, entity_id, hlc, actor, device, kind, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (uuid7(), entity, uuid7(), rec.stamp(), tablet.worker, tablet.store.device_id, "append", json.dumps(fields)))
    return tablet.sync.make_push()


def test_an_op_setting_the_merges_own_columns_is_refused(ready):
    net, a = ready
    push = _forge(a, "visit", {"grid_id": "g1", "minutes": 5, "hlc": 1, "deleted": None})
    refused(net, push, "it sets deleted, hlc, which only the merge sets")


def test_an_op_naming_a_field_its_entity_lacks_is_refused(ready):
    net, a = ready
    push = _forge(a, "attachment", {"grid_id": "g1", "colour": "red"})
    refused(net, push, "attachment has no field colour: expected some of ")


def test_a_visit_in_the_workers_grid_to_another_grids_household_is_refused(ready):
    net, a = ready
    b = net.add_tablet("b", grids=("g2",))
    net.sync(b)
    with b.store.write(actor=b.worker) as rec:
        theirs = rec.insert("household", {"grid_id": "g2", "address": "2-1"})
    net.sync(b)
    push = _forge(a, "visit", {"household_id": theirs, "grid_id": "g1", "worker_id": a.worker, "minutes": 5})
    refused(net, push, f"its household_id names household {theirs} in grid g2, outside the worker's grids")
    assert rows(net.master_store, "visit") == []


def test_an_op_naming_a_row_the_master_lacks_is_refused_with_that_reason(ready):
    net, a = ready
    push = _forge(a, "visit", {"household_id": "no-such", "grid_id": "g1", "worker_id": a.worker, "minutes": 5})
    refused(net, push, "its household_id names household no-such, which the master does not have")


def test_a_closure_forged_by_the_wrong_role_is_refused(ready):
    net, a = ready
    with a.store.write(actor=a.worker) as rec:
        case = rec.insert("case", {"item_code": "x", "grid_id": "g1"})
        rec.insert("case_event", {"case_id": case, "move": "结案", "role": "网格员"})
    refused(net, a.sync.make_push(), "move 结案 is for 主任, not 网格员")


def test_a_bundle_addressed_to_another_master_is_refused(ready):
    net, a = ready
    stray = bundle.build("push", "stray-1", a.store.device_id, "other-master", 5,
                         {"ops": [], "cursor": 0}, a.keys, net.master_keys.public)
    refused(net, stray, "expected a push for this master")


def test_a_cloned_tablet_is_detected(ready, tmp_path):
    net, a = ready
    path = a.store.engine.url.database
    net.sync(a)
    with sqlite3.connect(path) as source, sqlite3.connect(tmp_path / "backup.db") as target:
        source.backup(target)
    with a.store.write(actor=a.worker) as rec:
        rec.insert("household", {"grid_id": "g1", "address": "1-102"})
    net.sync(a)
    # The backup, restored on another tablet, makes its own edit under the same device id.
    from wangge.core import store
    from wangge.sync.log import tables
    from wangge.sync.device.exchange import DeviceSync
    from wangge.sync.protocol import Peer

    clone_store = store.open(str(tmp_path / "backup.db"), extra_migrations=tables.MIGRATIONS, now_ms=net.clock)
    try:
        with clone_store.write(actor=a.worker) as rec:
            rec.insert("household", {"grid_id": "g1", "address": "1-103"})
        clone = DeviceSync(clone_store, a.keys, Peer("master", net.master_keys.public))
        refused(net, clone.make_push(), "cloned tablet")
        # Even with a sequence number that looks new, its history forks from the acknowledged one.
        from wangge.core.store import set_meta

        with clone_store.write() as rec:
            set_meta(rec.conn, "sync.seq", "100")
        refused(net, clone.make_push(), "cloned tablet or a restored backup")
    finally:
        clone_store.close()


def test_a_revoked_tablet_that_keeps_pushing_fills_no_disk(ready, monkeypatch):
    net, a = ready
    from wangge.sync import enrollment
    from wangge.sync.master import revoked

    monkeypatch.setattr(revoked, "KEEP_MAX", 1)
    with net.master_store.write(actor="office") as rec:
        enrollment.revoke(rec, a.store.device_id)
    with pytest.raises(SyncError, match="the bundle is kept for the office"):
        net.master.exchange(a.sync.make_push())
    before = dump(net)
    with pytest.raises(SyncError, match="not kept: 1 of its bundles are kept already"):
        net.master.exchange(a.sync.make_push())  # a new bundle (new id and sequence)
    assert dump(net) == before


# -- integers: every one on the wire must fit the signed 64-bit columns it is kept in ----------

TOO_BIG = 2**63  # one past what SQLite INTEGER and PostgreSQL BIGINT hold


def _signed(net, a, ops: list, *, seq: int = 100, cursor: int = 0) -> bytes:
    """A push signed with the tablet's own keys: what a tablet with a bug, or another implementation, can send."""
    from wangge.core.ids import uuid7

    return bundle.build("push", uuid7(), a.store.device_id, net.master.device_id, seq,
                        {"ops": ops, "cursor": cursor, "repair": False, "ruleset": ""}, a.keys, net.master_keys.public)


def _household(net, a, **fields) -> list:
    from wangge.core.hlc import pack
    from wangge.core.ids import uuid7

    return [uuid7(), "household", uuid7(), pack(net.clock()), a.worker, a.store.device_id, "insert",
            {"grid_id": "g1", "address": "1-201", **fields}, None, 1000]


def _with(item: list, index: int, value) -> list:
    return item[:index] + [value] + item[index + 1:]


#: What a push carries past 64 bits: how to make it, and the words of its refusal (in this order).
_PAST_64_BITS = {
    "header seq": (lambda net, a: _signed(net, a, [], seq=TOO_BIG),
                   [f"bundle header field 'seq' must be an integer in 1..{TOO_BIG - 1}, got {TOO_BIG}"]),
    "body cursor": (lambda net, a: _signed(net, a, [], cursor=TOO_BIG),
                    [f"body field 'cursor' must be a non-negative integer in 0..{TOO_BIG - 1}, got {TOO_BIG}"]),
    "op hlc": (lambda net, a: _signed(net, a, [_with(_household(net, a), 3, TOO_BIG)]),
               [f"hlc (item 3) must be an integer in 1..{TOO_BIG - 1}, got {TOO_BIG}"]),
    "op seq": (lambda net, a: _signed(net, a, [_with(_household(net, a), 9, TOO_BIG)]),
               [f"seq (item 9) must be an integer in 0..{TOO_BIG - 1}, got {TOO_BIG}"]),
    "folded insert's field stamp": (
        lambda net, a: _signed(net, a, [_household(net, a) + [{"address": TOO_BIG}]]),
        ["field stamp 'address' of a folded insert", f"at most {TOO_BIG - 1}, got {TOO_BIG}"]),
    "seen stamp": (lambda net, a: _signed(net, a, [_with(_with(_household(net, a), 6, "update"), 8,
                                                         {"address": [TOO_BIG, a.store.device_id]})]),
                   [f"seen stamp 'address' (item 8) must be [stamp in 1..{TOO_BIG - 1}, device id], got [{TOO_BIG}, "]),
    "typed column": (lambda net, a: _signed(net, a, [_household(net, a, members=TOO_BIG)]),
                     [f"field household.members must fit a signed 64-bit column, {-TOO_BIG}..{TOO_BIG - 1}, "
                      f"got {TOO_BIG}"]),
    "typed column, below": (lambda net, a: _signed(net, a, [_household(net, a, members=-TOO_BIG - 1)]),
                            ["field household.members", f"got {-TOO_BIG - 1}"]),
    "an integer in a text column": (lambda net, a: _signed(net, a, [_household(net, a, address=TOO_BIG)]),
                                    ["field household.address must fit a signed 64-bit column"]),
}


@pytest.mark.parametrize("what", list(_PAST_64_BITS))
def test_a_signed_push_with_an_integer_past_64_bits_is_refused_naming_it(ready, what):
    import re

    net, a = ready
    make, words = _PAST_64_BITS[what]
    refused(net, make(net, a), ".*".join(map(re.escape, words)))


def test_the_largest_integers_that_fit_are_accepted(ready):
    net, a = ready
    top = TOO_BIG - 1
    # A district field lives in the JSON column, where an integer of any size is kept as it is.
    op = _with(_household(net, a, members=top, pets=2**70), 9, top)
    net.master.exchange(_signed(net, a, [op], seq=top))
    assert rows(net.master_store, "household", "id, members, json_extract(fields, '$.pets')") == [(op[2], top, 2**70)]


def _json_like():
    from hypothesis import strategies as st

    edges = st.sampled_from([0, 1, -1, TOO_BIG - 1, TOO_BIG, -TOO_BIG, -TOO_BIG - 1, 2**64, 10**40])
    scalars = st.none() | st.booleans() | st.integers() | edges | st.floats() | st.text(max_size=8)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def _op_like():
    """Lists shaped like an op, at most one item replaced by anything JSON holds: to reach every check."""
    from hypothesis import strategies as st

    from wangge.core.models import ENTITIES
    from wangge.sync.log.ops import KINDS

    anything = _json_like()
    stamp = st.integers(min_value=1, max_value=2**40) | st.integers(min_value=-2, max_value=2**65) | st.sampled_from(
        [TOO_BIG - 1, TOO_BIG])
    name = st.sampled_from(["grid_id", "members", "address", "pets", "minutes"])
    fields = st.dictionaries(name, st.integers() | st.sampled_from([TOO_BIG, -TOO_BIG - 1]) | anything, max_size=4)
    seen = st.none() | st.dictionaries(name, st.tuples(stamp, st.text(max_size=4)).map(list) | anything, max_size=2)
    stamps = st.none() | st.dictionaries(name, stamp | anything, max_size=3)
    ident = st.text(min_size=1, max_size=4)
    items = st.tuples(ident, st.sampled_from([*ENTITIES, "nope"]), ident, stamp, st.text(max_size=4),
                      st.text(max_size=4), st.sampled_from([*KINDS, "nope"]), fields, seen, stamp, stamps).map(list)
    # Mostly whole; else one item replaced, or the length changed: each check is met by the rest.
    return st.tuples(items, st.sampled_from(range(31)), anything).map(lambda made: _swap(*made))


def _swap(op: list, index: int, value) -> list:
    if index <= 10:
        return _with(op, index, value)
    return {11: op[:10], 12: op + [value], 13: op[:9]}.get(index, op)


def test_from_wire_returns_an_op_or_raises_op_error_for_anything_json_holds():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from wangge.core.models import ENTITIES
    from wangge.sync.log.ops import MAX_INT, MIN_INT, OpError, WireOp, from_wire

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(_op_like(), _json_like()))
    def check(item):
        try:
            op = from_wire(item, "bundle b op 0")
        except OpError as exc:
            assert str(exc).startswith("bundle b op 0: ")
            return
        assert isinstance(op, WireOp)
        assert 0 < op.hlc <= MAX_INT and 0 <= op.seq <= MAX_INT
        assert all(0 < stamp <= MAX_INT for stamp in (op.stamps or {}).values())
        assert all(0 < pair[0] <= MAX_INT for pair in (op.seen or {}).values())
        columns = ENTITIES[op.entity].__table__.columns  # a field without one is kept in the JSON `fields`
        assert all(MIN_INT <= value <= MAX_INT for name, value in op.fields.items()
                   if type(value) is int and name in columns)

    check()


@pytest.mark.parametrize("raw, ok", [("0", True), ("42", True), ("9" * 18, True), ("9" * 19, False), ("", False),
                                     ("²", False), ("１", False), ("٣", False), ("-1", False), ("+1", False),
                                     (" 1", False), ("1.0", False)])
def test_a_number_in_a_query_or_header_is_ascii_digits_only(raw, ok):
    # "²".isdigit() and "１".isdigit() are true: int() refuses the one and reads the other.
    from wangge.sync.request_auth import Unsigned, read_signed
    from wangge.web.sync import HttpError, query_number

    if ok:
        assert query_number({"offset": raw}, "offset") == int(raw)
    else:
        with pytest.raises(HttpError, match="bad query parameter offset=") as bad:
            query_number({"offset": raw}, "offset")
        assert bad.value.http_status == 400
    if not raw:
        return  # an empty header is a missing one
    headers = {"x-wangge-device": "d", "x-wangge-time": raw, "x-wangge-signature": "!"}
    with pytest.raises(Unsigned) as refused:
        read_signed("GET", "/blobs/x", headers, int(raw) if ok else 0)
    # A good time gets as far as the signature (not base64 here); any other is refused as a time.
    assert refused.value.http_status == 401 and ("not base64" if ok else "request time") in str(refused.value)


def test_the_largest_numbers_a_tablet_holds_fit_a_master_on_either_database(any_net):
    net, top = any_net, TOO_BIG - 1
    a = net.add_tablet("a", grids=("g1",))
    net.sync(a)
    with a.store.write(actor=a.worker) as rec:
        house = rec.insert("household", {"grid_id": "g1", "address": "1-1", "members": top})
        rec.insert("visit", {"household_id": house, "grid_id": "g1", "worker_id": a.worker, "minutes": -top})
    net.sync(a)
    assert rows(net.master_store, "household", "members") == [(top,)]
    assert rows(net.master_store, "visit", "minutes") == [(-top,)]
