"""``nightcrew serve --app estimating.app:app`` serves ``/api/estimating`` and the dashboard:
both come from ``nightcrew.http.create_app`` alone (what ``serve`` runs)."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from nightcrew import App
from nightcrew.http import create_app
from nightcrew.keys import create_key
from tests.estimating.helpers import simple_items


async def test_create_app_serves_the_apps_routers_and_the_dashboard(
    est_app: App, conn: psycopg.AsyncConnection[Any], sync_url: str
) -> None:
    await simple_items(conn, ["WALL"])
    with psycopg.connect(sync_url, autocommit=True) as sync:
        _, key = create_key(sync, "estimator")
    api = create_app(est_app)
    paths = list(api.openapi()["paths"])
    assert paths.count("/api/estimating/items/{code}") == 1
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        auth = {"Authorization": f"Bearer {key}"}
        item = await client.get("/api/estimating/items/WALL", headers=auth)
        assert item.status_code == 200, item.text
        assert item.json()["code"] == "WALL"
        anonymous = await client.get("/")
        login = await client.post("/login", data={"key": key})
        assert login.status_code == 303, login.text
        # The session cookie is Secure (http://test is no loopback host): pass it by hand.
        client.cookies.set("nightcrew_session", login.cookies["nightcrew_session"])
        dashboard = await client.get("/")
    # The dashboard the demo links to lives at /: anonymous visitors go to its login form.
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login")
    assert dashboard.status_code == 200
    assert "text/html" in dashboard.headers["content-type"]
