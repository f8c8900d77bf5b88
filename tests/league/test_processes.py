"""Two web processes and a worker process: after a run ends, neither web process serves
the old value of a statistic it changed, though both had it cached, and both were read
all through the run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.league.helpers import load_small_league
from tests.league.processes import LeagueProcesses
from tests.procs import reaped
from tests.support import await_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def processes(league_clean: str, tmp_path: Path) -> Iterator[LeagueProcesses]:
    with reaped(LeagueProcesses(league_clean, tmp_path)) as procs:
        yield procs


async def run_ended(http: httpx.AsyncClient, base: str, job_id: str) -> bool:
    run = (await http.get(f"{base}/api/league/stats-jobs/{job_id}")).json()
    return run["status"] in ("completed", "failed")


async def dan_goals(http: httpx.AsyncClient, base: str) -> int:
    rows = (await http.get(f"{base}/api/league/stats/all_time_stats")).json()["rows"]
    return int(next(r["goals"] for r in rows if r["player_id"] == 4))


async def test_no_web_process_serves_a_changed_statistic_after_the_run(
    processes: LeagueProcesses, conn: psycopg.AsyncConnection[Any], admin_key: str
) -> None:
    await load_small_league(conn)
    first, second = processes.web(), processes.web()
    processes.worker()
    auth = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(headers=auth, timeout=10) as http:
        warm = await http.post(
            f"{first}/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": "warm"}
        )
        await await_until(lambda: run_ended(http, first, warm.json()["jobId"]), 30, "warm-up")
        assert [await dan_goals(http, base) for base in (first, second)] == [0, 0]  # cached

        stop = asyncio.Event()
        seen_during: list[int] = []

        async def read_all_along() -> None:  # reads racing the run in both processes
            while not stop.is_set():
                for base in (first, second):
                    seen_during.append(await dan_goals(http, base))

        readers = asyncio.create_task(read_all_along())
        result = await http.post(
            f"{second}/api/league/matches/7/result",
            json={
                "requestId": "match-7",
                "appearances": [
                    {"playerId": 4, "team": "A", "goals": 5},
                    {"playerId": 3, "team": "B"},
                ],
            },
        )
        assert result.status_code == 200, result.text
        run_id = result.json()["jobId"]
        await await_until(lambda: run_ended(http, first, run_id), 30, "the post-match run")

        async def both_invalidated() -> bool:
            for base in (first, second):
                last = (await http.get(f"{base}/api/league/cache")).json()["lastInvalidation"]
                if not last or last["runId"] != run_id:
                    return False
            return True

        await await_until(both_invalidated, 5, "both processes to drop the run's tags")
        stop.set()
        await readers
        assert [await dan_goals(http, base) for base in (first, second)] == [5, 5]
        run = (await http.get(f"{first}/api/league/stats-jobs/{run_id}")).json()
        assert run["status"] == "completed" and run["triggeredBy"] == "post-match"
    assert set(seen_during) <= {0, 5} and seen_during
