"""The office's review of what sync queued: conflicts listed, and answered one by one.

Critical-field clashes, stale moves, proposals made on tablets, quarantined
ops and bundles from revoked tablets wait here for a person; each answer is
made through the case workflow or as an ordinary edit, so it syncs
(`wangge.sync.master.review` says what each answer does).
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from wangge.core.ruleset import Ruleset
from wangge.core.store import Store
from wangge.sync.master import exchange as master_exchange
from wangge.sync.master import review
from wangge.sync.master.review import ANSWERS

__all__ = ["ANSWERS", "conflicts", "resolve"]


def conflicts(store: Store, *, include_resolved: bool = False) -> list[dict]:
    """The conflicts waiting for review, oldest first (with the settled ones too if asked).

    Each is a dict with ``id`` (the number to answer it by), ``kind``,
    ``entity``, ``entity_id``, ``field``, ``device``, ``kept``, ``lost`` and ``note``.
    """
    return master_exchange.conflicts(store, include_resolved)


def resolve(store: Store, number: int, how: str, *, by: str, note: str = "", ruleset: Optional[Ruleset] = None,
            at: Optional[datetime] = None) -> str:
    """Answer conflict ``number`` with ``how`` (one of its kind's `ANSWERS`); say what happened.

    Raises `ReviewError`, writing nothing, for an unknown or settled conflict
    or an answer that does not fit; `TransitionError` if an accepted
    proposal is no longer a legal move.
    """
    return review.answer(store, number, how, by=by, note=note, ruleset=ruleset, now=at)
