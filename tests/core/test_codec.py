"""The store's JSON codec: every form reads back as the value written, in the form each reader expects."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from wangge.core import codec

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))
_json = st.recursive(st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**63 - 1) | _text
                     | st.floats(allow_nan=False, allow_infinity=False),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4), max_leaves=12)


@given(_json)
def test_every_form_reads_back_as_the_value_written(value):
    for form in (codec.column, codec.op, codec.canonical):
        assert codec.decoded(form(value)) == value


@given(_json)
def test_each_form_is_the_one_its_reader_expects(value):
    assert codec.column(value) == json.dumps(value, ensure_ascii=False)  # the engine's serializer
    assert codec.canonical(value) == json.dumps(value, sort_keys=True)  # the checksum's digest form
    assert codec.op(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_dates_travel_as_iso_text_in_ops_and_a_decoded_value_stays_decoded():
    at = datetime(2026, 10, 13, 9, 0, tzinfo=timezone.utc)
    assert codec.decoded(codec.op({"at": at})) == {"at": "2026-10-13T09:00:00+00:00"}
    assert codec.decoded({"already": "decoded"}) == {"already": "decoded"}
    assert codec.decoded(None) is None
    assert codec.column("汉字") == '"汉字"'
