"""Volunteer points: an append-only ledger whose balance never goes negative.

Bao-ta-qiao's 积分换购 and Lianchi's self-help mode: residents earn points by
the ruleset's earning rules and redeem them for rewards from its catalogue.
Entries are never edited or removed; a correction is a new entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from wangge.core.errors import PointsError
from wangge.core.ruleset import Ruleset


@dataclass(frozen=True)
class Entry:
    resident: str
    delta: int
    reason: str
    rule: str
    at: datetime


def balance(entries: Iterable[Entry], resident: str) -> int:
    return sum(e.delta for e in entries if e.resident == resident)


def earn(ruleset: Ruleset, entries: Iterable[Entry], resident: str, rule: str, at: datetime, times: int = 1) -> Entry:
    """An entry crediting ``resident`` by earning rule ``rule``; raises `PointsError` for an unknown rule."""
    rules = {r.code: r for r in ruleset.points.earn}
    found = rules.get(rule)
    if found is None:
        raise PointsError(f"unknown earning rule {rule!r}: expected one of {', '.join(rules) or '(none defined)'}")
    if times < 1:
        raise PointsError(f"earning {rule} needs a positive count, got {times}")
    return Entry(resident, found.points * times, f"{found.label.text()} ×{times}", rule, at)


def redeem(ruleset: Ruleset, entries: Iterable[Entry], resident: str, reward: str, at: datetime) -> Entry:
    """An entry debiting ``resident`` for ``reward``.

    Raises `PointsError` for an unknown reward or if the balance would go
    negative; the ledger is unchanged either way (entries are the caller's).
    """
    rewards = {r.code: r for r in ruleset.points.rewards}
    found = rewards.get(reward)
    if found is None:
        raise PointsError(f"unknown reward {reward!r}: expected one of {', '.join(rewards) or '(none defined)'}")
    have = balance(entries, resident)
    if have < found.cost:
        raise PointsError(
            f"resident {resident} cannot redeem {found.label.text()}: it costs {found.cost} points, the balance is {have}"
        )
    return Entry(resident, -found.cost, f"兑换 {found.label.text()}", reward, at)
