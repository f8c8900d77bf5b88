"""The daily snapshot per active project (seed 000 step 2): each used item's unit price from
the project's rates, the quantity the project used and its cost, and the project's totals,
checked to the cent by hand; inactive projects are skipped."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psycopg

from estimating import library, prices
from estimating.models import ProjectRequest
from tests.estimating.helpers import catalogue, item, project, rates, use

DAY = date(2026, 11, 2)
AT = datetime(2026, 11, 1, 10, tzinfo=UTC)


async def load(conn: psycopg.AsyncConnection[Any]) -> None:
    await catalogue(conn, materials=[("CEMENT", "10.00")], labour=[("LAB", "45.50")])
    await item(conn, "WALL", materials=[{"code": "CEMENT", "quantity_per_unit": "2"}])
    await item(conn, "POST", materials=[
        {"code": "CEMENT", "quantity_per_unit": "0.35", "wastage_percentage": "5"}],
        labour=[{"code": "LAB", "hours_per_unit": "0.8", "productivity_factor": "0.9",
                 "crew_size": "3"}])  # fmt: skip
    for pid in ("P1", "P2", "P3"):
        await project(conn, pid)
    await rates(conn, "P1", [("CEMENT", "12.00", "2026-01-01")])
    await use(conn, "WALL", "P1", "E1", AT, "3")
    await use(conn, "WALL", "P1", "E2", AT, "2.5")
    await use(conn, "POST", "P1", "E2", AT, "1.5")
    await use(conn, "WALL", "P2", "E1", AT, "4")
    await use(conn, "WALL", "P3", "E1", AT, "1")
    await library.create_project(conn, ProjectRequest(id="P2", name="P2", active=False))


async def test_active_projects_unit_prices_quantities_and_costs_to_the_cent(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    await load(conn)
    counts = await prices.capture_snapshot(conn, DAY)
    assert (counts["project_items"], counts["projects"]) == (3, 2)  # P2 is inactive
    cur = await conn.execute(
        "SELECT s.project_id, i.code, s.unit_price, s.quantity, s.cost"
        " FROM estimating.project_price_snapshots s JOIN estimating.items i ON i.id = s.item_id"
        " WHERE s.snapshot_date = %s ORDER BY 1, 2", (DAY,)
    )  # fmt: skip
    assert await cur.fetchall() == [
        # POST at P1's cement 12.00: 12 * 0.35 * 1.05 = 4.41, labour 45.50 * 0.8 / 0.9 * 3
        # = 121.3333...; unit 125.7433 (4 decimals); x 1.5 = 188.61495 -> 188.61
        ("P1", "POST", Decimal("125.7433"), Decimal("1.5000"), Decimal("188.61")),
        # WALL at 12.00 x 2 = 24.0000; used 3 + 2.5 = 5.5 -> 132.00
        ("P1", "WALL", Decimal("24.0000"), Decimal("5.5000"), Decimal("132.00")),
        # P3 has no rates: the catalogue's 10.00 x 2 = 20.0000; x 1 = 20.00
        ("P3", "WALL", Decimal("20.0000"), Decimal("1.0000"), Decimal("20.00")),
    ]
    cur = await conn.execute(
        "SELECT project_id, items, total_quantity, total_cost"
        " FROM estimating.project_cost_snapshots WHERE snapshot_date = %s ORDER BY 1", (DAY,)
    )  # fmt: skip
    assert await cur.fetchall() == [
        ("P1", 2, Decimal("7.0000"), Decimal("320.61")),  # 188.61 + 132.00
        ("P3", 1, Decimal("1.0000"), Decimal("20.00")),
    ]


async def test_a_project_made_active_again_is_snapshotted_again(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    await load(conn)
    await library.create_project(conn, ProjectRequest(id="P2", name="P2", active=True))
    await prices.capture_snapshot(conn, DAY)
    cur = await conn.execute(
        "SELECT total_quantity, total_cost FROM estimating.project_cost_snapshots"
        " WHERE project_id = 'P2'"
    )
    assert await cur.fetchall() == [(Decimal("4.0000"), Decimal("80.00"))]  # 4 x 20.00
