"""Change capture cost on a tablet's store vs raw sqlite3: `python -m wangge.bench.bench_capture [--json]`.

Three shapes of write, each in one transaction on a WAL SQLite file with
synchronous=FULL, against the same rows written by `sqlite3.executemany`
into a table of the same schema (its indexes and foreign keys) with nothing
else, measured in the same run:

* bulk inserts: households with their typed columns and 10 custom fields
  (text with Chinese, integers, decimals, yes/no) through
  `Recorder.insert_many`; the baseline inserts the same rows as ready-made
  tuples, their JSON already encoded;
* 10-field saves: one change of 10 fields per household, as a form save is,
  through `Recorder.update_many`; the baseline sets the same fields with
  ``json_set``, one UPDATE per save;
* single-field changes: the same values one change each (the worst case,
  one op per value).

For bulk inserts it also prints the least any op log costs: the same rows
and an op-log row each, both written raw.

The store also records one op per change and the stamps that merging needs.
Every figure is the median of three runs, CPU time and wall time. Targets:
bulk inserts at most 3x raw, 10-field saves at most 2.5x.
"""
from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
from pathlib import Path

from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from wangge.bench.timing import Timing, median_of, ratio_text
from wangge.core import store
from wangge.core.ids import uuid7
from wangge.core.models import Building, GridCell, Household, Op

HOUSEHOLDS = 10_000
FIELDS = [f"f{i:02d}" for i in range(10)]
TARGETS = {"insert": 3.0, "save10": 2.5}
_TABLES = [GridCell.__table__, Building.__table__, Household.__table__, Op.__table__]


def new_households(count: int, grid: str) -> list[dict]:
    """Households as a roster import or a bulk registration hands them over."""
    rng = random.Random(5)
    kinds = [lambda: rng.randint(0, 9999), lambda: rng.choice(["自有", "租住", "借住", "单位宿舍"]),
             lambda: round(rng.uniform(0, 20000), 2), lambda: rng.random() < 0.5, lambda: f"备注{rng.randint(0, 99)}号"]
    return [
        {"grid_id": grid, "address": f"{n // 40 + 1}号楼{n % 40 // 8 + 1}单元{n % 8 + 101}", "head_name": "王芳",
         "members": rng.randint(1, 6), **{field: kinds[i % len(kinds)]() for i, field in enumerate(FIELDS)}}
        for n in range(count)
    ]


def changes(ids: list[str], per_save: int) -> list[tuple[str, dict]]:
    """Ten field values per household: each save changes ``per_save`` fields of one household."""
    rng = random.Random(7)
    return [
        (hid, {field: rng.randint(0, 999) for field in FIELDS[start : start + per_save]})
        for hid in ids
        for start in range(0, len(FIELDS), per_save)
    ]


