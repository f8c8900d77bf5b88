"""Fetch: lease a batch of runnable jobs for one worker in a single statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from nightcrew.queries import query

# Column order of fetch_jobs' RETURNING clause.
FETCHED_COLUMNS = (
    "id",
    "type",
    "queue",
    "payload",
    "priority",
    "attempts",
    "max_attempts",
    "timeout_seconds",
    "checkpoint",
    "user_id",
    "run_at",
    "created_at",
)


async def fetch_jobs(
    conn: psycopg.AsyncConnection[Any],
    *,
    worker_id: str,
    queues: Sequence[str],
    limit: int,
    lease_seconds: float,
) -> list[tuple[Any, ...]]:
    """Lease up to ``limit`` jobs from ``queues`` (priority, then run_at order)."""
    cur = await conn.execute(
        query("fetch_jobs"),
        {
            "queues": list(queues),
            "limit": limit,
            "worker_id": worker_id,
            "lease_seconds": lease_seconds,
            "now": None,
        },
    )
    return await cur.fetchall()
