"""Grid sizing: how many grids an area needs and which small units merge.

The ruleset's `Sizing` says it: TEDA's "400户1社工" (households per grid),
Baotaqiao's "不足300户的小区与周边小区或企事业单位合并为一个二级网格"
(merge under a threshold), and "每3-5幢楼或5-10个门店为一个三级网格"
(buildings or storefronts per grid). Pure functions over counts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from wangge.core.errors import UsageError
from wangge.core.ruleset import Sizing


def grids_needed(households: int, sizing: Sizing) -> int:
    """Grids for ``households`` at ``households_per_grid`` each (at least one)."""
    if not sizing.households_per_grid:
        raise UsageError("this level sets no households_per_grid: add one to its `level` block")
    return max(1, math.ceil(households / sizing.households_per_grid))


@dataclass(frozen=True)
class Unit:
    """A compound, enterprise or building group to place in grids."""

    name: str
    households: int


def merge_small(units: list[Unit], sizing: Sizing) -> list[list[Unit]]:
    """Group units so that no group is under ``merge_below`` households.

    Units are taken in the order given (neighbours are next to each other);
    a unit under the threshold joins its neighbours until the group reaches
    it, and a small remainder at the end joins the last group.
    """
    if sizing.merge_below is None:
        return [[u] for u in units]
    groups: list[list[Unit]] = []
    current: list[Unit] = []
    for unit in units:
        current.append(unit)
        if sum(u.households for u in current) >= sizing.merge_below:
            groups.append(current)
            current = []
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups


def split_buildings(buildings: list[str], sizing: Sizing) -> list[list[str]]:
    """Cut a row of buildings into grids of ``buildings_per_grid`` (low..high) each.

    Uses as few grids as the upper bound allows, spreading buildings evenly,
    and raises `UsageError` when the count cannot satisfy the lower bound.
    """
    if sizing.buildings_per_grid is None:
        return [buildings]
    low, high = sizing.buildings_per_grid
    count = max(1, math.ceil(len(buildings) / high))
    if len(buildings) < low * count and len(buildings) >= low:
        count = len(buildings) // low
    if len(buildings) < low:
        raise UsageError(f"{len(buildings)} buildings cannot form a grid of {low}..{high} buildings")
    size, extra = divmod(len(buildings), count)
    groups, start = [], 0
    for i in range(count):
        end = start + size + (i < extra)
        groups.append(buildings[start:end])
        start = end
    return groups
