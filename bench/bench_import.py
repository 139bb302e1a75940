"""Importing a bundle of 100k field ops on the master, end to end.

Run: ``python -m wangge.bench.bench_import [--json] [--households N]``.

10,000 households (UUIDv7 keys) with 10 fields each: 100k field values. Two
shapes of the same values, each timed end to end on a WAL SQLite master
(parse, verify, decrypt, authorise, merge, log, commit, build the signed
reply), in CPU time and wall time, the median of three on a fresh master
each time (the tablet writes a version 2 bundle: ops in columns):

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

Targets: at most 4x the upsert into the master's table for new records and
5x for edits, and at most 2x pycrdt; each ratio is printed in CPU time and in
wall time (the upsert's wall time is mostly the commit's fsync, its CPU time
only Python handing rows to SQLite). `--json` prints one line
of figures (``new_x_upsert_cpu``, ``edits_x_pycrdt_wall``, ...) instead of
the table.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable, NamedTuple

import msgpack

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
TARGETS = {"new": 4.0, "edits": 5.0, "pycrdt": 2.0}


class Timing(NamedTuple):
    """The median CPU time and wall time of ``REPEAT`` runs, in seconds."""

    cpu: float
    wall: float

    @staticmethod
    def of(runs: list[tuple[float, float]]) -> "Timing":
        return Timing(statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))


def measured(run: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one call of ``run``."""
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return time.process_time() - cpu, time.perf_counter() - wall


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


def import_time(folder: Path, record) -> tuple[Timing, float, int, int, str, bytes]:
    """The import of the tablet's bundle; also a re-import's wall time, the bundle's size and number
    of ops, the re-import's summary, and the bundle's body as sealed (compressed)."""
    master_keys, tablet_keys = DeviceKeys.generate(), DeviceKeys.generate()
    runs, again, size, sent, summary, packed = [], 0.0, 0, 0, "", b""
    for _ in range(REPEAT):
        pair = Pair(folder, master_keys, tablet_keys)
        record(pair)
        push = pair.device.make_push()
        answers = []
        runs.append(measured(lambda: answers.append(pair.master_sync.exchange(push))))
        if not packed:
            start = time.perf_counter()
            _, summary = pair.master_sync.exchange(push)
            again, size = time.perf_counter() - start, len(push)
            sent = int(answers[0][1].split(" ops applied", 1)[0])
            envelope = bundle.parse(push)
            packed = master_keys.open(envelope.header.eph, envelope.payload, envelope.header_bytes)
        pair.close()
    return Timing.of(runs), again, size, sent, summary, packed


def decode_and_store(folder: Path, rows: list[dict], packed: bytes, edits: bool) -> Timing:
    """The least a Python master does with the bundle: inflate and decode its body (version 2: ops
    in columns), build each row's values from its columns, store them (raw `executemany`) and
    commit. No signature, decryption, checks, merge, op log or reply: what the import costs before
    it does its job."""
    runs = []
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
        def store_rows():
            params = []
            for group in msgpack.unpackb(zlib.decompress(packed))["ops"]:
                names, columns = group["names"], group["values"]
                kept = [n for n, name in enumerate(names) if name != "grid_id"]
                grid = names.index("grid_id") if "grid_id" in names else None
                for i, entity_id in enumerate(group["entity_id"]):
                    fields = json.dumps({names[n]: columns[n][i] for n in kept}, ensure_ascii=False)
                    params.append((fields, entity_id) if edits else
                                  (group["hlc"][i], group["device"], entity_id, columns[grid][i], fields))
            conn.execute("BEGIN")
            if edits:
                conn.executemany("UPDATE household SET fields = json_patch(fields, ?) WHERE id = ?", params)
            else:
                conn.executemany("INSERT INTO household (hlc, origin, stamps, id, grid_id, address, head_name, "
                                 "members, fields) VALUES (?, ?, '{}', ?, ?, '', '', 1, ?)", params)
            conn.execute("COMMIT")
        runs.append(measured(store_rows))
        conn.close()
    return Timing.of(runs)


def raw_upsert(folder: Path, rows: list[dict], same_schema: bool, existing: bool) -> Timing:
    """`sqlite3.executemany` upserting the final rows, nothing else; ``existing`` starts from the
    rows already there with blank fields, as the master does for field edits."""
    runs = []
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
        runs.append(measured(lambda: (conn.execute("BEGIN"), conn.executemany(sql, params), conn.execute("COMMIT"))))
        conn.close()
    return Timing.of(runs)


def raw_floor(folder: Path, rows: list[dict], edits: bool) -> Timing:
    """`sqlite3.executemany` writing what an op-log master must store, nothing else: the final
    rows and one op-log row per op, into the master's own tables and indexes."""
    runs = []
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
        def write_all():
            conn.execute("BEGIN")
            if edits:
                conn.executemany("UPDATE household SET fields = ?, stamps = ? WHERE id = ?",
                                 [(fields, stamps, i) for i, fields in values])
            else:
                conn.executemany("INSERT INTO household (hlc, origin, stamps, deleted, id, grid_id, building_id, "
                                 "address, head_name, members, fields) VALUES (1, 'tab', '{}', NULL, ?, 'g1', NULL, "
                                 "'', '', 1, ?)", values)
            conn.executemany("INSERT INTO op (op_id, entity, entity_id, hlc, actor, device, kind, fields, stamps) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", ops)
            conn.execute("COMMIT")
        runs.append(measured(write_all))
        conn.close()
    return Timing.of(runs)


