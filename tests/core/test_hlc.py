from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

import pytest

from wangge.core.errors import ClockDriftError, WanggeError
from wangge.core.hlc import Clock, counter_of, describe, moment, pack, wall_of

times = st.integers(min_value=0, max_value=2**40)
events = st.lists(st.tuples(st.booleans(), times, times), min_size=1, max_size=60)


@given(events)
def test_stamps_strictly_increase_whatever_the_physical_clock_does(steps):
    clock = Clock(max_drift_ms=2**41)
    issued = []
    for is_remote, physical, remote_wall in steps:
        if is_remote:
            issued.append(clock.observe(pack(remote_wall, 3), physical))
        else:
            issued.append(clock.now(physical))
    assert issued == sorted(issued) and len(set(issued)) == len(issued)


@given(times, times)
def test_a_local_stamp_never_lags_the_physical_clock(last_wall, physical):
    clock = Clock(last=pack(last_wall, 7))
    assert wall_of(clock.now(physical)) >= physical


@given(times, st.integers(min_value=0, max_value=2**30))
def test_observed_remote_stamps_are_merged(physical, behind):
    clock = Clock()
    before = clock.now(physical)
    remote = pack(max(physical - behind, 0), 9)
    merged = clock.observe(remote, physical)
    assert merged > remote and merged > before


@given(times, st.integers(min_value=1, max_value=2**20))
def test_a_stamp_beyond_the_drift_bound_is_refused_and_changes_nothing(physical, excess):
    clock = Clock(max_drift_ms=60_000)
    clock.now(physical)
    last = clock.last
    with pytest.raises(ClockDriftError) as raised:
        clock.observe(pack(physical + 60_000 + excess, 0), physical)
    assert clock.last == last
    assert isinstance(raised.value, WanggeError) and "ahead" in str(raised.value)


def test_a_stamp_within_the_drift_bound_is_accepted():
    clock = Clock(max_drift_ms=60_000)
    assert wall_of(clock.observe(pack(1_060_000, 0), 1_000_000)) == 1_060_000


def test_the_counter_overflows_into_the_next_millisecond():
    clock = Clock(last=pack(5, 0xFFFF))
    stamp = clock.now(5)
    assert (wall_of(stamp), counter_of(stamp)) == (6, 0)


#: What `datetime` holds: 0001-01-01 to 9999-12-31 23:59:59.999 UTC, in ms since the epoch.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FIRST_MS, _LAST_MS = -62_135_596_800_000, 253_402_300_799_999


@given(st.integers(min_value=_FIRST_MS, max_value=_LAST_MS), st.integers(min_value=0, max_value=0xFFFF))
def test_moment_is_the_utc_second_a_stamp_was_made(wall_ms, counter):
    made = _EPOCH + timedelta(milliseconds=wall_ms)
    expected = f"{made.year:04d}-{made:%m-%d %H:%M:%S} UTC"
    assert moment(pack(wall_ms, counter)) == expected


@pytest.mark.parametrize("stamp, expected", [
    (2**64, "10889-08-02 05:31:50 UTC"),  # a broken clock's: past what `datetime` holds
    (pack(_LAST_MS + 1), "10000-01-01 00:00:00 UTC"),
    (pack(_FIRST_MS - 1), "0000-12-31 23:59:59 UTC"),  # ISO 8601's year 0, 1 BC
    (-(2**64), "-6950-05-31 18:28:09 UTC"),
    (pack(-1), "1969-12-31 23:59:59 UTC"),
])
def test_moment_describes_a_stamp_outside_the_calendar_datetime_holds(stamp, expected):
    assert moment(stamp) == expected


@given(st.integers(min_value=-(2**200), max_value=2**200) | st.sampled_from([10**5000, -(10**5000)]))
def test_describe_and_moment_take_any_integer(stamp):
    assert describe(stamp).endswith(f".{counter_of(stamp)}")
    assert moment(stamp).endswith(("UTC", "outside any calendar"))


def test_a_stamp_python_cannot_write_in_decimal_is_still_described():
    assert describe(pack(10**5000, 7)) == f"({(10**5000).bit_length()}-bit wall time).7"
    assert moment(pack(10**5000)) == f"a {(10**5000 // 1000).bit_length()}-bit wall time, far outside any calendar"
