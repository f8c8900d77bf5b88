"""The App that fault-test worker processes run: ``--app tests.faults.apps:app``.

Settings come from ``NIGHTCREW_*`` environment variables set by the test that spawns the
worker. Every handler leaves evidence the test can check from outside the process.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from psycopg import sql

from nightcrew import App, JobContext, Limit

app = App()


@app.job("faults.batched", max_attempts=3)
async def batched(ctx: JobContext, payload: dict[str, Any]) -> dict[str, int]:
    """Add 10 to every row of ``payload["table"]``, one fenced transaction per batch.

    The batch's update and the checkpoint naming the next batch commit together, so an
    attempt cut off anywhere resumes exactly after the last committed batch.
    """
    table = sql.Identifier(payload["table"])
    size = int(payload["batch_size"])
    batches = math.ceil(int(payload["rows"]) / size)
    first = int((ctx.checkpoint or {}).get("next_batch", 0))
    update = sql.SQL(
        "UPDATE {} SET value = value + 10, touched = touched + 1 WHERE id >= %s AND id < %s"
    ).format(table)
    for k in range(first, batches):
        async with ctx.transaction() as conn:
            await conn.execute(update, (k * size, (k + 1) * size))
            await ctx.save(progress=100 * (k + 1) / batches, checkpoint={"next_batch": k + 1})
        await asyncio.sleep(float(payload["pause"]))
    return {"resumed_from": first, "pid": os.getpid()}


@app.job("faults.record", max_attempts=3)
async def record(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Append ``job id, pid, start, end`` to this process's file in ``payload["out"]``."""
    start = time.time()
    await asyncio.sleep(float(payload.get("sleep", 0)))
    end = time.time()
    line = f"{ctx.job.id} {os.getpid()} {start!r} {end!r}\n"
    with (Path(payload["out"]) / f"{os.getpid()}.log").open("a") as out:
        out.write(line)


@app.job("faults.sleep", max_attempts=5, backoff=0.1)
async def sleep(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Sleep ``payload["seconds"]``; return the pid that ran the job."""
    await asyncio.sleep(float(payload.get("seconds", 0)))
    return {"pid": os.getpid()}


@app.job("faults.sync_record", max_attempts=3)
def sync_record(ctx: Any, payload: dict[str, Any]) -> None:
    """Plain ``def`` handler (runs in a thread): sleep, then log the run like ``record``."""
    start = time.time()
    time.sleep(float(payload["sleep"]))
    end = time.time()
    line = f"{ctx.job.id} {os.getpid()} {start!r} {end!r}\n"
    with (Path(payload["out"]) / f"{os.getpid()}.log").open("a") as out:
        out.write(line)


@app.job("faults.node", max_attempts=3, backoff=0.1)
async def node(ctx: JobContext, payload: dict[str, Any]) -> dict[str, int]:
    """One node of a dependency graph. Every start is recorded (autocommit); the run itself
    once, in a fenced transaction with a checkpoint, so a re-run after a kill adds no
    second row. Fails when ``payload["fail"]``."""
    pool = await ctx.app.apool()
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO graph_starts (job_id) VALUES (%s)", (ctx.job.id,))
    if payload.get("fail"):
        raise RuntimeError("node told to fail")
    await asyncio.sleep(float(payload.get("sleep", 0)))
    summary = await ctx.parents.summary()
    ended = summary.all_completed
    if ctx.checkpoint != "ran":
        async with ctx.transaction() as conn:
            await conn.execute(
                "INSERT INTO graph_runs (job_id, parents, parents_completed) VALUES (%s, %s, %s)",
                (ctx.job.id, summary.total, ended),
            )
            await ctx.save(checkpoint="ran")
    return {"parents": len(ctx.parents)}


def _log_run(payload: dict[str, Any], *fields: object) -> None:
    """Append one line (fields, space-separated) to this process's file in payload["out"]."""
    line = " ".join(str(f) for f in fields) + "\n"
    with (Path(payload["out"]) / f"{os.getpid()}.log").open("a") as out:
        out.write(line)


@app.job("faults.limited", queue="faults-limited", limits=[Limit("acc", rate="10/s")])
async def limited(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Held to 10 starts per second across every worker; logs ``job id, pid, start`` (the
    start as the late-entry guard checked it, within 25 ms of its rate slot)."""
    assert ctx.limit_slot is not None  # a job type with limits is always let in by one
    _log_run(payload, ctx.job.id, os.getpid(), repr(ctx.limit_slot.entered_at))


@app.job("faults.tenant", queue="faults-tenant", limits=[Limit("tenant:{user_id}", concurrency=2)])
async def tenant(ctx: JobContext, payload: dict[str, Any]) -> None:
    """At most 2 at once per user; logs ``user, start, end`` of the ``sleep``-second run
    (``sleep_first`` seconds on the first attempt, when given)."""
    start = time.time()
    first = ctx.job.attempt == 1 and "sleep_first" in payload
    await asyncio.sleep(float(payload["sleep_first"] if first else payload.get("sleep", 0)))
    _log_run(payload, ctx.job.user_id, repr(start), repr(time.time()))


@app.job("faults.hunter", queue="faults-hunter")
async def hunter(ctx: JobContext, payload: dict[str, Any]) -> None:
    """One provider call among other work, held to 5 per second by ``ctx.limit``; logs
    ``job id, entry, slots forfeited`` (the entry as the late-entry guard checked it)."""
    async with ctx.limit("hunter", rate="5/s") as slot:
        _log_run(payload, ctx.job.id, repr(slot.entered_at), slot.forfeited)


@app.job("faults.provider", queue="faults-provider")
async def provider_call(ctx: JobContext, payload: dict[str, Any]) -> None:
    """One call to a provider-like HTTP receiver (``payload["url"]``, the job id as body),
    held to 5 per second by ``ctx.limit``; logs ``job id, entry, slots forfeited`` (the
    entry as the limit's late-entry guard checked it)."""
    async with ctx.limit("provider", rate="5/s") as slot:
        # A blocking call, on purpose: it leaves at once, with nothing between the block's
        # entry and the request for the event loop to run.
        request = urllib.request.Request(payload["url"], data=str(ctx.job.id).encode())
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    _log_run(payload, ctx.job.id, repr(slot.entered_at), slot.forfeited)


@app.job("faults.stall", queue="faults-provider", priority=10)
async def stall(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Block this process's event loop for ``seconds``, as a CPU-bound handler would: the
    other handlers of the process that wait for a rate slot meanwhile wake late."""
    time.sleep(float(payload["seconds"]))  # blocking on purpose


@app.job("faults.pausable", queue="faults-pausable")
async def pausable(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Logs ``job id, start``, then sleeps ``sleep`` seconds (a queue to pause)."""
    _log_run(payload, ctx.job.id, repr(time.time()))
    await asyncio.sleep(float(payload.get("sleep", 0)))
