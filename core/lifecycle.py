"""The case lifecycle as one table-driven state machine with role guards.

Everything that decides whether a case may move lives here, in the spirit of
h11's ``_state.py``: the table is built once from the ruleset's lifecycle,
and `Lifecycle.move` either returns the event of a legal move or raises
`TransitionError` naming the state, the move and the role, changing nothing.

Evidence a transition requires (TEDA's on-site confirmation by the reporter,
Jiading's callback, a photo) cannot be skipped: a move without it is refused.
So do the other rules of a move: a channel that promises a callback (回访)
cannot close without one (`closing_requires`), and a confirmation the rules
ask of the reporter comes from the worker who reported the case. Sync
derives a case's status by `replay`: its moves in stamp order, a move no
longer legal kept as stale, an office move made on a tablet kept as a proposal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime
from typing import Iterable, Optional

from wangge.core.errors import TransitionError
from wangge.core.ruleset import Lifecycle as LifecycleRules
from wangge.core.ruleset import Ruleset, Transition

_UNCHECKED = object()
EVIDENCE_NAMES = {
    "photo": "a photo",
    "onsite_confirmation": "the reporter's on-site confirmation",
    "callback": "a callback to the resident",
    "signature": "the resident's signature on the record",
}


#: The wording of each refusal, by `TransitionError.reason`. The console and the command line
#: find a refusal's values in its text by these templates to say it in Chinese.
REFUSALS = {
    "unknown_state": "role %(role)s cannot make move %(move)s from unknown state '%(state)s': "
                     "expected one of %(expected)s",
    "unknown_move": "role %(role)s cannot make unknown move '%(move)s' from state %(state)s: "
                    "expected one of %(expected)s",
    "not_from_state": "move %(move)s is not allowed from state %(state)s (role %(role)s); "
                      "moves from %(state)s: %(legal)s",
    "wrong_role": "role %(role)s may not make move %(move)s from state %(state)s; expected one of %(expected)s",
    "missing_evidence": "move %(move)s from state %(state)s by %(role)s needs %(needs)s; it was not given",
    "not_reporter": "move %(move)s from state %(state)s by %(role)s needs the confirmation of the worker "
                    "who reported the case (%(reporter)s), not %(actor)s",
}

#: What `not_from_state` lists as the moves from a final state.
NO_MOVES = "none (it is final)"


def _refusal(reason: str, facts: dict[str, str], missing: tuple[str, ...] = (), **values) -> TransitionError:
    filled = {**facts, **values}
    return TransitionError(REFUSALS[reason] % filled, reason=reason, missing=missing, values=filled, **facts)


@dataclass(frozen=True)
class Event:
    """One lifecycle move, as recorded on the case (a `CaseEvent` row)."""

    move: str
    from_status: str
    to_status: str
    role: str
    actor: str = ""
    at: Optional[datetime] = None
    evidence: frozenset[str] = frozenset()
    proposal: bool = False  # an office move made on a tablet: awaits the office


@dataclass(frozen=True)
class Moves:
    """What a role may do from a state: the moves and where they lead."""

    state: str
    role: str
    allowed: dict[str, str] = field(default_factory=dict)


class Lifecycle:
    """The compiled state machine of one ruleset."""

    def __init__(self, rules: LifecycleRules):
        self.rules = rules
        self.states = {s.code: s for s in rules.states}
        self.initial = next((s.code for s in rules.states if s.initial), rules.states[0].code)
        self.final = frozenset(s.code for s in rules.states if s.final)
        self.closed = frozenset(s.code for s in rules.states if "closed" in s.flags) or self.final
        # (state, move) -> transition: the whole table, one lookup per move.
        self.table: dict[tuple[str, str], Transition] = {
            (source, t.code): t for t in rules.transitions for source in t.sources
        }
        self.moves = {t.code: t for t in rules.transitions}

    @classmethod
    def of(cls, ruleset: Ruleset) -> "Lifecycle":
        if ruleset.lifecycle is None:
            raise TransitionError(f"ruleset {ruleset.name} has no lifecycle: add a `lifecycle {{ ... }}` block")
        return cls(ruleset.lifecycle)

    def allowed(self, state: str, role: str) -> dict[str, str]:
        """Moves ``role`` may make from ``state``, each with its target state."""
        return {
            move: t.target for (source, move), t in self.table.items() if source == state and role in t.roles
        }

    def move(
        self,
        state: str,
        move: str,
        role: str,
        *,
        evidence: Iterable[str] = (),
        on_device: bool = False,
        actor: str = "",
        at: Optional[datetime] = None,
        closing_requires: Iterable[str] = (),
        reporter: object = _UNCHECKED,
    ) -> Event:
        """The event of making ``move`` from ``state`` as ``role``.

        ``evidence`` names what the actor brings ("photo",
        "onsite_confirmation", "callback"). ``on_device``: the move is made
        on a tablet, so a move reserved to the office becomes a proposal.
        ``closing_requires`` is evidence a move into a closed state needs on
        top of the transition's own, e.g. the callback every request on a
        hotline channel gets before it closes. ``reporter``: the worker who
        reported the case, for a move the rules ask of the reporter (checked
        only when given).
        Raises `TransitionError` if the state or move is unknown, the move is
        not legal from the state, the role may not make it, required
        evidence is missing, or the reporter's move is made by someone else.
        """
        # Every refusal names the state, the move and the role, whichever guard refused.
        facts = {"state": state, "move": move, "role": role}
        if state not in self.states:
            raise _refusal("unknown_state", facts, expected=", ".join(self.states))
        rule = self.moves.get(move)
        if rule is None:
            raise _refusal("unknown_move", facts, expected=", ".join(self.moves))
        if (state, move) not in self.table:
            legal = ", ".join(m for (s, m) in self.table if s == state) or NO_MOVES
            raise _refusal("not_from_state", facts, legal=legal)
        if role not in rule.roles:
            raise _refusal("wrong_role", facts, expected=", ".join(rule.roles))
        needs = list(rule.requires)
        if rule.target in self.closed:
            needs += [n for n in closing_requires if n not in needs]
        missing = [need for need in needs if need not in set(evidence)]
        if missing:
            raise _refusal("missing_evidence", facts, missing=tuple(missing),
                           needs=", ".join(EVIDENCE_NAMES.get(m, m) for m in missing))
        if rule.from_reporter and reporter is not _UNCHECKED and actor != reporter:
            # e.g. TEDA: the grid worker who reported the case confirms the repair on site, nobody else.
            raise _refusal("not_reporter", facts, reporter=reporter, actor=actor)
        return Event(
            move=move,
            from_status=state,
            to_status=rule.target,
            role=role,
            actor=actor,
            at=at,
            evidence=frozenset(evidence),
            proposal=on_device and rule.office,
        )

    def transition(self, state: str, move: str) -> Optional[Transition]:
        """The transition ``move`` makes from ``state``, or None where it is not legal (never raises)."""
        return self.table.get((state, move))

    def step(self, status: str, move: str, proposal: bool) -> tuple[str, Optional[str]]:
        """The status after replaying ``move`` on ``status``, and how it was kept if not applied:
        "stale" (not legal from there) or "proposal" (awaits the office)."""
        rule = self.table.get((status, move))
        if rule is None:
            return status, "stale"
        if proposal and rule.office:
            return status, "proposal"
        return rule.target, None

    def status_after(self, events: Iterable[Event]) -> str:
        """Replay events in order from the initial state; illegal ones are skipped (stale)."""
        status = self.initial
        for event in events:
            status, _ = self.step(status, event.move, event.proposal)
        return status

    def is_closed(self, state: str) -> bool:
        return state in self.closed

    def reachable(self) -> set[str]:
        """States reachable from the initial state."""
        seen, todo = {self.initial}, [self.initial]
        while todo:
            state = todo.pop()
            for (source, _), t in self.table.items():
                if source == state and t.target not in seen:
                    seen.add(t.target)
                    todo.append(t.target)
        return seen


@lru_cache(maxsize=64)
def machine(rules: LifecycleRules) -> Lifecycle:
    """The state machine of ``rules``, built once per (frozen, hashable) lifecycle; merge replays call it per case."""
    return Lifecycle(rules)


def closing_requires(ruleset: Ruleset, channel: str) -> tuple[str, ...]:
    """Evidence a move into a closed state needs because of the case's channel: the callback (回访)
    a channel promises to every request on it."""
    return ("callback",) if any(c.code == channel and c.callback for c in ruleset.channels) else ()


# -- replay: a case's status derived from its moves, as sync merges them ---------------------------

@dataclass(frozen=True)
class Move:
    """One recorded transition of a case, as replay needs it."""

    id: str
    hlc: int
    origin: str
    move: str
    to_status: str = ""


@dataclass(frozen=True)
class Replay:
    status: str
    flags: dict[str, str]  # event id -> "stale" | "proposal" for moves not applied


def replay(moves: Iterable[Move], rules: Optional[LifecycleRules], masters: frozenset[str]) -> Replay:
    """Derive a case's status from its moves, in ``(hlc, origin)`` order.

    A move that is not legal from the status reached so far is *stale* (kept,
    not applied). A move the ruleset reserves to the office, recorded on a
    device that is not a master, is a *proposal* until the office records it.
    Without a lifecycle the last move's target wins.
    """
    ordered = sorted(moves, key=lambda m: (m.hlc, m.origin))
    if rules is None:
        status = ""
        for move in ordered:
            status = move.to_status or status
        return Replay(status, {})
    if not rules.states:
        return Replay("", {move.id: "stale" for move in ordered})
    table = _machine(rules)
    status, flags = table.initial, {}
    for move in ordered:
        status, flag = table.step(status, move.move, move.origin not in masters)
        if flag:
            flags[move.id] = flag
    return Replay(status, flags)


_last_machine: list = [None, None]


def _machine(rules: LifecycleRules) -> Lifecycle:
    # Replays run per case with the same lifecycle object: finding its cached
    # machine by hashing the frozen model each time cost more than the replay.
    if _last_machine[0] is not rules:
        _last_machine[:] = [rules, machine(rules)]
    return _last_machine[1]
