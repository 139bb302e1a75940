"""Scope checksums digest stamps in one canonical form, however a store wrote them."""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from wangge.sync import scope

stamps = st.dictionaries(st.text(max_size=6), st.tuples(st.integers(0, 2**63 - 1), st.text(max_size=8)).map(list),
                         max_size=8)


@given(stamps)
def test_the_canonical_form_is_sorted_ascii_json_whatever_the_stored_spacing_and_order(value):
    expected = json.dumps(value, sort_keys=True)
    shuffled = dict(reversed(list(value.items())))
    for stored in (json.dumps(shuffled, ensure_ascii=False), json.dumps(shuffled, separators=(",", ":"))):
        assert scope._canonical(json.loads(stored)) == expected
