"""Price snapshots, volatility, the trend with its forecast and the spike alert, on a
synthetic history: steel +25 % from the third month, two projects at 90 and 110."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from estimating import prices
from nightcrew import App
from nightcrew.keys import create_key
from tests.estimating.helpers import catalogue, item, project, rates

TODAY = date(2026, 4, 20)
START = date(2026, 1, 1)


async def load(conn: psycopg.AsyncConnection[Any]) -> None:
    await catalogue(conn, materials=[("STEEL", "100"), ("TIMBER", "50")])
    await item(conn, "REBAR-12MM", materials=[{"code": "STEEL", "quantity_per_unit": "2"}])
    for p in ("P1", "P2"):
        await project(conn, p)
    # Steel per project: 90 / 110 until March, then 112.5 / 137.5 (+25 %).
    await rates(conn, "P1", [("STEEL", "90", "2025-12-01"), ("STEEL", "112.5", "2026-03-01")])
    await rates(conn, "P2", [("STEEL", "110", "2025-12-01"), ("STEEL", "137.5", "2026-03-01")])


async def history(conn: psycopg.AsyncConnection[Any]) -> None:
    day = START
    while day <= TODAY:
        await prices.capture_snapshot(conn, day, projects=False)
        day += timedelta(days=1)


async def test_snapshot_spread_and_volatility(conn: psycopg.AsyncConnection[Any]) -> None:
    await load(conn)
    counts = await prices.capture_snapshot(conn, date(2026, 2, 1))
    assert counts["catalogue"] == 2 and counts["items"] == 1
    cur = await conn.execute(
        "SELECT c.code, s.catalogue_rate, s.avg_project_rate, s.min_project_rate,"
        " s.max_project_rate, s.volatility, s.project_rate_count, s.item_count"
        " FROM estimating.catalogue_price_snapshots s JOIN estimating.catalogue c"
        " ON c.id = s.catalogue_id ORDER BY 1"
    )
    steel, timber = await cur.fetchall()
    # mean 100, population stddev 10 -> coefficient of variation 0.1
    assert steel[1:] == (Decimal("100.0000"), Decimal("100.0000"), Decimal("90.0000"),
                         Decimal("110.0000"), Decimal("0.100000"), 2, 1)  # fmt: skip
    assert timber[2:] == (None, None, None, None, 0, 0)
    cur = await conn.execute("SELECT unit_price FROM estimating.item_price_snapshots")
    assert await cur.fetchone() == (Decimal("200.0000"),)  # 2 x mean project rate 100


async def test_trend_spike_and_forecast(conn: psycopg.AsyncConnection[Any]) -> None:
    await load(conn)
    await history(conn)
    trend = await prices.price_trend(conn, "REBAR-12MM", months=4, today=TODAY)
    got = [(p["period_start"], p["average_price"], p["change_pct"], p["spike"])
           for p in trend["periods"]]  # fmt: skip
    assert got == [
        ("2026-01-01", 200.0, None, False),
        ("2026-02-01", 200.0, 0.0, False),
        ("2026-03-01", 250.0, 25.0, True),
        ("2026-04-01", 250.0, 0.0, False),
    ]
    forecast = trend["forecast"]
    # Least squares through 200, 200, 250, 250 (x = 0..3): slope 100 / 5 = 20,
    # intercept 225 - 20 * 1.5 = 195, next (x = 4) = 275.
    assert forecast["value"] == 275.0 and forecast["method"] == "least-squares linear trend"
    assert forecast["low"] < 275.0 < forecast["high"] and forecast["interval_pct"] == 80
    quarters = await prices.price_trend(conn, "REBAR-12MM", months=4, period="quarter",
                                        today=TODAY)  # fmt: skip
    assert [(p["period_start"], round(p["average_price"], 2)) for p in quarters["periods"]] == [
        ("2026-01-01", round((59 * 200 + 31 * 250) / 90, 2)), ("2026-04-01", 250.0)]  # fmt: skip


async def test_spike_alert_once_and_notified(
    est_app: App, conn: psycopg.AsyncConnection[Any], est_clean: str
) -> None:
    with psycopg.connect(est_clean, autocommit=True) as sync:
        create_key(sync, "root", admin=True)
    await load(conn)
    day = START
    while day < date(2026, 3, 1):
        await prices.capture_snapshot(conn, day, projects=False)
        day += timedelta(days=1)
    job_id = await est_app.aenqueue("estimating.capture_price_snapshot", {"day": "2026-03-01"})
    await est_app.worker().run_until_idle(timeout=30)
    job = await est_app.aget_job(job_id)
    assert job is not None and job.status.value == "completed", job
    (alert,) = job.result["alerts"]
    assert alert["code"] == "STEEL" and alert["change_pct"] == 25.0
    assert alert["message"] == "Steel prices up 25 % — review active estimates"
    assert await prices.detect_spikes(conn, date(2026, 3, 2)) == []  # once per month
    # The alert went through nightcrew's notifications: a job whose summary is the alert,
    # one per admin (delivery end to end: test_notifications.py).
    (carrier,) = est_app.list_jobs(type="estimating.price_alert")
    assert carrier.result["summary"] == alert["message"] and carrier.user_id == "root"
    cur = await conn.execute("SELECT notify FROM nightcrew.jobs WHERE id = %s", (carrier.id,))
    row = await cur.fetchone()
    assert row is not None and row[0]["in_app"] is True


def test_forecast_of_a_straight_line_is_exact() -> None:
    result = prices.forecast([100.0, 110.0, 120.0, 130.0])
    assert result["value"] == 140.0 and result["r_squared"] == 1.0
    assert result["confidence"] == "high" and result["low"] == result["high"] == 140.0
    assert prices.forecast([100.0])["confidence"] == "low"
