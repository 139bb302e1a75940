"""Importing a street's household register from Excel: 3,000 households of 77 fields.

TEDA keeps 77 fields per household ("77项内容"); its rule file names a
representative part of them (national's register and TEDA's own), so the
benchmark's ruleset is TEDA's with the register padded to 77 columns by
fields of the same types (text, numbers, choices, yes/no, dates) cycled.
The workbook is generated with openpyxl, as an office's would be written.

Measured end to end, best of three on a fresh store each time: open the
workbook, map the header, convert and validate every cell, resolve grids,
write 3,000 households and their ops in one transaction. Baseline in the
same run: openpyxl alone reading every cell of the same workbook (read-only,
values only), the floor of any import of an .xlsx file in Python.
Target: at most 3x the baseline. `--json` prints one line of figures.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import date
from pathlib import Path

from wangge.bench.harness import ratio_line
from wangge.core import casework, roster, store
from wangge.core.ruleset import FieldSpec, FieldType, Label, Register

HOUSEHOLDS, COLUMNS, REPEAT = 3000, 77, 3
GRIDS = [f"TF.{n:02d}" for n in range(1, 11)]  # 泰丰社区's 10 grids


def padded_ruleset():
    """TEDA's ruleset with its household register padded to ``COLUMNS`` workbook columns."""
    from wangge import rulesets
    from wangge.app.rosters import columns

    teda = rulesets.load("teda")
    _, standard = columns(teda, "households")
    own = list(teda.register("household"))
    kinds = [FieldType.text, FieldType.integer, FieldType.decimal, FieldType.choice, FieldType.boolean, FieldType.date]
    # The workbook has every standard column but the system id and the building.
    for n in range(COLUMNS - (len(standard) - 2)):
        kind = kinds[n % len(kinds)]
        more = {"choices": ("甲", "乙", "丙")} if kind is FieldType.choice else \
            {"min": 0, "max": 10_000} if kind in (FieldType.integer, FieldType.decimal) else {}
        own.append(FieldSpec(code=f"项目{n + 1:02d}", label=Label(zh=f"登记项目{n + 1:02d}", en=f"Item {n + 1}"),
                             type=kind, **more))
    registers = tuple(r for r in teda.registers if r.entity != "household") + (Register(entity="household",
                                                                                         fields=tuple(own)),)
    return teda.model_copy(update={"registers": registers})


def sample(spec: FieldSpec, pick: random.Random):
    if spec.type is FieldType.integer:
        return pick.randint(int(spec.min or 1), int(min(spec.max or 30, 30)))
    if spec.type is FieldType.decimal:
        return round(pick.uniform(max(spec.min or 0, 5), min(spec.max or 2000, 2000)), 1)
    if spec.type is FieldType.choice:
        return pick.choice(spec.choices)
    if spec.type is FieldType.choices:
        return "、".join(pick.sample(spec.choices, 2))
    if spec.type is FieldType.boolean:
        return pick.choice(["是", "否"])
    if spec.type is FieldType.date:
        return date(2026, pick.randint(1, 12), pick.randint(1, 28))
    if spec.type is FieldType.phone:
        return f"138{pick.randint(0, 99_999_999):08d}"
    if spec.type is FieldType.id_number:
        return f"1201011980{pick.randint(1, 12):02d}{pick.randint(10, 28)}{pick.randint(100, 999)}X"
    return f"文本{pick.randint(0, 9999)}"


def write_workbook(path: Path, ruleset) -> int:
    import openpyxl

    from wangge.app.rosters import columns, header_labels

    _, cols = columns(ruleset, "households")
    cols = tuple(c for c in cols if c.code not in ("id", "building"))
    pick = random.Random(11)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("户籍")
    sheet.append(header_labels(cols, "zh"))
    for n in range(HOUSEHOLDS):
        row = []
        for column in cols:
            if column.code == "grid":
                row.append(GRIDS[n % len(GRIDS)])
            elif column.code == "address":
                row.append(f"泰丰路{n // 40}号{n % 40 + 1:02d}室")
            elif column.code == "members":
                row.append(pick.randint(1, 6))
            elif column.code == "head_name":
                row.append(f"户主{n}")
            else:
                row.append(sample(column.spec, pick))
        sheet.append(row)
    book.save(path)
    return len(cols)


def fresh_store(folder: Path, ruleset) -> str:
    target = str(folder / f"office-{time.monotonic_ns()}.db")
    with store.init(target, "master") as made, made.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        roster.add_grid(rec, "TF", "社区", "泰丰社区")
        for code in GRIDS:
            roster.add_grid(rec, code, "网格", code, "TF")
    return target


def timed(run) -> tuple[float, float]:
    """Best wall and CPU seconds of ``REPEAT`` runs (each run's own pair)."""
    best = (float("inf"), float("inf"))
    for _ in range(REPEAT):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        measured = (time.perf_counter() - wall, time.process_time() - cpu)
        best = min(best, measured)
    return best


def main(argv: list[str] | None = None) -> None:
    import openpyxl

    from wangge.app import rosters

    parser = argparse.ArgumentParser(prog="bench_roster", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="Print one line of JSON figures.")
    args = parser.parse_args(argv or [])
    ruleset = padded_ruleset()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        book = folder / "户籍.xlsx"
        width = write_workbook(book, ruleset)

        def read_only():
            opened = openpyxl.load_workbook(book, read_only=True, data_only=True)
            for _ in opened.worksheets[0].iter_rows(values_only=True):
                pass
            opened.close()

        targets = [fresh_store(folder, ruleset) for _ in range(REPEAT)]
        results = []

        def import_once():
            results.append(rosters.import_file(targets[len(results)], "households", str(book)))

        base_wall, base_cpu = timed(read_only)
        wall, cpu = timed(import_once)
    assert all(r.inserted == HOUSEHOLDS for r in results), [r.summary() for r in results]
    figures = {"bench": "roster", "households": HOUSEHOLDS, "columns": width, "cells": HOUSEHOLDS * width,
               "import_wall_s": round(wall, 3), "import_cpu_s": round(cpu, 3),
               "openpyxl_wall_s": round(base_wall, 3), "openpyxl_cpu_s": round(base_cpu, 3),
               "ratio_wall": round(wall / base_wall, 2), "ratio_cpu": round(cpu / base_cpu, 2), "target": 3}
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
        return
    print(f"bench_roster: {HOUSEHOLDS:,} households x {width} columns = {HOUSEHOLDS * width:,} cells "
          f"(TEDA's register padded to {width}); best of {REPEAT}")
    print("  " + ratio_line("import, wall", wall, base_wall, 3))
    print("  " + ratio_line("import, CPU ", cpu, base_cpu, 3))
    print(f"  baseline: openpyxl alone reading every cell of the same workbook "
          f"({HOUSEHOLDS * width / base_wall:,.0f} cells/s); import: {HOUSEHOLDS / wall:,.0f} households/s")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
