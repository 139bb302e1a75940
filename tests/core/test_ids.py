"""Entity and op ids: valid UUIDv7s, unique, and increasing however they are minted."""
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from wangge.core.ids import uuid7, uuid7_many, uuid7_time_ms


def _is_v7(value: str) -> bool:
    parsed = uuid.UUID(value)
    return parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == value


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=6))
def test_ids_minted_singly_and_in_batches_are_valid_unique_and_increasing(batches):
    minted = [uuid7()]
    for size in batches:
        minted.extend(uuid7_many(size))
        minted.append(uuid7())
    assert all(_is_v7(value) for value in minted)
    assert minted == sorted(minted)
    assert len(set(minted)) == len(minted)


def test_a_batch_larger_than_the_counter_moves_time_forward_and_stays_ordered():
    # 12 bits of counter per millisecond: 10,000 ids must spill into later milliseconds.
    batch = uuid7_many(10_000)
    assert batch == sorted(batch) and len(set(batch)) == len(batch)
    assert uuid7_time_ms(batch[-1]) > uuid7_time_ms(batch[0])


def test_the_random_bits_differ_between_ids():
    tails = {value[-12:] for value in uuid7_many(1000)}
    assert len(tails) == 1000
