"""Property tests: JSON round trips, and no input ever escapes as a traceback."""
from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings, strategies as st

from wangge import dsl
from wangge.core import ruleset as rs
from wangge.core.errors import RuleError
from support.rules import FIXTURES

DISTRICT = (FIXTURES / "district.wg").read_text(encoding="utf-8")

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
codes = st.text("网格社区街道甲乙丙0123456789ab", min_size=1, max_size=4)
numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10**6, 10**6)
labels = st.builds(rs.Label, zh=text, en=text)
durations = st.builds(rs.Duration, amount=numbers, unit=st.sampled_from(rs.TimeUnit))
optional_codes = st.none() | codes
small = dict(max_size=3)

items = st.builds(
    rs.CaseItem, code=codes, label=labels, severity=optional_codes,
    sla=st.lists(st.builds(rs.SlaStage, state=codes, within=durations), **small).map(tuple),
    evidence=st.lists(st.sampled_from(["photo", "onsite_confirmation", "callback"]), **small).map(tuple),
    steps=st.lists(labels, **small).map(tuple), channels=st.lists(codes, **small).map(tuple),
    difficulty=numbers, escalation=optional_codes)
classes = st.builds(rs.CaseClass, code=codes, label=labels, kind=st.sampled_from(["event", "component"]),
                    items=st.lists(items, **small).map(tuple), escalation=optional_codes)
levels = st.builds(
    rs.GridLevel, code=codes, label=labels, rank=st.integers(0, 5),
    sizing=st.builds(rs.Sizing, households_per_grid=st.none() | st.integers(1, 1000),
                     buildings_per_grid=st.none() | st.tuples(st.integers(0, 9), st.integers(0, 9))),
    classes=st.lists(st.builds(rs.GridClass, code=codes, label=labels, targets=st.lists(
        st.builds(rs.Target, code=codes, label=labels, value=numbers, unit=text), **small).map(tuple)),
        **small).map(tuple))
lifecycles = st.none() | st.builds(
    rs.Lifecycle,
    states=st.lists(st.builds(rs.State, code=codes, label=labels, initial=st.booleans(), final=st.booleans(),
                              flags=st.lists(st.sampled_from(["void", "rework"]), **small).map(tuple)),
                    **small).map(tuple),
    transitions=st.lists(st.builds(rs.Transition, code=codes, label=labels,
                                   sources=st.lists(codes, **small).map(tuple), target=codes,
                                   roles=st.lists(codes, **small).map(tuple), office=st.booleans()),
                         **small).map(tuple))
escalations = st.builds(rs.EscalationPath, code=codes, label=labels, ceiling=optional_codes, next=optional_codes,
                        steps=st.lists(st.builds(rs.EscalationStep, level=codes, role=optional_codes,
                                                 after=durations, within=st.none() | durations),
                                       **small).map(tuple))
fields = st.builds(rs.FieldSpec, code=codes, label=labels, type=st.sampled_from(rs.FieldType),
                   required=st.booleans(), choices=st.lists(text, **small).map(tuple),
                   min=st.none() | numbers, max=st.none() | numbers, pattern=st.none() | text)
formulas = st.builds(
    rs.Formula, code=codes, label=labels, subject=st.sampled_from(["worker", "grid"]), total=numbers,
    indicators=st.lists(st.builds(rs.Indicator, code=codes, numerator=codes, denominator=optional_codes,
                                  weight=numbers, target=st.none() | numbers), **small).map(tuple),
    tiers=st.lists(st.builds(rs.Tier, code=codes, min=numbers, max=numbers), **small).map(tuple),
    vetoes=st.lists(st.builds(rs.Veto, code=codes, metric=codes, at_least=numbers,
                              bars=st.lists(codes, **small).map(tuple)), **small).map(tuple))
settings_ = st.builds(rs.Settings, timezone=text, calendar=st.builds(
    rs.Calendar, holidays=st.lists(st.dates(date(2000, 1, 1), date(2100, 1, 1)), **small).map(tuple)))

rulesets = st.builds(
    rs.Ruleset, name=codes, label=labels, base=optional_codes, settings=settings_,
    roles=st.lists(st.builds(rs.Role, code=codes, label=labels, level=optional_codes, office=st.booleans()),
                   **small).map(tuple),
    levels=st.lists(levels, **small).map(tuple), catalogue=st.lists(classes, **small).map(tuple),
    lifecycle=lifecycles, escalations=st.lists(escalations, **small).map(tuple),
    registers=st.lists(st.builds(rs.Register, entity=st.sampled_from(["household", "visit"]),
                                 fields=st.lists(fields, **small).map(tuple)), **small).map(tuple),
    formulas=st.lists(formulas, **small).map(tuple),
    points=st.builds(rs.Points, earn=st.lists(st.builds(rs.EarnRule, code=codes, points=st.integers()),
                                              **small).map(tuple)),
    projects=st.lists(st.builds(rs.ProjectTemplate, code=codes, stages=st.lists(
        st.builds(rs.ProjectStage, code=codes, share=numbers), **small).map(tuple)), **small).map(tuple),
    meetings=st.lists(st.builds(rs.Meeting, code=codes, every=durations), **small).map(tuple),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(rulesets)
def test_ruleset_json_round_trip(ruleset):
    again = rs.Ruleset.from_json(ruleset.canonical_json())
    assert again == ruleset
    assert again.version == ruleset.version


def test_compiled_district_round_trips():
    ruleset = dsl.load(FIXTURES / "district.wg")
    assert rs.Ruleset.from_json(ruleset.canonical_json()) == ruleset


def _load_quietly(text: str) -> None:
    try:
        dsl.loads(text, "fuzz.wg", FIXTURES)
    except RuleError as error:
        assert error.diagnostics and all(d.message for d in error.diagnostics)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_rule_errors(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    _load_quietly(text)


edits = st.lists(st.tuples(st.integers(0, len(DISTRICT)), st.integers(0, 4),
                           st.sampled_from(["", "{", "}", "\"", ",", "..", "->", "\n", "#", "0", "网格", " x ",
                                            "\x00", "/", "%", "-1", "1e9", "'"])),
                 min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(edits)
def test_mutations_of_a_valid_file_raise_only_rule_errors(changes):
    text = DISTRICT
    for position, deleted, inserted in changes:
        position = min(position, len(text))
        text = text[:position] + inserted + text[position + deleted:]
    _load_quietly(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(DISTRICT.split()), max_size=40))
def test_shuffled_tokens_raise_only_rule_errors(tokens):
    _load_quietly("ruleset f\n" + " ".join(tokens))
