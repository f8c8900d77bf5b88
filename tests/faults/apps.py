"""The App that fault-test worker processes run: ``--app tests.faults.apps:app``.

Settings come from ``NIGHTCREW_*`` environment variables set by the test that spawns the
worker. Every handler leaves evidence the test can check from outside the process.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path
from typing import Any

from psycopg import sql

from nightcrew import App, JobContext

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
    ended = all(parent.status == "completed" for parent in ctx.parents)
    if ctx.checkpoint != "ran":
        async with ctx.transaction() as conn:
            await conn.execute(
                "INSERT INTO graph_runs (job_id, parents, parents_completed) VALUES (%s, %s, %s)",
                (ctx.job.id, len(ctx.parents), ended),
            )
            await ctx.save(checkpoint="ran")
    return {"parents": len(ctx.parents)}
