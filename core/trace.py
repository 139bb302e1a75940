"""Explanations: why a case is where it is, as plain text for `wangge explain`.

Pure: the caller (core/casework.py) reads the case, its routing decision and
its events from the store and passes them in; this module only renders. Kept
apart from routing so every engine's reasons read the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Optional

from wangge.core.calendar import in_zone


@dataclass(frozen=True)
class EventLine:
    """One recorded lifecycle move of a case, as the explanation shows it."""

    at: datetime
    move: str
    from_status: str
    to_status: str
    role: str
    note: str = ""
    stale: bool = False  # a move from a device that had not seen a later one (a recorded conflict)


@dataclass(frozen=True)
class CaseSummary:
    number: str
    id: str
    description: str
    status: str
    owner: str
    ruleset_version: str


def stamp(moment: datetime, zone: Optional[str] = None) -> str:
    """``2027-02-03 09:00 +08:00``: a moment in the district's zone, always labelled with its offset.

    Without ``zone`` the moment keeps its own zone. A naive moment is taken as
    a wall time in ``zone`` (the store hands back aware times; see casework).
    """
    local = in_zone(moment, zone) if zone else moment
    offset = local.strftime("%z")
    label = f"{offset[:3]}:{offset[3:5]}" if offset else "(no zone)"
    return f"{local:%Y-%m-%d %H:%M} {label}"


def render(case: CaseSummary, routing: Iterable[str], events: Iterable[EventLine],
           escalated_to: Optional[str] = None, escalation_reason: Optional[str] = None,
           zone: str = "Asia/Shanghai") -> str:
    """The explanation of one case: summary, routing trace (rule, clause, values), escalation, events.

    ``routing`` is a decision's trace lines (`routing.Decision.trace`); every
    time in them and in ``events`` is shown in ``zone``. Never raises.
    """
    lines = [f"case {case.number} ({case.id}): {case.description}",
             f"status {case.status}; owner {case.owner}; ruleset {case.ruleset_version[:12]}; times in {zone}",
             "routing:"]
    lines += [f"  - {line}" for line in routing]
    if escalation_reason:
        lines.append(f"escalated to {escalated_to}: {escalation_reason}")
    lines.append("events:")
    lines += [_event(e, zone) for e in events] or ["  (none)"]
    return "\n".join(lines)


def _event(e: EventLine, zone: str) -> str:
    text = f"  - {stamp(e.at, zone)} {e.move}: {e.from_status} → {e.to_status} by {e.role}"
    return text + (f" ({e.note})" if e.note else "") + (" [stale]" if e.stale else "")
