"""Importing a bundle of 100k field ops on the master, end to end.

10,000 households (UUIDv7 keys) with 10 fields each: 100k field values. Two
shapes of the same values, each timed end to end on a WAL SQLite master
(parse, verify, decrypt, authorise, merge, log, commit, build the signed
reply), best of three on a fresh master each time:

- new records: a tablet's bundle inserts the 10,000 households, 10 fields
  each (10,000 ops carrying 100k field values);
- field edits: the households exist on both sides and the tablet made 100k
  one-field updates, which it folds into one op per household before
  sending (every field keeps its own stamp).

Baselines measured in the same run: `sqlite3.executemany` upserting the same
10,000 final rows into the master's own household table (same columns,
indexes and foreign keys: the cost of storing what the import stores), from
the state the master starts in (no rows for new records; the households with
blank fields for edits, so the baseline updates rows as the master does), the
same into a bare three-column table (the cost of the data alone), the same
rows plus one op-log row per op written raw (what a master that keeps an op
log to forward must store: the floor of this design), the least any Python
master does with the bundle (inflate and decode the tablet's own bundle body,
build the rows, store them: no checks, stamps, log or reply), and pycrdt
applying the same 100k field updates to a document. Re-importing a bundle
must be a cheap no-op.
"""
from __future__ import annotations

import json
import sqlite3
import tempfile
import time
import zlib
from pathlib import Path

from wangge.bench.harness import ratio_line
from wangge.core import store
from wangge.core.ids import uuid7
from wangge.sync import bundle, enrollment
from wangge.sync.log import tables
from wangge.sync.keys import DeviceKeys
from wangge.sync.device.exchange import DeviceSync
from wangge.sync.master.exchange import MasterSync
from wangge.sync.protocol import Peer

ENTITIES, FIELDS = 10_000, [f"f{i:02d}" for i in range(10)]
REPEAT = 3


class Pair:
    """A master and an enrolled tablet, synced once, on fresh files."""

    def __init__(self, folder: Path, master_keys: DeviceKeys, tablet_keys: DeviceKeys):
        tag = uuid7()
        self.master = store.init(str(folder / f"master-{tag}.db"), "master", device_id="master",
                                 extra_migrations=tables.MIGRATIONS)
        with self.master.write(actor="office") as rec:
            rec.insert("grid_cell", {"id": "g1", "code": "01", "level": "grid", "name": "g"})
            rec.insert("worker", {"id": "w1", "name": "w", "role": "网格员"})
            rec.insert("assignment", {"worker_id": "w1", "grid_id": "g1"})
            enrollment.submit(rec, enrollment.make_request("tab", "t", tablet_keys.public.sign, tablet_keys.public.box,
                                                           tablet_keys.sign))
            enrollment.approve(rec, "tab", "w1")
        self.tablet = store.init(str(folder / f"tablet-{tag}.db"), "device", device_id="tab",
                                 extra_migrations=tables.MIGRATIONS)
        self.device = DeviceSync(self.tablet, tablet_keys, Peer("master", master_keys.public))
        self.master_sync = MasterSync(self.master, master_keys)
        self.sync()

    def sync(self) -> None:
        self.device.accept_reply(self.master_sync.exchange(self.device.make_push())[0])

    def close(self) -> None:
        self.master.close()
        self.tablet.close()


def new_records(rows: list[dict]):
    def record(pair: Pair) -> None:
        with pair.tablet.write(actor="w1") as rec:
            rec.insert_many("household", rows)
    return record


def field_edits(rows: list[dict]):
    blank = [{"id": r["id"], "grid_id": "g1"} for r in rows]
    edits = [(r["id"], {f: r[f]}) for f in FIELDS for r in rows]

    def record(pair: Pair) -> None:
        with pair.tablet.write(actor="w1") as rec:
            rec.insert_many("household", blank)
        pair.sync()
        with pair.tablet.write(actor="w1") as rec:
            rec.update_many("household", edits)
    return record


def import_time(folder: Path, record) -> tuple[float, float, int, int, str, bytes]:
    """Best end-to-end import of the tablet's bundle; also a re-import's time, the bundle's size and
    number of ops, the re-import's summary, and the bundle's body as sealed (compressed)."""
    master_keys, tablet_keys = DeviceKeys.generate(), DeviceKeys.generate()
    best, again, size, sent, summary, packed = float("inf"), 0.0, 0, 0, "", b""
    for _ in range(REPEAT):
        pair = Pair(folder, master_keys, tablet_keys)
        record(pair)
        push = pair.device.make_push()
        start = time.perf_counter()
        _, applied = pair.master_sync.exchange(push)
        seconds = time.perf_counter() - start
        if seconds < best:
            start = time.perf_counter()
            _, summary = pair.master_sync.exchange(push)
            best, again, size = seconds, time.perf_counter() - start, len(push)
            sent = int(applied.split(" ops applied", 1)[0])
            envelope = bundle.parse(push)
            packed = master_keys.open(envelope.header.eph, envelope.payload, envelope.header_bytes)
        pair.close()
    return best, again, size, sent, summary, packed