def pycrdt_apply(rows: list[dict], edits: bool) -> Timing:
    """pycrdt applying the same 100k field updates (as one update) to a document."""
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
    runs = []
    for _ in range(REPEAT):
        target = Doc()
        if base:
            target.apply_update(base)
        runs.append(measured(lambda: target.apply_update(update)))
    return Timing.of(runs)


def measure(folder: Path, rows: list[dict], edits: bool) -> dict:
    """Every timing of one shape, and what the bundle carried."""
    record = field_edits(rows) if edits else new_records(rows)
    same = raw_upsert(folder, rows, same_schema=True, existing=edits)
    bare = raw_upsert(folder, rows, same_schema=False, existing=edits)
    seconds, again, size, sent, summary, packed = import_time(folder, record)
    return {"import": seconds, "upsert": same, "bare": bare, "floor": raw_floor(folder, rows, edits),
            "least": decode_and_store(folder, rows, packed, edits), "pycrdt": pycrdt_apply(rows, edits),
            "again": again, "size": size, "sent": sent, "summary": summary}


def figures(shape: str, m: dict) -> dict:
    """The ratios of one shape as the JSON line gives them: ``{shape}_x_{baseline}_{cpu|wall}``."""
    out = {f"{shape}_import_{kind}_ms": round(getattr(m["import"], kind) * 1000, 1) for kind in ("cpu", "wall")}
    for base in ("upsert", "pycrdt", "floor", "least", "bare"):
        for kind in ("cpu", "wall"):
            out[f"{shape}_x_{base}_{kind}"] = round(getattr(m["import"], kind) / getattr(m[base], kind), 2)
    out[f"{shape}_bytes_per_op"] = round(m["size"] / m["sent"], 1)
    return out


def report(title: str, shape: str, m: dict, values: int) -> None:
    seconds, sent = m["import"], m["sent"]
    print(f"  {title}, sent as {sent:,} ops")
    print(f"    import end to end: {seconds.wall * 1000:.0f} ms wall, {seconds.cpu * 1000:.0f} ms CPU = "
          f"{values / seconds.wall:,.0f} field values/s ({sent / seconds.wall:,.0f} ops/s)")
    print(f"    wire: {m['size']:,} bytes = {m['size'] / sent:.1f} bytes per op, {m['size'] / values:.1f} per field value")
    baselines = (("upsert", "executemany upsert into the master's household table", TARGETS[shape]),
                 ("pycrdt", "pycrdt applying the same field updates", TARGETS["pycrdt"]),
                 ("bare", "executemany upsert into a bare 3-column table", None),
                 ("floor", "executemany of the same rows plus their op-log rows (the storage alone)", None),
                 ("least", "decoding the bundle's columns and storing its rows, nothing else", None))
    for base, name, target in baselines:
        for kind in ("cpu", "wall"):
            print("    " + ratio_line(f"{kind.upper():4} vs {name}", getattr(seconds, kind), getattr(m[base], kind),
                                      target))
    print(f"      (the storage alone is {m['floor'].cpu / m['upsert'].cpu:.2f}x the upsert in CPU: the floor of a "
          f"master that logs ops; decoding and storing alone {m['least'].cpu / m['upsert'].cpu:.2f}x)")
    print(f"    re-import of the same bundle: {m['again'] * 1000:.1f} ms ({m['summary']})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_import", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="Print one line of JSON figures instead of the table.")
    parser.add_argument("--households", type=int, default=ENTITIES,
                        help=f"Households in the bundle (default {ENTITIES:,}); fewer for a quick run.")
    args = parser.parse_args(argv or [])
    households = args.households
    rows = [{"id": uuid7(), "grid_id": "g1", **{f: f"{f}-{n}" for f in FIELDS}} for n in range(households)]
    values = households * len(FIELDS)
    shapes = (("new", f"new records: {households:,} inserts of {len(FIELDS)} fields", False),
              ("edits", f"field edits: {values:,} one-field updates", True))
    out = {"bench": "import", "households": households, "field_values": values, "repeat": REPEAT,
           "targets": TARGETS}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if not args.json:
            print(f"bench_import: {values:,} field values over {households:,} households; median of {REPEAT}, "
                  f"CPU and wall time")
        for shape, title, edits in shapes:
            m = measure(folder, rows, edits)
            out.update(figures(shape, m))
            if not args.json:
                report(title, shape, m, values)
    for kind in ("cpu", "wall"):
        out[f"targets_met_{kind}"] = (out[f"new_x_upsert_{kind}"] <= TARGETS["new"]
                                      and out[f"edits_x_upsert_{kind}"] <= TARGETS["edits"]
                                      and max(out[f"new_x_pycrdt_{kind}"], out[f"edits_x_pycrdt_{kind}"])
                                      <= TARGETS["pycrdt"])
    if args.json:
        print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
