"""A small sample street: the data the demo and the tests start from.

Two communities, three compounds, a few buildings and households, two grid
workers with their assignments, and a handful of cases and visits written
through change capture, as a tablet or master would write them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from wangge.core.capture import Recorder

#: (code, level, name, grade, upper code)
GRIDS = (
    ("01", "community", "泰丰社区", "丙", None),
    ("01.01", "compound", "泰丰家园", "A", "01"),
    ("01.02", "compound", "华纳小区", "B", "01"),
    ("02", "community", "贻成社区", "甲", None),
    ("02.01", "compound", "贻成豪庭", "C", "02"),
)
#: (grid code, building code, households)
BUILDINGS = (("01.01", "1号楼", 4), ("01.02", "7号楼", 3), ("02.01", "3号楼", 3))
#: (name, role, grid codes)
WORKERS = (("王芳", "网格员", ("01.01", "01.02")), ("李强", "网格员", ("02.01",)))
#: (grid code, item, channel, description)
CASES = (
    ("01.01", "0105", "patrol", "电信交接箱门损坏 broken telecom box door"),
    ("01.02", "0201", "hotline", "楼道堆放杂物 stairwell blocked by clutter"),
    ("02.01", "0302", "forum", "人行绿灯时间过短 pedestrian green light too short"),
)


@dataclass(frozen=True)
class StreetSummary:
    grids: int
    buildings: int
    households: int
    workers: int
    cases: int
    visits: int
    ops: int


def build(rec: Recorder, start: datetime) -> StreetSummary:
    """Write the sample street through ``rec``; ``start`` dates its cases and visits."""
    grid_ids: dict[str, str] = {}
    for code, level, name, grade, upper in GRIDS:
        grid_ids[code] = rec.insert(
            "grid_cell",
            {"code": code, "level": level, "name": name, "grade": grade, "upper_id": grid_ids.get(upper)},
        )
    households: dict[str, list[str]] = {}
    for grid, building, count in BUILDINGS:
        building_id = rec.insert("building", {"grid_id": grid_ids[grid], "code": building, "name": building})
        rows = [
            {
                "grid_id": grid_ids[grid],
                "building_id": building_id,
                "address": f"{building}{unit + 1}01室",
                "members": 2 + unit % 3,
                "pets": unit % 2,
            }
            for unit in range(count)
        ]
        households.setdefault(grid, []).extend(rec.insert_many("household", rows))
    workers: dict[str, str] = {}
    for name, role, grids in WORKERS:
        worker_id = rec.insert("worker", {"name": name, "role": role})
        for grid in grids:
            rec.insert("assignment", {"worker_id": worker_id, "grid_id": grid_ids[grid]})
            workers[grid] = worker_id
    for number, (grid, item, channel, text) in enumerate(CASES, 1):
        rec.insert(
            "case",
            {
                "number": f"C{start:%Y%m%d}{number:03d}",
                "item_code": item,
                "grid_id": grid_ids[grid],
                "channel": channel,
                "description": text,
                "reporter_id": workers[grid],
                "reported_at": start + timedelta(hours=number),
            },
        )
    visits = 0
    for grid, ids in households.items():
        for minutes, household in zip((45, 30, 60), ids):
            rec.insert(
                "visit",
                {
                    "household_id": household,
                    "grid_id": grid_ids[grid],
                    "worker_id": workers[grid],
                    "at": start + timedelta(days=1, minutes=minutes),
                    "minutes": minutes,
                    "purpose": "入户走访",
                },
            )
            visits += 1
    rec.update("household", households["01.01"][0], {"members": 5, "pets": 2})
    return StreetSummary(
        grids=len(GRIDS),
        buildings=len(BUILDINGS),
        households=sum(len(v) for v in households.values()),
        workers=len(WORKERS),
        cases=len(CASES),
        visits=visits,
        ops=rec.ops,
    )
