"""Heartbeat: renew the leases a worker holds, in one statement for all its running jobs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg

from nightcrew.queries import query


async def renew_leases(
    conn: psycopg.AsyncConnection[Any],
    *,
    worker_id: str,
    held: Sequence[tuple[UUID, int]],
    lease_seconds: float,
) -> dict[tuple[UUID, int], bool]:
    """Extend the leases in ``held`` (id, attempt). Returns ``{(id, attempt):
    cancel_requested}`` for the leases still held; a missing pair means that lease is lost."""
    cur = await conn.execute(
        query("renew_leases"),
        {
            "worker_id": worker_id,
            "ids": [h[0] for h in held],
            "attempts": [h[1] for h in held],
            "lease_seconds": lease_seconds,
        },
        # Batch statements: plan with the real arrays every time (see queries.py).
        prepare=False,
    )
    return {(row[0], row[1]): row[2] for row in await cur.fetchall()}
