"""A second tablet implementation, written from docs/sync-protocol.md alone, syncs with a real master.

Everything this tablet sends or reads is made here from the document, with
the standard library and `cryptography` only: enrollment texts, the master
card, bundle layout, sealing and signatures, op arrays, folding, push and
reply bodies, merging and checksums. wangge plays the master only (a store
on an SQLite file, `MasterSync`), so these tests fail when the document
stops saying enough for another implementation to interoperate.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import struct
import time
import uuid
import zlib
from contextlib import closing
from dataclasses import dataclass, field
from typing import Callable, Optional

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from wangge.core import store
from wangge.core.errors import SyncError
from wangge.sync import enrollment
from wangge.sync.log import tables
from wangge.sync.keys import DeviceKeys
from wangge.sync.master.exchange import MasterSync

from .conftest import small_ruleset

# -- the document's constants ----------------------------------------------------------------------

MAGIC = b"WGB\x01"
SEAL_INFO = b"wangge bundle seal v1"
NONCE = bytes(12)
SIGNATURE_BYTES = 64
HEADER_FIELDS = {"v", "kind", "id", "from", "to", "seq", "eph", "body"}
CHECKSUMMED = ("grid_cell", "building", "household", "resident", "worker", "assignment", "case", "case_event",
               "visit", "attachment", "point_entry")
SHARED = {"grid_cell", "worker", "assignment"}
DRIFT_BOUND_MS = 5 * 60 * 1000
WORKER = "w-li"


# -- encodings -------------------------------------------------------------------------------------

def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(value: dict, *, ascii_only: bool = False) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only).encode("utf-8")


def raw_public(private) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def uuid7() -> str:
    rand = int.from_bytes(os.urandom(10), "big")
    value = wall_ms() << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62 | rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


# -- the tablet ------------------------------------------------------------------------------------

@dataclass
class Tablet:
    device_id: str
    name: str
    sign: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    box: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    master_id: str = ""
    master_sign: bytes = b""
    master_box: bytes = b""
    hlc: int = 0
    position: int = 0  # of the last own op in the log
    log: list = field(default_factory=list)  # own ops, wire arrays, in log order
    seq: int = 0  # pushes sent
    pending: Optional[dict] = None
    through: int = 0
    cursor: int = 0
    repair: bool = False
    ruleset: str = ""
    rows: dict = field(default_factory=dict)  # (entity, id) -> {"hlc", "origin", "stamps", "deleted", "values"}

    def outbox(self) -> list:
        return [op for op in self.log if op[9] > self.through]


def enrollment_line(tablet: Tablet) -> str:
    request = {"device_id": tablet.device_id, "name": tablet.name,
               "sign_key": b64(raw_public(tablet.sign)), "box_key": b64(raw_public(tablet.box))}
    request["signature"] = b64(tablet.sign.sign(canonical(request)))
    return "wangge-enroll:1:" + b64url(json.dumps(request, ensure_ascii=False).encode("utf-8"))


def fingerprint(tablet: Tablet) -> str:
    text = f"{b64(raw_public(tablet.sign))}|{b64(raw_public(tablet.box))}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def trust(tablet: Tablet, text: str) -> None:
    """Learn the master from its card, refusing one made for another tablet or not signed by its key."""
    prefix = "wangge-master:1:"
    assert text.startswith(prefix)
    card = json.loads(unb64url(text[len(prefix):]))
    signature = unb64(card.pop("signature"))
    assert card["device_id"] == tablet.device_id
    Ed25519PublicKey.from_public_bytes(unb64(card["sign_key"])).verify(signature, canonical(card, ascii_only=True))
    tablet.master_id, tablet.master_sign, tablet.master_box = (
        card["master_id"], unb64(card["sign_key"]), unb64(card["box_key"]))


def record(tablet: Tablet, entity: str, entity_id: str, kind: str, fields: dict, seen: Optional[dict] = None) -> list:
    """Log one change as a wire op and merge it into the tablet's own rows, as a received op would be."""
    tablet.hlc = max(tablet.hlc + 1, wall_ms() << 16)
    tablet.position += 1
    op = [uuid7(), entity, entity_id, tablet.hlc, WORKER, tablet.device_id, kind, fields, seen, tablet.position]
    tablet.log.append(op)
    merge(tablet.rows, op)
    return op


