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


def for_service(ruleset: Ruleset, resident: str, service: str, at: datetime, order: str = "") -> Entry:
    """An entry crediting the volunteer ``resident`` with the points of menu service ``service`` (点单式).

    Raises `PointsError` for a service the menu lacks or one that earns no points.
    """
    menu = {s.code: s for s in ruleset.services}
    found = menu.get(service)
    if found is None:
        raise PointsError(f"unknown service {service!r}: the menu has {', '.join(menu) or '(none)'}")
    if found.points <= 0:
        raise PointsError(f"service {service} earns no points: give it `points N` in the rule file")
    return Entry(resident, found.points, f"点单 {found.label.text()}" + (f" ({order})" if order else ""), service, at)


# -- the ledger on a store: point_entry rows, append-only ---------------------------

def ledger(conn, resident_id: str) -> list[Entry]:
    """Every entry of ``resident_id`` in the store, oldest first."""
    from sqlalchemy import select

    from wangge.core.models import PointEntry

    rows = conn.execute(select(PointEntry.__table__).where(PointEntry.resident_id == resident_id,
                                                             PointEntry.deleted.is_(None))
                        .order_by(PointEntry.at)).all()
    return [Entry(r.resident_id, r.delta, r.reason, r.rule, r.at) for r in rows]


def record(rec, entry: Entry, grid_id: str | None = None) -> str:
    """Append ``entry`` to the store's ledger (in the resident's grid unless ``grid_id`` says); return its id."""
    from sqlalchemy import select

    from wangge.core.models import Resident

    if grid_id is None:
        grid_id = rec.conn.execute(select(Resident.grid_id).where(Resident.id == entry.resident)).scalar()
        if grid_id is None:
            raise PointsError(f"no resident {entry.resident} in this store")
    return rec.insert("point_entry", {"resident_id": entry.resident, "grid_id": grid_id, "delta": entry.delta,
                                      "reason": entry.reason, "rule": entry.rule, "at": entry.at})


def record_redemption(rec, ruleset: Ruleset, resident_id: str, reward: str, at: datetime) -> Entry:
    """Redeem ``reward`` for ``resident_id`` against the stored ledger and store the entry.

    Raises `PointsError` past the balance (nothing is written then).
    """
    entry = redeem(ruleset, ledger(rec.conn, resident_id), resident_id, reward, at)
    record(rec, entry)
    return entry
