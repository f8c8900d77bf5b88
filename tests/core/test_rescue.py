"""Rescue of expired leases: retry, dead letter, or -- when a cancel was asked for -- cancelled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from nightcrew import App, JobContext, JobStatus
from nightcrew.lifecycle.fetch import fetch_jobs
from nightcrew.lifecycle.rescue import rescue_expired


async def lease_one(app: App, job_type: str) -> Any:
    """Enqueue one job and lease it to a worker that then vanishes (never heartbeats)."""
    job_id = await app.aenqueue(job_type, {})
    async with await psycopg.AsyncConnection.connect(app.url, autocommit=True) as conn:
        rows = await fetch_jobs(
            conn, worker_id="vanished", queues=["default"], limit=1, lease_seconds=60
        )
    assert [row[0] for row in rows] == [job_id]
    return job_id


async def rescue_now(app: App) -> list[tuple[Any, str]]:
    """Rescue as if the lease had run out (the clock put past every lease)."""
    later = datetime.now(UTC) + timedelta(minutes=5)
    async with await psycopg.AsyncConnection.connect(app.url, autocommit=True) as conn:
        return await rescue_expired(conn, now=later)


async def test_rescue_of_a_job_asked_to_cancel_ends_it_cancelled(aapp: App) -> None:
    @aapp.job("t.rescued", max_attempts=3)
    async def rescued(ctx: JobContext, payload: Any) -> None:
        raise AssertionError("a cancelled job must not run again")

    job_id = await lease_one(aapp, "t.rescued")
    assert await aapp.acancel(job_id)  # running: only flagged, the handler would be told
    assert await rescue_now(aapp) == [(job_id, "cancelled")]

    job = await aapp.aget_job(job_id)
    assert job is not None
    assert job.status is JobStatus.CANCELLED and not job.cancel_requested
    assert job.completed_at is not None and job.worker_id is None
    assert [(e["attempt"], e["type"]) for e in job.errors] == [(1, "LeaseExpired")]
    assert not await aapp.acancel(job_id)  # already final: nothing left to cancel
    assert await aapp.worker().run_until_idle() == 0
    assert await aapp.aretry(job_id)  # an operator can still send it back


async def test_rescue_retries_or_dead_letters_a_job_not_asked_to_cancel(aapp: App) -> None:
    @aapp.job("t.retried", max_attempts=2)
    async def retried(ctx: JobContext, payload: Any) -> None:
        return None

    @aapp.job("t.spent", max_attempts=1)
    async def spent(ctx: JobContext, payload: Any) -> None:
        return None

    retry_id = await lease_one(aapp, "t.retried")
    spent_id = await lease_one(aapp, "t.spent")
    assert sorted(await rescue_now(aapp), key=lambda r: r[1]) == [
        (spent_id, "failed"),
        (retry_id, "retrying"),
    ]
    spent_job = await aapp.aget_job(spent_id)
    assert spent_job is not None and spent_job.completed_at is not None
