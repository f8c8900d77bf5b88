"""Runs: the three triggers, idempotency on requestId, coalescing, and results written in
the same transaction as their refresh. A real worker (``drain``) runs the jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from league import runs
from league.runs import FUNCTION_TYPE, INVALIDATE_TYPE, REFRESH_TYPE, Trigger
from league.stats import FUNCTIONS, TAGS
from nightcrew import App
from nightcrew.http import create_app
from nightcrew.keys import hash_key
from nightcrew.testing import drain
from tests.league.helpers import load_small_league, rows, run_status

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client(league_app: App, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(league_app))
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as http:
        yield http


async def refresh_jobs(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    return await rows(
        conn, f"SELECT payload FROM nightcrew.jobs WHERE type = '{REFRESH_TYPE}' ORDER BY id"
    )


async def test_three_triggers_give_the_same_job(
    league_app: App, conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient
) -> None:
    await load_small_league(conn)
    admin = await client.post(
        "/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": "admin-1"}
    )
    assert admin.status_code == 202, admin.text
    assert admin.json()["status"] == "queued"
    await drain(league_app)
    result = await client.post(
        "/api/league/matches/7/result",
        json={
            "requestId": "match-7",
            "appearances": [{"playerId": 1, "team": "A", "goals": 1}, {"playerId": 2, "team": "B"}],
        },
    )
    assert result.status_code == 200, result.text
    assert (result.json()["goalsA"], result.json()["goalsB"]) == (1, 0)
    await drain(league_app)
    await asyncio.to_thread(league_app.sync_schedules)  # the nightly schedule, fired now
    nightly = next(
        s for s in await league_app.aschedules_list() if s.type == "league.nightly_refresh"
    )
    assert nightly.cron == "0 3 * * *" and nightly.enabled
    await league_app.arun_schedule_now(nightly.name)
    await drain(league_app)

    payloads = [row[0] for row in await refresh_jobs(conn)]
    assert [p["triggeredBy"] for p in payloads] == ["admin", "post-match", "cron"]
    assert len({tuple(sorted(p)) for p in payloads}) == 1  # one shape
    assert payloads[1]["matchId"] == 7 and payloads[1]["requestId"] == "match-7"
    statuses = await rows(
        conn,
        "SELECT triggered_by, status, (SELECT count(*) FROM"
        " league.run_functions f WHERE f.run_id = r.id AND f.status ="
        " 'succeeded') FROM league.runs r ORDER BY created_at",
    )
    assert statuses == [
        ("admin", "completed", 10),
        ("post-match", "completed", 10),
        ("cron", "completed", 10),
    ]
    types = await rows(
        conn,
        "SELECT type, count(*) FROM nightcrew.jobs WHERE status = 'completed'"
        " GROUP BY type ORDER BY type",
    )
    assert dict(types) == {
        FUNCTION_TYPE: 30,
        INVALIDATE_TYPE: 3,
        REFRESH_TYPE: 3,
        "league.nightly_refresh": 1,
    }


async def test_the_same_request_id_returns_the_same_job(
    conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient
) -> None:
    await load_small_league(conn)
    body = {"triggeredBy": "post-match", "matchId": 6, "requestId": "r-1"}
    first = await client.post("/api/league/stats-jobs", json=body)
    again = await client.post("/api/league/stats-jobs", json=body)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert await rows(conn, "SELECT count(*) FROM league.runs") == [(1,)]
    assert len(await refresh_jobs(conn)) == 1


async def test_a_refused_result_enqueues_nothing(
    conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient
) -> None:
    await load_small_league(conn)
    # One team only: refused by the deferred check, which runs after the enqueue.
    one_team = {
        "appearances": [{"playerId": 1, "team": "A", "goals": 2}, {"playerId": 2, "team": "A"}]
    }
    refused = await client.post("/api/league/matches/7/result", json=one_team)
    assert refused.status_code == 422, refused.text
    assert "both teams" in refused.json()["error"]["message"]
    assert await rows(conn, "SELECT count(*) FROM league.runs") == [(0,)]
    assert await refresh_jobs(conn) == []
    assert await rows(conn, "SELECT status FROM league.matches WHERE id = 7") == [("scheduled",)]


async def test_a_rolled_back_request_leaves_no_run_and_no_job(
    league_app: App, conn: psycopg.AsyncConnection[Any]
) -> None:
    await load_small_league(conn)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with conn.transaction():
            run = await runs.request_run(league_app, conn, Trigger("post-match", "x", 7))
            assert await run_status(conn, run.id) == "queued"
            raise Abort
    assert await rows(conn, "SELECT count(*) FROM league.runs") == [(0,)]
    assert await refresh_jobs(conn) == []


async def test_triggers_while_one_waits_join_it(
    league_app: App, conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient
) -> None:
    await load_small_league(conn)
    answers = [
        await client.post(
            "/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": f"w-{i}"}
        )
        for i in range(10)
    ]
    assert len({a.json()["jobId"] for a in answers}) == 1
    assert len(await refresh_jobs(conn)) == 1
    await drain(league_app)
    assert await rows(
        conn, "SELECT status, (SELECT count(*) FROM league.run_triggers) FROM league.runs"
    ) == [("completed", 10)]


async def test_ten_triggers_during_a_run_give_exactly_one_follow_up(
    league_app: App, conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient
) -> None:
    await load_small_league(conn)
    first = await client.post(
        "/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": "first"}
    )
    async with conn.transaction():  # what the refresh job does: the run is now processing
        assert await runs.start_queued_run(league_app, conn) is not None
    during = [
        await client.post(
            "/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": f"during-{i}"}
        )
        for i in range(10)
    ]
    follow_ups = {d.json()["jobId"] for d in during}
    assert len(follow_ups) == 1 and first.json()["jobId"] not in follow_ups
    assert {d.json()["status"] for d in during} == {"queued"}
    await drain(league_app)
    found = await rows(
        conn,
        "SELECT id::text, status, started_at >= (SELECT completed_at FROM league.runs"
        " WHERE id = %s) FROM league.runs ORDER BY created_at",
        (first.json()["jobId"],),
    )
    assert [(r[0], r[1]) for r in found] == [
        (first.json()["jobId"], "completed"),
        (follow_ups.pop(), "completed"),
    ]
    assert found[1][2] is True  # started when the first run ended, not before


async def test_a_run_shows_its_functions(
    league_app: App, conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient
) -> None:
    await load_small_league(conn)
    job = await client.post(
        "/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": "show"}
    )
    await drain(league_app)
    shown = await client.get(f"/api/league/stats-jobs/{job.json()['jobId']}")
    assert shown.status_code == 200, shown.text
    run = shown.json()
    assert run["status"] == "completed" and run["triggeredBy"] == "admin"
    assert run["invalidatedTags"] == list(TAGS) and run["failedFunctions"] == []
    assert [f["function"] for f in run["functions"]] == sorted(FUNCTIONS)
    assert all(
        f["status"] == "succeeded" and f["duration_ms"] is not None for f in run["functions"]
    )
    assert run["triggers"][0]["requestId"] == "show" and run["durationMs"] > 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"triggeredBy": "nobody", "requestId": "a"}, 422, "triggeredBy"),
        ({"triggeredBy": "admin"}, 422, "requestId"),
        ({"triggeredBy": "post-match", "requestId": "a"}, 422, "matchId"),
        ({"triggeredBy": "post-match", "requestId": "a", "matchId": 99}, 422, "matchId"),
        ({"triggeredBy": "cron", "requestId": "a", "retryOf": "0" * 32}, 422, "retryOf"),
        ({"triggeredBy": "admin", "requestId": "a", "retryOf": "0" * 32}, 422, "retryOf"),
    ],
)
async def test_bad_requests_are_named(
    conn: psycopg.AsyncConnection[Any],
    client: httpx.AsyncClient,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    await load_small_league(conn)
    answer = await client.post("/api/league/stats-jobs", json=body)
    assert answer.status_code == status, answer.text
    assert field in answer.text


async def test_writes_need_an_admin_key(
    conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient, user_key: str
) -> None:
    await load_small_league(conn)
    fan = {"Authorization": f"Bearer {user_key}"}
    body = {"triggeredBy": "admin", "requestId": "fan"}
    refused = await client.post("/api/league/stats-jobs", json=body, headers=fan)
    assert refused.status_code == 403, refused.text
    anonymous = await client.post(
        "/api/league/stats-jobs", json=body, headers={"Authorization": ""}
    )
    assert anonymous.status_code == 401
    result = await client.post(
        "/api/league/matches/7/result",
        headers=fan,
        json={"appearances": [{"playerId": 1, "team": "A"}, {"playerId": 2, "team": "B"}]},
    )
    assert result.status_code == 403
    unknown = await client.post(
        "/api/league/matches/7/result",
        json={"appearances": [{"playerId": 1, "team": "A"}, {"playerId": 99, "team": "B"}]},
    )
    assert unknown.status_code == 422 and "99" in unknown.text
    missing = await client.get("/api/league/stats-jobs/not-a-uuid")
    assert missing.status_code == 404


async def test_a_revoked_key_is_refused_at_once_though_this_process_knew_it(
    conn: psycopg.AsyncConnection[Any],
    client: httpx.AsyncClient,
    admin_key: str,
    user_key: str,
) -> None:
    await load_small_league(conn)
    fan = {"Authorization": f"Bearer {user_key}"}
    body = {"triggeredBy": "admin", "requestId": "before"}
    assert (await client.post("/api/league/stats-jobs", json=body)).status_code == 202
    refused = await client.post("/api/league/stats-jobs", json=body, headers=fan)
    assert refused.status_code == 403  # both keys now verified by this process
    for key in (admin_key, user_key):
        await conn.execute(
            "UPDATE nightcrew.api_keys SET revoked_at = now() WHERE key_hash = %s",
            (hash_key(key),),
        )
    after = {"triggeredBy": "admin", "requestId": "after"}
    for headers in ({}, fan):  # the admin's (the client's own) and the fan's
        answer = await client.post("/api/league/stats-jobs", json=after, headers=headers)
        assert answer.status_code == 401, answer.text
    answer = await client.post(
        "/api/league/stats-jobs", json={**after, "triggeredBy": "post-match", "matchId": 999}
    )
    assert answer.status_code == 401, answer.text  # not 422: nothing said to a revoked key
    requests = await rows(conn, "SELECT request_id FROM league.run_triggers ORDER BY 1")
    assert requests == [("before",)]


async def test_a_function_job_that_never_ran_still_ends_its_run(
    league_app: App, conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient
) -> None:
    await load_small_league(conn)
    job = await client.post(
        "/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": "cancel"}
    )
    async with conn.transaction():
        await runs.start_queued_run(league_app, conn)
    cancelled = await rows(
        conn, "SELECT job_id FROM league.run_functions WHERE function = 'update_power_ratings'"
    )
    assert await league_app.acancel(cancelled[0][0])
    await drain(league_app)
    run = (await client.get(f"/api/league/stats-jobs/{job.json()['jobId']}")).json()
    assert run["status"] == "failed" and run["failedFunctions"] == ["update_power_ratings"]
    assert "player_power_rating" not in run["invalidatedTags"] and len(run["invalidatedTags"]) == 10
    broken = next(f for f in run["functions"] if f["function"] == "update_power_ratings")
    assert broken["status"] == "failed" and broken["error"]


async def test_concurrent_triggers_all_get_one_run(
    league_app: App, conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient
) -> None:
    await load_small_league(conn)
    answers = await asyncio.gather(
        *(
            client.post(
                "/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": f"c-{i}"}
            )
            for i in range(50)
        )
    )
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["jobId"] for a in answers}) == 1
    assert len(await refresh_jobs(conn)) == 1
    assert await rows(conn, "SELECT count(*) FROM league.run_triggers") == [(50,)]
