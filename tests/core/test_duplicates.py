from datetime import datetime, timedelta

from wangge.core.duplicates import Report, likely_duplicates

T = datetime(2026, 10, 12, 9, 0)


def test_same_item_same_building_within_the_window_is_a_likely_duplicate():
    new = Report("n", "0102", "G1", T, building="B7")
    older = [
        Report("a", "0102", "G1", T - timedelta(hours=5), building="B7"),
        Report("b", "0102", "G1", T - timedelta(hours=80), building="B7"),  # outside 72 h
        Report("c", "0101", "G1", T - timedelta(hours=1), building="B7"),  # another item
        Report("d", "0102", "G1", T - timedelta(hours=1), building="B8"),  # another building
        Report("e", "0102", "G1", T - timedelta(hours=2), household="H1", building="B7"),
    ]
    found = likely_duplicates(new, older, 72)
    assert [(r.id, why) for r, why in found] == [
        ("e", "same building, same item 0102, 2.0 h apart"),
        ("a", "same building, same item 0102, 5.0 h apart"),
    ]


def test_without_a_building_the_grid_decides():
    new = Report("n", "0201", "G1", T)
    assert [r.id for r, _ in likely_duplicates(new, [Report("a", "0201", "G1", T), Report("b", "0201", "G2", T)], 48)] == ["a"]
