"""Cancelling a running job interrupts its handler at the next save; a job over its timeout
has the attempt failed with a timeout error, is retried, and finally dead-lettered."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from nightcrew import App, JobCancelled, JobContext, JobStatus
from tests.support import await_until


async def test_cancel_interrupts_running_handler_at_next_save(aapp: App) -> None:
    saves: list[int] = []
    interrupted: list[JobCancelled] = []

    @aapp.job("faults.saver")
    async def saver(ctx: JobContext, payload: dict[str, Any]) -> str:
        try:
            for step in range(1, 1000):
                await ctx.save(progress=step / 10, checkpoint={"step": step})
                saves.append(step)
                await asyncio.sleep(0.02)
        except JobCancelled as exc:
            interrupted.append(exc)
            raise
        return "ran to the end"

    job_id = await aapp.aenqueue("faults.saver", {})
    worker = aapp.worker(concurrency=1)
    runner = asyncio.create_task(worker.run())
    try:

        async def saving() -> bool:
            return len(saves) >= 3

        await await_until(saving, 10, "the handler to save progress")
        assert await aapp.acancel(job_id)

        async def cancelled() -> bool:
            job = await aapp.aget_job(job_id)
            return job is not None and job.status is JobStatus.CANCELLED

        await await_until(cancelled, 10, "the job to be cancelled")
        saves_at_cancel = len(saves)
        await asyncio.sleep(0.1)  # a handler that kept going would save again meanwhile
        assert len(saves) == saves_at_cancel
    finally:
        worker.stop()
        await runner
    assert len(interrupted) == 1
    job = await aapp.aget_job(job_id)
    assert job is not None
    assert job.status is JobStatus.CANCELLED and job.result is None
    assert job.attempts == 1 and job.completed_at is not None
    assert not job.cancel_requested and job.worker_id is None
    # The save that raised may itself have been written (the flag came back with it) or refused
    # before writing (the flag came by NOTIFY first); nothing after it was.
    assert job.checkpoint["step"] in (saves[-1], saves[-1] + 1)


async def test_timeout_fails_attempts_then_dead_letters(aapp: App) -> None:
    started: list[float] = []

    @aapp.job("faults.too_slow", timeout=0.5, max_attempts=2, backoff=0)
    async def too_slow(ctx: JobContext, payload: dict[str, Any]) -> None:
        started.append(time.monotonic())
        await asyncio.sleep(10)

    job_id = await aapp.aenqueue("faults.too_slow", {})
    begin = time.monotonic()
    await aapp.worker(concurrency=1).run_until_idle(timeout=15)
    elapsed = time.monotonic() - begin
    job = await aapp.aget_job(job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert job.attempts == 2 and len(started) == 2
    assert [(e["attempt"], e["type"]) for e in job.errors] == [
        (1, "TimeoutError"),
        (2, "TimeoutError"),
    ]
    assert all(e["message"] == "timed out after 0.5s" for e in job.errors)
    assert job.error == "timed out after 0.5s"
    assert elapsed < 5, f"two 0.5 s attempts took {elapsed:.1f}s: the timeout did not cut them"
