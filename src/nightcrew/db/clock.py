"""The clock time-dependent work runs on: the database's, unless a test passes its own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg


async def database_now(conn: psycopg.AsyncConnection[Any], now: datetime | None = None) -> datetime:
    """``now`` when given (tests control the clock), else the database server's clock.

    One clock for every process: workers and schedulers on several hosts agree on it.
    """
    if now is not None:
        return now
    cur = await conn.execute("SELECT clock_timestamp()")
    row = await cur.fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]
