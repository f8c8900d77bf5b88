"""Health alerts: each rule opens one alert while its condition holds, notifies once on open
and once on resolve, and resolves by itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from nightcrew import App
from nightcrew.context import JobContext
from nightcrew.notify.alerts import evaluate_alerts
from tests.notify.receivers import Receiver, http_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


@pytest.fixture
def alert_db(clean_db: str) -> str:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE nightcrew.deliveries, nightcrew.alerts, nightcrew.alert_watch,"
            " nightcrew.stats_minute, nightcrew.stats_hour, nightcrew.stats_total,"
            " nightcrew.schedules"
        )
    return clean_db


def make_app(url: str, receiver: Receiver | None = None, **extra: Any) -> App:
    settings: dict[str, Any] = {
        "migrate_on_start": False,
        "poll_seconds": 0.1,
        "webhook_secret": "k",
        "webhook_allow_private": True,  # the receiver listens on 127.0.0.1
        "alert_webhook": receiver.url if receiver else None,
        "maintenance_schedules": False,
        "notify_backoff_seconds": 0.05,
    }
    app = App(url, **(settings | extra))

    @app.job("t.work")
    async def work(ctx: JobContext, payload: Any) -> None:
        if payload.get("fail"):
            raise RuntimeError("boom")

    return app


async def open_alerts(app: App) -> list[tuple[str, str]]:
    pool = await app.apool()
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT rule, status FROM nightcrew.alerts ORDER BY id")
        return [(r[0], r[1]) for r in await cur.fetchall()]


async def test_failing_burst_opens_one_alert_and_recovery_resolves_it(
    alert_db: str, receiver: Receiver
) -> None:
    app = make_app(alert_db, receiver)
    try:
        await app.aenqueue_many(
            [{"type": "t.work", "payload": {"fail": True}, "max_attempts": 1} for _ in range(30)]
        )
        await app.worker().run_until_idle(timeout=30)
        first = await evaluate_alerts(app)
        again = await evaluate_alerts(app)
        assert [rule for _, rule in first.opened] == ["failure_rate"]
        assert again.opened == [] and again.firing == ["failure_rate"]
        await app.worker().run_until_idle(timeout=30)  # sends the notification
        assert [json.loads(r.body)["type"] for r in receiver.requests] == ["alert.opened"]
        assert "100% of jobs failed" in json.loads(receiver.requests[0].body)["alert"]["message"]

        await app.aenqueue_many([{"type": "t.work"} for _ in range(300)])  # recovery: 9 %
        await app.worker().run_until_idle(timeout=60)
        done = await evaluate_alerts(app)
        assert [rule for _, rule in done.resolved] == ["failure_rate"]
        assert (await evaluate_alerts(app)).resolved == []
        await app.worker().run_until_idle(timeout=30)
        types = [json.loads(r.body)["type"] for r in receiver.requests]
        assert types == ["alert.opened", "alert.resolved"]
        assert await open_alerts(app) == [("failure_rate", "resolved")]
    finally:
        await app.aclose()


async def age_rollup_and_compact(app: App, minutes: int) -> int:
    """Move the rollup's minute rows ``minutes`` into the past, then run the compaction the
    stats routes run; returns how many minute rows are left."""
    pool = await app.apool()
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE nightcrew.stats_minute SET minute = minute - make_interval(mins => %s)",
            (minutes,),
        )
        await conn.execute("SELECT nightcrew.stats_compact()")
        cur = await conn.execute("SELECT count(*) FROM nightcrew.stats_minute")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_failure_rate_reads_compacted_rollup(alert_db: str) -> None:
    app = make_app(alert_db)
    try:
        await app.aenqueue_many(
            [{"type": "t.work", "payload": {"fail": True}, "max_attempts": 1} for _ in range(30)]
        )
        await app.worker().run_until_idle(timeout=30)
        # Closed minutes inside the hour window stay minutes through the compaction.
        assert await age_rollup_and_compact(app, 30) > 0
        first = await evaluate_alerts(app)
        assert [rule for _, rule in first.opened] == ["failure_rate"]
        assert (await evaluate_alerts(app)).opened == []
        # 90 minutes ago: folded into hours, outside the hour window, and the alert resolves.
        assert await age_rollup_and_compact(app, 60) == 0
        assert [rule for _, rule in (await evaluate_alerts(app)).resolved] == ["failure_rate"]
    finally:
        await app.aclose()
    # A two-hour window reads the folded part from the hour rows.
    wide = make_app(alert_db, alert_failure_window_seconds=7200)
    try:
        assert (await evaluate_alerts(wide)).firing == ["failure_rate"]
    finally:
        await wide.aclose()


async def test_stale_type_sees_compacted_successes(alert_db: str) -> None:
    app = make_app(alert_db, alert_stale_types={"t.work": 1800})
    try:
        await app.aenqueue_many([{"type": "t.work"} for _ in range(3)])
        await app.worker().run_until_idle(timeout=30)
        assert await age_rollup_and_compact(app, 20) > 0  # a success 20 minutes ago
        assert (await evaluate_alerts(app)).firing == []
        assert await age_rollup_and_compact(app, 180) == 0  # 200 minutes ago, in stats_hour
        assert (await evaluate_alerts(app)).firing == ["type_stale:t.work"]
    finally:
        await app.aclose()
    # A 4-hour threshold still sees that success, from its hour row.
    patient = make_app(alert_db, alert_stale_types={"t.work": 4 * 3600})
    try:
        found = await evaluate_alerts(patient)
        assert [rule for _, rule in found.resolved] == ["type_stale:t.work"]
    finally:
        await patient.aclose()


async def test_failure_rate_needs_enough_jobs(alert_db: str) -> None:
    app = make_app(alert_db)
    try:
        await app.aenqueue_many(
            [{"type": "t.work", "payload": {"fail": True}, "max_attempts": 1} for _ in range(19)]
        )
        await app.worker().run_until_idle(timeout=30)
        assert (await evaluate_alerts(app)).firing == []
    finally:
        await app.aclose()


async def test_queue_depth_must_hold_for_five_minutes(alert_db: str) -> None:
    app = make_app(alert_db)
    try:
        await app.aenqueue_many([{"type": "t.work"} for _ in range(101)])
        now = datetime.now(UTC) + timedelta(seconds=1)
        assert (await evaluate_alerts(app, now)).opened == []  # started watching
        assert (await evaluate_alerts(app, now + timedelta(seconds=299))).opened == []
        opened = await evaluate_alerts(app, now + timedelta(seconds=301))
        assert [rule for _, rule in opened.opened] == ["queue_depth"]
        await app.worker().run_until_idle(timeout=30)
        resolved = await evaluate_alerts(app, now + timedelta(seconds=400))
        assert [rule for _, rule in resolved.resolved] == ["queue_depth"]
    finally:
        await app.aclose()


async def test_overdue_job_schedule_and_stale_type_rules(alert_db: str) -> None:
    app = make_app(alert_db, alert_stale_types={"t.work": 600})
    try:
        pool = await app.apool()
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO nightcrew.jobs (id, type, status, timeout_seconds, started_at,"
                " worker_id, lease_expires_at) VALUES (nightcrew.uuid7(), 't.work', 'processing',"
                " 60, now() - interval '2 minutes', 'w1', now() + interval '1 minute')"
            )
            await conn.execute(
                "INSERT INTO nightcrew.schedules (name, type, every_seconds, next_run_at,"
                " created_at) VALUES ('every-minute', 't.work', 60, now(),"
                " now() - interval '10 minutes')"
            )
            await conn.execute(  # the rollup has an hour of history, no success of t.work
                "INSERT INTO nightcrew.stats_minute (minute, type, user_id, shard, completed)"
                " VALUES (date_trunc('minute', now() - interval '1 hour'), 'other', '', 0, 1)"
            )
        found = await evaluate_alerts(app)
        assert found.firing == ["job_overdue", "schedule_late:every-minute", "type_stale:t.work"]
        async with pool.connection() as conn:
            await conn.execute(
                "UPDATE nightcrew.jobs SET status = 'completed',"
                " completed_at = now() WHERE type = 't.work'"
            )
            await conn.execute("UPDATE nightcrew.schedules SET enabled = false")
        cleared = await evaluate_alerts(app)
        assert sorted(rule for _, rule in cleared.resolved) == [
            "job_overdue",
            "schedule_late:every-minute",
            "type_stale:t.work",
        ]
        assert cleared.firing == []
    finally:
        await app.aclose()


async def test_running_worker_and_scheduler_check_alerts_on_their_own(
    alert_db: str, receiver: Receiver
) -> None:
    """No direct evaluate_alerts call: the built-in schedule runs the rules every
    alert_check_seconds, and the alert's webhook goes out once."""
    import asyncio

    from tests.support import await_until

    app = make_app(alert_db, receiver, maintenance_schedules=True, alert_check_seconds=1,
                   scheduler_poll_seconds=0.2)  # fmt: skip
    worker = app.worker()
    scheduler = app.scheduler()
    tasks = [asyncio.create_task(worker.run()), asyncio.create_task(scheduler.run())]
    try:
        await app.aenqueue_many(
            [{"type": "t.work", "payload": {"fail": True}, "max_attempts": 1} for _ in range(30)]
        )

        async def opened() -> bool:
            return await open_alerts(app) == [("failure_rate", "open")]

        await await_until(opened, 30, "the scheduled alert pass to open the alert")
        await await_until(lambda: asyncio.sleep(0, bool(receiver.ok())), 20, "the webhook")
        await asyncio.sleep(2.5)  # two more passes: the alert must not open or notify again
        assert await open_alerts(app) == [("failure_rate", "open")]
        assert [json.loads(r.body)["type"] for r in receiver.ok()] == ["alert.opened"]
    finally:
        scheduler.stop()
        worker.stop()
        await asyncio.gather(*tasks)
        await app.aclose()
