"""The league's job handlers: start a run, run one statistics function, invalidate the
cache at the end of a run, and the nightly trigger."""

from __future__ import annotations

import random
import time
from typing import Any
from uuid import UUID

from league import runs
from league.runs import Outcome, Trigger
from league.sql import query
from league.stats import refresh
from nightcrew import JobCancelled, JobContext, LeaseLost


class InjectedFault(RuntimeError):
    """A failure injected through ``league.faults`` (tests, drills, the demo)."""


async def refresh_stats(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Start the waiting run (the ten function jobs), unless a run is processing: then the
    run that is processing starts it when it ends."""
    async with ctx.transaction() as conn:
        started = await runs.start_queued_run(ctx.app, conn)
    if started is None:
        return {"started": None, "summary": "no run started: one is processing or none waits"}
    return {"started": str(started), "summary": f"run {started} started"}


async def run_statistic(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Run one statistics function of a run; its outcome is written in one fenced
    transaction with the refreshed table. A failure is retried with backoff; the last
    attempt's failure is recorded on the run before the job fails."""
    run_id, function = UUID(payload["runId"]), str(payload["function"])
    attempt = ctx.job.attempt
    pool = await ctx.app.apool()
    async with pool.connection() as conn:
        await runs.wait_for_joiners(conn, run_id)  # a joined match result is in what we compute
        async with conn.transaction():
            await runs.function_started(conn, run_id, function, attempt)
    started = time.perf_counter()
    try:
        await raise_injected_fault(ctx, function)
        async with ctx.transaction() as conn:
            rows = await refresh(conn, function)
            outcome = Outcome("succeeded", attempt, _ms_since(started), rows)
            await runs.function_ended(conn, run_id, function, outcome)
    except (LeaseLost, JobCancelled):
        raise  # another worker owns the job now, or it was cancelled: the run's end records it
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if attempt < ctx.job.max_attempts:
            async with pool.connection() as conn, conn.transaction():
                await runs.function_retrying(conn, run_id, function, attempt, error)
            raise
        failed = Outcome("failed", attempt, _ms_since(started), error=error)
        async with ctx.transaction() as conn:
            await runs.function_ended(conn, run_id, function, failed)
        raise
    summary = f"{function}: {rows} rows changed in {outcome.duration_ms:.0f} ms"
    return {"runId": str(run_id), "function": function, "rows": rows, "summary": summary}


async def raise_injected_fault(ctx: JobContext, function: str) -> None:
    """Fail as ``league.faults`` says for ``function``: always when permanent, else with its
    transient probability during the job's first ``transient_attempts`` attempts."""
    pool = await ctx.app.apool()
    async with pool.connection() as conn:
        cur = await conn.execute(query("fault_of"), {"function": function})
        fault = await cur.fetchone()
    if fault is None:
        return
    rate, transient_attempts, permanent = fault
    if permanent:
        raise InjectedFault(f"{function}: injected permanent failure")
    if ctx.job.attempt <= transient_attempts and random.random() < rate:
        raise InjectedFault(f"{function}: injected transient failure")


async def invalidate_cache(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """End a run whose ten functions have ended: invalidate the tags of those that
    succeeded, mark the run completed or failed, start the run waiting behind it."""
    parents = await ctx.parents.all()  # the ten function jobs, read before the transaction
    async with ctx.transaction() as conn:
        return await runs.finish_run(ctx.app, conn, UUID(payload["runId"]), parents)


async def nightly_refresh(ctx: JobContext, payload: dict[str, Any] | None) -> dict[str, Any]:
    """The nightly cron trigger: the same request as the endpoint's, ``triggeredBy: cron``."""
    trigger = Trigger("cron", request_id=f"cron:{ctx.job.id}")
    async with ctx.transaction() as conn:
        run = await runs.request_run(ctx.app, conn, trigger, kick=True)
    await runs.announce(ctx.app, run)
    return {"jobId": str(run.id), "status": run.status, "summary": f"run {run.id} {run.status}"}


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
