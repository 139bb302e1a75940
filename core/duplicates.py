"""Likely duplicates: when a case is registered, who reported the same thing already?

Same catalogue item, same building or household (or, lacking both, the same
grid), within the ruleset's window (``settings.duplicate_window_hours``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Optional


@dataclass(frozen=True)
class Report:
    id: str
    item: str
    grid: str
    reported_at: datetime
    building: Optional[str] = None
    household: Optional[str] = None


def likely_duplicates(new: Report, existing: Iterable[Report], window_hours: float) -> list[tuple[Report, str]]:
    """Earlier reports that probably describe the same problem, each with why, nearest first."""
    window = timedelta(hours=window_hours)
    found = []
    for old in existing:
        if old.id == new.id or old.item != new.item or abs(new.reported_at - old.reported_at) > window:
            continue
        if new.household and old.household == new.household:
            why = "same household"
        elif new.building and old.building == new.building:
            why = "same building"
        elif not (new.household or new.building) and old.grid == new.grid:
            why = "same grid"
        else:
            continue
        hours = abs(new.reported_at - old.reported_at).total_seconds() / 3600
        found.append((old, f"{why}, same item {new.item}, {hours:.1f} h apart"))
    return sorted(found, key=lambda pair: abs(new.reported_at - pair[0].reported_at))
