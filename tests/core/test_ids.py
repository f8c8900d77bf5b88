"""Job ids: valid UUIDv7, unique, and in creation order within a thread."""

from __future__ import annotations

import time
import uuid

from nightcrew.ids import uuid7


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
