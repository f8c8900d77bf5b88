"""The executor's decisions -- completed, retry at a time, dead letter, cancelled, timed out,
released, nothing (lease lost) -- without a database: handlers here never touch one."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from pydantic import BaseModel

from nightcrew import App, JobCancelled, JobContext, LeaseLost, Retry
from nightcrew.context import JobInfo
from nightcrew.lifecycle.executor import Executor, failure_outcome, result_outcome
from nightcrew.lifecycle.finish import Outcome

# Never connected to: every test here must run without a database.
NO_DATABASE = "postgresql://nobody@nightcrew-unit-tests.invalid:1/none"


@pytest.fixture
def app() -> App:
    """An App that is never opened (no pool, no connection)."""
    return App(NO_DATABASE, migrate_on_start=False, lease_seconds=30)


def job_info(
    job_type: str, *, attempt: int = 1, max_attempts: int = 3, payload: Any = None
) -> JobInfo:
    return JobInfo(
        id=uuid4(),
        type=job_type,
        queue="default",
        attempt=attempt,
        max_attempts=max_attempts,
        payload={} if payload is None else payload,
        priority=0,
        user_id=None,
        created_at=datetime.now(UTC),
    )


async def run(app: App, job_type: str, timeout: float | None = None, **info: Any) -> Outcome | None:
    ctx = JobContext(app, job_info(job_type, **info), None, "unit-worker")
    return await Executor(app.registry).execute(ctx, timeout)


class Order(BaseModel):
    qty: int


def error_of(outcome: Outcome | None) -> dict[str, Any]:
    assert outcome is not None and outcome.error_json is not None
    return dict(json.loads(outcome.error_json))


async def test_a_returned_value_completes_the_job_with_it(app: App) -> None:
    @app.job("u.ok")
    async def ok(ctx: JobContext, payload: Any) -> dict[str, Any]:
        return {"n": 1, "when": datetime(2026, 1, 2, tzinfo=UTC)}

    outcome = await run(app, "u.ok")
    assert outcome is not None and outcome.status == "completed"
    assert json.loads(outcome.result_json or "") == {"n": 1, "when": "2026-01-02T00:00:00+00:00"}
    assert outcome.error_json is None


async def test_returning_nothing_stores_a_json_null(app: App) -> None:
    @app.job("u.none")
    def none(ctx: Any, payload: Any) -> None:  # a sync handler, run in a thread
        return None

    outcome = await run(app, "u.none")
    assert outcome is not None and (outcome.status, outcome.result_json) == ("completed", "null")


async def test_an_error_with_attempts_left_retries_after_the_types_backoff(app: App) -> None:
    @app.job("u.flaky", backoff=lambda attempt: 7.0 * attempt)
    async def flaky(ctx: JobContext, payload: Any) -> None:
        raise ValueError("bad input")

    outcome = await run(app, "u.flaky", attempt=2, max_attempts=3)
    assert outcome is not None and (outcome.status, outcome.delay) == ("retrying", 14.0)
    error = error_of(outcome)
    assert (error["attempt"], error["type"], error["message"]) == (2, "ValueError", "bad input")
    assert "Traceback" in error["traceback"]


async def test_an_error_on_the_last_attempt_dead_letters_the_job(app: App) -> None:
    @app.job("u.dead")
    async def dead(ctx: JobContext, payload: Any) -> None:
        raise RuntimeError("still broken")

    outcome = await run(app, "u.dead", attempt=3, max_attempts=3)
    assert outcome is not None and outcome.status == "failed"
    assert error_of(outcome)["message"] == "still broken"


async def test_retry_asks_for_its_own_delay_but_still_spends_an_attempt(app: App) -> None:
    @app.job("u.later", backoff=1000.0)
    async def later(ctx: JobContext, payload: Any) -> None:
        raise Retry("not yet", delay=3.5)

    outcome = await run(app, "u.later")
    assert outcome is not None and (outcome.status, outcome.delay) == ("retrying", 3.5)
    assert error_of(outcome)["message"] == "not yet"
    last = await run(app, "u.later", attempt=3, max_attempts=3)
    assert last is not None and last.status == "failed"


async def test_an_async_handler_past_its_timeout_fails_the_attempt(app: App) -> None:
    @app.job("u.slow", backoff=0)
    async def slow(ctx: JobContext, payload: Any) -> None:
        await asyncio.sleep(30)

    began = time.monotonic()
    outcome = await run(app, "u.slow", timeout=0.05)
    assert time.monotonic() - began < 1
    assert outcome is not None and (outcome.status, outcome.delay) == ("retrying", 0.0)
    error = error_of(outcome)
    assert (error["type"], error["message"]) == ("TimeoutError", "timed out after 0.05s")


async def test_a_sync_handler_past_its_timeout_is_outlasted_and_its_writes_refused(
    app: App,
) -> None:
    refused: list[BaseException] = []

    @app.job("u.slow_thread")
    def slow_thread(ctx: Any, payload: Any) -> str:
        time.sleep(0.3)
        try:
            ctx.save(progress=50)  # refused before any database is asked
        except JobCancelled as exc:
            refused.append(exc)
        return "too late"

    outcome = await run(app, "u.slow_thread", timeout=0.05, attempt=2, max_attempts=2)
    assert refused, "the interrupted thread's save went through"  # it had returned first
    assert outcome is not None and outcome.status == "failed"
    assert error_of(outcome)["message"] == "timed out after 0.05s"


async def test_job_cancelled_ends_the_attempt_cancelled(app: App) -> None:
    @app.job("u.cancel")
    async def cancel(ctx: JobContext, payload: Any) -> None:
        ctx.request_cancel()  # as the worker does on a cancel request
        await ctx.save(progress=1)

    outcome = await run(app, "u.cancel")
    assert outcome is not None and (outcome.status, outcome.error_json) == ("cancelled", None)


async def test_a_lost_lease_records_nothing(app: App) -> None:
    @app.job("u.lost")
    async def lost(ctx: JobContext, payload: Any) -> None:
        ctx.mark_lease_lost()
        with pytest.raises(LeaseLost):
            async with ctx.transaction():
                pass
        raise LeaseLost("refused")

    assert await run(app, "u.lost") is None


async def test_stopping_an_attempt_releases_it_unless_its_lease_is_lost(app: App) -> None:
    started = asyncio.Event()

    @app.job("u.forever")
    async def forever(ctx: JobContext, payload: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    for lease_lost, expected in [(False, "pending"), (True, None)]:
        started.clear()
        ctx = JobContext(app, job_info("u.forever"), None, "unit-worker")
        task = asyncio.create_task(Executor(app.registry).execute(ctx, None))
        await asyncio.wait_for(started.wait(), 1)
        if lease_lost:
            ctx.mark_lease_lost()
        task.cancel()
        outcome = await task
        assert (outcome.status if outcome else None) == expected


async def test_unknown_types_bad_payloads_and_unstorable_results_fail_clearly(app: App) -> None:
    @app.job("u.model")
    async def model(ctx: JobContext, payload: Order) -> Any:
        return {"nan": float("nan")} if payload.qty == 1 else "nul\x00"

    unknown = await run(app, "u.missing", attempt=1, max_attempts=1)
    assert unknown is not None and unknown.status == "failed"
    assert error_of(unknown)["message"] == "no handler registered for job type 'u.missing'"
    bad = await run(app, "u.model", payload={"qty": "many"}, max_attempts=1)
    assert error_of(bad)["type"] == "ValidationError"
    nan = await run(app, "u.model", payload={"qty": 1}, max_attempts=1)
    assert error_of(nan)["message"].startswith("result is not JSON-serialisable")
    nul = await run(app, "u.model", payload={"qty": 2}, max_attempts=1)
    assert error_of(nul)["message"] == "result contains a NUL character (\\u0000)"


def test_decisions_are_plain_functions() -> None:
    info = job_info("u.plain", attempt=1, max_attempts=2)
    retry = failure_outcome(info, KeyError("k"), backoff=lambda attempt: 0.25)
    assert (retry.status, retry.delay) == ("retrying", 0.25)
    done = result_outcome(info, [1, "two"], backoff=2.0)
    assert (done.status, done.result_json) == ("completed", '[1, "two"]')
