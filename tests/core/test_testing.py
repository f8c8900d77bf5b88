"""nightcrew.testing: drain(app) runs a real worker until no job is runnable."""

from __future__ import annotations

from typing import Any

from nightcrew import App, JobContext, JobStatus
from nightcrew.testing import drain, run_until_idle


def register(app: App) -> None:
    @app.job("t.double")
    async def double(ctx: JobContext, payload: dict[str, Any]) -> int:
        if payload.get("then"):  # jobs enqueued by a running job are drained too
            await ctx.app.aenqueue("t.double", {"n": payload["then"]})
        return int(payload["n"]) * 2


async def test_drain_runs_every_runnable_job_and_leaves_future_ones(aapp: App) -> None:
    register(aapp)
    ids = [await aapp.aenqueue("t.double", {"n": n}) for n in range(3)]
    chained = await aapp.aenqueue("t.double", {"n": 5, "then": 7})
    later = await aapp.aenqueue("t.double", {"n": 9}, delay=3600)
    assert await drain(aapp, timeout=30) == 5
    for job_id, n in [*zip(ids, range(3), strict=True), (chained, 5)]:
        job = await aapp.aget_job(job_id)
        assert job is not None and job.status is JobStatus.COMPLETED and job.result == 2 * n
    follow_up = [j for j in aapp.list_jobs(type="t.double") if j.payload == {"n": 7}]
    assert [j.status for j in follow_up] == [JobStatus.COMPLETED]
    waiting = await aapp.aget_job(later)
    assert waiting is not None and waiting.status is JobStatus.PENDING
    assert await drain(aapp, timeout=30) == 0  # nothing runnable: returns at once


def test_run_until_idle_drains_without_an_event_loop(app: App) -> None:
    register(app)
    job_id = app.enqueue("t.double", {"n": 21})
    assert run_until_idle(app, timeout=30) == 1
    job = app.get_job(job_id)  # the App's pools reopen after run_until_idle closed them
    assert job is not None and job.status is JobStatus.COMPLETED and job.result == 42
