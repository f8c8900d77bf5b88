"""A job never runs twice at once because of its lease: not on one worker (a thread that
outlived its lease), not because handlers hold every pool connection (starved heartbeats),
and not because a worker that cannot renew its leases keeps running its handlers."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from nightcrew import App, Job, JobContext, JobStatus, Worker
from nightcrew.lifecycle.rescue import rescue_expired
from nightcrew.queries import query
from tests.faults.proxy import CuttableProxy
from tests.support import await_until

# (job id, attempt, start, end) of every run, as the handlers record them.
Span = tuple[Any, int, float, float]


def overlapping(spans: list[Span]) -> list[tuple[Span, Span]]:
    """Pairs of runs of one job that were in progress at the same time."""
    ordered = sorted(spans, key=lambda span: (str(span[0]), span[2]))
    return [(a, b) for a, b in itertools.pairwise(ordered) if a[0] == b[0] and a[3] > b[2]]


def fast(app: App, **changes: Any) -> None:
    """Short leases, so that a lost lease shows within seconds."""
    app.settings = app.settings.model_copy(
        update={
            "lease_seconds": 2,
            "heartbeat_seconds": 0.5,
            "rescue_seconds": 0.5,
            "poll_seconds": 0.2,
            **changes,
        }
    )


async def get_job(app: App, job_id: Any) -> Job:
    job = await app.aget_job(job_id)
    assert job is not None
    return job


async def test_a_rescued_job_never_runs_beside_its_lingering_thread_on_the_same_worker(
    aapp: App, clean_db: str
) -> None:
    fast(aapp)
    spans: list[Span] = []
    lock = threading.Lock()

    @aapp.job("faults.stubborn", max_attempts=5)
    def stubborn(ctx: Any, payload: dict[str, float]) -> None:
        # Ignores its lease: a thread cannot be stopped. The retry outlasts a lease too,
        # so only heartbeats keep it.
        start = time.time()
        time.sleep(payload["first"] if ctx.job.attempt == 1 else payload["later"])
        with lock:
            spans.append((ctx.job.id, ctx.job.attempt, start, time.time()))

    job_id = await aapp.aenqueue("faults.stubborn", {"first": 3.0, "later": 3.0})
    worker = aapp.worker(concurrency=2)
    runner = asyncio.create_task(worker.run())
    try:

        async def first_attempt_running() -> bool:
            return bool(worker.running)

        await await_until(first_attempt_running, 10, "the first attempt to start")
        # Another worker rescues the job (its lease ran out while this worker stalled).
        with psycopg.connect(clean_db, autocommit=True) as conn, conn.transaction():
            conn.execute(
                "UPDATE nightcrew.jobs SET lease_expires_at = now() - interval '1 second'"
                " WHERE id = %s",
                (job_id,),
            )
            rescued = conn.execute(query("rescue_jobs"), {"limit": 10, "now": None}).fetchall()
        assert rescued == [(job_id, "retrying")]

        async def completed() -> bool:
            return (await get_job(aapp, job_id)).status is JobStatus.COMPLETED

        await await_until(completed, 20, "the job to complete")
    finally:
        worker.stop()
        await runner
    assert not overlapping(spans), f"two attempts ran at once: {overlapping(spans)}"
    assert [span[1] for span in sorted(spans, key=lambda s: s[2])] == [1, 2]
    job = await get_job(aapp, job_id)
    assert job.attempts == 2, "a third attempt began: the second one's lease was not renewed"
    assert [(e["attempt"], e["type"]) for e in job.errors] == [(1, "LeaseExpired")]


async def test_a_job_whose_lost_attempt_still_runs_here_is_not_fetched_here(
    aapp: App, clean_db: str
) -> None:
    fast(aapp)
    ended = threading.Event()

    @aapp.job("faults.lingering", max_attempts=5)
    def lingering(ctx: Any, payload: Any) -> None:
        if ctx.job.attempt == 1:
            time.sleep(3)  # outlives its lease: a thread cannot be stopped
            ended.set()

    job_id = await aapp.aenqueue("faults.lingering", {})
    worker = aapp.worker(concurrency=2)
    runner = asyncio.create_task(worker.run())
    try:

        async def running() -> bool:
            return bool(worker.running)

        await await_until(running, 10, "the first attempt to start")
        # Rescued elsewhere, and not due until this worker has learned its lease is lost.
        due_later = "UPDATE nightcrew.jobs SET run_at = now() + interval '1 hour' WHERE id = %s"
        with psycopg.connect(clean_db, autocommit=True) as conn, conn.transaction():
            conn.execute(
                "UPDATE nightcrew.jobs SET lease_expires_at = now() - interval '1 second'"
                " WHERE id = %s",
                (job_id,),
            )
            conn.execute(query("rescue_jobs"), {"limit": 10, "now": None})
            conn.execute(due_later, (job_id,))

        async def lease_known_lost() -> bool:
            return all(running.ctx.lease_lost for running in worker.running.values())

        await await_until(lease_known_lost, 2, "the heartbeat to find the lease lost")
        with psycopg.connect(clean_db, autocommit=True) as conn:
            conn.execute("UPDATE nightcrew.jobs SET run_at = now() WHERE id = %s", (job_id,))
        # A negative can only be watched for a while: due now, and the worker polls every
        # 0.2 s (and the rescue woke it) -- it must leave the job alone while its thread runs.
        await asyncio.sleep(1.0)
        job = await get_job(aapp, job_id)
        assert not ended.is_set(), "the first attempt ended too soon for this test"
        assert (job.status, job.attempts) == (JobStatus.RETRYING, 1), "fetched beside it"
        assert list(worker.running) == [(job_id, 1)]  # the old thread still takes a slot

        async def completed() -> bool:
            return (await get_job(aapp, job_id)).status is JobStatus.COMPLETED

        await await_until(completed, 10, "the job to run again once the thread returned")
    finally:
        worker.stop()
        await runner
    assert (await get_job(aapp, job_id)).attempts == 2


@pytest.fixture
async def small_pool_app(clean_db: str) -> AsyncIterator[App]:
    """An App whose pool has two connections, and short leases."""
    app = App(clean_db, migrate_on_start=False, pool_min_size=1, pool_max_size=2)
    fast(app)
    yield app
    await app.aclose()


async def test_handlers_holding_every_pool_connection_do_not_starve_heartbeats(
    small_pool_app: App, clean_db: str
) -> None:
    app = small_pool_app
    spans: list[Span] = []

    @app.job("faults.holder")
    async def holder(ctx: JobContext, payload: Any) -> None:
        start = time.time()
        async with ctx.transaction() as conn:  # one of the pool's two connections
            await conn.execute("SELECT pg_sleep(3)")  # longer than a lease
        spans.append((ctx.job.id, ctx.job.attempt, start, time.time()))

    @app.job("faults.bystander")
    async def bystander(ctx: JobContext, payload: Any) -> None:
        start = time.time()
        await asyncio.sleep(3)  # needs nothing but its lease renewed
        spans.append((ctx.job.id, ctx.job.attempt, start, time.time()))

    ids = [await app.aenqueue("faults.holder", {}) for _ in range(2)]
    ids.append(await app.aenqueue("faults.bystander", {}))
    rescued: list[Any] = []

    async def rescue_like_another_worker() -> None:
        async with await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as conn:
            while True:
                rescued.extend(await rescue_expired(conn))
                await asyncio.sleep(0.1)

    rescuer = asyncio.create_task(rescue_like_another_worker())
    worker = app.worker(concurrency=3)
    runner = asyncio.create_task(worker.run())
    try:

        async def all_completed() -> bool:
            with psycopg.connect(clean_db) as conn:  # not through the busy pool
                row = conn.execute(
                    "SELECT count(*) FROM nightcrew.jobs WHERE id = ANY(%s)"
                    " AND status = 'completed'",
                    (ids,),
                ).fetchone()
            return row == (3,)

        await await_until(all_completed, 20, "the three jobs to complete")
    finally:
        rescuer.cancel()
        await asyncio.gather(rescuer, return_exceptions=True)
        worker.stop()
        await runner
    assert rescued == [], "healthy jobs were rescued: their leases were not renewed"
    assert sorted((span[0], span[1]) for span in spans) == sorted((i, 1) for i in ids)
    for job_id in ids:
        job = await get_job(app, job_id)
        assert (job.attempts, job.errors) == (1, [])


@pytest.fixture
async def proxy(clean_db: str) -> AsyncIterator[CuttableProxy]:
    """A cuttable TCP proxy to the test database."""
    instance = CuttableProxy(clean_db)
    await instance.start()
    yield instance
    instance.cut()


async def test_a_worker_that_cannot_renew_stops_its_handler_before_the_lease_expires(
    proxy: CuttableProxy, clean_db: str
) -> None:
    app = App(proxy.url, migrate_on_start=False)  # every worker connection goes through it
    fast(app, lease_seconds=3)
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE tick_log (attempt int, at timestamptz)")
    cancelled_at: list[float] = []

    @app.job("faults.ticker")
    async def ticker(ctx: JobContext, payload: Any) -> str:
        if ctx.job.attempt > 1:
            return "done"
        # Its own writes reach the database directly: the cut cannot stop them, only the
        # worker can.
        async with await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as own:
            try:
                while True:
                    await own.execute(
                        "INSERT INTO tick_log VALUES (%s, clock_timestamp())", (ctx.job.attempt,)
                    )
                    await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                cancelled_at.append(time.time())
                raise

    job_id = await app.aenqueue("faults.ticker", {})
    worker: Worker = app.worker(concurrency=1)
    runner = asyncio.create_task(worker.run())

    def ticks() -> tuple[int, Any]:
        with psycopg.connect(clean_db) as conn:
            row = conn.execute("SELECT count(*), max(at) FROM tick_log").fetchone()
        assert row is not None
        return row[0], row[1]

    try:

        async def ticking() -> bool:
            return ticks()[0] >= 5

        await await_until(ticking, 10, "the handler to run")
        proxy.cut()
        await asyncio.sleep(0.2)  # a renewal in flight at the cut lands (or not) by now
        with psycopg.connect(clean_db) as conn:
            row = conn.execute(
                "SELECT lease_expires_at FROM nightcrew.jobs WHERE id = %s", (job_id,)
            ).fetchone()
        assert row is not None and row[0] is not None
        lease_expires_at = row[0]

        async def handler_stopped() -> bool:
            return bool(cancelled_at)

        await await_until(handler_stopped, 5, "the handler to be stopped")
        assert cancelled_at[0] < lease_expires_at.timestamp(), "stopped after the lease ran out"
        count, last = ticks()
        assert last < lease_expires_at
        await asyncio.sleep(max(0.0, lease_expires_at.timestamp() - time.time()) + 0.3)
        assert ticks() == (count, last), "the handler wrote after it was stopped"

        await proxy.restore()

        async def retried_and_completed() -> bool:
            with psycopg.connect(clean_db) as conn:
                row = conn.execute(
                    "SELECT status::text FROM nightcrew.jobs WHERE id = %s", (job_id,)
                ).fetchone()
            return row == ("completed",)

        await await_until(retried_and_completed, 20, "the rescued job to run again")
    finally:
        worker.stop()
        await runner
        await app.aclose()
    with psycopg.connect(clean_db) as conn:
        row = conn.execute(
            "SELECT attempts, result, errors -> 0 ->> 'type' FROM nightcrew.jobs WHERE id = %s",
            (job_id,),
        ).fetchone()
    assert row == (2, "done", "LeaseExpired")
