"""Helpers shared by the tests: wait on conditions, never sleep-and-hope."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.02)


async def await_until(
    condition: Callable[[], Awaitable[object]], timeout: float = 10.0, what: str = ""
) -> None:
    """Async twin of :func:`wait_until`."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(0.02)


def most_in_window(times: list[float], window: float) -> int:
    """The most of ``times`` (seconds) that fall in any half-open window of ``window``
    seconds: what a rate limit of N per ``window`` must keep at N (+ its burst)."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - window:
            first += 1
        most = max(most, last - first + 1)
    return most
