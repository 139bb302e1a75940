from hypothesis import given
from hypothesis import strategies as st

import pytest

from wangge.core.errors import ClockDriftError, WanggeError
from wangge.core.hlc import Clock, counter_of, pack, wall_of

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
