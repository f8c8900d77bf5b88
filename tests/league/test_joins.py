"""The join protocol under real concurrency (migration 0004): a trigger joins the waiting run
without waiting for the run's start, yet a match result that joined run X is in X's
statistics, however the join's commit and X's start interleave. Real PostgreSQL, a real
worker, transactions held open on their own connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import psycopg
import pytest

from league import runs
from league.runs import Trigger
from league.stats import FUNCTIONS
from nightcrew import App
from tests.league.helpers import load_small_league, rows, run_status, store, wait_for_run
from tests.support import await_until

pytestmark = pytest.mark.timeout(60)

ANN = 1
ANN_GOALS_BEFORE = 7  # her goals in the small league's six played matches
LATE_RESULT = [(ANN, "A", 5, 0), (2, "B", 0, 0)]  # match 7: Ann scores five


@asynccontextmanager
async def running_worker(app: App) -> AsyncIterator[None]:
    """A real worker of ``app`` running in the background inside the block."""
    worker = app.worker(concurrency=12)
    task = asyncio.create_task(worker.run())
    await worker.wait_listening()
    try:
        yield
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def blocked_by(conn: psycopg.AsyncConnection[Any], pid: int) -> bool:
    """Whether some backend waits for a lock held by backend ``pid``."""
    found = await rows(
        conn, "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (pid,)
    )
    return bool(found[0][0])


async def functions_ended(conn: psycopg.AsyncConnection[Any], run_id: UUID) -> bool:
    """Whether every statistics function of the run has recorded its end."""
    found = await rows(
        conn,
        "SELECT count(*) FROM league.run_functions"
        " WHERE run_id = %s AND status IN ('succeeded', 'failed')",
        (run_id,),
    )
    return bool(found[0][0] == len(FUNCTIONS))


async def ann_goals(conn: psycopg.AsyncConnection[Any]) -> int:
    found = await rows(conn, "SELECT goals FROM league.all_time_stats WHERE player_id = %s", (ANN,))
    return int(found[0][0])


async def join_with_result(app: App, conn: psycopg.AsyncConnection[Any]) -> runs.RunRef:
    """What ``POST /matches/7/result`` does, in ``conn``'s open transaction."""
    await store(conn, 7, LATE_RESULT)
    return await runs.request_run(app, conn, Trigger("post-match", "late-result", 7))


async def test_a_result_that_joined_a_waiting_run_is_in_its_statistics(
    league_app: App, conn: psycopg.AsyncConnection[Any]
) -> None:
    """The run waits; a match result joins it and stays uncommitted while the run starts:
    the run's functions must not compute before the result commits."""
    await load_small_league(conn)
    waiting = await runs.request_run(league_app, conn, Trigger("admin", "first"))
    pool = await league_app.apool()
    async with pool.connection() as late:
        await late.execute("BEGIN")
        joined = await join_with_result(league_app, late)
        assert (joined.id, joined.created) == (waiting.id, False)
        await _run_waits_for_the_result_then_completes(league_app, conn, waiting.id, late)
    assert await ann_goals(conn) == ANN_GOALS_BEFORE + 5
    assert ("late-result",) in await rows(
        conn, "SELECT request_id FROM league.run_triggers WHERE run_id = %s", (waiting.id,)
    )


async def _run_waits_for_the_result_then_completes(
    app: App, conn: psycopg.AsyncConnection[Any], run_id: UUID, late: psycopg.AsyncConnection[Any]
) -> None:
    """With a worker running, the run goes as far as it can without ``late``'s uncommitted
    result: it must wait on a lock that transaction holds, not end (which would mean it
    computed without the result); once ``late`` commits, the run completes."""
    pid = late.info.backend_pid
    async with running_worker(app):
        await await_until(
            lambda: _stalled_or_ended(conn, run_id, pid),
            timeout=30,
            what="the run to end or to wait for the joined result",
        )
        assert not await functions_ended(conn, run_id), "computed without the result"
        await late.execute("COMMIT")
        assert await wait_for_run(app, run_id) == "completed"


async def _stalled_or_ended(conn: psycopg.AsyncConnection[Any], run_id: UUID, pid: int) -> bool:
    return await functions_ended(conn, run_id) or await blocked_by(conn, pid)