def decode_and_store(folder: Path, rows: list[dict], packed: bytes, edits: bool) -> float:
    """Best time of the least a Python master does with the bundle: inflate and decode its body,
    build each row's values from its op, store them (raw `executemany`) and commit. No signature,
    decryption, checks, merge, op log or reply: what the import costs before it does its job."""
    best = float("inf")
    for _ in range(REPEAT):
        path = folder / f"decode-{uuid7()}.db"
        with store.init(str(path), "master") as made, made.write() as rec:
            rec.insert("grid_cell", {"id": "g1", "code": "01", "level": "grid", "name": "g"})
        conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        if edits:
            conn.executemany("INSERT INTO household (id, grid_id, address, head_name, members, fields, hlc, origin, "
                             "stamps) VALUES (?, 'g1', '', '', 0, '{}', 1, 'tab', '{}')", [(r["id"],) for r in rows])
        start = time.perf_counter()
        ops = json.loads(zlib.decompress(packed))["ops"]
        conn.execute("BEGIN")
        if edits:
            conn.executemany("UPDATE household SET fields = json_patch(fields, ?) WHERE id = ?",
                             [(json.dumps(op[7], ensure_ascii=False), op[2]) for op in ops])
        else:
            conn.executemany("INSERT INTO household (hlc, origin, stamps, id, grid_id, address, head_name, members, "
                             "fields) VALUES (?, ?, '{}', ?, ?, '', '', 1, ?)",
                             [(op[3], op[5], op[2], op[7]["grid_id"],
                               json.dumps({k: v for k, v in op[7].items() if k != "grid_id"}, ensure_ascii=False))
                              for op in ops])
        conn.execute("COMMIT")
        best = min(best, time.perf_counter() - start)
        conn.close()
    return best


def raw_upsert(folder: Path, rows: list[dict], same_schema: bool, existing: bool) -> float:
    """Best time of `sqlite3.executemany` upserting the final rows, nothing else; ``existing``
    starts from the rows already there with blank fields, as the master does for field edits."""
    best = float("inf")
    for _ in range(REPEAT):
        path = folder / f"raw-{uuid7()}.db"
        if same_schema:  # the master's own tables, indexes and foreign keys, and the grid cell
            with store.init(str(path), "master") as made, made.write() as rec:
                rec.insert("grid_cell", {"id": "g1", "code": "01", "level": "grid", "name": "g"})
        conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        if existing and same_schema:
            conn.executemany("INSERT INTO household (id, grid_id, address, head_name, members, fields, hlc, origin, "
                             "stamps) VALUES (?, 'g1', '', '', 0, '{}', 1, 'tab', '{}')", [(r["id"],) for r in rows])
        if same_schema:
            stamps = json.dumps({f: [1, "tab"] for f in FIELDS})
            sql = ("INSERT INTO household (hlc, origin, stamps, deleted, id, grid_id, building_id, address, "
                   "head_name, members, fields) VALUES (?, 'tab', ?, NULL, ?, 'g1', NULL, '', '', 1, ?) "
                   "ON CONFLICT(id) DO UPDATE SET fields = excluded.fields, stamps = excluded.stamps")
            params = [(1, stamps, r["id"], json.dumps({f: r[f] for f in FIELDS}, ensure_ascii=False)) for r in rows]
        else:
            conn.execute("CREATE TABLE household (id TEXT PRIMARY KEY, grid_id TEXT, fields TEXT)")
            if existing:
                conn.executemany("INSERT INTO household VALUES (?, 'g1', '{}')", [(r["id"],) for r in rows])
            sql = "INSERT INTO household VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET fields = excluded.fields"
            params = [(r["id"], r["grid_id"], json.dumps({f: r[f] for f in FIELDS}, ensure_ascii=False)) for r in rows]
        start = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(sql, params)
        conn.execute("COMMIT")
        best = min(best, time.perf_counter() - start)
        conn.close()
    return best


