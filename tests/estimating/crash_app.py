"""The estimating App as a worker process of the crash tests runs it: every batch of a bulk
update or of the archive lingers 0.3 s inside its transaction, so a SIGKILL lands mid-run
(and mid-batch). Settings come from the ``NIGHTCREW_*`` variables the test sets."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from estimating import bulk, reports
from estimating.app import build_app
from nightcrew import JobContext

_run_batches = bulk.run_batches


async def _slow_run_batches(ctx: JobContext, ids: list[int], apply: Any, *, noun: str) -> int:
    async def slow(conn: Any, batch: list[int]) -> None:
        await apply(conn, batch)
        await asyncio.sleep(0.3)

    return await _run_batches(ctx, ids, slow, noun=noun)


_archive_batch = reports.archive_batch


async def _slow_archive_batch(
    conn: Any, cutoff: datetime, after: int, batch: int
) -> tuple[int | None, int, int]:
    moved = await _archive_batch(conn, cutoff, after, batch)
    await asyncio.sleep(0.3)
    return moved


bulk.run_batches = _slow_run_batches  # type: ignore[assignment]
reports.archive_batch = _slow_archive_batch
app = build_app()
