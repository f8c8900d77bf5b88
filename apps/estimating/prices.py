"""Price snapshots, spike alerts and price trends with a simple forecast.

Definitions (volatility, forecast method and its confidence) are in docs/estimating.md.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from estimating.errors import UnknownCode
from estimating.sql import query

SPIKE_THRESHOLD_PCT = 20.0
"""A change of more than this between consecutive periods is a spike."""
RETENTION_DAYS = 400
"""Snapshot history kept (a bit over 13 months; at least six months is required)."""

# Two-sided 80 % Student-t quantiles (t_0.90) by degrees of freedom; 1.282 beyond.
_T80 = {1: 3.078, 2: 1.886, 3: 1.638, 4: 1.533, 5: 1.476, 6: 1.440, 7: 1.415, 8: 1.397,
        9: 1.383, 10: 1.372, 12: 1.356, 15: 1.341, 20: 1.325, 30: 1.310}  # fmt: skip


async def capture_snapshot(
    conn: psycopg.AsyncConnection[Any], day: date, *, projects: bool = True
) -> dict[str, int]:
    """Snapshot catalogue rates, item market prices and (``projects``) each active project's
    unit prices, quantities and costs as of ``day``, replacing that day's earlier snapshot;
    prune old history."""
    params = {"day": day, "cutoff": day - timedelta(days=RETENTION_DAYS)}
    async with conn.transaction():
        catalogue = (await conn.execute(query("snapshot_catalogue"), params)).rowcount
        items = (await conn.execute(query("snapshot_items"), params)).rowcount
        project_rows = project_totals = 0
        if projects:
            project_rows = (await conn.execute(query("snapshot_projects"), params)).rowcount
            totals = await conn.execute(query("snapshot_project_totals"), params)
            project_totals = totals.rowcount
        await conn.execute(query("snapshot_prune"), params)
    return {"catalogue": catalogue, "items": items, "project_items": project_rows,
            "projects": project_totals}  # fmt: skip


async def detect_spikes(
    conn: psycopg.AsyncConnection[Any], day: date, *, threshold_pct: float = SPIKE_THRESHOLD_PCT
) -> list[dict[str, Any]]:
    """Record and return the new month-over-month price spikes as of ``day`` (each entry
    and month alerts once)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("price_spikes"), {"day": day, "threshold_pct": threshold_pct})
        rows = await cur.fetchall()
    return [
        {**row, "period_start": row["period_start"].isoformat(),
         **{k: float(row[k]) for k in ("previous_rate", "current_rate", "change_pct")}}
        for row in rows
    ]  # fmt: skip


def _t80(df: int) -> float:
    best = 1.282
    for limit in sorted(_T80, reverse=True):
        if df <= limit:
            best = _T80[limit]
    return best


def forecast(values: list[float]) -> dict[str, Any]:
    """Forecast the next period by an ordinary least-squares line through the periods,
    with an 80 % prediction interval; ``confidence`` grades the interval's width."""
    n = len(values)
    if n == 0:
        return {"value": None, "method": "none", "confidence": "none", "low": None, "high": None}
    if n < 3:
        last = values[-1]
        return {
            "value": round(last, 4), "method": "last value (fewer than 3 periods)",
            "confidence": "low", "low": None, "high": None, "r_squared": None,
        }  # fmt: skip
    xs = list(range(n))
    x_mean, y_mean = sum(xs) / n, sum(values) / n
    sxx = sum((x - x_mean) ** 2 for x in xs)
    slope = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, values, strict=True)) / sxx
    intercept = y_mean - slope * x_mean
    predicted = intercept + slope * n
    sse = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, values, strict=True))
    sst = sum((y - y_mean) ** 2 for y in values)
    r_squared = 1 - sse / sst if sst > 0 else 1.0
    se = math.sqrt(sse / (n - 2)) * math.sqrt(1 + 1 / n + (n - x_mean) ** 2 / sxx)
    half = _t80(n - 2) * se
    relative = half / abs(predicted) if predicted else math.inf
    grade = "high" if relative <= 0.05 else "medium" if relative <= 0.15 else "low"
    return {
        "value": round(predicted, 4), "method": "least-squares linear trend",
        "confidence": grade, "interval_pct": 80, "low": round(predicted - half, 4),
        "high": round(predicted + half, 4), "r_squared": round(r_squared, 4),
    }  # fmt: skip


async def price_trend(
    conn: psycopg.AsyncConnection[Any],
    code: str,
    *,
    months: int = 6,
    period: Literal["month", "quarter"] = "month",
    today: date | None = None,
) -> dict[str, Any]:
    """An item's average market unit price per period over the last ``months`` months,
    with the % change between periods, spike flags and a forecast of the next period."""
    today = today or date.today()
    month_start = today.replace(day=1)
    since = _months_before(month_start, months - 1)
    if period == "quarter":
        since = since.replace(month=(since.month - 1) // 3 * 3 + 1)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("items_by_codes"), {"codes": [code]})
        item = await cur.fetchone()
        if item is None:
            raise UnknownCode(f"unknown item code {code!r}", field="code")
        await cur.execute(
            query("price_trend"), {"item_id": item["id"], "since": since, "period": period}
        )
        rows = await cur.fetchall()
    periods: list[dict[str, Any]] = []
    previous: float | None = None
    for row in rows:
        average = float(row["average_price"])
        change = round(100 * (average - previous) / previous, 2) if previous else None
        periods.append({
            "period_start": row["period_start"].isoformat(), "average_price": round(average, 4),
            "change_pct": change, "days": row["days"],
            "spike": change is not None and abs(change) > SPIKE_THRESHOLD_PCT,
        })  # fmt: skip
        previous = average
    return {
        "code": item["code"], "name": item["name"], "unit": item["unit"], "period": period,
        "months": months, "periods": periods,
        "forecast": forecast([p["average_price"] for p in periods]),
    }  # fmt: skip


def _months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)
