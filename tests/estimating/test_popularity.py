"""Popularity and co-occurrence on hand-checked usage: 9 estimates use CONC-C25 and 8 of
them REBAR-12MM too, so 8/9 = 88.89 % ("89 % of estimates")."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from estimating import popularity
from tests.estimating.helpers import project, simple_items, use

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
ITEMS = ["CONC-C25", "REBAR-12MM", "FORMWORK-PLYWOOD", "SAND-FINE", "OLD-ITEM"]


async def load(conn: psycopg.AsyncConnection[Any]) -> None:
    await simple_items(conn, ITEMS)
    for p in ("P1", "P2", "P3"):
        await project(conn, p)
    for k in range(1, 10):  # estimates E1..E9, all in the last 30 days
        est, proj, when = f"E{k}", f"P{(k - 1) // 3 + 1}", NOW - timedelta(days=k)
        await use(conn, "CONC-C25", proj, est, when, quantity=str(10 * k))
        if k <= 8:
            await use(conn, "REBAR-12MM", proj, est, when)
        if k <= 3:
            await use(conn, "FORMWORK-PLYWOOD", proj, est, when)
        if k == 9:
            await use(conn, "SAND-FINE", proj, est, when)
    before = NOW - timedelta(days=40)  # the previous 30-day window
    for k in range(8):
        await use(conn, "REBAR-12MM", "P1", f"OLD{k}", before)
        if k < 5:
            await use(conn, "CONC-C25", "P1", f"OLD{k}", before)
        if k < 4:
            await use(conn, "FORMWORK-PLYWOOD", "P1", f"OLD{k}", before)
    await use(conn, "OLD-ITEM", "P2", "OLD-EST", NOW - timedelta(days=45))


async def rows(conn: psycopg.AsyncConnection[Any], sql: str) -> dict[str, tuple[Any, ...]]:
    cur = await conn.execute(sql)
    return {row[0]: row[1:] for row in await cur.fetchall()}


POPULARITY = """
SELECT i.code, p.usage_count_30d, p.unique_projects, p.avg_quantity, p.previous_count,
       p.trend, p.trend_pct, p.popularity_score
FROM estimating.item_popularity p JOIN estimating.items i ON i.id = p.item_id
"""
PAIRS = """
SELECT a.code || '>' || b.code, c.together_count, c.confidence_pct
FROM estimating.item_cooccurrence c
JOIN estimating.items a ON a.id = c.item_id JOIN estimating.items b ON b.id = c.other_item_id
"""


async def test_popularity_trend_score_and_cleanup(conn: psycopg.AsyncConnection[Any]) -> None:
    await load(conn)
    await popularity.aggregate_popularity(conn, now=NOW - timedelta(days=20))
    assert "OLD-ITEM" in await rows(conn, POPULARITY)  # used 25 days before that run

    summary = await popularity.aggregate_popularity(conn, now=NOW)
    stats = await rows(conn, POPULARITY)
    assert summary["items"] == 4 and summary["removed"] == 1
    assert "OLD-ITEM" not in stats  # unused for 30 days: cleaned
    score = round(100 * math.log10(10) / 3, 2)  # 9 uses: 33.33
    assert stats["CONC-C25"] == (9, 3, Decimal("50.0000"), 5, "up", Decimal("80.00"),
                                 Decimal(str(score)))  # fmt: skip
    assert stats["REBAR-12MM"][4:] == ("flat", Decimal("0.00"), Decimal("31.81"))
    assert stats["FORMWORK-PLYWOOD"][4:6] == ("down", Decimal("-25.00"))
    assert stats["SAND-FINE"][3:6] == (0, "up", None)  # new: no previous uses


async def test_cooccurrence_percentages(conn: psycopg.AsyncConnection[Any]) -> None:
    await load(conn)
    await popularity.aggregate_popularity(conn, now=NOW)
    pairs = await rows(conn, PAIRS)
    assert pairs["CONC-C25>REBAR-12MM"] == (8, Decimal("88.89"))
    assert pairs["REBAR-12MM>CONC-C25"] == (8, Decimal("100.00"))
    assert pairs["CONC-C25>FORMWORK-PLYWOOD"] == (3, Decimal("33.33"))
    assert pairs["REBAR-12MM>FORMWORK-PLYWOOD"] == (3, Decimal("37.50"))
    assert "CONC-C25>SAND-FINE" not in pairs  # seen together once: below min_together
    assert len(pairs) == 6


async def test_suggestions_rank_by_confidence_with_reason(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    await load(conn)
    await popularity.aggregate_popularity(conn, now=NOW)
    ids = await rows(conn, "SELECT code, id FROM estimating.items")
    found = await popularity.suggestions(conn, [ids["CONC-C25"][0]])
    assert [(s["code"], s["confidence_pct"]) for s in found] == [
        ("REBAR-12MM", Decimal("88.89")), ("FORMWORK-PLYWOOD", Decimal("33.33"))]  # fmt: skip
    assert found[0]["reason"] == (
        "Projects using CONC-C25 typically also need REBAR-12MM — 89 % of estimates"
    )
    both = await popularity.suggestions(conn, [ids["CONC-C25"][0], ids["FORMWORK-PLYWOOD"][0]])
    # Items already in the estimate are never suggested; the best reason wins
    # (every FORMWORK estimate also has REBAR).
    assert [s["code"] for s in both] == ["REBAR-12MM"]
    assert both[0]["confidence_pct"] == Decimal("100.00")
    assert "FORMWORK-PLYWOOD" in both[0]["reason"]
