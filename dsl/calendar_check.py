"""The calendar's reach: warn about years a deadline can fall in that have no official schedule.

A deadline counted in working days over Spring Festival is only right if the
year's holidays and make-up workdays are known. A checked rule file runs for
a while: the reach is a quarter from today, or longer if the longest SLA plus
its escalation chain and a long holiday on the way (up to ten days) reach
further. Every year in that reach that the holiday library does not hold, and
the rule file does not give with ``year YYYY { … }``, gets a warning — in
December, the coming year until its notice is out.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Iterable

from wangge.core.calendar import unannounced
from wangge.core.ruleset import Ruleset
from wangge.dsl.diagnostics import Diagnostic
from wangge.dsl.units import nominal_hours

__all__ = ["calendar_warnings", "reach"]

#: The longest run of days off a notice makes (Spring Festival, National Day).
LONG_HOLIDAY = timedelta(days=10)
#: How long a checked rule file is expected to run before it is checked again.
QUARTER = timedelta(days=91)


def reach(ruleset: Ruleset) -> timedelta:
    """How far after a report its deadlines and escalations can fall, roughly (an upper bound)."""
    longest_sla = max((sum(nominal_hours(s.within) for s in item.sla) for item in ruleset.items.values()), default=0)
    longest_chain = max((sum(nominal_hours(s.within) for s in path.steps if s.within) for path in ruleset.escalations),
                        default=0)
    return max(QUARTER, timedelta(hours=longest_sla + longest_chain) + LONG_HOLIDAY)


def calendar_warnings(ruleset: Ruleset, today: date, file: str) -> Iterable[Diagnostic]:
    """A warning for every year from ``today`` to its reach with no official holiday schedule."""
    calendar = ruleset.settings.calendar
    for year in unannounced(calendar, today.year, (today + reach(ruleset)).year):
        yield Diagnostic(
            file, 0, 0,
            f"{year} has no official holiday schedule yet: deadlines in {year} are provisional "
            f"(statutory holidays estimated, make-up workdays unknown)",
            f"when the State Council notice for {year} is out, give it in settings: "
            f"year {year} {{ holidays {year}-MM-DD..{year}-MM-DD  workdays {year}-MM-DD }}, "
            f"or update the chinese-calendar package",
            severity="warning",
        )
