"""Suggestion uptake: suggestions offered for an estimate are recorded, a usage row that
takes one up (its id, or ``"suggested": true``) marks it used, and the share used over 30
days is shown on the Estimating page against the seed's goal of 80 %. Prices on the pages
are money (2 decimals, thousands separators), the forecast and its interval too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from estimating import popularity, prices
from nightcrew import App
from nightcrew.http import create_app
from nightcrew.keys import create_key
from tests.estimating.helpers import catalogue, item, member, project, simple_items, use
from tests.estimating.test_dashboard_pages import dashboard


@pytest.fixture
async def keys(est_clean: str) -> AsyncIterator[dict[str, str]]:
    with psycopg.connect(est_clean, autocommit=True) as sync:
        yield {who: create_key(sync, who)[1] for who in ("alice", "bob", "carol")}


async def together(conn: psycopg.AsyncConnection[Any]) -> None:
    """WALL goes with POST and with SLAB in past estimates: both are suggested for WALL."""
    await simple_items(conn, ["WALL", "POST", "SLAB"])
    await project(conn, "ALPHA", "alice")
    await member(conn, "ALPHA", "bob", "viewer")
    now = datetime.now(UTC) - timedelta(days=1)
    for n, partner in enumerate(["POST", "POST", "SLAB", "SLAB"]):
        await use(conn, "WALL", "ALPHA", f"PAST-{n}", now)
        await use(conn, partner, "ALPHA", f"PAST-{n}", now)
    await popularity.aggregate_popularity(conn)


async def test_suggestions_offered_and_taken_up_give_the_share_against_the_goal(
    est_app: App, conn: psycopg.AsyncConnection[Any], keys: dict[str, str]
) -> None:
    await together(conn)
    transport = httpx.ASGITransport(app=create_app(est_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def call(who: str, method: str, path: str, **kw: Any) -> httpx.Response:
            auth = {"Authorization": f"Bearer {keys[who]}"}
            return await client.request(method, f"/api/estimating{path}", headers=auth, **kw)

        offered = await call("alice", "GET", "/suggestions?items=WALL&project_id=ALPHA"
                                              "&estimate_id=E9")  # fmt: skip
        assert offered.status_code == 200, offered.text
        ids = {s["code"]: s["id"] for s in offered.json()["suggestions"]}
        assert set(ids) == {"POST", "SLAB"}
        line = {"project_id": "ALPHA", "estimate_id": "E9", "quantity": "1"}
        taken = await call("alice", "POST", "/usage", json={
            **line, "item_code": "POST", "suggestion_id": ids["POST"]})  # fmt: skip
        assert taken.status_code == 201 and taken.json()["suggestion_id"] == ids["POST"]
        wrong = await call("alice", "POST", "/usage", json={
            **line, "item_code": "WALL", "suggestion_id": ids["SLAB"]})  # fmt: skip
        assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "suggestion_id"
        for bad in (2**63, 0, "x"):  # beyond bigint, not positive, not a number: 422, no 500
            refused = await call("alice", "POST", "/usage", json={
                **line, "item_code": "POST", "suggestion_id": bad})  # fmt: skip
            assert refused.status_code == 422, (bad, refused.text)
        said = await call("alice", "POST", "/usage", json={
            **line, "estimate_id": "E10", "item_code": "SLAB", "suggested": True})  # fmt: skip
        assert said.status_code == 201 and said.json()["suggestion_id"] is not None
        plain = await call("alice", "POST", "/usage", json={**line, "item_code": "WALL"})
        assert plain.status_code == 201 and plain.json()["suggestion_id"] is None
        # Offered: POST and SLAB to E9, SLAB to E10 (said so); used: POST in E9, SLAB in
        # E10 -> 2 of 3 = 66.7 %, short of the 80 % goal.
        share = (await call("alice", "GET", "/suggestions/uptake")).json()
        assert share == {"offered": 3, "used": 2, "share_pct": "66.7", "goal_pct": 80,
                         "goal_met": False}  # fmt: skip
        viewer = await call("bob", "GET", "/suggestions?items=WALL&project_id=ALPHA"
                                          "&estimate_id=E9")  # fmt: skip
        assert viewer.status_code == 403  # viewers do not write estimates
        stranger = await call("carol", "GET", "/suggestions?items=WALL&project_id=ALPHA"
                                              "&estimate_id=E9")  # fmt: skip
        assert stranger.status_code == 404
        half = await call("alice", "GET", "/suggestions?items=WALL&project_id=ALPHA")
        assert half.status_code == 422 and half.json()["error"]["field"] == "estimate_id"
        assert (await call("carol", "GET", "/suggestions/uptake")).json()["offered"] == 0
    async with dashboard(est_app, keys["alice"]) as page_client:
        page = (await page_client.get("/estimating")).text
    assert "<strong>66.7 %</strong> of 3 suggestions used" in page
    assert "goal 80 %: not met" in page


async def test_prices_and_the_forecast_are_shown_as_money(
    est_app: App, conn: psycopg.AsyncConnection[Any], keys: dict[str, str]
) -> None:
    await catalogue(conn, materials=[("STEEL", "750")])
    await item(conn, "BEAM", materials=[{"code": "STEEL", "quantity_per_unit": "2"}])
    this_month = date.today().replace(day=1)
    months = [(this_month - timedelta(days=31 * k)).replace(day=1) for k in (3, 2, 1, 0)]
    for k, month in enumerate(months):  # 1,500.00 then +100 a month: forecast 1,900.00
        await conn.execute(
            "INSERT INTO estimating.catalogue_rate_history SELECT id, %s, %s"
            " FROM estimating.catalogue ON CONFLICT (catalogue_id, effective_from)"
            " DO UPDATE SET rate = excluded.rate", (month, 750 + 50 * k),
        )  # fmt: skip
        await prices.capture_snapshot(conn, month, projects=False)
    async with dashboard(est_app, keys["alice"]) as client:
        page = (await client.get("/estimating/items/BEAM")).text
    for shown in ("1,500.00", "1,600.00", "1,700.00", "1,800.00"):
        assert f"<td>{shown}</td>" in page, shown
    assert '<strong id="forecast-value">1,900.00</strong>' in page
    assert '<span id="forecast-interval">1,900.00 – 1,900.00</span>' in page
