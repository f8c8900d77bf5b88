"""The notification, alert and type-health routes over a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from nightcrew import App
from nightcrew.context import JobContext
from nightcrew.http import create_app
from nightcrew.keys import create_key
from nightcrew.notify.alerts import evaluate_alerts
from tests.notify.receivers import free_port


@pytest.fixture
async def served(clean_db: str) -> AsyncIterator[tuple[App, str, dict[str, str]]]:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE nightcrew.notifications, nightcrew.alerts, nightcrew.api_keys,"
            " nightcrew.dashboard_sessions,"
            " nightcrew.stats_minute, nightcrew.deliveries"
        )
        keys = {
            user: create_key(conn, user, admin=(user == "admin"))[1]
            for user in ("alice", "bob", "admin")
        }
    app = App(
        clean_db,
        migrate_on_start=False,
        poll_seconds=0.1,
        http_heartbeat_seconds=0.5,
        maintenance_schedules=False,
    )

    @app.job("t.work")
    async def work(ctx: JobContext, payload: Any) -> Any:
        if payload.get("fail"):
            raise RuntimeError("boom")
        return {"summary": "all good"}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(app), port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield app, f"http://127.0.0.1:{port}", keys
    finally:
        server.should_exit = True
        await task
        await app.aclose()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_inbox_badge_read_and_live_stream(served: tuple[App, str, dict[str, str]]) -> None:
    app, url, keys = served
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream(
            "GET", "/api/notifications/events", headers=auth(keys["alice"])
        ) as stream:
            lines = stream.aiter_lines()

            async def next_unread() -> dict[str, Any]:
                async for line in lines:
                    if line.startswith("data: "):
                        return json.loads(line[6:])  # type: ignore[no-any-return]
                raise AssertionError("stream ended")

            assert (await asyncio.wait_for(next_unread(), 5))["unread"] == 0
            await app.aenqueue("t.work", user_id="alice", notify={"in_app": True})
            await app.aenqueue("t.work", user_id="bob", notify={"in_app": True})
            await app.worker().run_until_idle(timeout=30)
            assert (await asyncio.wait_for(next_unread(), 5))["unread"] == 1  # pushed live

            page = (await client.get("/api/notifications", headers=auth(keys["alice"]))).json()
            assert page["unread"] == 1 and len(page["items"]) == 1  # bob's is not visible
            item = page["items"][0]
            assert item["title"] == "t.work completed: all good" and item["read_at"] is None
            # bob cannot read alice's notification
            theirs = await client.post(
                f"/api/notifications/{item['id']}/read", headers=auth(keys["bob"])
            )
            assert theirs.status_code == 404
            read = await client.post(
                f"/api/notifications/{item['id']}/read", headers=auth(keys["alice"])
            )
            assert read.status_code == 200 and read.json()["read_at"] is not None
            assert (await asyncio.wait_for(next_unread(), 5))["unread"] == 0
        bad = await client.post("/api/notifications/abc/read", headers=auth(keys["alice"]))
        assert bad.status_code == 404
        assert (await client.get("/api/notifications")).status_code == 401


async def test_alerts_for_admins_and_type_health(served: tuple[App, str, dict[str, str]]) -> None:
    app, url, keys = served
    await app.aenqueue_many(
        [{"type": "t.work", "payload": {"fail": True}, "max_attempts": 1} for _ in range(25)]
    )
    await app.worker().run_until_idle(timeout=30)
    await evaluate_alerts(app)
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        listed = await client.get("/api/alerts", headers=auth(keys["admin"]))
        assert listed.status_code == 200
        [alert] = listed.json()["items"]
        assert (alert["rule"], alert["status"], alert["resolved_at"]) == (
            "failure_rate",
            "open",
            None,
        )
        assert (await client.get("/api/alerts", headers=auth(keys["alice"]))).status_code == 403
        stats = await client.get("/api/stats", headers=auth(keys["admin"]))
        [row] = [r for r in stats.json()["by_type"] if r["type"] == "t.work"]
        assert row["success_rate"] == 0.0 and row["failure_streak"] == 25
        assert row["last_success_at"] is None


async def test_post_jobs_accepts_notify(served: tuple[App, str, dict[str, str]]) -> None:
    app, url, keys = served
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        body = {"type": "t.work", "notify": {"in_app": True, "email": "alice@example.com"}}
        created = await client.post("/api/jobs", json=body, headers=auth(keys["alice"]))
        assert created.status_code == 202
        job = await app.aget_job(created.json()["id"])
        assert job is not None
        bad = await client.post(
            "/api/jobs",
            json={"type": "t.work", "notify": {"email": "x"}},
            headers=auth(keys["alice"]),
        )
        assert bad.status_code == 422
        assert "notify.email must be an email address" in bad.json()["error"]["message"]
    with psycopg.connect(app.url) as conn:
        row = conn.execute("SELECT notify FROM nightcrew.jobs WHERE id = %s", (job.id,)).fetchone()
    assert row == ({"in_app": True, "email": "alice@example.com"},)
