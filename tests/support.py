"""Helpers shared by the tests: wait on conditions, never sleep-and-hope."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import psycopg


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


def lateness_by_slot(entries: list[float], slots: list[float], most: float) -> list[float]:
    """Give each call's entry a granted slot of its own that it entered at most ``most``
    seconds after (and not before, but for 5 ms of clock readings); return how late each
    call entered. Fails naming the first call that no free slot explains. Slots may
    coincide (a catch-up after a pause) and some go unused (late wakes let them pass);
    taking the earliest fitting slot for the earliest call finds a pairing when one
    exists. Same host: one clock."""
    ordered = sorted(slots)
    late, first = [], 0
    for entry in sorted(entries):
        while first < len(ordered) and ordered[first] < entry - most:
            first += 1  # too early for this call, so for every later one too
        assert first < len(ordered) and ordered[first] <= entry + 0.005, (
            f"the call entered at {entry} has no slot of its own in the {most}s before it"
        )
        late.append(entry - ordered[first])
        first += 1
    return late


_GRANTS_TABLE = "public.test_rate_grants"


def record_rate_grants(url: str) -> Callable[[str], list[float]]:
    """Record every rate slot the database grants, as it decides them.

    A trigger on ``nightcrew.limits`` logs each call added to a key's ``recent`` record
    (``limit_grant`` and ``limit_acquire`` both write it): the slots themselves, not when a
    handler got round to noting the time, which a CPU-starved process may do late and
    bunched. Returns a function giving one key's granted slots (epoch seconds, sorted).
    Only for a test module's own database (the trigger stays until it is dropped).
    """
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"""
            DROP TABLE IF EXISTS {_GRANTS_TABLE};
            CREATE TABLE {_GRANTS_TABLE} (key text NOT NULL, slot timestamptz NOT NULL);
            CREATE OR REPLACE FUNCTION public.test_log_rate_grants() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                -- The calls NEW.recent has that OLD.recent had not (duplicates count).
                INSERT INTO {_GRANTS_TABLE} (key, slot)
                SELECT NEW.key, x FROM (SELECT unnest(NEW.recent) EXCEPT ALL
                                        SELECT unnest(OLD.recent)) AS added(x);
                RETURN NULL;
            END
            $$;
            DROP TRIGGER IF EXISTS test_log_rate_grants ON nightcrew.limits;
            CREATE TRIGGER test_log_rate_grants AFTER UPDATE OF recent ON nightcrew.limits
                FOR EACH ROW EXECUTE FUNCTION public.test_log_rate_grants();
            """
        )

    def granted(key: str) -> list[float]:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                f"SELECT extract(epoch FROM slot)::float8 FROM {_GRANTS_TABLE}"
                " WHERE key = %s ORDER BY slot",
                (key,),
            ).fetchall()
        return [row[0] for row in rows]

    return granted
