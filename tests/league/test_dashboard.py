"""The League page: the Background Job Status table, the admin's refresh button, Retry on a
failed run, and the table's live updates over Server-Sent Events (a real web process and
worker process)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from league.stats import FUNCTIONS
from nightcrew import App
from nightcrew.http import create_app
from nightcrew.testing import drain
from tests.league.helpers import load_small_league, rows
from tests.league.processes import LeagueProcesses
from tests.procs import reaped

pytestmark = pytest.mark.timeout(60)


async def logged_in(client: httpx.AsyncClient, key: str) -> str:
    """Log ``client`` in with ``key``; return the page's CSRF token."""
    login = await client.post("/login", data={"key": key})
    assert login.status_code == 303, login.text
    client.cookies.set("nightcrew_session", login.cookies["nightcrew_session"])
    page = await client.get("/league")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


@pytest.fixture
async def client(league_app: App) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(league_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_admin_refreshes_and_retries_a_failed_run_from_the_page(
    league_app: App,
    conn: psycopg.AsyncConnection[Any],
    client: httpx.AsyncClient,
    admin_key: str,
) -> None:
    await load_small_league(conn)
    await conn.execute(
        "INSERT INTO league.faults (function, permanent)"
        " VALUES ('update_aggregated_hall_of_fame', true)"
    )
    csrf = await logged_in(client, admin_key)
    pressed = await client.post("/league/refresh", data={"csrf": csrf, "request_id": "b1"})
    assert pressed.status_code == 303 and "queued" in pressed.headers["location"]
    again = await client.post("/league/refresh", data={"csrf": csrf, "request_id": "b1"})
    run_of = lambda answer: re.search(r"run%20([0-9a-f-]{36})", answer.headers["location"])[1]  # noqa: E731
    assert run_of(again) == run_of(pressed)  # a double click: one run
    await drain(league_app, timeout=30)
    failed = await rows(conn, "SELECT id::text, status FROM league.runs")
    assert [status for _, status in failed] == ["failed"]

    page = (await client.get("/league")).text
    assert (
        'class="run-status run-failed"' in page and "update_aggregated_hall_of_fame: failed" in page
    )
    assert f'action="/league/runs/{failed[0][0]}/retry"' in page
    await conn.execute("DELETE FROM league.faults")
    retried = await client.post(f"/league/runs/{failed[0][0]}/retry", data={"csrf": csrf})
    assert retried.status_code == 303
    await drain(league_app, timeout=30)
    after = await rows(
        conn, "SELECT triggered_by, status, retry_of::text FROM league.runs ORDER BY created_at"
    )
    assert after == [("admin", "failed", None), ("admin", "completed", failed[0][0])]
    page = (await client.get("/league")).text
    assert page.count('class="run-status run-completed"') == 1
    assert f"{len(FUNCTIONS)}/{len(FUNCTIONS)} succeeded" in page


async def test_only_admins_refresh_and_forms_need_their_token(
    conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient, user_key: str
) -> None:
    await load_small_league(conn)
    csrf = await logged_in(client, user_key)
    page = (await client.get("/league")).text
    assert "Refresh statistics" not in page
    refused = await client.post("/league/refresh", data={"csrf": csrf})
    assert refused.status_code == 303 and "admin" in refused.headers["location"]
    forged = await client.post("/league/refresh", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert await rows(conn, "SELECT count(*) FROM league.runs") == [(0,)]
    anonymous = httpx.AsyncClient(transport=client._transport, base_url="http://test")
    assert (await anonymous.get("/league")).status_code == 303
    assert (await anonymous.get("/league/events")).status_code == 401


@pytest.fixture
def processes(league_clean: str, tmp_path: Path) -> Iterator[LeagueProcesses]:
    with reaped(LeagueProcesses(league_clean, tmp_path)) as procs:
        yield procs


async def test_the_status_table_follows_a_run_live(
    processes: LeagueProcesses, conn: psycopg.AsyncConnection[Any], admin_key: str
) -> None:
    await load_small_league(conn)
    # One function fails its first attempt: the run stays processing for its retry's backoff
    # (about a second), long enough to be seen live however fast the machine is.
    await conn.execute(
        "INSERT INTO league.faults (function, transient_rate, transient_attempts)"
        " VALUES ('update_power_ratings', 1, 1)"
    )
    base = processes.web()
    processes.worker()
    async with httpx.AsyncClient(base_url=base, timeout=20) as http:
        login = await http.post("/login", data={"key": admin_key})
        cookie = {"Cookie": f"nightcrew_session={login.cookies['nightcrew_session']}"}
        seen: list[str] = []
        async with http.stream("GET", "/league/events", headers=cookie) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = stream.aiter_lines()
            job_id = None
            async for line in events:
                if not line.startswith("data: "):
                    continue
                runs = json.loads(line[len("data: ") :])
                if job_id is None:  # the first event: the table now (empty); start a run
                    assert runs == []
                    started = await http.post(
                        "/api/league/stats-jobs",
                        headers={"Authorization": f"Bearer {admin_key}"},
                        json={"triggeredBy": "admin", "requestId": "live"},
                    )
                    job_id = started.json()["jobId"]
                    continue
                mine = [run for run in runs if run["jobId"] == job_id]
                if mine:
                    seen.append(mine[0]["status"])
                    if mine[0]["status"] == "completed":
                        break
    assert seen[0] in ("queued", "processing") and seen[-1] == "completed"
    assert "processing" in seen


async def test_the_button_starts_a_waiting_run_whose_refresh_job_is_gone(
    league_app: App, conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient,
    admin_key: str,
) -> None:  # fmt: skip
    await load_small_league(conn)
    auth = {"Authorization": f"Bearer {admin_key}"}
    body = {"triggeredBy": "admin", "requestId": "api-1"}
    waiting = (await client.post("/api/league/stats-jobs", json=body, headers=auth)).json()
    job = await rows(conn, "SELECT id FROM nightcrew.jobs WHERE type = 'league.refresh_stats'")
    assert await league_app.acancel(job[0][0])  # as if it had failed for good
    body = {"triggeredBy": "admin", "requestId": "api-2"}
    joined = (await client.post("/api/league/stats-jobs", json=body, headers=auth)).json()
    assert joined["jobId"] == waiting["jobId"]
    await drain(league_app)
    assert await rows(conn, "SELECT status FROM league.runs") == [("queued",)]
    csrf = await logged_in(client, admin_key)
    await client.post("/league/refresh", data={"csrf": csrf, "request_id": "b2"})
    await drain(league_app, timeout=30)
    assert await rows(conn, "SELECT status FROM league.runs") == [("completed",)]
