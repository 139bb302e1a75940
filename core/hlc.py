"""Hybrid logical clocks (Kulkarni et al., 2014) with a drift bound.

A stamp packs the wall time in milliseconds and a 16-bit logical counter into
one integer, ``wall_ms << 16 | counter``, so stamps compare, sort and index as
plain integers on SQLite and PostgreSQL alike. Ties between stamps from
different devices are broken by the device id, never by arrival order.

The clock is sans-IO: callers pass the physical time in, so tests drive it
with any clock they like and nothing here reads the system time.
"""
from __future__ import annotations

from dataclasses import dataclass

from wangge.core.errors import ClockDriftError

COUNTER_BITS = 16
COUNTER_MAX = (1 << COUNTER_BITS) - 1
#: Default bound on how far a remote stamp may run ahead of our physical clock.
DEFAULT_MAX_DRIFT_MS = 5 * 60 * 1000


def pack(wall_ms: int, counter: int = 0) -> int:
    """Pack a wall time and a counter into one stamp."""
    return (wall_ms << COUNTER_BITS) | counter


def wall_of(stamp: int) -> int:
    """The wall time in milliseconds carried by a stamp."""
    return stamp >> COUNTER_BITS


def counter_of(stamp: int) -> int:
    """The logical counter carried by a stamp."""
    return stamp & COUNTER_MAX


def describe(stamp: int) -> str:
    """A stamp as ``wall_ms.counter``, for messages and traces, whatever integer it is."""
    wall = wall_of(stamp)
    try:
        return f"{wall}.{counter_of(stamp)}"
    except ValueError:  # more digits than Python writes in decimal (sys.get_int_max_str_digits); no clock's
        return f"({wall.bit_length()}-bit wall time).{counter_of(stamp)}"


def moment(stamp: int) -> str:
    """A stamp as the UTC time it was made, to the second, for people reading a review list.

    Works for any integer: a stamp from a broken clock can lie past year 9999 (or
    before year 1), where `datetime` gives up, and it is exactly such a stamp that
    a message about a wrong clock must show. Years are ISO 8601's (0 is 1 BC).
    """
    seconds = wall_of(stamp) // 1000
    days, second = divmod(seconds, 86_400)
    year, month, day = _civil(days)
    hour, rest = divmod(second, 3600)
    try:
        written = f"{abs(year):04d}"
    except ValueError:  # a year of more digits than Python writes in decimal
        return f"a {seconds.bit_length()}-bit wall time, far outside any calendar"
    sign = "-" if year < 0 else ""
    return f"{sign}{written}-{month:02d}-{day:02d} {hour:02d}:{rest // 60:02d}:{rest % 60:02d} UTC"


def _civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of the proleptic Gregorian calendar, ``days`` after 1970-01-01.

    H. Hinnant's ``civil_from_days``: exact for any integer, unlike `datetime`.
    """
    days += 719_468  # from 0000-03-01, so a leap day ends each 4-year cycle
    era, day_of_era = divmod(days, 146_097)
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted = (5 * day_of_year + 2) // 153  # months from March
    day = day_of_year - (153 * shifted + 2) // 5 + 1
    month = shifted + 3 if shifted < 10 else shifted - 9
    return era * 400 + year_of_era + (month <= 2), month, day


def span(ms: int) -> str:
    """A length of time for people, in its largest whole unit: ``3,516 days``, ``5 min``, ``40 s``."""
    for unit, size in (("days", 86_400_000), ("hours", 3_600_000), ("min", 60_000)):
        if ms >= size:
            return f"{ms // size:,} {unit}"
    return f"{ms // 1000} s"


@dataclass
class Clock:
    """One node's hybrid logical clock.

    ``last`` is the greatest stamp issued or observed. Every stamp the clock
    issues is strictly greater than every stamp it issued or observed before.
    """

    last: int = 0
    max_drift_ms: int = DEFAULT_MAX_DRIFT_MS

    def now(self, physical_ms: int) -> int:
        """Issue a stamp for a local event at physical time ``physical_ms``."""
        self.last = _advance(self.last, physical_ms)
        return self.last

    def now_many(self, physical_ms: int, count: int) -> range:
        """Issue ``count`` consecutive stamps at once, for a batch of local events.

        Stamps are integers, so consecutive ones simply carry from the counter
        into the next millisecond, exactly as ``count`` calls of `now` would.
        """
        first = _advance(self.last, physical_ms)
        self.last = first + max(count, 1) - 1
        return range(first, first + count)

    def check(self, remote: int, physical_ms: int) -> None:
        """Raise `ClockDriftError` if ``remote`` runs too far ahead of us."""
        ahead = wall_of(remote) - physical_ms
        if ahead > self.max_drift_ms:
            raise ClockDriftError(
                f"clock drift: remote stamp {describe(remote)} is {ahead} ms ahead of "
                f"the local clock ({physical_ms} ms); expected at most {self.max_drift_ms} ms"
            )

    def observe(self, remote: int, physical_ms: int) -> int:
        """Merge a remote stamp into the clock and return a new local stamp.

        Raises `ClockDriftError` (and leaves the clock unchanged) if the
        remote stamp lies beyond the drift bound: such an op is quarantined
        by the caller rather than dragging every clock into the future.
        """
        self.check(remote, physical_ms)
        self.last = _advance(max(self.last, remote), physical_ms)
        return self.last


def _advance(last: int, physical_ms: int) -> int:
    if physical_ms > wall_of(last):
        return pack(physical_ms, 0)
    if counter_of(last) == COUNTER_MAX:
        # 65,536 events in one millisecond: borrow the next millisecond rather
        # than overflow into the wall time bits.
        return pack(wall_of(last) + 1, 0)
    return last + 1
