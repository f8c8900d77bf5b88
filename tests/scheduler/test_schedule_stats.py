"""Schedule statistics: the last 7 days of each schedule's runs, from per-day counters kept
by the statement that ends a scheduled job (never a scan of the jobs table)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from nightcrew import App, JobContext
from tests.scheduler.conftest import make_app


def flaky_app(url: str) -> App:
    """An App whose ``t.flaky`` job sleeps a little and fails when told to (a DB flag)."""
    app = make_app(url)

    @app.job("t.flaky", max_attempts=1)
    async def flaky(ctx: JobContext, payload: Any) -> None:
        await asyncio.sleep(0.05)
        pool = await ctx.app.apool()
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM nightcrew_test_fail")
            row = await cur.fetchone()
        if row and row[0]:
            raise RuntimeError("told to fail")

    app.schedule("t.flaky", name="nightly", cron="0 2 * * *")
    return app


async def run_once(app: App, conn: psycopg.Connection[Any], *, fail: bool) -> None:
    conn.execute("DELETE FROM nightcrew_test_fail")
    if fail:
        conn.execute("INSERT INTO nightcrew_test_fail VALUES (1)")
    await app.arun_schedule_now("nightly")
    await app.worker().run_until_idle(timeout=30)


async def test_stats_7d_count_successes_failures_durations_and_the_last_outcome(
    sched_db: str, db_conn: psycopg.Connection[Any]
) -> None:
    db_conn.execute("CREATE TABLE IF NOT EXISTS nightcrew_test_fail (x int)")
    db_conn.execute("TRUNCATE nightcrew.schedule_runs_daily")
    app = flaky_app(sched_db)
    app.sync_schedules()
    try:
        [before] = app.schedules_list()
        assert before.stats_7d is not None
        assert (before.stats_7d.succeeded, before.stats_7d.failed) == (0, 0)
        assert before.stats_7d.last_run_at is None and before.stats_7d.avg_duration_s is None
        for fail in (False, True, False, False, True):
            await run_once(app, db_conn, fail=fail)
        [info] = app.schedules_list()
        stats = info.stats_7d
        assert stats is not None
        assert (stats.succeeded, stats.failed) == (3, 2)
        assert stats.last_outcome == "failed"
        durations = db_conn.execute(
            "SELECT avg(extract(epoch FROM completed_at - started_at)), max(completed_at) "
            "FROM nightcrew.jobs WHERE schedule_name = 'nightly'"
        ).fetchone()
        assert durations is not None
        assert stats.avg_duration_s is not None and stats.avg_duration_s >= 0.05
        assert abs(stats.avg_duration_s - float(durations[0])) < 1e-6
        assert stats.last_run_at == durations[1]
        # A success afterwards becomes the last outcome.
        await run_once(app, db_conn, fail=False)
        [info] = app.schedules_list()
        assert info.stats_7d is not None
        assert (info.stats_7d.succeeded, info.stats_7d.failed) == (4, 2)
        assert info.stats_7d.last_outcome == "completed"
        # Days older than the window drop out of the figures.
        db_conn.execute("UPDATE nightcrew.schedule_runs_daily SET day = day - 7")
        [info] = app.schedules_list()
        assert info.stats_7d is not None
        assert (info.stats_7d.succeeded, info.stats_7d.failed) == (0, 0)
        assert info.to_dict()["stats_7d"]["succeeded"] == 0
    finally:
        await app.aclose()
        db_conn.execute("DROP TABLE IF EXISTS nightcrew_test_fail")
