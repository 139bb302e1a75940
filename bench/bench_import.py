"""Importing a bundle of 100k field values on the master, end to end.

A tablet's bundle inserts 10,000 households (UUIDv7 keys) with 10 fields
each: 100k field values in 10,000 ops. The master imports it on a WAL
SQLite file (verify, decrypt, authorise, merge, commit, reply). Baselines
in the same run: `sqlite3.executemany` upserting the same 10,000 final rows,
and pycrdt applying the same 100k field updates to a document. Re-importing
the same bundle must be a cheap no-op.
"""
from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from pathlib import Path

from wangge.bench.harness import ratio_line
from wangge.core import store
from wangge.core.ids import uuid7
from wangge.sync import enrollment, tables
from wangge.sync.keys import DeviceKeys
from wangge.sync.protocol import DeviceSync, MasterSync, Peer

ENTITIES, FIELDS = 10_000, [f"f{i:02d}" for i in range(10)]


def _setup(folder: Path):
    master_keys, tablet_keys = DeviceKeys.generate(), DeviceKeys.generate()
    master = store.init(str(folder / "master.db"), "master", device_id="master", extra_migrations=tables.MIGRATIONS)
    with master.write(actor="office") as rec:
        rec.insert("grid_cell", {"id": "g1", "code": "01", "level": "grid", "name": "g"})
        rec.insert("worker", {"id": "w1", "name": "w", "role": "网格员"})
        rec.insert("assignment", {"worker_id": "w1", "grid_id": "g1"})
        enrollment.submit(rec, enrollment.make_request("tab", "t", tablet_keys.public.sign, tablet_keys.public.box,
                                                       tablet_keys.sign))
        enrollment.approve(rec, "tab", "w1")
    tablet = store.init(str(folder / "tablet.db"), "device", device_id="tab", extra_migrations=tables.MIGRATIONS)
    device = DeviceSync(tablet, tablet_keys, Peer("master", master_keys.public))
    master_sync = MasterSync(master, master_keys)
    device.accept_reply(master_sync.exchange(device.make_push())[0])
    rows = [{"id": uuid7(), "grid_id": "g1", **{f: f"{f}-{n}" for f in FIELDS}} for n in range(ENTITIES)]
    with tablet.write(actor="w1") as rec:
        rec.insert_many("household", rows)
    return master, master_sync, tablet, device.make_push(), rows


def raw_baseline(folder: Path, rows: list[dict]) -> float:
    conn = sqlite3.connect(folder / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE household (id TEXT PRIMARY KEY, grid_id TEXT, fields TEXT)")
    params = [(r["id"], r["grid_id"], json.dumps({f: r[f] for f in FIELDS}, ensure_ascii=False)) for r in rows]
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO household VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET fields = excluded.fields",
                     params)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    conn.close()
    return seconds


def pycrdt_baseline(rows: list[dict]) -> float:
    from pycrdt import Doc, Map

    source = Doc()
    households = source.get("households", type=Map)
    with source.transaction():
        for r in rows:
            households[r["id"]] = Map({f: r[f] for f in FIELDS})
    update = source.get_update()
    start = time.perf_counter()
    target = Doc()
    target.apply_update(update)
    seconds = time.perf_counter() - start
    return seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        master, master_sync, tablet, push, rows = _setup(folder)
        start = time.perf_counter()
        master_sync.exchange(push)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        _, summary = master_sync.exchange(push)
        again = time.perf_counter() - start
        field_ops = ENTITIES * len(FIELDS)
        print(f"import: {field_ops} field values in {ENTITIES} ops, {seconds * 1000:.0f} ms = "
              f"{field_ops / seconds:,.0f} field ops/s ({ENTITIES / seconds:,.0f} ops/s)")
        print(f"wire: {len(push):,} bytes = {len(push) / field_ops:.1f} bytes per field op")
        print(ratio_line("vs sqlite3.executemany upsert of the final rows", seconds, raw_baseline(folder, rows), 3))
        print(ratio_line("vs pycrdt applying the same 100k field updates", seconds, pycrdt_baseline(rows)))
        print(f"re-import of the same bundle: {again * 1000:.1f} ms ({summary})")
        master.close()
        tablet.close()


if __name__ == "__main__":
    main()
