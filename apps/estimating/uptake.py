"""Suggestion uptake: which suggestions were offered for an estimate, which ones it then
used, and the share used over the last 30 days against the seed's goal of 80 %."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg

from estimating.errors import EstimatingError
from estimating.models import UsageRequest
from estimating.sql import query

GOAL_PCT = 80
"""The seed's goal: 80 % of the suggestions offered are used."""


async def record_offers(
    conn: psycopg.AsyncConnection[Any], project_id: str, estimate_id: str, item_ids: list[int]
) -> dict[int, int]:
    """Record the items suggested for an estimate; ``item id -> suggestion id``."""
    if not item_ids:
        return {}
    params = {"project_id": project_id, "estimate_id": estimate_id, "item_ids": item_ids}
    cur = await conn.execute(query("suggestion_offers_record"), params)
    return {item_id: offer_id for offer_id, item_id in await cur.fetchall()}


async def record_use(
    conn: psycopg.AsyncConnection[Any], request: UsageRequest, item_id: int, used_at: datetime
) -> int | None:
    """Mark the suggestion this usage row took up (``suggestion_id``, or ``suggested``);
    its id, or ``None`` when the row was not a suggestion. A ``suggestion_id`` not offered
    for this estimate and item is refused (422)."""
    if request.suggestion_id is None and not request.suggested:
        return None
    params = {
        "project_id": request.project_id, "estimate_id": request.estimate_id,
        "item_id": item_id, "used_at": used_at, "suggestion_id": request.suggestion_id,
    }  # fmt: skip
    name = "suggestion_offer_use" if request.suggestion_id is None else "suggestion_offer_use_by_id"
    cur = await conn.execute(query(name), params)
    row = await cur.fetchone()
    if row is None:
        raise EstimatingError(
            f"suggestion_id: suggestion {request.suggestion_id} was not offered for item "
            f"{request.item_code!r} in estimate {request.estimate_id!r}",
            field="suggestion_id",
        )
    return int(row[0])


def share_pct(used: int, offered: int) -> Decimal | None:
    """``used / offered`` in percent, one decimal (half up); ``None`` when nothing was
    offered."""
    if offered == 0:
        return None
    return (Decimal(100) * used / offered).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


async def uptake(conn: psycopg.AsyncConnection[Any], now: datetime | None = None) -> dict[str, Any]:
    """The share of suggestions used among those offered in the 30 days before ``now``."""
    cur = await conn.execute(query("suggestion_uptake"), {"now": now or datetime.now(UTC)})
    row = await cur.fetchone()
    offered, used = (int(row[0]), int(row[1])) if row else (0, 0)
    share = share_pct(used, offered)
    return {
        "offered": offered, "used": used, "share_pct": share, "goal_pct": GOAL_PCT,
        "goal_met": share is not None and share >= GOAL_PCT,
    }  # fmt: skip
