import pytest
from hypothesis import given
from hypothesis import strategies as st

from wangge.core.errors import UsageError
from wangge.core.ruleset import Sizing
from wangge.core.sizing import Unit, grids_needed, merge_small, split_buildings


def test_400_households_per_worker():
    assert grids_needed(3902, Sizing(households_per_grid=400)) == 10


def test_a_small_compound_merges_with_its_neighbour():
    groups = merge_small([Unit("金陵小区", 280), Unit("宝塔新村", 450), Unit("企业宿舍", 120)], Sizing(merge_below=300))
    # 280 joins its neighbour; the small dormitory at the end joins that group too.
    assert [[u.name for u in g] for g in groups] == [["金陵小区", "宝塔新村", "企业宿舍"]]


@given(st.lists(st.integers(1, 900), min_size=1, max_size=30), st.integers(1, 600))
def test_merged_groups_keep_every_unit_and_meet_the_threshold(sizes, threshold):
    units = [Unit(str(i), h) for i, h in enumerate(sizes)]
    groups = merge_small(units, Sizing(merge_below=threshold))
    assert [u for g in groups for u in g] == units
    if sum(sizes) >= threshold:
        assert all(sum(u.households for u in g) >= threshold for g in groups)


@given(st.integers(3, 200))
def test_buildings_split_into_three_to_five(count):
    groups = split_buildings([f"{i}幢" for i in range(count)], Sizing(buildings_per_grid=(3, 5)))
    assert sum(len(g) for g in groups) == count and all(3 <= len(g) <= 5 for g in groups)


def test_too_few_buildings_is_a_clear_error():
    with pytest.raises(UsageError, match="2 buildings cannot form a grid of 3..5"):
        split_buildings(["1幢", "2幢"], Sizing(buildings_per_grid=(3, 5)))
