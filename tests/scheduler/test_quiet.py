"""Quiet-time schedules (when="quiet") and the built-in nightcrew.vacuum that uses them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from nightcrew import App, ConfigurationError
from nightcrew.scheduler import Scheduler
from nightcrew.scheduler.loop import QUIET_RECHECK
from nightcrew.scheduler.maintenance import VACUUM_JOB, index_bloat, vacuum
from tests.scheduler.conftest import make_app, utc

TICK = utc(2024, 7, 1, 4, 0)


async def _noop(ctx: Any, payload: Any) -> None:
    return None


def quiet_app(url: str) -> App:
    app = make_app(url)
    app.job("t.noop")(_noop)
    app.schedule("t.noop", name="tidy", cron="0 4 * * *", when="quiet", quiet_backlog=5,
                 run_by=timedelta(hours=2))  # fmt: skip
    app.sync_schedules()
    return app


def fired(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT scheduled_for, run_at FROM nightcrew.jobs WHERE schedule_name = 'tidy'"
    ).fetchall()


def backlog(app: App, n: int) -> list[Any]:
    """``n`` runnable jobs, due before the tick."""
    return app.enqueue_many([{"type": "t.noop", "run_at": TICK - timedelta(hours=1)}] * n)


async def test_a_quiet_tick_waits_while_the_backlog_is_high_and_fires_when_it_drops(
    sched_db: str, db_conn: psycopg.Connection[Any]
) -> None:
    app = quiet_app(sched_db)
    db_conn.execute("UPDATE nightcrew.schedules SET next_run_at = %s WHERE name = 'tidy'", (TICK,))
    busy = backlog(app, 5)  # 5 runnable: not under 5
    scheduler = Scheduler(app)
    first = await scheduler.tick(now=TICK)
    assert [r.action for r in first] == ["deferred"]
    info = app.schedules.get("tidy")
    assert info.deferred_from == TICK and info.next_run_at == TICK + QUIET_RECHECK
    assert info.deferrals == 0  # not the load deferral of critical=False schedules
    assert "waiting for a quiet queue" in (info.last_outcome or "")
    # Still busy at the next check: still waiting, nothing fired.
    later = TICK + timedelta(minutes=30)
    assert [r.action for r in await scheduler.tick(now=later)] == ["deferred"]
    assert fired(db_conn) == []
    # The backlog drops under 5: the tick fires at the next check.
    db_conn.execute("UPDATE nightcrew.jobs SET status = 'completed' WHERE id = %s", (busy[0],))
    quiet = later + QUIET_RECHECK
    result = await scheduler.tick(now=quiet)
    assert [(r.action, r.scheduled_for) for r in result] == [("fired", TICK)]
    assert fired(db_conn) == [(TICK, quiet)]
    info = app.schedules.get("tidy")
    assert info.last_outcome == "fired once the queue was quiet"
    assert info.deferred_from is None and info.next_run_at == utc(2024, 7, 2, 4, 0)
    await app.aclose()


async def test_a_quiet_tick_fires_at_run_by_however_busy_the_queue(
    sched_db: str, db_conn: psycopg.Connection[Any]
) -> None:
    app = quiet_app(sched_db)
    db_conn.execute("UPDATE nightcrew.schedules SET next_run_at = %s WHERE name = 'tidy'", (TICK,))
    backlog(app, 50)
    scheduler = Scheduler(app)
    assert [r.action for r in await scheduler.tick(now=TICK)] == ["deferred"]
    almost = TICK + timedelta(hours=2) - timedelta(seconds=2)
    assert [r.action for r in await scheduler.tick(now=almost)] == ["deferred"]
    # Never re-checked later than run_by.
    assert app.schedules.get("tidy").next_run_at == TICK + timedelta(hours=2)
    deadline = TICK + timedelta(hours=2)
    result = await scheduler.tick(now=deadline)
    assert [(r.action, r.scheduled_for) for r in result] == [("fired", TICK)]
    assert fired(db_conn) == [(TICK, deadline)]
    assert app.schedules.get("tidy").last_outcome == "fired at run_by, the queue still busy"
    await app.aclose()


async def test_a_quiet_tick_fires_at_once_on_a_quiet_queue(
    sched_db: str, db_conn: psycopg.Connection[Any]
) -> None:
    app = quiet_app(sched_db)
    db_conn.execute("UPDATE nightcrew.schedules SET next_run_at = %s WHERE name = 'tidy'", (TICK,))
    backlog(app, 4)
    result = await Scheduler(app).tick(now=TICK)
    assert [(r.action, r.scheduled_for) for r in result] == [("fired", TICK)]
    assert fired(db_conn) == [(TICK, TICK)]
    await app.aclose()


def test_quiet_options_are_checked(sched_db: str) -> None:
    app = make_app(sched_db)
    with pytest.raises(ConfigurationError, match="when='quiet' needs quiet_backlog= and run_by="):
        app.schedule("t.noop", cron="@daily", when="quiet", quiet_backlog=3)
    with pytest.raises(ConfigurationError, match="quiet_backlog and run_by need when='quiet'"):
        app.schedule("t.noop", cron="@daily", run_by=60)
    with pytest.raises(ConfigurationError, match="when must be 'tick' or 'quiet'"):
        app.schedule("t.noop", cron="@daily", when="later")
    with pytest.raises(ConfigurationError, match="quiet_backlog must be an integer >= 1"):
        app.schedule("t.noop", cron="@daily", when="quiet", quiet_backlog=0, run_by=60)


async def test_vacuum_is_a_quiet_built_in_schedule(sched_db: str) -> None:
    app = make_app(sched_db, maintenance_schedules=True, vacuum_quiet_backlog=7,
                   vacuum_run_by_hours=3)  # fmt: skip
    app.sync_schedules()
    info = app.schedules.get(VACUUM_JOB)
    assert (info.quiet_backlog, info.run_by_seconds, info.cron) == (7, 3 * 3600.0, "0 4 * * *")
    await app.aclose()


def relfilenode(conn: psycopg.Connection[Any], index: str) -> int:
    row = conn.execute("SELECT relfilenode FROM pg_class WHERE oid = %s::regclass",
                       (f"nightcrew.{index}",)).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])


async def test_vacuum_job_analyzes_and_rebuilds_a_bloated_index(
    sched_db: str, db_conn: psycopg.Connection[Any]
) -> None:
    app = make_app(sched_db, maintenance_schedules=True, vacuum_reindex_bloat=0.6,
                   vacuum_reindex_min_pages=10)  # fmt: skip
    # Bloat jobs_user_idx on purpose: 20,000 entries, then all but 200 deleted (a B-tree
    # keeps its pages), while the other indexes are kept small by the user filter.
    db_conn.execute(
        "INSERT INTO nightcrew.jobs (id, type, user_id, status, completed_at)"
        " SELECT gen_random_uuid(), 't.noop', 'user-' || i, 'completed', now()"
        " FROM generate_series(1, 20000) AS i"
    )
    db_conn.execute("DELETE FROM nightcrew.jobs WHERE user_id IS NOT NULL AND"
                    " substr(user_id, 6)::int > 200")  # fmt: skip
    db_conn.execute("VACUUM nightcrew.jobs")  # dead entries go, the pages stay
    db_conn.execute("TRUNCATE nightcrew.schedule_runs_daily")
    db_conn.execute(
        "INSERT INTO nightcrew.schedule_runs_daily (schedule_name, day, last_at, last_status)"
        " SELECT 'old', (now() AT TIME ZONE 'UTC')::date - d, now(), 'completed'"
        " FROM generate_series(0, 10) AS d"
    )
    before = relfilenode(db_conn, "jobs_user_idx")
    untouched = relfilenode(db_conn, "jobs_dedupe_idx")
    app.sync_schedules()
    job_id = app.run_schedule_now(VACUUM_JOB)
    await app.worker(queues=["nightcrew"]).run_until_idle(timeout=60)
    job = app.get_job(job_id)
    assert job is not None and job.status == "completed", job and job.error
    result = job.result
    assert "nightcrew.jobs" in result["analyzed"]
    user_idx = result["indexes"]["jobs_user_idx"]
    assert user_idx["bloat"] >= 0.6 and user_idx["pages"] >= 10, user_idx
    assert "jobs_user_idx" in result["reindexed"]
    assert result["schedule_days_trimmed"] == 2  # days 9 and 10: past the window
    assert "jobs_dedupe_idx" not in result["reindexed"]  # tiny: under min_pages
    assert relfilenode(db_conn, "jobs_user_idx") != before
    assert relfilenode(db_conn, "jobs_dedupe_idx") == untouched
    # Rebuilt: its estimate is now close to its size.
    async with await psycopg.AsyncConnection.connect(sched_db, autocommit=True) as conn:
        after = {e.index: e for e in await index_bloat(conn)}
    assert after["jobs_user_idx"].pages < user_idx["pages"] / 3
    # A second pass finds nothing to rebuild.
    again = await vacuum(app, bloat=0.6, min_pages=10)
    assert "jobs_user_idx" not in again["reindexed"]
    await app.aclose()


async def test_vacuum_drops_an_index_an_interrupted_rebuild_left_invalid(
    sched_db: str, db_conn: psycopg.Connection[Any]
) -> None:
    # A concurrent build that fails (duplicate keys) leaves its index behind, invalid: what
    # an interrupted REINDEX CONCURRENTLY leaves, under the name it gives its copy.
    db_conn.execute(
        "INSERT INTO nightcrew.jobs (id, type) SELECT gen_random_uuid(), 't.same'"
        " FROM generate_series(1, 2)"
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        db_conn.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY jobs_user_idx_ccnew ON nightcrew.jobs (type)"
        )
    invalid = ("SELECT count(*) FROM pg_index WHERE NOT indisvalid"
               " AND indexrelid = 'nightcrew.jobs_user_idx_ccnew'::regclass")  # fmt: skip
    assert db_conn.execute(invalid).fetchone() == (1,)
    app = make_app(sched_db)
    result = await vacuum(app, bloat=0.99, min_pages=10_000)
    await app.aclose()
    assert result["dropped_leftovers"] == ["jobs_user_idx_ccnew"]
    assert db_conn.execute("SELECT to_regclass('nightcrew.jobs_user_idx_ccnew')").fetchone() == (
        None,
    )
