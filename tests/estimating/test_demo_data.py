"""The demo generator, run small: it loads, and its stories are visible through the API's
computations (concrete with rebar, the steel price jump)."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg

from estimating import library, popularity, prices
from estimating.demo_data import DemoSize, load_demo

TODAY = date(2026, 11, 22)


async def test_small_demo_tells_its_stories(conn: psycopg.AsyncConnection[Any]) -> None:
    counts = await load_demo(conn, DemoSize(items=150, projects=10, estimates=400), today=TODAY)
    assert (counts["items"], counts["projects"], counts["estimates"]) == (150, 10, 400)
    assert counts["usage"] >= 400 * 2 and counts["spike_month"] == "2026-09-01"
    assert counts["steel_alerts"] >= 1
    cur = await conn.execute(
        "SELECT user_id, count(*) FROM estimating.project_members WHERE role = 'owner'"
        " GROUP BY 1 ORDER BY 1"
    )
    assert await cur.fetchall() == [("estimator", 4), ("planner", 3), ("surveyor", 3)]

    ids = await library.item_ids(conn, ["CONC-C25"])
    found = await popularity.suggestions(conn, [ids["CONC-C25"]])
    assert found[0]["code"] == "REBAR-12MM" and found[0]["confidence_pct"] > 80

    trend = await prices.price_trend(conn, "REBAR-12MM", months=6, today=TODAY)
    changes = {p["period_start"]: p["change_pct"] for p in trend["periods"]}
    assert len(changes) == 6 and changes["2026-09-01"] > 15  # steel jump (labour is a share)
    concrete = await prices.price_trend(conn, "CONC-C25", months=6, today=TODAY)
    assert len(concrete["periods"]) == 6 and concrete["forecast"]["value"] is not None
    item = await library.get_item(conn, "CONC-C25")
    assert float(item["unit_price"]) > 0 and len(item["factors"]) == 4
