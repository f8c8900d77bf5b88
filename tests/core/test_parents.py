"""ctx.parents: a dependent's parents are read when its handler asks, not before it starts
(docs/flows.md). Real Postgres, a real worker."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import psycopg
import pytest

from nightcrew import (
    App,
    JobContext,
    JobStatus,
    ParentJob,
    Parents,
    ParentSummary,
    SyncJobContext,
    SyncParents,
)


def register_parents(app: App) -> None:
    @app.job("p.ok", max_attempts=1)
    async def ok(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    @app.job("p.fail", max_attempts=1)
    async def fail(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise RuntimeError(f"boom {payload['n']}")


async def enqueue_parents(app: App, ok: int, failed: int) -> tuple[list[UUID], list[UUID]]:
    good = [await app.aenqueue("p.ok", {"n": n}) for n in range(ok)]
    bad = [await app.aenqueue("p.fail", {"n": n}) for n in range(failed)]
    return good, bad


async def test_the_handler_starts_before_any_parent_is_read(aapp: App) -> None:
    """While another transaction holds jobs_history (every parent read touches it), the
    dependent's handler still starts: nothing was read before it. Its read then waits for
    the lock and returns every parent."""
    register_parents(aapp)
    started = asyncio.Event()
    seen: list[Any] = []

    @aapp.job("p.lazy", max_attempts=1)
    async def lazy(ctx: JobContext, payload: dict[str, Any]) -> None:
        seen.append((len(ctx.parents), ctx.job.parent_count, ctx.job.has_parents))
        started.set()
        seen.append(await ctx.parents.all())

    good, _ = await enqueue_parents(aapp, 3, 0)
    then = await aapp.aenqueue("p.lazy", {}, depends_on=good)
    with psycopg.connect(aapp.url) as locker:
        locker.execute("LOCK TABLE nightcrew.jobs_history IN ACCESS EXCLUSIVE MODE")
        run = asyncio.create_task(aapp.worker(concurrency=4).run_until_idle())
        try:
            await asyncio.wait_for(started.wait(), timeout=30)
            assert seen == [(3, 3, True)]
        finally:
            locker.rollback()  # releases the lock: the handler's read goes on
        await asyncio.wait_for(run, timeout=30)

    done = aapp.get_job(then)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert [p.id for p in seen[1]] == sorted(good)
    assert all(p.status is JobStatus.COMPLETED for p in seen[1])


async def test_all_summary_status_filter_and_pages(aapp: App) -> None:
    register_parents(aapp)
    seen: dict[str, Any] = {}

    @aapp.job("p.inspect", max_attempts=1)
    async def inspect(ctx: JobContext, payload: dict[str, Any]) -> str:
        assert isinstance(ctx.parents, Parents)
        seen["len"] = len(ctx.parents)
        seen["all"] = await ctx.parents.all()
        seen["failed"] = await ctx.parents.all(status="failed")
        seen["ended"] = await ctx.parents.all(status=[JobStatus.COMPLETED, "failed"])
        seen["summary"] = await ctx.parents.summary()
        seen["pages"] = [page async for page in ctx.parents.pages(3)]
        seen["failed_pages"] = [page async for page in ctx.parents.pages(3, status="failed")]
        seen["iterated"] = [parent async for parent in ctx.parents]
        return "done"

    good, bad = await enqueue_parents(aapp, 5, 2)
    then = await aapp.aenqueue("p.inspect", {}, depends_on=good + bad, on_parent_failure="run")
    await aapp.worker(concurrency=4).run_until_idle()
    done = aapp.get_job(then)
    assert done is not None and done.status is JobStatus.COMPLETED, done

    ids = sorted(good + bad)
    assert seen["len"] == 7
    assert [p.id for p in seen["all"]] == ids
    by_id = {p.id: p for p in seen["all"]}
    assert by_id[good[2]] == ParentJob(good[2], "p.ok", JobStatus.COMPLETED, {"n": 2}, None)
    assert by_id[bad[1]] == ParentJob(bad[1], "p.fail", JobStatus.FAILED, None, "boom 1")
    assert [p.id for p in seen["failed"]] == sorted(bad)
    assert [p.id for p in seen["ended"]] == ids
    assert seen["summary"] == ParentSummary(
        total=7, counts={JobStatus.COMPLETED: 5, JobStatus.FAILED: 2}
    )
    summary = seen["summary"]
    assert (summary.completed, summary.failed, summary.cancelled) == (5, 2, 0)
    assert not summary.all_completed
    assert [[p.id for p in page] for page in seen["pages"]] == [ids[0:3], ids[3:6], ids[6:7]]
    # A filtered page holds the matches among its 3 parents: the failed ones, wherever
    # they fall, and nothing is skipped or repeated.
    assert len(seen["failed_pages"]) == 3
    assert sorted(p.id for page in seen["failed_pages"] for p in page) == sorted(bad)
    assert [p.id for p in seen["iterated"]] == ids


async def test_a_def_handler_reads_them_too(aapp: App) -> None:
    register_parents(aapp)
    seen: dict[str, Any] = {}

    @aapp.job("p.sync", max_attempts=1)
    def sync(ctx: SyncJobContext, payload: dict[str, Any]) -> None:
        assert isinstance(ctx.parents, SyncParents)
        seen["len"] = len(ctx.parents)
        seen["all"] = ctx.parents.all()
        seen["failed"] = ctx.parents.all(status=JobStatus.FAILED)
        seen["summary"] = ctx.parents.summary()
        seen["pages"] = list(ctx.parents.pages(2))
        seen["iterated"] = list(ctx.parents)

    good, bad = await enqueue_parents(aapp, 2, 1)
    then = await aapp.aenqueue("p.sync", {}, depends_on=good + bad, on_parent_failure="run")
    await aapp.worker(concurrency=4).run_until_idle()
    done = aapp.get_job(then)
    assert done is not None and done.status is JobStatus.COMPLETED, done

    ids = sorted(good + bad)
    assert seen["len"] == 3
    assert [p.id for p in seen["all"]] == ids
    assert [p.id for p in seen["failed"]] == bad
    assert seen["summary"].counts == {JobStatus.COMPLETED: 2, JobStatus.FAILED: 1}
    assert [[p.id for p in page] for page in seen["pages"]] == [ids[0:2], ids[2:3]]
    assert [p.id for p in seen["iterated"]] == ids


async def test_misuse_is_refused_clearly(aapp: App) -> None:
    register_parents(aapp)
    errors: list[str] = []

    @aapp.job("p.misuse", max_attempts=1)
    async def misuse(ctx: JobContext, payload: dict[str, Any]) -> None:
        with pytest.raises(TypeError, match=r"await ctx\.parents\.all\(\)") as plain:
            list(ctx.parents)  # type: ignore[call-overload]
        errors.append(str(plain.value))
        with pytest.raises(ValueError, match="status must be one of") as bad_status:
            await ctx.parents.all(status="done")
        errors.append(str(bad_status.value))
        with pytest.raises(ValueError, match="size must be a positive integer"):
            [page async for page in ctx.parents.pages(0)]

    good, _ = await enqueue_parents(aapp, 1, 0)
    then = await aapp.aenqueue("p.misuse", {}, depends_on=good)
    await aapp.worker().run_until_idle()
    done = aapp.get_job(then)
    assert done is not None and done.status is JobStatus.COMPLETED, done
    assert len(errors) == 2
