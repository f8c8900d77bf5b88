"""The per-process statistics cache: served by tag, dropped by the end of a run and by the
HMAC-signed invalidation endpoint (replays and stale signatures refused)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from league.api import invalidation_secret
from league.cache import APPLICATION_NAME, StatsCache
from league.stats import TAGS
from nightcrew import App, sign_webhook
from nightcrew.http import create_app
from nightcrew.testing import drain
from tests.league.conftest import FAST
from tests.league.helpers import load_small_league, store
from tests.support import await_until

pytestmark = pytest.mark.timeout(60)
MASTER = str(FAST["webhook_secret"])
SECRET = invalidation_secret(MASTER)
INVALIDATE = "/api/league/internal/cache/invalidate"


@pytest.fixture
async def client(league_app: App, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(league_app))
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as http:
        yield http


def signed(body: dict[str, Any], *, secret: str = SECRET, age: float = 0) -> dict[str, Any]:
    """The request's content and headers, signed like nightcrew's webhooks."""
    raw = json.dumps(body).encode()
    timestamp = int(time.time() - age)
    return {
        "content": raw,
        "headers": {
            "Content-Type": "application/json",
            "X-Nightcrew-Timestamp": str(timestamp),
            "X-Nightcrew-Signature": sign_webhook(secret, timestamp, raw),
        },
    }


async def entries(client: httpx.AsyncClient) -> list[str]:
    status = (await client.get("/api/league/cache")).json()
    return list(status["entries"])


async def test_stats_are_served_by_tag_from_the_cache(
    league_app: App, conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient
) -> None:
    await load_small_league(conn)
    await client.post("/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": "1"})
    await drain(league_app)
    first = await client.get("/api/league/stats/all_time_stats")
    again = await client.get("/api/league/stats/all_time_stats")
    assert first.status_code == 200 and first.json() == again.json()
    assert [r["points"] for r in first.json()["rows"]] == [14, 8, 5, 5]
    status = (await client.get("/api/league/cache")).json()
    assert status["hits"] >= 1 and "all_time_stats:" in status["entries"]
    season = await client.get("/api/league/stats/season_stats", params={"season": 2})
    assert {r["season_id"] for r in season.json()["rows"]} == {2}
    unknown = await client.get("/api/league/stats/nope")
    assert unknown.status_code == 404 and "all_time_stats" in unknown.json()["error"]["message"]
    not_seasonal = await client.get("/api/league/stats/hall_of_fame", params={"season": 1})
    assert not_seasonal.status_code == 422


async def test_a_run_replaces_what_the_cache_served(
    league_app: App, conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient
) -> None:
    await load_small_league(conn)
    await client.post("/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": "1"})
    await drain(league_app)
    before = (await client.get("/api/league/stats/all_time_stats")).json()["rows"]
    async with conn.transaction():
        await store(conn, 7, [(4, "A", 5, 0), (3, "B", 0, 0)])  # Dan scores five
    answer = await client.post(
        "/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": "2"}
    )
    await drain(league_app)

    async def dropped() -> bool:
        last = (await client.get("/api/league/cache")).json()["lastInvalidation"]
        return bool(last) and last["runId"] == answer.json()["jobId"]

    await await_until(dropped, timeout=5, what="the run's invalidation to arrive")
    after = (await client.get("/api/league/stats/all_time_stats")).json()["rows"]
    dan = lambda rows: next(r for r in rows if r["player_id"] == 4)  # noqa: E731
    assert (dan(before)["goals"], dan(after)["goals"]) == (0, 5)


async def test_signed_invalidation_drops_tags(client: httpx.AsyncClient) -> None:
    for tag in TAGS:
        await client.get(f"/api/league/stats/{tag}")
    assert len(await entries(client)) == len(TAGS)
    answer = await client.post(INVALIDATE, **signed({"tags": ["hall_of_fame", "match_report"]}))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"invalidated": ["hall_of_fame", "match_report"]}

    async def gone() -> bool:
        held = await entries(client)
        return "hall_of_fame:" not in held and "match_report:" not in held

    await await_until(gone, timeout=5, what="the tags to be dropped")
    assert len(await entries(client)) == len(TAGS) - 2


async def test_invalidation_refuses_unsigned_forged_stale_and_replayed_requests(
    client: httpx.AsyncClient,
) -> None:
    body = {"tags": ["hall_of_fame"]}
    unsigned = await client.post(INVALIDATE, json=body)
    assert unsigned.status_code == 401
    forged = await client.post(INVALIDATE, **signed(body, secret="not-the-secret"))
    assert forged.status_code == 401
    as_a_webhook = await client.post(INVALIDATE, **signed(body, secret=MASTER))
    assert as_a_webhook.status_code == 401  # signed like nightcrew's own webhooks: refused
    stale = await client.post(INVALIDATE, **signed(body, age=301))
    assert stale.status_code == 401 and "5 minutes" in stale.json()["error"]["message"]
    fresh = signed(body, age=200)
    assert (await client.post(INVALIDATE, **fresh)).status_code == 202
    replayed = await client.post(INVALIDATE, **fresh)
    assert replayed.status_code == 409 and "replay" in replayed.json()["error"]["message"]
    unknown = await client.post(INVALIDATE, **signed({"tags": ["hall_of_fame", "nope"]}))
    assert unknown.status_code == 422 and "nope" in unknown.json()["error"]["message"]
    empty = await client.post(INVALIDATE, **signed({"tags": []}))
    assert empty.status_code == 422 and "tags" in empty.json()["error"]["message"]
    garbage = await client.post(INVALIDATE, **signed({"tags": "hall_of_fame"}))
    assert garbage.status_code == 422


async def test_admins_get_the_invalidation_secret(client: httpx.AsyncClient, user_key: str) -> None:
    answer = await client.get("/api/league/internal/cache/secret")
    assert answer.status_code == 200 and answer.json()["secret"] == SECRET
    fan = await client.get(
        "/api/league/internal/cache/secret", headers={"Authorization": f"Bearer {user_key}"}
    )
    assert fan.status_code == 403


async def test_invalidation_without_a_secret_is_unavailable(league_clean: str) -> None:
    from league.app import install

    app = App(league_clean, **{**FAST, "webhook_secret": None})
    install(app)
    transport = httpx.ASGITransport(app=create_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.post(INVALIDATE, **signed({"tags": ["hall_of_fame"]}))
    await app.aclose()
    assert answer.status_code == 503


async def test_a_read_overtaken_by_an_invalidation_is_not_stored() -> None:
    cache = StatsCache(listening=True)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_old_value() -> str:
        started.set()
        await release.wait()
        return "old"

    read = asyncio.create_task(cache.get("hall_of_fame", "", slow_old_value))
    await started.wait()
    cache.invalidate(["hall_of_fame"])  # the run ended while the read was under way
    release.set()
    assert await read == "old"  # that request gets what it read...
    assert cache.entries == {}  # ...but the next one reads again

    async def new_value() -> str:
        return "new"

    assert await cache.get("hall_of_fame", "", new_value) == "new"
    assert cache.entries == {("hall_of_fame", ""): "new"}


async def test_a_lost_listen_connection_empties_the_cache_until_it_is_back(
    conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient
) -> None:
    for tag in ("hall_of_fame", "match_report"):
        await client.get(f"/api/league/stats/{tag}")
    assert len(await entries(client)) == 2
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = %s AND datname = current_database()",
        (APPLICATION_NAME,),
    )

    async def emptied() -> bool:
        status = (await client.get("/api/league/cache")).json()
        return not status["entries"]

    await await_until(emptied, timeout=10, what="the cache to notice the lost connection")
    await await_until(
        lambda: _listening(client), timeout=10, what="the LISTEN connection to come back"
    )
    await client.get("/api/league/stats/hall_of_fame")
    assert await entries(client) == ["hall_of_fame:"]


async def _listening(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/api/league/cache")).json()["listening"])
