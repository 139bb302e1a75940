"""Change capture cost: 100k household field changes through the store vs raw sqlite3.

Both sides write to a WAL SQLite file with synchronous=FULL, in one
transaction, starting from the same 10,000 households. The store also records
one op per change and a per-field HLC stamp; the baseline is
`sqlite3.executemany` of the same 100k field updates with nothing else.
Target: op capture costs at most 3x the raw write.
"""
from __future__ import annotations

import random
import sqlite3
import tempfile
from pathlib import Path

from wangge.bench.harness import best_of, ratio_line
from wangge.core import store
from wangge.core.ids import uuid7

HOUSEHOLDS = 10_000
FIELDS = [f"f{i:02d}" for i in range(10)]


def changes(ids: list[str], per_save: int) -> list[tuple[str, dict]]:
    """100k field values: each save changes ``per_save`` fields of one household."""
    rng = random.Random(7)
    return [
        (hid, {field: rng.randint(0, 999) for field in FIELDS[start : start + per_save]})
        for hid in ids
        for start in range(0, len(FIELDS), per_save)
    ]


def _fresh_store(folder: Path, ids: list[str]) -> store.Store:
    path = folder / f"store-{uuid7()}.db"
    s = store.init(str(path), "master")
    with s.write() as rec:
        grid = rec.insert("grid_cell", {"code": "01", "level": "community", "name": "g"})
        rec.insert_many("household", [{"id": hid, "grid_id": grid} for hid in ids])
    return s


def _fresh_raw(folder: Path, ids: list[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(folder / f"raw-{uuid7()}.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE household (id TEXT PRIMARY KEY, grid_id TEXT, fields JSON NOT NULL)")
    conn.executemany("INSERT INTO household VALUES (?, 'g', '{}')", [(hid,) for hid in ids])
    return conn


def main() -> None:
    ids = [uuid7() for _ in range(HOUSEHOLDS)]
    print(f"bench_capture: 100,000 household field changes over {HOUSEHOLDS:,} households")
    # A worker saving a household form changes several fields in one change
    # (one op); the single-field shape is the worst case, one op per value.
    for per_save, shape in ((10, "form saves of 10 fields"), (1, "single-field changes")):
        measure(ids, changes(ids, per_save), shape)


def measure(ids: list[str], work: list[tuple[str, dict]], shape: str) -> None:
    # The baseline writes the same changes, one UPDATE per change, nothing else.
    per_save = len(work[0][1])
    raw_sql = f"UPDATE household SET fields = json_set(fields{', ?, ?' * per_save}) WHERE id = ?"
    raw_rows = [
        (*(x for field, value in values.items() for x in (f"$.{field}", value)), hid) for hid, values in work
    ]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        state: dict = {}

        def setup_store():
            state["store"] = _fresh_store(folder, ids)

        def run_store():
            with state["store"].write(actor="bench") as rec:
                rec.update_many("household", work)
            state["store"].close()

        def setup_raw():
            state["raw"] = _fresh_raw(folder, ids)

        def run_raw():
            conn = state["raw"]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(raw_sql, raw_rows)
            conn.execute("COMMIT")
            conn.close()

        raw = best_of(run_raw, setup_raw)
        captured = best_of(run_store, setup_store)
    values = len(work) * per_save
    print(f"  {shape}: {len(work):,} changes, {len(work):,} ops")
    print(f"    store with op capture:   {values / captured:,.0f} field values/s")
    print(f"    raw sqlite3.executemany: {values / raw:,.0f} field values/s")
    print("    " + ratio_line("op capture vs raw write", captured, raw, target=3))


if __name__ == "__main__":
    main()
