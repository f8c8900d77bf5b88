"""The provider clients against real sandbox processes: a 429 is retried after its
Retry-After, a 5xx and a timeout after a backoff, a 4xx not at all; an idempotency key is
billed once; every attempt takes a slot of the throttle."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from prospecting.providers import (
    HttpEmailFinder,
    HttpEmailVerifier,
    HttpPlaceSearch,
    ProviderClient,
    ProviderError,
    retry_after_seconds,
)
from prospecting.settings import Provider
from tests.prospecting.conftest import SandboxProcess


@pytest.fixture
def start_sandbox(tmp_path: Path) -> Iterator[Callable[..., SandboxProcess]]:
    started: list[SandboxProcess] = []

    def start(**options: object) -> SandboxProcess:
        process = SandboxProcess(tmp_path / f"sandbox-{len(started)}.log", **options)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


class CountingThrottle:
    """A throttle that lets every call through and counts them."""

    def __init__(self) -> None:
        self.slots = 0

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        self.slots += 1
        yield


def client_of(
    sandbox: SandboxProcess, name: str, http: httpx.AsyncClient, throttle: CountingThrottle,
    *, key: str = "test", attempts: int = 3,
) -> ProviderClient:  # fmt: skip
    provider = Provider(name, f"{sandbox.base}/{name}", key, "5/s", 5.0, Decimal("0.01"))
    return ProviderClient(provider, http, throttle, max_attempts=attempts, backoff_base=0.05)


async def test_a_429_is_retried_after_its_retry_after(
    start_sandbox: Callable[..., SandboxProcess],
) -> None:
    sandbox = start_sandbox(rate_429=1.0, retry_after=0.4)
    throttle = CountingThrottle()
    async with httpx.AsyncClient(timeout=5) as http:
        client = client_of(sandbox, "finder", http, throttle, attempts=3)
        started = time.monotonic()
        with pytest.raises(ProviderError, match=r"finder: gave up after 3 attempts \(HTTP 429\)"):
            await HttpEmailFinder(client).find("a.example")
        assert time.monotonic() - started >= 0.8, "two waits of Retry-After 0.4 s"
    assert throttle.slots == 3 == sandbox.stats()["finder"]["requests"]
    assert sandbox.stats()["finder"]["billed"] == {}


async def test_5xx_are_retried_with_backoff_until_one_succeeds(
    start_sandbox: Callable[..., SandboxProcess],
) -> None:
    sandbox = start_sandbox(error_rate=0.6, seed=3)
    throttle = CountingThrottle()
    async with httpx.AsyncClient(timeout=5) as http:
        client = client_of(sandbox, "places", http, throttle, attempts=8)
        search = HttpPlaceSearch(client)
        first = await search.search("dentist in Denver")
        second = await search.search("dentist in Denver", first.next_token)
    assert len(first.places) == 20 and len(second.places) == 20
    assert {p.place_id for p in first.places}.isdisjoint({p.place_id for p in second.places})
    stats = sandbox.stats()["places"]
    assert stats["requests"] > 2, "some 503s were retried"
    assert sum(stats["billed"].values()) == 2, "only the 200s are billed"


async def test_a_timeout_is_retried_then_given_up(
    start_sandbox: Callable[..., SandboxProcess],
) -> None:
    sandbox = start_sandbox(latency_ms=600)
    throttle = CountingThrottle()
    async with httpx.AsyncClient(timeout=0.15) as http:
        client = client_of(sandbox, "verifier", http, throttle, attempts=2)
        with pytest.raises(ProviderError, match=r"gave up after 2 attempts.*Timeout"):
            await HttpEmailVerifier(client).verify("x@a.example")
    assert throttle.slots == 2


async def test_a_4xx_is_not_retried(start_sandbox: Callable[..., SandboxProcess]) -> None:
    sandbox = start_sandbox()
    throttle = CountingThrottle()
    async with httpx.AsyncClient(timeout=5) as http:
        client = client_of(sandbox, "verifier", http, throttle, key="", attempts=5)
        with pytest.raises(ProviderError, match="verifier: HTTP 401"):
            await HttpEmailVerifier(client).verify("x@a.example")
    assert throttle.slots == 1


async def test_an_idempotency_key_is_billed_once(
    start_sandbox: Callable[..., SandboxProcess],
) -> None:
    sandbox = start_sandbox()
    async with httpx.AsyncClient(timeout=5) as http:
        finder = HttpEmailFinder(client_of(sandbox, "finder", http, CountingThrottle()))
        answers = [await finder.find("b.example", idempotency_key="c1:finder:b") for _ in "ab"]
        await finder.find("b.example", idempotency_key="c2:finder:b")
    assert answers[0] == answers[1]
    assert sandbox.stats()["finder"]["billed"] == {"b.example": 2}  # c1 once, c2 once


def test_retry_after_is_read_in_seconds_and_capped() -> None:
    assert retry_after_seconds("2", 0.5) == 2
    assert retry_after_seconds(None, 0.5) == 0.5
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 0.5) == 0.5
    assert retry_after_seconds("3600", 0.5) == 30
    assert retry_after_seconds("-3", 0.5) == 0
