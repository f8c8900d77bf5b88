"""Built-in maintenance: pruning into jobs_history (or deletion) in batches, rescue of
expired leases, reporting of overdue jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from nightcrew import App
from nightcrew.scheduler.maintenance import (
    PRUNE_JOB,
    RESCUE_JOB,
    RETENTION_JOB,
    find_overdue,
    prune,
)
from tests.scheduler.conftest import make_app


def seed(app: App, conn: psycopg.Connection[Any], now: datetime) -> dict[str, Any]:
    """Jobs in every state and age; returns their ids by label."""
    labels = ["done_31d", "done_29d", "cancelled_31d", "failed_91d", "failed_60d",
              "pending", "processing", "retrying"]  # fmt: skip
    ids = dict(zip(labels, app.enqueue_many([{"type": "t.noop"}] * len(labels)), strict=True))
    states = {
        "done_31d": ("completed", now - timedelta(days=31)),
        "done_29d": ("completed", now - timedelta(days=29)),
        "cancelled_31d": ("cancelled", now - timedelta(days=31)),
        "failed_91d": ("failed", now - timedelta(days=91)),
        "failed_60d": ("failed", now - timedelta(days=60)),
        "pending": ("pending", None),
        "processing": ("processing", None),
        "retrying": ("retrying", None),
    }
    for label, (status, completed_at) in states.items():
        conn.execute(
            "UPDATE nightcrew.jobs SET status = %s, completed_at = %s WHERE id = %s",
            (status, completed_at, ids[label]),
        )
    return ids


def remaining(conn: psycopg.Connection[Any]) -> set[Any]:
    return {row[0] for row in conn.execute("SELECT id FROM nightcrew.jobs")}


@pytest.mark.parametrize("archive", [True, False])
async def test_prune_moves_old_finished_jobs_in_batches_and_keeps_the_rest(
    sched_db: str, db_conn: psycopg.Connection[Any], archive: bool
) -> None:
    app = make_app(sched_db)
    app.job("t.noop")(_noop)
    now = datetime.now().astimezone() + timedelta(days=100)  # ids are older than every cut-off
    ids = seed(app, db_conn, now)
    pruned = await prune(app, completed_after=timedelta(days=30), failed_after=timedelta(days=90),
                         archive=archive, batch_size=2, now=now)  # fmt: skip
    gone = {ids["done_31d"], ids["cancelled_31d"], ids["failed_91d"]}
    assert pruned == 3
    assert remaining(db_conn) == set(ids.values()) - gone
    history = db_conn.execute(
        "SELECT id, status::text, job->>'type' FROM nightcrew.jobs_history"
    ).fetchall()
    if archive:
        assert {row[0] for row in history} == gone
        assert {row[2] for row in history} == {"t.noop"}
    else:
        assert history == []
    assert await prune(app, completed_after=timedelta(days=30),
                       failed_after=timedelta(days=90), now=now) == 0  # fmt: skip
    await app.aclose()


async def test_prune_archives_into_this_months_partition(
    sched_db: str, db_conn: psycopg.Connection[Any]
) -> None:
    # A month partition (droppable whole by retention), not the default partition.
    db_conn.execute("TRUNCATE nightcrew.jobs_history")
    month = f"nightcrew_history.jobs_history_{datetime.now(UTC):%Y_%m}"
    db_conn.execute(f"DROP TABLE IF EXISTS {month}")
    app = make_app(sched_db)
    app.job("t.noop")(_noop)
    job_id = app.enqueue("t.noop")
    db_conn.execute("UPDATE nightcrew.jobs SET status = 'completed', completed_at = now()"
                    " WHERE id = %s", (job_id,))  # fmt: skip
    later = datetime.now().astimezone() + timedelta(days=31)  # the job is past retention
    assert await prune(app, completed_after=timedelta(days=30),
                       failed_after=timedelta(days=90), now=later) == 1  # fmt: skip
    await app.aclose()
    where = db_conn.execute("SELECT tableoid::regclass::text FROM nightcrew.jobs_history"
                            " WHERE id = %s", (job_id,)).fetchall()  # fmt: skip
    assert where == [(month,)]


async def test_prune_ignores_jobs_created_after_the_cutoff(
    sched_db: str, db_conn: psycopg.Connection[Any]
) -> None:
    app = make_app(sched_db)
    app.job("t.noop")(_noop)
    now = datetime.now().astimezone()
    ids = seed(app, db_conn, now)  # just created: younger than any retention
    assert await prune(app, completed_after=timedelta(days=30),
                       failed_after=timedelta(days=90), now=now) == 0  # fmt: skip
    assert remaining(db_conn) == set(ids.values())
    await app.aclose()


async def _noop(ctx: Any, payload: Any) -> None:
    return None


async def test_maintenance_schedules_run_as_jobs(
    sched_db: str, db_conn: psycopg.Connection[Any]
) -> None:
    app = make_app(sched_db, maintenance_schedules=True, prune_completed_days=1)
    app.job("t.noop")(_noop)
    app.sync_schedules()
    stored = {info.name: info for info in app.schedules_list()}
    assert stored[RESCUE_JOB].every == timedelta(seconds=60) and stored[RESCUE_JOB].critical
    assert stored[PRUNE_JOB].cron == "30 3 * * *" and not stored[PRUNE_JOB].critical
    assert stored[RETENTION_JOB].cron == "45 3 * * *" and not stored[RETENTION_JOB].critical
    # a job whose worker vanished (lease expired), and an old finished one
    lost, old = app.enqueue_many([{"type": "t.noop"}, {"type": "t.noop"}])
    db_conn.execute(
        "UPDATE nightcrew.jobs SET status = 'processing', attempts = 1, worker_id = 'gone',"
        " lease_expires_at = now() - interval '1 minute' WHERE id = %s", (lost,))  # fmt: skip
    db_conn.execute(
        "UPDATE nightcrew.jobs SET status = 'completed', completed_at = now() - interval '2 days',"
        " id = '00000000-0000-7000-8000-000000000001' WHERE id = %s", (old,))  # fmt: skip
    # a worker row silent for two days
    db_conn.execute(
        "INSERT INTO nightcrew.workers (id, hostname, pid, queues, concurrency, heartbeat_at)"
        " VALUES ('gone', 'h', 1, '{default}', 1, now() - interval '2 days')")  # fmt: skip
    rescue_id = app.run_schedule_now(RESCUE_JOB)
    prune_id = app.run_schedule_now(PRUNE_JOB)
    assert "nightcrew" in app.worker().queues
    await app.worker().run_until_idle(timeout=30)
    retention_id = app.run_schedule_now(RETENTION_JOB)  # after the prune: nothing to race
    await app.worker().run_until_idle(timeout=30)
    rescue, pruned = app.get_job(rescue_id), app.get_job(prune_id)
    assert rescue is not None and rescue.result == {"rescued": 1, "overdue": []}
    assert pruned is not None and pruned.result == {"pruned": 1, "mode": "archive"}
    retention = app.get_job(retention_id)
    assert retention is not None and retention.result is not None
    assert retention.result["complete"] and retention.result["deleted"]["workers"] == 1
    tables = {"workers", "dashboard_sessions", "limit_reservations", "limits", "alerts",
              "notifications", "deliveries", "audit_log", "jobs_history"}  # fmt: skip
    assert set(retention.result["deleted"]) == tables
    lost_job = app.get_job(lost)
    assert lost_job is not None and lost_job.status.value in ("retrying", "completed")
    await app.aclose()


async def test_overdue_jobs_are_reported(sched_db: str, db_conn: psycopg.Connection[Any]) -> None:
    app = make_app(sched_db)
    app.job("t.noop")(_noop)
    stuck, fine = app.enqueue_many([{"type": "t.noop", "timeout": 10}] * 2)
    db_conn.execute(
        "UPDATE nightcrew.jobs SET status = 'processing', worker_id = 'w1',"
        " started_at = now() - interval '5 minutes' WHERE id = %s", (stuck,))  # fmt: skip
    db_conn.execute(
        "UPDATE nightcrew.jobs SET status = 'processing', worker_id = 'w1',"
        " started_at = now() - interval '30 seconds' WHERE id = %s", (fine,))  # fmt: skip
    pool = await app.apool()
    async with pool.connection() as conn:
        overdue = await find_overdue(conn)
    assert [row["id"] for row in overdue] == [str(stuck)]
    assert overdue[0]["timeout_seconds"] == 10 and overdue[0]["worker_id"] == "w1"
    await app.aclose()


async def test_a_worker_made_in_a_program_runs_builtin_jobs_enqueued_elsewhere(
    sched_db: str, db_conn: psycopg.Connection[Any]
) -> None:
    # A producer-only App (as another process would have) enqueues the built-in jobs...
    producer = make_app(sched_db, maintenance_schedules=True)
    producer.strict_types = False
    rescue_id = producer.enqueue(RESCUE_JOB, {}, queue="nightcrew")
    prune_id = producer.enqueue(PRUNE_JOB, {}, queue="nightcrew")
    # ... and a worker made with app.worker() (no CLI, no scheduler) runs them.
    app = make_app(sched_db, maintenance_schedules=True)
    await app.worker().run_until_idle(timeout=30)
    rescue, pruned = app.get_job(rescue_id), app.get_job(prune_id)
    assert rescue is not None and rescue.status.value == "completed", rescue
    assert pruned is not None and pruned.status.value == "completed", pruned
    assert rescue.result == {"rescued": 0, "overdue": []}
    assert pruned.result == {"pruned": 0, "mode": "archive"}
    producer.close()
    await app.aclose()