async def test_a_result_joins_while_the_run_starts_without_waiting_and_is_counted(
    league_app: App, conn: psycopg.AsyncConnection[Any]
) -> None:
    """The run's start is in flight (marked processing, its jobs fanned out, not committed)
    when a match result joins it: the join does not wait for the start (the start's
    transaction holds eleven jobs and a notifying commit), and the run's functions still
    wait for the result's commit."""
    await load_small_league(conn)
    waiting = await runs.request_run(league_app, conn, Trigger("admin", "first"))
    pool = await league_app.apool()
    async with pool.connection() as starter, pool.connection() as late:
        async with starter.transaction():
            assert await runs.start_queued_run(league_app, starter) == waiting.id
            start_pid = starter.info.backend_pid
            await late.execute("BEGIN")
            join = asyncio.create_task(join_with_result(league_app, late))
            await await_until(
                lambda: _done_or_blocked(join, conn, start_pid),
                what="the join to finish or to wait for the start",
            )
            assert join.done(), "the join waited for the run's start to commit"
            assert (await join).id == waiting.id
        # The start committed: the function jobs are runnable, the result is not committed.
        await _run_waits_for_the_result_then_completes(league_app, conn, waiting.id, late)
    assert await ann_goals(conn) == ANN_GOALS_BEFORE + 5


async def _done_or_blocked(
    task: asyncio.Task[Any], conn: psycopg.AsyncConnection[Any], pid: int
) -> bool:
    return task.done() or await blocked_by(conn, pid)


async def test_a_trigger_without_writes_joins_a_starting_run_without_any_lock(
    league_app: App, conn: psycopg.AsyncConnection[Any]
) -> None:
    """An admin trigger has nothing the run must wait for: it holds no join lock, so the
    run's functions never wait for it (its request, not yet committed, keeps its run)."""
    await load_small_league(conn)
    waiting = await runs.request_run(league_app, conn, Trigger("admin", "first"))
    pool = await league_app.apool()
    async with pool.connection() as joiner, joiner.transaction():
        joined = await runs.request_run(league_app, joiner, Trigger("admin", "second"))
        assert joined.id == waiting.id
        locks = await rows(
            conn,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s"
            " AND mode = 'ShareLock'",
            (joiner.info.backend_pid,),
        )
        assert locks == [(0,)]
        async with running_worker(league_app):
            assert await wait_for_run(league_app, waiting.id) == "completed"
    assert await rows(conn, "SELECT count(*) FROM league.run_triggers") == [(2,)]


async def test_a_run_created_during_a_run_needs_no_refresh_job_and_starts_when_it_ends(
    league_app: App, conn: psycopg.AsyncConnection[Any]
) -> None:
    """A trigger creating the follow-up while a run is processing enqueues no refresh job
    (the processing run's end starts it); its transaction is still open when that run
    ends: the end waits for its commit, then starts the follow-up."""
    await load_small_league(conn)
    first = await runs.request_run(league_app, conn, Trigger("admin", "first"))
    async with conn.transaction():  # what the refresh job does: the run is now processing
        assert await runs.start_queued_run(league_app, conn) == first.id
    pool = await league_app.apool()
    async with pool.connection() as late:
        await late.execute("BEGIN")
        follow_up = await runs.request_run(league_app, late, Trigger("admin", "follow-up"))
        assert follow_up.created and follow_up.id != first.id
        pid = late.info.backend_pid
        async with running_worker(league_app):
            await await_until(
                lambda: _ended_or_blocked(conn, first.id, pid),
                timeout=30,
                what="the first run to end or to wait for the follow-up's creator",
            )
            assert await run_status(conn, first.id) == "processing", "ended without seeing it"
            await late.execute("COMMIT")
            assert await wait_for_run(league_app, first.id) == "completed"
            assert await wait_for_run(league_app, follow_up.id) == "completed"
    assert await rows(
        conn, "SELECT count(*) FROM nightcrew.jobs WHERE type = 'league.refresh_stats'"
    ) == [(1,)]


async def _ended_or_blocked(conn: psycopg.AsyncConnection[Any], run_id: UUID, pid: int) -> bool:
    return await run_status(conn, run_id) != "processing" or await blocked_by(conn, pid)
