"""The tick engine against a real database with a controlled clock: one job per tick,
idempotent firing, missed-run policy, run-time edits, deferral under load."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from nightcrew import App, ConfigurationError
from nightcrew.queries import query
from nightcrew.scheduler import Scheduler, UnknownScheduleError
from nightcrew.scheduler.store import firing_params
from tests.scheduler.conftest import make_app, utc


def scheduled_jobs(conn: psycopg.Connection[Any], name: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT scheduled_for, run_at, type, payload, queue, priority FROM nightcrew.jobs"
        " WHERE schedule_name = %s ORDER BY scheduled_for",
        (name,),
    ).fetchall()


def set_next_run(conn: psycopg.Connection[Any], name: str, at: Any) -> None:
    conn.execute("UPDATE nightcrew.schedules SET next_run_at = %s WHERE name = %s", (at, name))


async def test_a_due_tick_fires_one_job_with_its_schedule_and_fire_time(
    sapp: App, db_conn: psycopg.Connection[Any]
) -> None:
    sapp.schedule("t.noop", name="nightly", cron="0 2 * * *", timezone="Europe/London",
                  payload={"k": 1}, priority=5, queue="maint")  # fmt: skip
    sapp.sync_schedules()
    info = sapp.schedules.get("nightly")
    assert info.enabled and info.last_run_at is None and info.next_run_at.hour in (1, 2)
    tick = utc(2024, 7, 1, 1, 0)  # 02:00 BST
    set_next_run(db_conn, "nightly", tick)
    scheduler = Scheduler(sapp)
    assert await scheduler.tick(now=tick - timedelta(seconds=1)) == []
    results = await scheduler.tick(now=tick + timedelta(seconds=2))
    assert [r.action for r in results] == ["fired"]
    assert scheduled_jobs(db_conn, "nightly") == [(tick, tick, "t.noop", {"k": 1}, "maint", 5)]
    info = sapp.schedules.get("nightly")
    assert info.last_run_at == tick and info.last_job_id == results[0].job_id
    assert info.next_run_at == utc(2024, 7, 2, 1, 0) and info.last_job_status == "pending"
    assert await scheduler.tick(now=tick + timedelta(seconds=3)) == []


async def test_two_schedulers_ticking_at_once_fire_each_tick_once(
    sapp: App, db_conn: psycopg.Connection[Any]
) -> None:
    sapp.schedule("t.noop", name="often", every=1)
    sapp.sync_schedules()
    start = utc(2024, 7, 1, 12, 0, 0)
    set_next_run(db_conn, "often", start)
    leaders = [Scheduler(sapp), Scheduler(sapp), Scheduler(sapp)]
    for second in range(5):
        now = start + timedelta(seconds=second, milliseconds=100)
        await asyncio.gather(*(s.tick(now=now) for s in leaders))
    ticks = [row[0] for row in scheduled_jobs(db_conn, "often")]
    assert ticks == [start + timedelta(seconds=i) for i in range(5)]


async def test_the_enqueue_of_a_tick_is_idempotent(
    sapp: App, db_conn: psycopg.Connection[Any]
) -> None:
    # Two leaders for a moment, both past the row lock with the same tick: one job.
    sapp.schedule("t.noop", name="dup", cron="* * * * *")
    sapp.sync_schedules()
    schedule = sapp.schedules.definitions["dup"]
    tick = utc(2024, 7, 1, 12, 0)
    inserted = []
    for _ in range(2):
        params = firing_params(sapp.registry, True, schedule, scheduled_for=tick, run_at=tick)
        inserted.append(db_conn.execute(query("schedule_fire"), params).fetchone())
    assert inserted[0] is not None and inserted[1] is None
    assert len(scheduled_jobs(db_conn, "dup")) == 1


async def test_late_ticks_within_the_grace_are_caught_up(
    sapp: App, db_conn: psycopg.Connection[Any]
) -> None:
    sapp.schedule("t.noop", name="per-second", cron="* * * * * *")
    sapp.sync_schedules()
    start = utc(2024, 7, 1, 12, 0, 0)
    set_next_run(db_conn, "per-second", start)
    results = await Scheduler(sapp).tick(now=start + timedelta(seconds=3.5))
    assert [r.action for r in results] == ["fired"] * 4  # a leader handover took 3.5 s
    assert len(scheduled_jobs(db_conn, "per-second")) == 4


@pytest.mark.parametrize("policy", ["run_once", "skip"])
async def test_missed_ticks_run_once_or_are_skipped_never_a_burst(
    sched_db: str, db_conn: psycopg.Connection[Any], policy: str
) -> None:
    app = make_app(sched_db)
    app.job("t.noop")(_noop)
    app.schedule("t.noop", name="hourly", cron="0 * * * *", missed=policy)
    app.sync_schedules()
    first_missed = utc(2024, 7, 1, 2, 0)
    set_next_run(db_conn, "hourly", first_missed)
    back_up = utc(2024, 7, 4, 9, 30)  # down for three days
    results = await Scheduler(app).tick(now=back_up)
    jobs = scheduled_jobs(db_conn, "hourly")
    info = app.schedules.get("hourly")
    assert info.next_run_at == utc(2024, 7, 4, 10, 0)
    if policy == "run_once":
        assert [r.action for r in results] == ["fired"]
        assert [(j[0], j[1]) for j in jobs] == [(first_missed, back_up)]
        assert info.last_outcome == f"missed ticks since {first_missed.isoformat()}: ran once"
    else:
        assert [r.action for r in results] == ["skipped"] and jobs == []
        assert info.last_outcome == f"missed ticks since {first_missed.isoformat()} skipped"
    await app.aclose()


async def _noop(ctx: Any, payload: Any) -> None:
    return None


async def test_disable_enable_run_now_and_change_the_cron(
    sapp: App, db_conn: psycopg.Connection[Any]
) -> None:
    sapp.schedule("t.noop", name="s", cron="0 2 * * *")
    sapp.sync_schedules()
    set_next_run(db_conn, "s", utc(2024, 7, 1, 2, 0))
    assert sapp.set_schedule_enabled("s", False).enabled is False
    scheduler = Scheduler(sapp)
    assert await scheduler.tick(now=utc(2024, 7, 1, 2, 0, 1)) == []  # disabled: no firing
    job_id = sapp.run_schedule_now("s")  # run now works while disabled
    job = sapp.get_job(job_id)
    assert job is not None and job.type == "t.noop"
    info = sapp.schedules.get("s")
    assert info.last_job_id == job_id and info.last_outcome == "run now"
    enabled = sapp.set_schedule_enabled("s", True)
    assert enabled.enabled and enabled.next_run_at > utc(2025, 1, 1)  # restarts from now
    changed = sapp.update_schedule("s", cron="*/5 * * * *")
    assert changed.cron == "*/5 * * * *" and changed.next_run_at.minute % 5 == 0
    # a restart with unchanged code keeps the run-time edit; a code change wins
    sapp.schedules.sync(mark_missing=True)
    assert sapp.schedules.get("s").cron == "*/5 * * * *"
    other = make_app(sapp.url)
    other.job("t.noop")(_noop)
    other.schedule("t.noop", name="s", cron="0 4 * * *")
    other.sync_schedules()
    assert sapp.schedules.get("s").cron == "0 4 * * *"
    with pytest.raises(UnknownScheduleError, match="no schedule named 'nope' \\(known: s\\)"):
        sapp.run_schedule_now("nope")
    with pytest.raises(ConfigurationError, match="invalid cron"):
        sapp.update_schedule("s", cron="99 * * * *")
    other.close()


async def test_schedules_removed_from_code_stop_firing(
    sapp: App, db_conn: psycopg.Connection[Any]
) -> None:
    sapp.schedule("t.noop", name="old", every=60)
    sapp.sync_schedules()
    set_next_run(db_conn, "old", utc(2024, 7, 1))
    newer = make_app(sapp.url)
    newer.job("t.noop")(_noop)
    newer.schedules.sync(mark_missing=True)  # a scheduler of the new code starts
    assert sapp.schedules.get("old").in_code is False
    assert await Scheduler(sapp).tick(now=utc(2024, 7, 1, 0, 0, 1)) == []
    newer.close()


class Order(BaseModel):
    qty: int


async def test_bad_payload_is_reported_at_sync_not_at_2am(sapp: App) -> None:
    @sapp.job("t.typed")
    async def typed(ctx: Any, payload: Order) -> None:
        return None

    sapp.schedule("t.typed", cron="@daily", payload={"qty": "lots"})
    with pytest.raises(ConfigurationError, match=r"schedule 't\.typed': payload for 't\.typed'"):
        sapp.sync_schedules()


async def test_non_critical_ticks_are_deferred_under_load_up_to_the_cap(
    sched_db: str, db_conn: psycopg.Connection[Any]
) -> None:
    app = make_app(sched_db, defer_queue_depth=5, defer_running_jobs=0)
    app.job("t.noop")(_noop)
    app.schedule("t.noop", name="cleanup", cron="0 3 * * *", critical=False,
                 defer_delay=timedelta(hours=2), max_deferrals=2)  # fmt: skip
    app.schedule("t.noop", name="vital", cron="0 3 * * *")
    app.sync_schedules()
    tick = utc(2024, 7, 1, 3, 0)
    for name in ("cleanup", "vital"):
        set_next_run(db_conn, name, tick)
    backlog = {"type": "t.noop", "run_at": tick - timedelta(hours=1)}
    app.enqueue_many([backlog] * 6)  # busy: 6 runnable jobs >= 5
    scheduler = Scheduler(app)
    first = await scheduler.tick(now=tick)
    assert sorted((r.schedule, r.action) for r in first) == [
        ("cleanup", "deferred"), ("vital", "fired")]  # fmt: skip
    info = app.schedules.get("cleanup")
    assert info.deferrals == 1 and info.deferred_from == tick
    assert info.next_run_at == utc(2024, 7, 1, 5, 0)
    assert info.last_outcome is not None and "deferred 1/2" in info.last_outcome
    assert "queue depth 6 >= 5" in info.last_outcome
    second = await scheduler.tick(now=utc(2024, 7, 1, 5, 0))
    assert [r.action for r in second] == ["deferred"]
    third = await scheduler.tick(now=utc(2024, 7, 1, 7, 0))  # still busy, but capped
    assert [(r.action, r.scheduled_for) for r in third] == [("fired", tick)]
    info = app.schedules.get("cleanup")
    assert info.last_outcome == "fired after 2 deferrals (cap reached)"
    assert info.deferrals == 0 and info.deferred_from is None
    assert info.next_run_at == utc(2024, 7, 2, 3, 0)
    jobs = scheduled_jobs(db_conn, "cleanup")
    assert [(j[0], j[1]) for j in jobs] == [(tick, utc(2024, 7, 1, 7, 0))]
    await app.aclose()


async def test_a_deferred_tick_fires_as_soon_as_the_queue_is_quiet(
    sched_db: str, db_conn: psycopg.Connection[Any]
) -> None:
    app = make_app(sched_db, defer_queue_depth=0, defer_running_jobs=2)
    app.job("t.noop")(_noop)
    app.schedule("t.noop", name="cleanup", cron="0 3 * * *", critical=False,
                 defer_delay=600)  # fmt: skip
    app.sync_schedules()
    tick = utc(2024, 7, 1, 3, 0)
    set_next_run(db_conn, "cleanup", tick)
    busy = app.enqueue_many([{"type": "t.noop"}] * 2)
    db_conn.execute("UPDATE nightcrew.jobs SET status = 'processing' WHERE id = ANY(%s)", (busy,))
    scheduler = Scheduler(app)
    deferred = await scheduler.tick(now=tick)
    assert [r.action for r in deferred] == ["deferred"]
    assert "2 running jobs >= 2" in (app.schedules.get("cleanup").last_outcome or "")
    db_conn.execute("UPDATE nightcrew.jobs SET status = 'completed' WHERE id = ANY(%s)", (busy,))
    fired = await scheduler.tick(now=tick + timedelta(minutes=10))
    assert [r.action for r in fired] == ["fired"]
    assert app.schedules.get("cleanup").last_outcome == "fired after 1 deferrals"
    await app.aclose()


async def test_a_tick_that_cannot_be_enqueued_is_recorded_and_others_still_fire(
    sapp: App, db_conn: psycopg.Connection[Any]
) -> None:
    @sapp.job("t.typed")
    async def typed(ctx: Any, payload: Order) -> None:
        return None

    sapp.schedule("t.typed", name="broken", every=60, payload={"qty": 1})
    sapp.schedule("t.noop", name="fine", every=60)
    sapp.sync_schedules()
    tick = utc(2024, 7, 1, 12, 0)
    for name in ("broken", "fine"):
        set_next_run(db_conn, name, tick)
    db_conn.execute(
        "UPDATE nightcrew.schedules SET payload = '{\"qty\": \"x\"}' WHERE name = 'broken'"
    )
    results = await Scheduler(sapp).tick(now=tick)
    assert sorted((r.schedule, r.action) for r in results) == [
        ("broken", "error"),
        ("fine", "fired"),
    ]
    info = sapp.schedules.get("broken")
    assert info.last_outcome is not None and info.last_outcome.startswith("error: payload for")
    assert info.next_run_at == tick + timedelta(seconds=60)  # the bad tick does not block
