"""Fencing: a stale worker (heartbeats stalled past its lease) gets every late write refused
once its job was rescued and finished by another worker; the row keeps the live result."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from nightcrew import App, Job, JobContext, JobStatus, LeaseLost, Worker
from tests.support import await_until


async def job_row(app: App, job_id: Any) -> Job:
    job = await app.aget_job(job_id)
    assert job is not None
    return job


@pytest.mark.parametrize("late_write", ["complete", "save", "transaction"])
async def test_stale_workers_late_writes_are_refused(
    aapp: App, clean_db: str, late_write: str
) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS fence_log (who text)")
        conn.execute("TRUNCATE fence_log")
    release = asyncio.Event()
    refused: list[LeaseLost] = []

    @aapp.job("faults.fenced")
    async def fenced(ctx: JobContext, payload: dict[str, Any]) -> dict[str, str]:
        if ctx.worker_id != stale.id:
            await ctx.save(checkpoint={"by": "live"})
            return {"by": "live"}
        await release.wait()
        try:
            if late_write == "save":
                await ctx.save(progress=99, checkpoint={"by": "stale"})
            elif late_write == "transaction":
                async with ctx.transaction() as conn:
                    await conn.execute("INSERT INTO fence_log VALUES ('stale')")
        except LeaseLost as exc:
            refused.append(exc)
            raise
        return {"by": "stale"}

    # The stale worker's heartbeat is far slower than the lease it is about to lose.
    stale: Worker = aapp.worker(concurrency=1)
    stale.settings = stale.settings.model_copy(
        update={"lease_seconds": 120, "heartbeat_seconds": 60, "rescue_seconds": 60}
    )
    job_id = await aapp.aenqueue("faults.fenced", {})
    stale_run = asyncio.create_task(stale.run())
    live: Worker = aapp.worker(concurrency=1)
    live_run: asyncio.Task[None] | None = None
    try:

        async def held_by_stale() -> bool:
            row = await job_row(aapp, job_id)
            return row.status is JobStatus.PROCESSING and row.worker_id == stale.id

        await await_until(held_by_stale, 10, "the stale worker to fetch the job")
        # Its lease runs out (as if the stale worker were paused or cut off).
        with psycopg.connect(clean_db, autocommit=True) as conn:
            conn.execute(
                "UPDATE nightcrew.jobs SET lease_expires_at = now() - interval '1 second'"
                " WHERE id = %s",
                (job_id,),
            )
        live_run = asyncio.create_task(live.run())

        async def completed_by_live() -> bool:
            return (await job_row(aapp, job_id)).status is JobStatus.COMPLETED

        await await_until(completed_by_live, 10, "the live worker to rescue and finish it")
        release.set()
        if late_write == "complete":

            async def outcome_refused() -> bool:
                assert stale._completer is not None
                return stale._completer.rejected == 1

            await await_until(outcome_refused, 10, "the stale completion to be refused")
            assert stale._completer is not None and stale._completer.written == 0
        else:

            async def handler_refused() -> bool:
                return bool(refused) and not stale.running

            await await_until(handler_refused, 10, "the stale write to be refused")
            assert len(refused) == 1
    finally:
        release.set()
        stale.stop()
        live.stop()
        await asyncio.gather(stale_run, *([live_run] if live_run else []))

    job = await aapp.aget_job(job_id)
    assert job is not None
    assert job.status is JobStatus.COMPLETED
    assert job.result == {"by": "live"}
    assert job.checkpoint == {"by": "live"}
    assert (job.attempts, job.progress) == (2, 100)
    assert [(e["attempt"], e["type"]) for e in job.errors] == [(1, "LeaseExpired")]
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM fence_log").fetchone() == (0,)