def raw_floor(folder: Path, rows: list[dict], edits: bool) -> float:
    """Best time of `sqlite3.executemany` writing what an op-log master must store, nothing else:
    the final rows and one op-log row per op, into the master's own tables and indexes."""
    best = float("inf")
    stamps = json.dumps({f: [2**57 + n, "tab"] for n, f in enumerate(FIELDS)})
    for _ in range(REPEAT):
        path = folder / f"floor-{uuid7()}.db"
        with store.init(str(path), "master", extra_migrations=tables.MIGRATIONS) as made, made.write() as rec:
            rec.insert("grid_cell", {"id": "g1", "code": "01", "level": "grid", "name": "g"})
            if edits:
                rec.conn.exec_driver_sql("INSERT INTO household (id, grid_id, address, head_name, members, fields, "
                                         "hlc, origin, stamps) VALUES (?, 'g1', '', '', 0, '{}', 1, 'tab', '{}')",
                                         [(r["id"],) for r in rows])
        conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        values = [(r["id"], json.dumps({f: r[f] for f in FIELDS}, ensure_ascii=False)) for r in rows]
        ops = [(uuid7(), "household", i, 2**57 + n, "w1", "tab", "update" if edits else "insert", fields,
                json.dumps({f: 2**57 + k for k, f in enumerate(FIELDS[:-1])}) if edits else None)
               for n, (i, fields) in enumerate(values)]
        start = time.perf_counter()
        conn.execute("BEGIN")
        if edits:
            conn.executemany("UPDATE household SET fields = ?, stamps = ? WHERE id = ?",
                             [(fields, stamps, i) for i, fields in values])
        else:
            conn.executemany("INSERT INTO household (hlc, origin, stamps, deleted, id, grid_id, building_id, address, "
                             "head_name, members, fields) VALUES (1, 'tab', '{}', NULL, ?, 'g1', NULL, '', '', 1, ?)",
                             values)
        conn.executemany("INSERT INTO op (op_id, entity, entity_id, hlc, actor, device, kind, fields, stamps) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", ops)
        conn.execute("COMMIT")
        best = min(best, time.perf_counter() - start)
        conn.close()
    return best


def pycrdt_apply(rows: list[dict], edits: bool) -> float:
    """Best time of pycrdt applying the same 100k field updates (as one update) to a document."""
    from pycrdt import Doc, Map

    source = Doc()
    households = source.get("households", type=Map)
    base = b""
    if edits:  # the households exist on both sides; the update carries 100k one-field edits
        with source.transaction():
            for r in rows:
                households[r["id"]] = Map()
        base = source.get_update()
        state = source.get_state()
        for f in FIELDS:
            for r in rows:
                households[r["id"]][f] = r[f]
        update = source.get_update(state)
    else:
        with source.transaction():
            for r in rows:
                households[r["id"]] = Map({f: r[f] for f in FIELDS})
        update = source.get_update()
    best = float("inf")
    for _ in range(REPEAT):
        target = Doc()
        if base:
            target.apply_update(base)
        start = time.perf_counter()
        target.apply_update(update)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    rows = [{"id": uuid7(), "grid_id": "g1", **{f: f"{f}-{n}" for f in FIELDS}} for n in range(ENTITIES)]
    values = ENTITIES * len(FIELDS)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        print(f"bench_import: {values:,} field values over {ENTITIES:,} households; best of {REPEAT}")
        for shape, record, edits in (("new records: 10,000 inserts of 10 fields", new_records(rows), False),
                                     ("field edits: 100,000 one-field updates", field_edits(rows), True)):
            same = raw_upsert(folder, rows, same_schema=True, existing=edits)
            bare = raw_upsert(folder, rows, same_schema=False, existing=edits)
            seconds, again, size, sent, summary, packed = import_time(folder, record)
            # The tablet folds each row's updates into one op before sending (sync/ops.py `coalesce`).
            print(f"  {shape}, sent as {sent:,} ops")
            print(f"    import end to end: {seconds * 1000:.0f} ms = {values / seconds:,.0f} field values/s "
                  f"({sent / seconds:,.0f} ops/s)")
            print(f"    wire: {size:,} bytes = {size / sent:.1f} bytes per op, {size / values:.1f} per field value")
            print("    " + ratio_line("vs executemany upsert into the master's household table", seconds, same, 3))
            print("    " + ratio_line("vs executemany upsert into a bare 3-column table", seconds, bare))
            floor = raw_floor(folder, rows, edits)
            print("    " + ratio_line("vs executemany of the same rows plus their op-log rows (the storage alone)",
                                      seconds, floor))
            print(f"      (the storage alone is {floor / same:.2f}x the upsert: the floor of a master that logs ops)")
            least = decode_and_store(folder, rows, packed, edits)
            print("    " + ratio_line("vs decoding the bundle's body and storing its rows, nothing else", seconds, least))
            print(f"      (decoding and storing alone is {least / same:.2f}x the upsert: the least a Python master pays)")
            print("    " + ratio_line("vs pycrdt applying the same field updates", seconds, pycrdt_apply(rows, edits)))
            print(f"    re-import of the same bundle: {again * 1000:.1f} ms ({summary})")


if __name__ == "__main__":
    main()
