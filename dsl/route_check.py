"""Routes that can never fire.

Routes are tried in file order and the first whose every condition holds
decides (the extending file's routes before the base's). A later route can
then never fire when an earlier one asks for less: every condition of the
earlier route is one the later route also sets, to the same value (a route
naming item 0103 also fixes class 01). Such a route is a warning at its own
place, naming the route that takes its cases. A route whose item lies in
another class than the one it names matches no case at all.

Only routes of one file are compared: an extending file's route that takes
the cases of a base route is an override, which is what `extends` is for.
Each route looks up the at most 16 condition sets its cases could match in a
table of earlier routes, so the check is linear in the number of routes.
"""
from __future__ import annotations

from itertools import combinations
from typing import Iterator, Optional

from textx import get_model

from wangge.dsl.definitions import Definitions
from wangge.dsl.diagnostics import Diagnostic, warning_at

__all__ = ["check_routes"]

_FACTS = ("item", "class", "channel", "severity")


def _code(refs) -> Optional[str]:
    ref = refs[0] if isinstance(refs, list) and refs else (None if isinstance(refs, list) else refs)
    return ref.code if ref is not None else None


def _conditions(route) -> dict[str, str]:
    found = {"item": _code(route.match_item), "class": _code(route.match_class),
             "channel": _code(route.match_channel), "severity": _code(route.match_severity)}
    return {fact: value for fact, value in found.items() if value is not None}


def _place(route) -> str:
    model = get_model(route)
    line, col = model._tx_parser.pos_to_linecol(route._tx_position)
    return f"{model._tx_filename or '<string>'}:{line}:{col}"


def check_routes(defs: Definitions) -> Iterator[Diagnostic]:
    """A warning for each route that an earlier route of its file shadows, or that no case can match."""
    earlier: dict[tuple, object] = {}  # (file, frozenset of conditions) -> the first route asking exactly that
    for route in defs.routes:
        asked = _conditions(route)
        klass = defs.item_class.get(asked.get("item", ""))
        if "item" in asked and "class" in asked and klass is not None and klass != asked["class"]:
            yield warning_at(route, f"this route can never fire: item {asked['item']} is in class {klass}, "
                                    f"not {asked['class']}", f"name class {klass}, or drop one of the two")
            continue
        # What every case this route matches is known to have: its conditions, and an item's class.
        known = dict(asked)
        if "item" in known and klass is not None:
            known["class"] = klass
        file = get_model(route)._tx_filename
        shadow = _first_shadow(earlier, file, known)
        if shadow is not None:
            said = ", ".join(f"{fact} {value}" for fact, value in _conditions(shadow).items()) or "any case"
            yield warning_at(route, f"this route can never fire: the earlier route at {_place(shadow)} ({said}) "
                                    f"takes every case it matches",
                             "routes are tried in file order and the first match wins: move this one above it")
        earlier.setdefault((file, frozenset(asked.items())), route)


def _first_shadow(earlier: dict, file, known: dict[str, str]):
    """The earliest route of ``file`` whose conditions are all among ``known``."""
    pairs = sorted(known.items())
    found = []
    for size in range(len(pairs) + 1):
        for subset in combinations(pairs, size):
            route = earlier.get((file, frozenset(subset)))
            if route is not None:
                found.append(route)
    return min(found, key=lambda r: r._tx_position) if found else None
