"""The estimating dashboard pages run on the page's own session: one pool connection per
request, so a small pool answers promptly even under concurrent page loads; the bulk price
form is for admins only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest

from estimating.app import build_app
from nightcrew import App
from nightcrew.http import create_app
from nightcrew.http.dashboard.auth import csrf_token
from nightcrew.keys import create_key
from tests.estimating.conftest import FAST
from tests.estimating.helpers import catalogue, item

PROMPT = 10.0
"""Seconds: well under the pool's 30 s wait for a free connection."""


@asynccontextmanager
async def dashboard(app: App, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in to ``app``'s dashboard with ``key``."""
    transport = httpx.ASGITransport(app=create_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
        login = await client.post("/login", data={"key": key})
        assert login.status_code == 303, login.text
        # The cookie is Secure (plain http here): carry the session id by hand.
        session_id = login.cookies["nightcrew_session"]
        client.cookies.clear()
        client.cookies.set("nightcrew_session", session_id)
        yield client


@pytest.fixture
async def small_pool(est_clean: str) -> AsyncIterator[tuple[App, dict[str, str]]]:
    """An estimating App whose pool holds one connection, a little library, two keys."""
    with psycopg.connect(est_clean, autocommit=True) as sync:
        keys = {"user": create_key(sync, "estimator")[1],
                "admin": create_key(sync, "root", admin=True)[1]}  # fmt: skip
    app = build_app(est_clean, **{**FAST, "pool_min_size": 1, "pool_max_size": 1})
    pool = await app.apool()
    async with pool.connection() as conn:
        await catalogue(conn, materials=[("CEMENT", "10.00")])
        await item(conn, "WALL", materials=[{"code": "CEMENT", "quantity_per_unit": "2"}])
    yield app, keys
    await app.aclose()


async def test_pages_answer_promptly_on_a_pool_of_one(
    small_pool: tuple[App, dict[str, str]],
) -> None:
    app, keys = small_pool
    async with dashboard(app, keys["user"]) as client:
        for path in ("/estimating", "/estimating/items/WALL", "/estimating/items/NOPE"):
            started = time.monotonic()
            page = await asyncio.wait_for(client.get(path), PROMPT)
            assert time.monotonic() - started < PROMPT
            assert page.status_code == (404 if "NOPE" in path else 200), (path, page.text[:300])
        assert "WALL" in (await client.get("/estimating")).text


async def test_six_concurrent_page_loads_on_a_pool_of_three(est_clean: str) -> None:
    with psycopg.connect(est_clean, autocommit=True) as sync:
        _, key = create_key(sync, "estimator")
    app = build_app(est_clean, **{**FAST, "pool_min_size": 3, "pool_max_size": 3})
    try:
        async with dashboard(app, key) as client:
            pages = await asyncio.wait_for(
                asyncio.gather(*(client.get("/estimating") for _ in range(6))), PROMPT
            )
            api = await asyncio.wait_for(
                client.get("/api/estimating/alerts", headers={"Authorization": f"Bearer {key}"}),
                PROMPT,
            )
    finally:
        await app.aclose()
    assert [p.status_code for p in pages] == [200] * 6
    assert api.status_code == 200


async def test_the_bulk_price_form_is_for_admins_only(est_app: App, est_clean: str) -> None:
    with psycopg.connect(est_clean, autocommit=True) as sync:
        keys = {"user": create_key(sync, "estimator")[1],
                "admin": create_key(sync, "root", admin=True)[1]}  # fmt: skip
    pool = await est_app.apool()
    async with pool.connection() as conn:
        await catalogue(conn, materials=[("CEMENT", "10.00")])

    async def submit(who: str) -> httpx.Response:
        async with dashboard(est_app, keys[who]) as client:
            session_id = client.cookies["nightcrew_session"]
            form = {"percent": "1000", "category": "", "item_codes": "",
                    "csrf": csrf_token(session_id)}  # fmt: skip
            return await asyncio.wait_for(
                client.post("/estimating/bulk-price-update", data=form), PROMPT
            )

    refused = await submit("user")
    assert refused.status_code == 303 and "admin" in refused.headers["location"]
    assert "job=" not in refused.headers["location"]
    with psycopg.connect(est_clean, autocommit=True) as sync:
        assert sync.execute("SELECT count(*) FROM nightcrew.jobs").fetchone() == (0,)
    accepted = await submit("admin")
    assert accepted.status_code == 303 and "job=" in accepted.headers["location"]
    with psycopg.connect(est_clean, autocommit=True) as sync:
        row: Any = sync.execute("SELECT type, user_id FROM nightcrew.jobs").fetchone()
    assert row == ("estimating.bulk_price_update", "root")
