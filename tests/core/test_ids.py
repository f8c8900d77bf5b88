"""Job ids: valid UUIDv7, unique, and in creation order within a thread."""

from __future__ import annotations

import time
import uuid

from nightcrew import ids
from nightcrew.ids import uuid7, uuid7_ints, uuid_from_int


def test_ids_are_version_7_unique_and_ordered() -> None:
    ids = [uuid7() for _ in range(20_000)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # many share a millisecond: the counter keeps the order


def test_ids_carry_their_creation_time_and_round_trip() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= value.int >> 80 <= after + 1
    assert uuid.UUID(str(value)) == value and hash(uuid.UUID(value.hex)) == hash(value)


def test_id_blocks_continue_the_order_of_single_ids() -> None:
    values = [uuid7().int]
    for size in (1, 7, 256, 1000):
        values.extend(uuid7_ints(size))
        values.append(uuid7().int)
    assert values == sorted(values) and len(set(values)) == len(values)
    assert all(uuid.UUID(int=v).version == 7 for v in values)
    assert all(uuid.UUID(int=v).variant == uuid.RFC_4122 for v in values)


def test_id_block_never_carries_into_the_variant_bits() -> None:
    # Put the counter's low 62 bits 3 short of their maximum: a block of 10 must not
    # spill into the variant (or, at the very top, the version and time) bits.
    for top_max in (False, True):
        first = uuid7()
        ids._local.rand |= (1 << 62) - 3  # only raises the counter: the order stays valid
        if top_max:  # and the top 12 bits full: the block moves to the next millisecond
            ids._local.rand |= ((1 << 12) - 1) << 62
        block = list(uuid7_ints(10))
        after = uuid7().int
        assert [first.int, *block, after] == sorted({first.int, *block, after})
        for v in (*block, after):
            parsed = uuid.UUID(int=v)
            assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_uuid_from_int_equals_the_standard_constructor() -> None:
    value = uuid7().int
    made = uuid_from_int(value)
    assert made == uuid.UUID(int=value) and hash(made) == hash(uuid.UUID(int=value))
    assert str(made) == str(uuid.UUID(int=value)) and made.is_safe is uuid.SafeUUID.unknown
