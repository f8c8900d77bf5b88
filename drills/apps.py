"""The App that drill worker processes run: ``nightcrew worker --app drills.apps:app``.

Settings come from ``NIGHTCREW_*`` environment variables. Every handler writes its effect
inside ``ctx.transaction()`` (fenced by the lease), into ``drill.effects``, so a drill can
count effects from outside: exactly once means one row per job (per step).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any

from nightcrew import App, JobContext

app = App()

EFFECTS_DDL = """
CREATE SCHEMA IF NOT EXISTS drill;
CREATE TABLE IF NOT EXISTS drill.effects (
    job_id  uuid NOT NULL,
    step    integer NOT NULL DEFAULT 0,
    host    text NOT NULL,
    pid     integer NOT NULL,
    started double precision NOT NULL,
    at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS effects_job_idx ON drill.effects (job_id, step);
"""

INSERT_EFFECT = (
    "INSERT INTO drill.effects (job_id, step, host, pid, started) VALUES (%s, %s, %s, %s, %s)"
)
HOST = os.environ.get("DRILL_HOST", socket.gethostname())


@app.job("drill.effect", max_attempts=10, backoff=0.2)
async def effect(ctx: JobContext, payload: dict[str, Any]) -> None:
    """One effect row and a checkpoint saying so, in one lease-fenced transaction; then
    sleep ``sleep`` s. A re-run (lease lost after the commit) finds the checkpoint and
    writes nothing: the effect happens once however often the job runs."""
    started = time.time()
    if (ctx.checkpoint or {}).get("done"):
        return
    async with ctx.transaction() as conn:
        await conn.execute(INSERT_EFFECT, (ctx.job.id, 0, HOST, os.getpid(), started))
        await ctx.save(checkpoint={"done": True})
    await asyncio.sleep(float(payload.get("sleep", 0)))


@app.job("drill.noop", max_attempts=10, backoff=0.2)
async def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Nothing: the soak drill's job, which measures the queue and not the handler."""


@app.job("drill.steps", max_attempts=50, backoff=0.2)
async def steps(ctx: JobContext, payload: dict[str, Any]) -> None:
    """``steps`` effect rows, each with the checkpoint naming the next step in one fenced
    transaction, ``pause`` s apart: an attempt cut off anywhere resumes after the last
    committed step, and no step's effect is ever written twice."""
    first = int((ctx.checkpoint or {}).get("next", 0))
    for step in range(first, int(payload["steps"])):
        started = time.time()
        async with ctx.transaction() as conn:
            await conn.execute(INSERT_EFFECT, (ctx.job.id, step, HOST, os.getpid(), started))
            await ctx.save(progress=100 * (step + 1) / int(payload["steps"]),
                           checkpoint={"next": step + 1})  # fmt: skip
        await asyncio.sleep(float(payload.get("pause", 0.1)))
