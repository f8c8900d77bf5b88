"""Popularity aggregation and suggestions, computed set-based in SQL over the usage log.

See docs/estimating.md for the definitions (window, trend thresholds, score, co-occurrence).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from estimating.sql import query

TOP_PARTNERS = 20
"""Co-occurring items kept per item (the suggestions read only the best ones)."""
MIN_TOGETHER = 2
"""A pair seen in a single estimate is noise, not a pattern: not stored."""


async def aggregate_popularity(
    conn: psycopg.AsyncConnection[Any],
    *,
    now: datetime | None = None,
    top_n: int = TOP_PARTNERS,
    min_together: int = MIN_TOGETHER,
) -> dict[str, Any]:
    """Recompute ``item_popularity`` and ``item_cooccurrence`` as of ``now`` in one
    transaction (readers see the old tables until it commits); return a summary."""
    now = now or datetime.now(UTC)
    params = {"now": now, "top_n": top_n, "min_together": min_together}
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute(query("popularity_recent_create"))
        await conn.execute(query("popularity_recent_fill"), params)
        await conn.execute(query("popularity_recent_analyze"))
        await conn.execute(query("popularity_upsert"), params)
        cleaned = await conn.execute(query("popularity_clean"), params)
        removed = cleaned.rowcount
        await conn.execute(query("cooccurrence_clear"))
        await conn.execute(query("cooccurrence_insert"), params)
        cur = await conn.execute(query("popularity_summary"))
        row = await cur.fetchone()
    assert row is not None
    return {
        "items": row[0],
        "pairs": row[1],
        "removed": removed,
        "as_of": now.isoformat(),
        "seconds": round(time.perf_counter() - started, 3),
    }


async def item_popularity(conn: psycopg.AsyncConnection[Any], item_id: int) -> dict[str, Any]:
    """The stored popularity of one item and its top co-occurring items."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("popularity_get"), {"item_id": item_id})
        stats = await cur.fetchone()
        await cur.execute(query("cooccurrence_of"), {"item_id": item_id, "limit": 10})
        partners = await cur.fetchall()
    if stats is None:
        stats = {
            "usage_count_30d": 0, "unique_projects": 0, "avg_quantity": 0, "trend": "flat",
            "trend_pct": None, "popularity_score": 0, "computed_at": None,
        }  # fmt: skip
    return {**stats, "often_used_with": partners}


async def suggestions(
    conn: psycopg.AsyncConnection[Any], item_ids: list[int], *, limit: int = 10
) -> list[dict[str, Any]]:
    """Items not among ``item_ids``, ranked by their best co-occurrence confidence with one
    of them, then by popularity; each with the reason in words."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("suggestions"), {"item_ids": item_ids, "limit": limit})
        rows = await cur.fetchall()
    for row in rows:
        row["reason"] = (
            f"Projects using {row.pop('because_of')} typically also need {row['code']} — "
            f"{round(row['confidence_pct'])} % of estimates"
        )
    return rows
