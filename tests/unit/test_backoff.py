"""Retry backoff: exponential with jitter from a float base, or a callable of the attempt."""

from __future__ import annotations

import pytest

from nightcrew.errors import ConfigurationError
from nightcrew.jobs import JobType, backoff_delay


@pytest.mark.parametrize("attempt", [1, 2, 3, 6])
def test_a_float_base_grows_exponentially_within_the_jitter(attempt: int) -> None:
    nominal = 2.0 * 2 ** (attempt - 1)
    delays = [backoff_delay(2.0, attempt) for _ in range(200)]
    assert all(0.75 * nominal <= d <= 1.25 * nominal for d in delays)
    assert len(set(delays)) > 100, "no jitter: jobs failing together would retry together"


def test_a_zero_base_retries_at_once() -> None:
    assert {backoff_delay(0, attempt) for attempt in range(1, 5)} == {0.0}


def test_a_callable_decides_alone_and_never_below_zero() -> None:
    assert [backoff_delay(lambda a: 10.0 * a, a) for a in (1, 2, 3)] == [10.0, 20.0, 30.0]
    assert backoff_delay(lambda a: -5, 1) == 0.0


def test_job_types_take_a_float_or_a_callable_backoff_and_refuse_a_negative_one() -> None:
    async def handler(ctx: object, payload: object) -> None:
        return None

    assert JobType("u.float", handler, backoff=1.5).backoff == 1.5
    assert callable(JobType("u.callable", handler, backoff=lambda a: a).backoff)
    with pytest.raises(ConfigurationError, match="backoff must be >= 0"):
        JobType("u.negative", handler, backoff=-1)
