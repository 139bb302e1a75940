"""Explanations: why a case is where it is, as plain text for `wangge explain`.

Pure: the caller (core/casework.py) reads the case, its routing decision and
its events from the store and passes them in; this module only renders. Kept
apart from routing so every engine's reasons read the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Optional


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


def render(case: CaseSummary, routing: Iterable[str], events: Iterable[EventLine],
           escalated_to: Optional[str] = None, escalation_reason: Optional[str] = None) -> str:
    """The explanation of one case: summary, routing trace (rule, clause, values), escalation, events.

    ``routing`` is a decision's trace lines (`routing.Decision.trace`). Never raises.
    """
    lines = [f"case {case.number} ({case.id}): {case.description}",
             f"status {case.status}; owner {case.owner}; ruleset {case.ruleset_version[:12]}", "routing:"]
    lines += [f"  - {line}" for line in routing]
    if escalation_reason:
        lines.append(f"escalated to {escalated_to}: {escalation_reason}")
    lines.append("events:")
    lines += [_event(e) for e in events] or ["  (none)"]
    return "\n".join(lines)


def _event(e: EventLine) -> str:
    text = f"  - {e.at:%Y-%m-%d %H:%M} {e.move}: {e.from_status} → {e.to_status} by {e.role}"
    return text + (f" ({e.note})" if e.note else "") + (" [stale]" if e.stale else "")