def fold(updates: list) -> list:
    """One row's unsent updates as one op: the last one's id, stamp and position, each field's last
    value, and in ``stamps`` the stamp of every field whose value an earlier update set."""
    last = updates[-1]
    fields, stamps = {}, {}
    for op in updates:
        for name, value in op[7].items():
            fields[name], stamps[name] = value, op[3]
    return [*last[:7], fields, None, last[9], {name: s for name, s in stamps.items() if s != last[3]}]


def merge(rows: dict, op: list) -> None:
    """Per-field last writer wins by (hlc, device); a row's insert stamp stands for fields never updated."""
    _, entity, entity_id, hlc, _, device, kind, fields, _, _ = op[:10]
    stamps = op[10] if len(op) == 11 else {}
    row = rows.get((entity, entity_id))
    if row is None:
        assert kind in ("insert", "append"), f"an op for a row this tablet lacks: {op}"
        rows[(entity, entity_id)] = {"hlc": hlc, "origin": device, "deleted": None, "values": dict(fields),
                                     "stamps": {name: [s, device] for name, s in stamps.items()}}
        return
    if kind == "delete":
        row["deleted"] = hlc if row["deleted"] is None else max(row["deleted"], hlc)
        return
    for name, value in fields.items():
        mine = (stamps.get(name, hlc), device)
        held = tuple(row["stamps"][name]) if name in row["stamps"] else (row["hlc"], row["origin"])
        if mine > held:
            row["stamps"][name], row["values"][name] = list(mine), value


def checksums(rows: dict) -> dict:
    out = {}
    for entity in CHECKSUMMED:
        # Cases and case events digest a status derived from the lifecycle, which this tablet never records.
        assert entity not in ("case", "case_event") or not any(e == entity for e, _ in rows)
        digest = hashlib.sha256()
        for entity_id in sorted((i for e, i in rows if e == entity), key=lambda i: i.encode("utf-8")):
            row = rows[(entity, entity_id)]
            deleted = "None" if row["deleted"] is None else str(row["deleted"])
            stamps = json.dumps(row["stamps"], sort_keys=True)
            digest.update(f"{entity_id}|{row['hlc']}|{row['origin']}|{deleted}|{stamps}|()\n".encode("utf-8"))
        out[entity] = digest.hexdigest()
    return out


# -- bundles ---------------------------------------------------------------------------------------

def seal_key(shared: bytes, eph_public: bytes, recipient_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_public + recipient_public,
                info=SEAL_INFO).derive(shared)


@dataclass
class Draft:
    """A push before it is sealed, so a test can break one rule of it."""

    header: dict
    body: dict


def draft_push(tablet: Tablet, ops: Optional[list] = None) -> Draft:
    body = {"ops": tablet.outbox() if ops is None else ops, "cursor": tablet.cursor, "repair": tablet.repair,
            "ruleset": tablet.ruleset}
    header = {"v": 1, "kind": "push", "id": uuid7(), "from": tablet.device_id, "to": tablet.master_id,
              "seq": tablet.seq + 1}
    return Draft(header, body)


