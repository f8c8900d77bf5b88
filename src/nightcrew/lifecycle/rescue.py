"""Rescue: jobs whose lease ran out go back to be retried (or to the dead letter)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from nightcrew.queries import query


async def rescue_expired(
    conn: psycopg.AsyncConnection[Any], *, limit: int = 1000, now: datetime | None = None
) -> list[tuple[Any, str]]:
    """Rescue up to ``limit`` expired leases; return ``(id, new status)`` pairs."""
    cur = await conn.execute(query("rescue_jobs"), {"limit": limit, "now": now}, prepare=False)
    return await cur.fetchall()
