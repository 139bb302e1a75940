"""The queue's filter survives the round trip through its URL: what a person set is what the
next page (a link, a bookmark, htmx's pushed URL) reads back."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wangge import rulesets
from wangge.app.queries import QueueFilter, parse_filter

TEDA = rulesets.load("teda")
STATES = [s.code for s in TEDA.lifecycle.states]
text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20).map(str.strip)

filters = st.builds(
    QueueFilter, status=st.sampled_from(["", *STATES]), grid=text, case_class=st.sampled_from(["", *[c.code for c in TEDA.catalogue]]),
    item=st.just(""), channel=st.sampled_from(["", *[c.code for c in TEDA.channels]]), owner=text,
    overdue=st.booleans(), due_soon=st.booleans(), page=st.integers(1, 10**5))


@given(filters)
@settings(max_examples=200, deadline=None)
def test_a_filter_read_back_from_its_url_is_the_same_filter(chosen):
    again, problems = parse_filter(chosen.query(), TEDA)
    assert problems == [] and again == chosen


@given(st.dictionaries(st.sampled_from(["status", "class", "item", "channel", "page", "grid", "owner"]), text))
@settings(max_examples=200, deadline=None)
def test_any_url_gives_a_filter_or_says_what_is_wrong_never_an_exception(params):
    chosen, problems = parse_filter(params, TEDA)
    assert chosen.page >= 1
    for name in ("status", "channel"):
        value = params.get(name, "").strip()
        if value and value not in {"status": STATES, "channel": [c.code for c in TEDA.channels]}[name]:
            assert any(repr(value) in p for p in problems)