def seal(tablet: Tablet, draft: Draft, *, edit: Callable[[dict], None] = lambda header: None, magic: bytes = MAGIC,
         aad: Optional[bytes] = None, signer: Optional[Ed25519PrivateKey] = None, trailer: bytes = b"") -> bytes:
    """Compress, seal to the master and sign; the keywords break one rule each."""
    raw = json.dumps(draft.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    eph = X25519PrivateKey.generate()
    header = {**draft.header, "eph": b64(raw_public(eph)), "body": len(raw)}
    edit(header)
    header_bytes = canonical(header)
    shared = eph.exchange(X25519PublicKey.from_public_bytes(tablet.master_box))
    key = seal_key(shared, raw_public(eph), tablet.master_box)
    payload = ChaCha20Poly1305(key).encrypt(NONCE, zlib.compress(raw), header_bytes if aad is None else aad)
    unsigned = magic + u32(len(header_bytes)) + header_bytes + u32(len(payload)) + payload
    return unsigned + (signer or tablet.sign).sign(unsigned) + trailer


def push(tablet: Tablet, ops: Optional[list] = None) -> bytes:
    draft = draft_push(tablet, ops)
    data = seal(tablet, draft)
    tablet.seq += 1
    tablet.pending = {"id": draft.header["id"], "seq": draft.header["seq"]}
    return data


def open_bundle(data: bytes, sender_sign: bytes, box: X25519PrivateKey) -> tuple[dict, dict]:
    """Layout, then the signature, and only then key, decryption and inflation."""
    assert data[:4] == MAGIC
    (hlen,) = struct.unpack_from(">I", data, 4)
    assert 1 <= hlen <= 4096
    header_bytes = data[8 : 8 + hlen]
    (plen,) = struct.unpack_from(">I", data, 8 + hlen)
    assert len(data) == 12 + hlen + plen + SIGNATURE_BYTES
    Ed25519PublicKey.from_public_bytes(sender_sign).verify(data[-SIGNATURE_BYTES:], data[:-SIGNATURE_BYTES])
    header = json.loads(header_bytes)
    assert set(header) == HEADER_FIELDS and header["v"] == 1
    eph = unb64(header["eph"])
    key = seal_key(box.exchange(X25519PublicKey.from_public_bytes(eph)), eph, raw_public(box))
    packed = ChaCha20Poly1305(key).decrypt(NONCE, data[12 + hlen : 12 + hlen + plen], header_bytes)
    inflater = zlib.decompressobj()
    raw = inflater.decompress(packed, header["body"] + 1)
    assert len(raw) == header["body"] and inflater.eof
    return header, json.loads(raw)


def accept(tablet: Tablet, data: bytes) -> tuple[dict, dict]:
    """Check that the reply answers the pending push, then apply it as the Reply body section says."""
    header, body = open_bundle(data, tablet.master_sign, tablet.box)
    assert (header["kind"], header["from"], header["to"]) == ("reply", tablet.master_id, tablet.device_id)
    assert header["seq"] == tablet.pending["seq"] and body["ack"]["bundle"] == tablet.pending["id"]
    if body["reset"]:
        tablet.rows.clear()
        tablet.log.clear()
    for entity, ids in body["evict"].items():
        for entity_id in ids:
            tablet.rows.pop((entity, entity_id), None)
    for op in body["ops"]:
        merge(tablet.rows, op)
        tablet.hlc = max(tablet.hlc, op[3], *(op[10].values() if len(op) == 11 else ()))
    tablet.through = max(tablet.through, body["ack"]["through"])
    tablet.cursor = body["upto"]
    if body["ruleset"] is not None:
        tablet.ruleset = hashlib.sha256(body["ruleset"].encode("utf-8")).hexdigest()
    tablet.pending = None
    tablet.repair = checksums(tablet.rows) != body["checksums"]
    return header, body


# -- the master, set up with wangge -----------------------------------------------------------------

@dataclass
class World:
    master: MasterSync
    office: store.Store
    path: str
    tablet: Tablet


def make_world(folder) -> World:
    keys = DeviceKeys.generate()
    path = str(folder / "master.db")
    office = store.init(path, "master", device_id="master", extra_migrations=tables.MIGRATIONS)
    tablet = Tablet("tab-li", "李芳的平板")
    with office.write(actor="office") as rec:
        rec.insert("grid_cell", {"id": "root", "code": "01", "level": "community", "name": "社区"})
        rec.insert("grid_cell", {"id": "g1", "code": "01.01", "level": "grid", "name": "一", "upper_id": "root"})
        rec.insert("grid_cell", {"id": "g2", "code": "01.02", "level": "grid", "name": "二", "upper_id": "root"})
        rec.insert("worker", {"id": WORKER, "name": "李芳", "role": "网格员"})
        rec.insert("assignment", {"id": "a-li-g1", "worker_id": WORKER, "grid_id": "g1"})
        enrollment.submit(rec, enrollment.EnrollmentRequest.from_text(enrollment_line(tablet)))
        enrollment.approve(rec, tablet.device_id, WORKER)
    sign, box = keys.public.b64()
    trust(tablet, enrollment.make_card("master", sign, box, tablet.device_id, keys.sign).to_text())
    return World(MasterSync(office, keys, ruleset=small_ruleset()), office, path, tablet)


@pytest.fixture
def world(tmp_path):
    made = make_world(tmp_path)
    yield made
    made.office.close()


def query(world: World, sql: str, *args) -> list:
    # Read straight from the file: what the master committed, not what its engine caches.
    with closing(sqlite3.connect(f"file:{world.path}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, args).fetchall()


def dump(world: World) -> list[str]:
    with closing(sqlite3.connect(world.path)) as conn:
        return list(conn.iterdump())


def household_and_visit(tablet: Tablet, grid: str = "g1") -> tuple[list, list]:
    hid, vid = uuid7(), uuid7()
    household = record(tablet, "household", hid, "insert", {"id": hid, "grid_id": grid, "address": "3-201",
                                                            "head_name": "王芳", "members": 2, "pets": 1})
    visit = record(tablet, "visit", vid, "append", {"id": vid, "household_id": hid, "grid_id": grid,
                                                    "worker_id": WORKER, "at": "2024-05-01T09:30:00+08:00",
                                                    "minutes": 25, "purpose": "走访"})
    return household, visit


def first_sync(world: World) -> tuple[list, list, dict, dict]:
    household, visit = household_and_visit(world.tablet)
    reply, _ = world.master.exchange(push(world.tablet))
    header, body = accept(world.tablet, reply)
    return household, visit, header, body


# -- enrollment -------------------------------------------------------------------------------------

def test_enrollment_texts_made_by_the_document_register_the_tablet(world):
    with world.office.read() as conn:
        device = {d["device_id"]: d for d in enrollment.list_devices(conn)}[world.tablet.device_id]
    assert (device["status"], device["name"]) == ("active", "李芳的平板")
    assert device["fingerprint"].replace(" ", "") == fingerprint(world.tablet)
    assert world.tablet.master_id == "master"


# -- 1. a push built by the document is applied -----------------------------------------------------

def test_a_push_built_from_the_document_is_applied_at_the_master(world):
    tablet = world.tablet
    household, visit = household_and_visit(tablet)
    world.master.exchange(push(tablet))
    hid, vid = household[2], visit[2]
    assert query(world, "SELECT grid_id, address, head_name, members, fields, hlc, origin, deleted "
                        "FROM household WHERE id = ?", hid) == [
        ("g1", "3-201", "王芳", 2, '{"pets": 1}', household[3], tablet.device_id, None)]
    assert query(world, "SELECT household_id, worker_id, minutes, purpose, hlc, origin FROM visit WHERE id = ?",
                 vid) == [(hid, WORKER, 25, "走访", visit[3], tablet.device_id)]
    logged = query(world, "SELECT op_id, kind, device FROM op WHERE device = ? ORDER BY seq", tablet.device_id)
    assert logged == [(household[0], "insert", tablet.device_id), (visit[0], "append", tablet.device_id)]


def test_folded_and_critical_updates_merge_at_the_master_field_by_field(world):
    tablet = world.tablet
    household, _, _, _ = first_sync(world)
    hid = household[2]
    first = record(tablet, "household", hid, "update", {"members": 3, "pets": 2})
    # A critical field travels alone, with the stamp of the value the worker saw: here the insert's.
    moved = record(tablet, "household", hid, "update", {"address": "3-202"},
                   seen={"address": [household[3], tablet.device_id]})
    last = record(tablet, "household", hid, "update", {"pets": 3})
    folded = fold([first, last])
    assert folded[10] == {"members": first[3]}
    reply, _ = world.master.exchange(push(tablet, [moved, folded]))
    _, body = accept(tablet, reply)
    assert body["ack"]["through"] == last[9] and body["ack"]["applied"] == 2
    (members, fields, address, stamps), = query(
        world, "SELECT members, fields, address, stamps FROM household WHERE id = ?", hid)
    assert (members, json.loads(fields), address) == (3, {"pets": 3}, "3-202")
    assert json.loads(stamps) == {"members": [first[3], tablet.device_id], "pets": [last[3], tablet.device_id],
                                  "address": [moved[3], tablet.device_id]}
    assert query(world, "SELECT COUNT(*) FROM sync_conflict") == [(0,)]
    assert tablet.outbox() == []


# -- 2. the reply opens by the document ------------------------------------------------------------

def test_the_reply_opens_by_the_document_and_acknowledges_the_push(world):
    tablet = world.tablet
    _, visit = household_and_visit(tablet)
    data = push(tablet)
    pushed = tablet.pending["id"]
    reply, _ = world.master.exchange(data)
    header, body = accept(tablet, reply)

    assert header["seq"] == 1 and header["id"] != pushed and 1 <= len(header["id"]) <= 64
    assert set(body) == {"ack", "master", "reset", "upto", "ops", "evict", "checksums", "ruleset"}
    ack = body["ack"]
    assert set(ack) == {"bundle", "through", "applied", "quarantined", "clock", "max_drift_ms"}
    assert (ack["bundle"], ack["through"], ack["applied"], ack["quarantined"]) == (pushed, 2, 2, [])
    assert ack["max_drift_ms"] == DRIFT_BOUND_MS
    assert ack["clock"] >= visit[3] and abs((ack["clock"] >> 16) - wall_ms()) < 60_000
    assert (body["master"], body["reset"], body["evict"]) == ("master", False, {})
    assert body["upto"] == query(world, "SELECT MAX(seq) FROM op")[0][0]

    ops = body["ops"]
    assert all(len(op) in (10, 11) and op[8] is None and op[5] != tablet.device_id for op in ops)
    assert [op[9] for op in ops] == sorted(op[9] for op in ops) and ops[-1][9] <= body["upto"]
    assert {op[1] for op in ops} == SHARED
    assert {op[2] for op in ops if op[1] == "grid_cell"} == {"root", "g1", "g2"}
    assert set(body["checksums"]) == set(CHECKSUMMED)

    # The rules came as canonical JSON; naming their version gets none, and an empty push keeps `through`.
    assert json.loads(body["ruleset"])["name"] == "t"
    reply, _ = world.master.exchange(push(tablet, []))
    _, again = accept(tablet, reply)
    assert (again["ruleset"], again["ack"]["through"], again["ack"]["applied"], again["ops"]) == (None, 2, 0, [])


# -- 3. scope checksums computed by the document ---------------------------------------------------

def test_checksums_computed_by_the_document_match_the_masters_after_edits_both_ways(world):
    tablet = world.tablet
    household, _, _, body = first_sync(world)
    assert checksums(tablet.rows) == body["checksums"] and not tablet.repair
    hid = household[2]
    with world.office.write(actor="office") as rec:
        rec.update("household", hid, {"floor": 5, "address": "3-201室"})
    edit = record(tablet, "household", hid, "update", {"pets": 2})
    moved = record(tablet, "household", hid, "update", {"address": "3-202"},
                   seen={"address": [household[3], tablet.device_id]})
    reply, _ = world.master.exchange(push(tablet, [edit, moved]))
    _, body = accept(tablet, reply)

    assert [(op[1], op[2], op[6], op[5]) for op in body["ops"]] == [("household", hid, "update", "master")]
    assert checksums(tablet.rows) == body["checksums"] and not tablet.repair
    # The worker saw the insert's address, the office had changed it since: one value goes to review.
    conflicts = query(world, "SELECT entity_id, field, kept, lost FROM sync_conflict WHERE kind = 'critical'")
    assert [(e, f, {json.loads(k), json.loads(lo)}) for e, f, k, lo in conflicts] == [
        (hid, "address", {"3-201室", "3-202"})]


def test_a_differing_checksum_asks_for_a_repair_and_gets_the_whole_scope(world):
    tablet = world.tablet
    household, visit, _, body = first_sync(world)
    del tablet.rows[("visit", visit[2])]
    tablet.repair = checksums(tablet.rows) != body["checksums"]
    assert tablet.repair
    reply, _ = world.master.exchange(push(tablet))
    _, body = accept(tablet, reply)
    assert body["reset"] is True
    assert {household[0], visit[0]} <= {op[0] for op in body["ops"]}
    assert checksums(tablet.rows) == body["checksums"] and not tablet.repair


# -- 4. a bundle breaking one rule is refused and changes nothing ----------------------------------

OP_ITEMS = ("op_id", "entity", "entity_id", "hlc", "actor", "device", "kind", "fields", "seen", "seq")


def with_household(tablet: Tablet, grid: str = "g1", **items) -> Draft:
    """A push of one new household, valid unless ``items`` replace some of its op's items."""
    hid = uuid7()
    tablet.hlc = max(tablet.hlc + 1, wall_ms() << 16)
    op = [uuid7(), "household", hid, tablet.hlc, WORKER, tablet.device_id, "insert",
          {"id": hid, "grid_id": grid, "address": "9-901"}, None, tablet.position + 1]
    for name, value in items.items():
        op[OP_ITEMS.index(name)] = value
    return draft_push(tablet, [op])


def op_with(**items) -> Callable[[Tablet], Draft]:
    return lambda tablet: with_household(tablet, **items)


def body_with(**values) -> Callable[[Tablet], Draft]:
    """A valid push whose body has ``values`` instead (None: the field left out)."""
    def made(tablet: Tablet) -> Draft:
        draft = with_household(tablet)
        draft.body.update(values)
        draft.body = {name: value for name, value in draft.body.items() if value is not None}
        return draft
    return made


def set_header(**values) -> Callable[[dict], None]:
    return lambda header: header.update(values)


BROKEN = {
    "wrong magic": (with_household, dict(magic=b"WGB\x02"), "not a wangge bundle"),
    "a header with an extra field": (with_household, dict(edit=set_header(note="x")), "exactly the fields"),
    "a header version as a float": (with_household, dict(edit=set_header(v=1.0)), "'v' must be int"),
    "an ephemeral key of 16 bytes": (with_household, dict(edit=set_header(eph=b64(bytes(16)))), "eph must be"),
    "a body length one too many": (with_household, dict(edit=lambda h: h.update(body=h["body"] + 1)),
                                   "not the .* bytes its header declares"),
    "a byte after the signature": (with_household, dict(trailer=b"\0"), "too long"),
    "a reply's kind": (with_household, dict(edit=set_header(kind="reply")), "is a reply"),
    "another recipient": (with_household, dict(edit=set_header(to="master-2")), "expected a push for this master"),
    "an unknown sender": (with_household, dict(edit=set_header(**{"from": "tab-x"})), "not enrolled"),
    "a signature by another key": (with_household, dict(signer=Ed25519PrivateKey.generate()), "does not verify"),
    "a seq not above the last": (with_household, dict(edit=set_header(seq=2)), "not above the last accepted"),
    "an AAD other than the header": (with_household, dict(aad=b"{}"), "does not decrypt"),
    "no cursor": (body_with(cursor=None), {}, "'cursor' must be a non-negative integer"),
    "a cursor below the acknowledged": (body_with(cursor=0), {}, "below the .* it acknowledged"),
    "a new op at an acknowledged seq": (op_with(seq=1), {}, "already acknowledged"),
    "a stamp given as true": (op_with(hlc=True), {}, "wrong type"),
    "another device's op": (op_with(device="tab-2"), {}, "may only push its own ops"),
    "a grid the worker never held": (op_with(grid="g2"), {}, "not among the worker's grids"),
    "an append-only entity inserted": (op_with(entity="visit"), {}, "takes append ops only"),
}


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """A tablet past two exchanges: the master has acknowledged a cursor above 0 and pushes 1 and 2."""
    made = make_world(tmp_path_factory.mktemp("refusals"))
    first_sync(made)
    accept(made.tablet, made.master.exchange(push(made.tablet, []))[0])
    yield made
    made.office.close()


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_bundle_breaking_one_rule_is_refused_and_changes_nothing(synced, case):
    make, breaks, reason = BROKEN[case]
    data = seal(synced.tablet, make(synced.tablet), **breaks)
    before = dump(synced)
    with pytest.raises(SyncError, match=reason):
        synced.master.exchange(data)
    assert dump(synced) == before


def test_the_same_push_again_gets_the_same_reply_and_an_older_one_is_refused(world):
    tablet = world.tablet
    household_and_visit(tablet)
    data = push(tablet)
    reply, _ = world.master.exchange(data)
    before = dump(world)
    assert world.master.exchange(data)[0] == reply
    assert dump(world) == before
    accept(tablet, reply)
    accept(tablet, world.master.exchange(push(tablet, []))[0])
    before = dump(world)
    with pytest.raises(SyncError, match="already imported"):
        world.master.exchange(data)
    assert dump(world) == before
