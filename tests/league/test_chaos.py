"""Chaos: statistics functions that fail transiently end completed thanks to retries; a
function failing for good fails its run by name, its tag stays cached while the other nine
are dropped, and Retry then completes. A real worker runs in the background."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from league import runs
from league.runs import Trigger
from league.stats import FUNCTIONS, TAGS
from nightcrew import App, Worker
from nightcrew.http import create_app
from tests.league.helpers import load_small_league, rows, wait_for_run
from tests.support import await_until

pytestmark = pytest.mark.timeout(120)
BROKEN = "update_power_ratings"


@pytest.fixture
async def client(league_app: App, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(league_app))
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as http:
        yield http


async def trigger(app: App, conn: psycopg.AsyncConnection[Any], request_id: str) -> str:
    async with conn.transaction():
        run = await runs.request_run(app, conn, Trigger("admin", request_id))
    return str(run.id)


async def test_transient_failures_are_retried_until_every_run_completes(
    league_app: App, conn: psycopg.AsyncConnection[Any], worker: Worker
) -> None:
    await load_small_league(conn)
    await conn.execute(
        "INSERT INTO league.faults (function, transient_rate) SELECT unnest(%s::text[]), 0.1",
        (list(FUNCTIONS),),
    )
    statuses = []
    for i in range(100):
        run_id = await trigger(league_app, conn, f"chaos-{i}")
        statuses.append(await wait_for_run(league_app, run_id))
    assert statuses == ["completed"] * 100
    retried = await rows(conn, "SELECT count(*) FROM league.run_functions WHERE attempts > 1")
    assert retried[0][0] > 0  # the faults did fire: ~10 % of 1000 function runs
    assert await rows(conn, "SELECT count(*) FROM league.runs WHERE status <> 'completed'") == [
        (0,)
    ]


async def test_a_function_failing_for_good_fails_its_run_and_keeps_its_tag(
    league_app: App,
    conn: psycopg.AsyncConnection[Any],
    worker: Worker,
    client: httpx.AsyncClient,
) -> None:
    await load_small_league(conn)
    first = await trigger(league_app, conn, "warm-up")
    assert await wait_for_run(league_app, first) == "completed"
    for tag in TAGS:  # every tag cached in this web process
        assert (await client.get(f"/api/league/stats/{tag}")).status_code == 200
    cached = (await client.get("/api/league/cache")).json()
    assert len(cached["entries"]) == len(TAGS) and cached["listening"]
    await conn.execute(
        "INSERT INTO league.faults (function, permanent) VALUES (%s, true)", (BROKEN,)
    )

    failed = (
        await client.post(
            "/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": "breaks"}
        )
    ).json()
    assert await wait_for_run(league_app, failed["jobId"]) == "failed"
    run = (await client.get(f"/api/league/stats-jobs/{failed['jobId']}")).json()
    assert run["failedFunctions"] == [BROKEN]
    assert run["invalidatedTags"] == [t for t in TAGS if t != "player_power_rating"]
    broken = next(f for f in run["functions"] if f["function"] == BROKEN)
    assert broken["status"] == "failed" and broken["attempts"] == 3
    assert "injected permanent failure" in broken["error"]

    async def nine_dropped() -> bool:
        status = (await client.get("/api/league/cache")).json()
        return status["lastInvalidation"] and status["lastInvalidation"]["runId"] == run["jobId"]

    await await_until(nine_dropped, timeout=5, what="the run's invalidation")
    assert (await client.get("/api/league/cache")).json()["entries"] == ["player_power_rating:"]

    await conn.execute("DELETE FROM league.faults")
    retry = await client.post(
        "/api/league/stats-jobs",
        json={"triggeredBy": "admin", "requestId": "retry-1", "retryOf": run["jobId"]},
    )
    assert retry.status_code == 202, retry.text
    assert await wait_for_run(league_app, retry.json()["jobId"]) == "completed"
    again = (await client.get(f"/api/league/stats-jobs/{retry.json()['jobId']}")).json()
    assert again["retryOf"] == run["jobId"] and again["invalidatedTags"] == list(TAGS)
