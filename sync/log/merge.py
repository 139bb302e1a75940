"""Merge semantics, as pure functions over plain data.

* Ordinary fields: last writer wins, by the stamp ``(hlc, device)``. A row
  carries one insert stamp; a field updated later carries its own stamp in
  ``stamps``. Comparing whole pairs breaks HLC ties by device id.
* Critical fields: an update also carries the stamp of the value the worker
  saw. If the replica's value has moved on meanwhile (its stamp is not the
  one seen, older or newer) and the values differ, the value that did not
  win is returned as a `FieldConflict` for review instead of vanishing
  silently.
* Tombstones: the greater delete stamp stays; a row is never revived.
* Case status: never written by ops; derived by `replay` over the case's
  transitions in ``(hlc, device)`` order against the lifecycle (`wangge.core.lifecycle.replay`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from wangge.core import entities, lifecycle
from wangge.core.hlc import moment
from wangge.core.ruleset import Ruleset

Stamp = tuple[int, str]

#: Typed columns that count as critical whatever the ruleset says.
CRITICAL_COLUMNS = entities.CRITICAL_COLUMNS


@dataclass(frozen=True)
class FieldConflict:
    field: str
    kept: Any
    lost: Any
    note: str


def critical_fields(ruleset: Optional[Ruleset], entity: str) -> frozenset[str]:
    """Fields of ``entity`` whose concurrent edits are queued for review."""
    marked = {spec.code for spec in ruleset.register(entity) if spec.critical} if ruleset else set()
    return CRITICAL_COLUMNS.get(entity, frozenset()) | marked


def field_stamp(stamps: Mapping[str, Any], insert: Stamp, name: str) -> Stamp:
    """The stamp of the value a row holds in field ``name``."""
    pair = stamps.get(name)
    return (int(pair[0]), str(pair[1])) if pair else insert


def winners(fields: Mapping[str, Any], stamps: Mapping[str, Any], insert: Stamp, hlc: int, device: str,
            own: Optional[Mapping[str, int]] = None) -> dict[str, tuple[Any, int]]:
    """Last writer wins, per field: the fields of a write by ``device`` at ``hlc`` that win over
    what a row holds, each with its value and the hlc it is stamped with.

    A field's value was written at its ``[hlc, device]`` in ``stamps`` or,
    never updated, at the row's ``insert`` stamp; ``own`` gives a folded op's
    fields their own hlc. Whole pairs compare, so a tie of clocks is broken by
    device id. Every applier calls this: its fast paths and `merge_update`.
    """
    won = {}
    for name, value in fields.items():
        held = stamps.get(name)
        mine = own.get(name, hlc) if own else hlc
        if (mine, device) > ((held[0], held[1]) if held else insert):
            won[name] = (value, mine)
    return won


def merge_update(current: Mapping[str, Any], stamps: Mapping[str, Any], insert: Stamp, stamp: Stamp,
                 changes: Mapping[str, Any], seen: Optional[Mapping[str, Any]],
                 critical: frozenset[str]) -> tuple[dict[str, Any], list[FieldConflict]]:
    """Merge one update into a row.

    ``current`` holds the row's values, ``stamps`` its per-field stamps and
    ``insert`` its insert stamp. Returns the fields the update wins (to be
    written with ``stamp``) and the conflicts on critical fields.
    """
    wins = {name: value for name, (value, _) in winners(changes, stamps, insert, *stamp).items()}
    conflicts: list[FieldConflict] = []
    for name, value in changes.items():
        held = field_stamp(stamps, insert, name)
        won = name in wins
        if name in critical and seen and name in seen and value != current.get(name):
            saw = (int(seen[name][0]), str(seen[name][1]))
            # The value moved on after the worker saw it, or the worker saw a value the replica
            # never held: only the very stamp held proves the edit was made knowing it.
            if saw != held:
                kept, lost = (value, current.get(name)) if won else (current.get(name), value)
                conflicts.append(FieldConflict(name, kept, lost, f"edited concurrently: the value the worker saw was "
                                                                 f"written at {moment(saw[0])}, and changed since"))
    return wins, conflicts


def tombstone(existing: Optional[int], stamp: int) -> int:
    """The delete stamp a row keeps: the greater, so deletes commute."""
    return stamp if existing is None else max(existing, stamp)


# A case's status is replayed by the lifecycle, its one home; merge names it for the appliers.
Move, Replay, replay = lifecycle.Move, lifecycle.Replay, lifecycle.replay
