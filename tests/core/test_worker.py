"""The worker loop in-process: ordering, outcomes, retries, progress, checkpoints, queues."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from nightcrew import App, JobContext, JobStatus, Retry, SyncJobContext
from nightcrew.context import JobInfo
from nightcrew.lifecycle.fetch import CHECKPOINT_COLUMN, FETCHED_COLUMNS, TIMEOUT_COLUMN
from nightcrew.queries import query
from tests.support import await_until


async def test_runs_highest_priority_first_then_oldest(aapp: App) -> None:
    order: list[int] = []

    @aapp.job("t.order")
    async def record(ctx: JobContext, payload: dict[str, int]) -> None:
        order.append(payload["n"])

    for n, priority in [(1, 0), (2, 5), (3, 0), (4, 5), (5, -1)]:
        await aapp.aenqueue("t.order", {"n": n}, priority=priority)
    await aapp.worker(concurrency=1).run_until_idle()
    assert order == [2, 4, 1, 3, 5]


async def test_completed_job_keeps_result_progress_stage_metrics(aapp: App) -> None:
    @aapp.job("t.progress")
    async def work(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        await ctx.save(progress=30, stage="loading", metrics={"rows": 3})
        await ctx.save(progress=60, stage="writing", metrics={"cost": 0.45})
        return {"summary": "done", "attempt": ctx.job.attempt}

    job_id = await aapp.aenqueue("t.progress", {})
    await aapp.worker().run_until_idle()
    job = await aapp.aget_job(job_id)
    assert job is not None
    assert job.status is JobStatus.COMPLETED
    assert job.result == {"summary": "done", "attempt": 1}
    assert (job.progress, job.stage) == (100, "writing")
    assert job.metrics == {"rows": 3, "cost": 0.45}
    assert job.started_at is not None and job.completed_at is not None
    assert job.worker_id is None and job.lease_expires_at is None


async def test_failures_retry_with_backoff_then_dead_letter(aapp: App) -> None:
    seen: list[int] = []

    @aapp.job("t.flaky", max_attempts=3, backoff=lambda attempt: 0.05 * attempt)
    async def flaky(ctx: JobContext, payload: dict[str, Any]) -> None:
        seen.append(ctx.job.attempt)
        raise ValueError(f"bad attempt {ctx.job.attempt}")

    job_id = await aapp.aenqueue("t.flaky", {})
    worker = aapp.worker()
    runner = asyncio.create_task(worker.run())

    async def dead() -> bool:
        job = await aapp.aget_job(job_id)
        return job is not None and job.status is JobStatus.FAILED

    await await_until(dead, 10, "the job to reach the dead letter")
    worker.stop()
    await runner
    job = await aapp.aget_job(job_id)
    assert job is not None
    assert seen == [1, 2, 3] and job.attempts == 3
    assert job.error == "bad attempt 3"
    assert [e["attempt"] for e in job.errors] == [1, 2, 3]
    assert all(e["type"] == "ValueError" and "Traceback" in e["traceback"] for e in job.errors)
    assert job.completed_at is not None


async def test_failed_attempt_waits_in_retrying_state(aapp: App) -> None:
    @aapp.job("t.slowretry", max_attempts=2, backoff=60)
    async def fail(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise Retry("not yet", delay=3600)

    job_id = await aapp.aenqueue("t.slowretry", {})
    await aapp.worker().run_until_idle()
    job = await aapp.aget_job(job_id)
    assert job is not None
    assert job.status is JobStatus.RETRYING and job.attempts == 1
    assert (job.run_at - job.updated_at).total_seconds() > 3500
    assert job.errors[0]["message"] == "not yet"


async def test_checkpoint_survives_into_the_retry(aapp: App) -> None:
    checkpoints: list[Any] = []

    @aapp.job("t.resume", max_attempts=2, backoff=0)
    async def resume(ctx: JobContext, payload: dict[str, Any]) -> dict[str, int]:
        checkpoints.append(ctx.checkpoint)
        start = ctx.checkpoint["next"] if ctx.checkpoint else 0
        for step in range(start, 5):
            await ctx.save(progress=step * 20, checkpoint={"next": step + 1})
            if step == 2 and ctx.job.attempt == 1:
                raise RuntimeError("crash after step 2")
        return {"resumed_from": start}

    job_id = await aapp.aenqueue("t.resume", {})
    await aapp.worker().run_until_idle()
    job = await aapp.aget_job(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED
    assert checkpoints == [None, {"next": 3}]
    assert job.result == {"resumed_from": 3}
    assert job.checkpoint == {"next": 5}


async def test_transaction_and_checkpoint_commit_together(aapp: App) -> None:
    url = aapp.settings.database_url

    @aapp.job("t.tx", max_attempts=1)
    async def tx(ctx: JobContext, payload: dict[str, Any]) -> None:
        async with ctx.transaction() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS tx_probe (n int)")
            await conn.execute("INSERT INTO tx_probe VALUES (1)")
            await ctx.save(checkpoint={"inserted": 1})
        with pytest.raises(ZeroDivisionError):
            async with ctx.transaction() as conn:
                await conn.execute("INSERT INTO tx_probe VALUES (2)")
                await ctx.save(checkpoint={"inserted": 2})
                raise ZeroDivisionError

    job_id = await aapp.aenqueue("t.tx", {})
    await aapp.worker().run_until_idle()
    job = await aapp.aget_job(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED
    assert job.checkpoint == {"inserted": 1}
    import psycopg

    async with await psycopg.AsyncConnection.connect(url or "") as conn:
        cur = await conn.execute("SELECT array_agg(n) FROM tx_probe")
        row = await cur.fetchone()
    assert row is not None and row[0] == [1]


class Order(BaseModel):
    qty: int


async def test_sync_handler_runs_in_a_thread_with_models(aapp: App) -> None:
    import threading

    main_thread = threading.get_ident()
    seen: dict[str, Any] = {}

    @aapp.job("t.sync")
    def handler(ctx: SyncJobContext, payload: Order) -> dict[str, int]:
        seen["thread"] = threading.get_ident()
        seen["payload"] = payload
        ctx.save(progress=50, stage="half")
        with ctx.transaction() as conn:
            conn.execute("SELECT 1")
            ctx.save(checkpoint={"ok": True})
        return {"qty": payload.qty * 2}

    job_id = await aapp.aenqueue("t.sync", {"qty": 21})
    await aapp.worker().run_until_idle()
    job = await aapp.aget_job(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED
    assert job.result == {"qty": 42} and job.checkpoint == {"ok": True}
    assert seen["thread"] != main_thread and seen["payload"] == Order(qty=21)


async def test_worker_serves_only_its_queues(aapp: App) -> None:
    @aapp.job("t.a", queue="alpha")
    async def a(ctx: JobContext, payload: Any) -> None:
        return None

    @aapp.job("t.b", queue="beta")
    async def b(ctx: JobContext, payload: Any) -> None:
        return None

    ja = await aapp.aenqueue("t.a", {})
    jb = await aapp.aenqueue("t.b", {})
    worker = aapp.worker(queues=["beta"])
    assert worker.queues == ["beta"]
    await worker.run_until_idle()
    job_a, job_b = await aapp.aget_job(ja), await aapp.aget_job(jb)
    assert job_a is not None and job_a.status is JobStatus.PENDING
    assert job_b is not None and job_b.status is JobStatus.COMPLETED
    # by default also "nightcrew", where notification deliveries run
    assert sorted(aapp.worker().queues) == ["alpha", "beta", "nightcrew"]


async def test_notify_wakes_an_idle_worker_long_before_the_poll(aapp: App) -> None:
    aapp.settings = aapp.settings.model_copy(update={"poll_seconds": 30})
    started = asyncio.Event()

    @aapp.job("t.wake")
    async def wake(ctx: JobContext, payload: Any) -> None:
        started.set()

    worker = aapp.worker()
    runner = asyncio.create_task(worker.run())
    await worker.wait_listening()
    await asyncio.sleep(0.2)  # let the loop go idle (waiting on the 30 s poll)
    t0 = time.monotonic()
    await aapp.aenqueue("t.wake", {})
    await asyncio.wait_for(started.wait(), 5)
    assert time.monotonic() - t0 < 2
    worker.stop()
    await runner


async def test_without_listen_the_worker_polls(aapp: App) -> None:
    aapp.settings = aapp.settings.model_copy(update={"listen": False, "poll_seconds": 0.1})
    done = asyncio.Event()

    @aapp.job("t.poll")
    async def poll(ctx: JobContext, payload: Any) -> None:
        done.set()

    worker = aapp.worker()
    runner = asyncio.create_task(worker.run())
    await asyncio.sleep(0.3)
    await aapp.aenqueue("t.poll", {})
    await asyncio.wait_for(done.wait(), 5)
    worker.stop()
    await runner


async def test_delayed_job_waits_for_its_time(aapp: App) -> None:
    ran: list[float] = []

    @aapp.job("t.delay")
    async def delayed(ctx: JobContext, payload: Any) -> None:
        ran.append(time.monotonic())

    t0 = time.monotonic()
    await aapp.aenqueue("t.delay", {}, delay=0.6)
    worker = aapp.worker()
    runner = asyncio.create_task(worker.run())
    await await_until(lambda: asyncio.sleep(0, bool(ran)), 5, "the delayed job")
    worker.stop()
    await runner
    assert ran[0] - t0 >= 0.6


async def test_cancel_pending_job_is_immediate_and_final(aapp: App) -> None:
    @aapp.job("t.never")
    async def never(ctx: JobContext, payload: Any) -> None:
        raise AssertionError("a cancelled job must not run")

    job_id = await aapp.aenqueue("t.never", {})
    assert await aapp.acancel(job_id)
    assert not await aapp.acancel(job_id)
    await aapp.worker().run_until_idle()
    job = await aapp.aget_job(job_id)
    assert job is not None and job.status is JobStatus.CANCELLED and job.attempts == 0


async def test_retry_sends_dead_job_back_with_attempts_reset(aapp: App) -> None:
    calls: list[int] = []

    @aapp.job("t.once", max_attempts=1)
    async def once(ctx: JobContext, payload: Any) -> str:
        calls.append(ctx.job.attempt)
        if len(calls) == 1:
            raise RuntimeError("first run fails")
        return "ok"

    job_id = await aapp.aenqueue("t.once", {})
    await aapp.worker().run_until_idle()
    assert not await aapp.aretry("not-a-uuid")
    assert await aapp.aretry(job_id)
    await aapp.worker().run_until_idle()
    job = await aapp.aget_job(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED and job.result == "ok"
    assert calls == [1, 1] and len(job.errors) == 1


async def test_unknown_type_in_queue_fails_with_a_clear_error(aapp: App) -> None:
    @aapp.job("t.known")
    async def known(ctx: JobContext, payload: Any) -> None:
        return None

    producer = App(aapp.settings.database_url, strict_types=False, migrate_on_start=False)
    job_id = await producer.aenqueue("t.unknown", {}, max_attempts=1)
    await producer.aclose()
    await aapp.worker().run_until_idle()
    job = await aapp.aget_job(job_id)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error == "no handler registered for job type 't.unknown'"


def test_sync_app_is_shareable_between_threads(app: App) -> None:
    from concurrent.futures import ThreadPoolExecutor

    @app.job("t.threads")
    async def noop(ctx: JobContext, payload: Any) -> None:
        return None

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: app.enqueue("t.threads", {"i": i}), range(200)))
    assert len(set(ids)) == 200
    assert all(app.get_job(i) is not None for i in ids[:5])


async def test_unstorable_result_fails_its_job_not_the_batch(aapp: App) -> None:
    @aapp.job("t.result", max_attempts=1)
    async def result(ctx: JobContext, payload: dict[str, Any]) -> Any:
        return {"text": "nul\x00byte"} if payload["bad"] else {"ok": payload["n"]}

    ids = await aapp.aenqueue_many(
        [{"type": "t.result", "payload": {"bad": n == 3, "n": n}} for n in range(6)]
    )
    await aapp.worker(concurrency=6).run_until_idle()
    jobs = [await aapp.aget_job(i) for i in ids]
    assert [j.status if j else None for j in jobs] == [JobStatus.COMPLETED] * 3 + [
        JobStatus.FAILED
    ] + [JobStatus.COMPLETED] * 2
    bad = jobs[3]
    assert bad is not None and bad.error == "result contains a NUL character (\\u0000)"


async def test_outcomes_round_trip_through_the_batch_exactly(aapp: App) -> None:
    awkward = {
        "q": 'say "hi"',
        "bs": "C:\\temp\\new",
        "nl": "a\nb\tc",
        "u": "é ✓ 😀",
        "n": [1.5, None],
    }

    # backoff=0: run_until_idle ignores jobs scheduled in the future, so a retry due even
    # 10 ms later could be left behind by a check that falls in between.
    @aapp.job("t.shapes", max_attempts=2, backoff=0)
    async def shapes(ctx: JobContext, payload: dict[str, Any]) -> Any:
        if payload["kind"] == "raise" and ctx.job.attempt == 1:
            raise ValueError('bad "input"\\ on\nline 2')
        return {"none": None, "awkward": awkward, "raise": "recovered"}[payload["kind"]]

    ids = await aapp.aenqueue_many(
        [{"type": "t.shapes", "payload": {"kind": k}} for k in ("none", "awkward", "raise")]
    )
    await aapp.worker(concurrency=3).run_until_idle()
    none, exact, retried = [await aapp.aget_job(i) for i in ids]
    assert none is not None and none.status is JobStatus.COMPLETED and none.result is None
    assert exact is not None and exact.result == awkward
    assert retried is not None and retried.status is JobStatus.COMPLETED
    assert retried.result == "recovered" and retried.attempts == 2
    assert [e["message"] for e in retried.errors] == ['bad "input"\\ on\nline 2']
    assert "ValueError" in retried.errors[0]["traceback"]
    async with (await aapp.apool()).connection() as conn:
        cur = await conn.execute(
            "SELECT jsonb_typeof(result) FROM nightcrew.jobs WHERE id = %s", (ids[0],)
        )
        assert await cur.fetchone() == ("null",)  # a JSON null, as before the batch format


async def test_handlers_get_every_payload_shape_back(aapp: App) -> None:
    shapes: list[Any] = [{"é": "✓", "x": [1, {"y": None}]}, [1, "two"], "text", 7, 2.5, True, {}]
    seen: dict[int, Any] = {}

    @aapp.job("t.payloads")
    async def payloads(ctx: JobContext, payload: Any) -> None:
        seen[shapes.index(payload)] = payload

    await aapp.aenqueue_many([{"type": "t.payloads", "payload": p} for p in shapes])
    await aapp.worker(concurrency=10).run_until_idle()
    assert [seen.get(i) for i in range(len(shapes))] == shapes


async def test_a_result_nested_deeper_than_64_fails_the_job(aapp: App) -> None:
    @aapp.job("t.deep", max_attempts=1)
    async def deep(ctx: JobContext, payload: dict[str, int]) -> Any:
        value: Any = 0
        for _ in range(payload["depth"]):
            value = [value]
        return value

    too_deep = await aapp.aenqueue("t.deep", {"depth": 65})
    fine = await aapp.aenqueue("t.deep", {"depth": 64})
    await aapp.worker().run_until_idle()
    failed, done = await aapp.aget_job(too_deep), await aapp.aget_job(fine)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.result is None
    assert failed.error == "result is nested deeper than 64 levels"
    assert done is not None and done.status is JobStatus.COMPLETED
    assert isinstance(done.result, list)


async def test_the_handler_sees_the_job_as_stored(aapp: App) -> None:
    """ctx.job is built from fetch_jobs' row by position (fetched_job): every field is the
    stored one, the instance equals the constructor's and stays frozen; the columns the
    query returns are FETCHED_COLUMNS, in that order."""
    seen: list[JobInfo] = []

    @aapp.job("t.info", max_attempts=4, timeout=7)
    async def record(ctx: JobContext, payload: Any) -> None:
        seen.append(ctx.job)
        assert ctx.checkpoint is None

    job_id = await aapp.aenqueue("t.info", {"n": [1, "x"]}, priority=3, user_id="alice")
    await aapp.worker().run_until_idle()
    job = await aapp.aget_job(job_id)
    assert job is not None
    stored = JobInfo(id=job_id, type="t.info", queue="default", attempt=1, max_attempts=4,
                     payload={"n": [1, "x"]}, priority=3, user_id="alice",
                     created_at=job.created_at, parent_count=0)  # fmt: skip
    assert seen == [stored]
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen[0].attempt = 2  # type: ignore[misc]

    await aapp.aenqueue("t.info", {})
    async with await psycopg.AsyncConnection.connect(aapp.url, autocommit=True) as conn:
        cur = await conn.execute(query("fetch_jobs"), {
            "queues": ["default"], "limit": 1, "worker_id": "w", "lease_seconds": 60,
            "exclude": [], "now": None})  # fmt: skip
        assert cur.description is not None
        assert tuple(column.name for column in cur.description) == FETCHED_COLUMNS
        (row,) = await cur.fetchall()
    assert (row[TIMEOUT_COLUMN], row[CHECKPOINT_COLUMN]) == (7, None)