class Bench:
    """Fresh stores and raw databases in one folder, and the three measurements."""

    def __init__(self, folder: Path, households: int):
        self.folder = folder
        self.households = households
        self.state: dict = {}

    def fresh_store(self, homes: list[dict] | None = None) -> store.Store:
        """A store holding one grid and, if given, ``homes`` (each with its id)."""
        s = store.init(str(self.folder / f"store-{uuid7()}.db"), "device")
        with s.write() as rec:
            rec.insert("grid_cell", {"id": "g", "code": "01", "level": "community", "name": "泰丰社区"})
            if homes:
                rec.insert_many("household", homes)
        return s

    def fresh_raw(self, homes: list[dict] | None = None) -> sqlite3.Connection:
        """A bare sqlite3 database with the store's household schema, one grid and ``homes``."""
        conn = sqlite3.connect(self.folder / f"raw-{uuid7()}.db", isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        dialect = sqlite_dialect.dialect()
        for table in _TABLES:
            conn.execute(str(CreateTable(table).compile(dialect=dialect)))
            for index in table.indexes:
                conn.execute(str(CreateIndex(index).compile(dialect=dialect)))
        conn.execute("INSERT INTO grid_cell (id, code, level, name, hlc, origin, stamps, fields) "
                     "VALUES ('g', '01', 'community', 'g', 1, 'd', '{}', '{}')")
        if homes:
            conn.executemany(insert_sql(), raw_rows(homes))
        return conn

    def measure(self, run_store, run_raw, store_homes=None, raw_homes=None) -> tuple[Timing, Timing]:
        """Median timings of ``run_store(recorder)`` and ``run_raw(connection)``, each on fresh databases."""
        raw = self.raw(run_raw, raw_homes)
        state = self.state

        def setup_store():
            self._close()
            state["store"] = self.fresh_store(store_homes)

        def timed_store():
            with state["store"].write(actor="bench") as rec:
                run_store(rec)

        captured = median_of(timed_store, setup_store)
        self._close()
        return captured, raw

    def raw(self, run_raw, homes=None) -> Timing:
        """The median timing of ``run_raw(connection)`` in one transaction on a fresh raw database."""
        state = self.state

        def setup_raw():
            self._close()
            state["raw"] = self.fresh_raw(homes)

        def timed_raw():
            conn = state["raw"]
            conn.execute("BEGIN IMMEDIATE")
            run_raw(conn)
            conn.execute("COMMIT")

        timing = median_of(timed_raw, setup_raw)
        self._close()
        return timing

    def _close(self) -> None:
        if "store" in self.state:
            self.state.pop("store").close()
        if "raw" in self.state:
            self.state.pop("raw").close()


def insert_sql() -> str:
    names = [c.name for c in Household.__table__.columns]
    return f"INSERT INTO household ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


def raw_rows(homes: list[dict]) -> list[tuple]:
    """``homes`` as the household table's rows, their JSON encoded, as the raw side hands them over."""
    names = [c.name for c in Household.__table__.columns]
    typed = set(names)
    rows = []
    for home in homes:
        fields = {k: v for k, v in home.items() if k not in typed}
        row = {"building_id": None, "address": "", "head_name": "", "members": 0, **home, "hlc": 1,
               "origin": "d", "stamps": "{}", "deleted": None, "fields": json.dumps(fields, ensure_ascii=False)}
        rows.append(tuple(row[name] for name in names))
    return rows


OP_SQL = "INSERT INTO op (op_id, entity, entity_id, hlc, actor, device, kind, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def raw_ops(homes: list[dict]) -> list[tuple]:
    """An insert op per home as the op log holds it (every column, custom fields flat), ready to write."""
    defaults = {"building_id": None, "address": "", "head_name": "", "members": 0}
    return [(uuid7(), "household", home["id"], n + 1, "bench", "d", "insert",
             json.dumps({**defaults, **home}, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
            for n, home in enumerate(homes)]


def run(households: int) -> tuple[dict, Timing]:
    """Every measurement, as ``{shape: (store timing, raw timing, work count)}``, and the timing
    of the least that any op log costs: the inserted rows and their ops written raw."""
    homes = new_households(households, "g")
    with_ids = [{"id": uuid7(), **home} for home in homes]
    ids = [home["id"] for home in with_ids]
    prepared = raw_rows(with_ids)
    sql = insert_sql()
    logged = raw_ops(with_ids)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), households)
        figures["insert"] = (*bench.measure(lambda rec: rec.insert_many("household", homes),
                                            lambda conn: conn.executemany(sql, prepared)), households)

        def rows_and_log(conn):
            conn.executemany(sql, prepared)
            conn.executemany(OP_SQL, logged)

        floor = bench.raw(rows_and_log)
        for name, per_save in (("save10", 10), ("field1", 1)):
            work = changes(ids, per_save)
            raw_sql = f"UPDATE household SET fields = json_set(fields{', ?, ?' * per_save}) WHERE id = ?"
            params = [(*(x for field, value in values.items() for x in (f"$.{field}", value)), hid)
                      for hid, values in work]
            figures[name] = (*bench.measure(lambda rec, work=work: rec.update_many("household", work),
                                            lambda conn, sql=raw_sql, params=params: conn.executemany(sql, params),
                                            with_ids, with_ids), len(work))
    return figures, floor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_capture", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="Print one line of JSON figures.")
    parser.add_argument("--households", type=int, default=HOUSEHOLDS,
                        help=f"Households written (default {HOUSEHOLDS:,}); fewer for a quick run.")
    args = parser.parse_args(argv or [])
    if args.households < 1:
        parser.error(f"--households: expected a positive count, got {args.households}")
    figures, floor = run(args.households)
    floor_x = floor.over(figures["insert"][1])
    if args.json:
        line = {"bench": "capture", "households": args.households, "fields_per_row": len(FIELDS)}
        for name, (captured, raw, _) in figures.items():
            ratio = captured.over(raw)
            line |= {f"{name}_x_raw_cpu": round(ratio.cpu, 2), f"{name}_x_raw_wall": round(ratio.wall, 2),
                     f"{name}_cpu_ms": round(captured.cpu * 1000, 1), f"{name}_wall_ms": round(captured.wall * 1000, 1),
                     f"{name}_raw_cpu_ms": round(raw.cpu * 1000, 1), f"{name}_raw_wall_ms": round(raw.wall * 1000, 1)}
        line |= {"insert_floor_x_raw_cpu": round(floor_x.cpu, 2), "insert_floor_x_raw_wall": round(floor_x.wall, 2)}
        line |= {f"{name}_target_x": target for name, target in TARGETS.items()}
        print(json.dumps(line))
        return 0
    print(f"bench_capture: {args.households:,} households, {len(FIELDS)} custom fields each "
          "(median of 3; CPU and wall time against raw sqlite3 in the same run)")
    titles = {"insert": "bulk inserts (one op each)", "save10": "10-field saves (one op each)",
              "field1": "single-field changes (one op each)"}
    for name, (captured, raw, count) in figures.items():
        print(f"  {titles[name]}: {count:,} rows or changes, {count / captured.wall:,.0f}/s")
        print("    " + ratio_text("store with op capture vs raw", captured, raw, TARGETS.get(name)))
        if name == "insert":
            print(f"    the same rows and their ops written raw (the least an op log costs): "
                  f"CPU {floor_x.cpu:.2f}x, wall {floor_x.wall:.2f}x raw")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
