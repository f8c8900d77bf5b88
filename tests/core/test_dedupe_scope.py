"""dedupe_scope through the Python API: "active" (the default) and "queued" (coalescing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nightcrew import App, EnqueueError, JobContext, JobStatus
from tests.support import await_until


class Running:
    """A worker whose ``t.gate`` handler blocks until :meth:`release`."""

    def __init__(self, app: App, *, fail_first: bool = False) -> None:
        self.app = app
        self.started: list[int] = []
        self.gate = asyncio.Event()
        self.fail_first = fail_first
        self.worker: Any = None
        self.task: asyncio.Task[None] | None = None

    async def handler(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        self.started.append(ctx.job.attempt)
        await self.gate.wait()
        if self.fail_first and len(self.started) == 1:
            raise RuntimeError("first run fails")

    async def until_started(self, count: int) -> None:
        async def reached() -> bool:
            return len(self.started) >= count

        await await_until(reached, 10, f"{count} runs to start")


@pytest.fixture
async def running(aapp: App) -> AsyncIterator[Running]:
    state = Running(aapp)
    aapp.job("t.gate", backoff=0.01)(state.handler)
    aapp.job("t.plain")(noop)
    yield state
    state.gate.set()
    if state.task is not None:
        state.worker.stop()
        await state.task


async def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    return None


def start(state: Running) -> None:
    state.worker = state.app.worker(concurrency=1)
    state.task = asyncio.create_task(state.worker.run())


async def statuses(app: App, key: str) -> list[tuple[str, str]]:
    pool = await app.apool()
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT status::text, dedupe_scope FROM nightcrew.jobs WHERE dedupe_key = %s"
            " ORDER BY id",
            (key,),
        )
        return [(row[0], row[1]) for row in await cur.fetchall()]


async def test_queued_scope_coalesces_while_waiting_and_queues_one_behind_a_run(
    aapp: App, running: Running
) -> None:
    first = await aapp.aenqueue("t.gate", {}, dedupe_key="k", dedupe_scope="queued")
    assert await aapp.aenqueue("t.gate", {}, dedupe_key="k", dedupe_scope="queued") == first
    start(running)
    await running.until_started(1)
    follow_ups = {
        await aapp.aenqueue("t.gate", {}, dedupe_key="k", dedupe_scope="queued") for _ in range(10)
    }
    assert len(follow_ups) == 1 and first not in follow_ups
    assert await statuses(aapp, "k") == [("processing", "queued"), ("pending", "queued")]
    running.gate.set()

    async def done() -> bool:
        return await statuses(aapp, "k") == [("completed", "queued")] * 2

    await await_until(done, 10, "the run and its one follow-up")
    assert len(running.started) == 2
    job = await aapp.aget_job(follow_ups.pop())
    assert job is not None and job.dedupe_scope == "queued"


async def test_active_scope_still_returns_the_running_job(aapp: App, running: Running) -> None:
    first = await aapp.aenqueue("t.gate", {}, dedupe_key="a")
    start(running)
    await running.until_started(1)
    assert await aapp.aenqueue("t.gate", {}, dedupe_key="a", dedupe_scope="active") == first
    job = await aapp.aget_job(first)
    assert job is not None and job.dedupe_scope == "active"


async def test_a_failed_run_goes_to_retrying_beside_its_follow_up(
    aapp: App, running: Running
) -> None:
    """The run that fails keeps its retry although a follow-up already waits: the queued
    scope's unique index covers only jobs that never started."""
    running.fail_first = True
    first = await aapp.aenqueue("t.gate", {}, dedupe_key="r", dedupe_scope="queued")
    start(running)
    await running.until_started(1)
    second = await aapp.aenqueue("t.gate", {}, dedupe_key="r", dedupe_scope="queued")
    running.gate.set()

    async def all_done() -> bool:
        return await statuses(aapp, "r") == [("completed", "queued")] * 2

    await await_until(all_done, 10, "the retried run and the follow-up to complete")
    job = await aapp.aget_job(first)
    assert job is not None and job.attempts == 2 and second != first


async def test_a_retrying_job_absorbs_queued_enqueues(aapp: App, running: Running) -> None:
    first = await aapp.aenqueue("t.gate", {}, dedupe_key="w", dedupe_scope="queued")
    pool = await aapp.apool()
    async with pool.connection() as conn:  # as after a failed first attempt
        await conn.execute(
            "UPDATE nightcrew.jobs SET status = 'retrying', attempts = 1,"
            " started_at = now() WHERE id = %s",
            (first,),
        )
    assert await aapp.aenqueue("t.gate", {}, dedupe_key="w", dedupe_scope="queued") == first


async def test_bulk_items_take_the_scope(aapp: App, running: Running) -> None:
    items = [{"type": "t.gate", "dedupe_key": "b", "dedupe_scope": "queued"}] * 3
    ids = await aapp.aenqueue_many(items)
    assert len(set(ids)) == 1
    start(running)
    await running.until_started(1)
    mixed = await aapp.aenqueue_many(
        [*items, {"type": "t.gate", "dedupe_key": "b"}, {"type": "t.plain"}]
    )
    assert len(set(mixed[:3])) == 1 and mixed[0] != ids[0]
    assert mixed[3] not in (ids[0], mixed[0])  # the active scope dedupes separately
    assert await statuses(aapp, "b") == [
        ("processing", "queued"),
        ("pending", "queued"),
        ("pending", "active"),
    ]
    again = aapp.enqueue_many(items)
    assert again == mixed[:3]
    job = await aapp.aget_job(mixed[0])
    assert job is not None and job.status is JobStatus.PENDING


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dedupe_key": "k", "dedupe_scope": "later"}, "dedupe_scope must be 'active' or 'queued'"),
        ({"dedupe_scope": "queued"}, "dedupe_scope needs a dedupe_key"),
    ],
)
def test_bad_scope_is_refused(app: App, kwargs: dict[str, Any], message: str) -> None:
    app.job("t.any")(noop)
    with pytest.raises(EnqueueError, match=message):
        app.enqueue("t.any", {}, **kwargs)
    with pytest.raises(EnqueueError, match=f"item 0: {message}"):
        app.enqueue_many([{"type": "t.any", **kwargs}])
