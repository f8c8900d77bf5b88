"""Retention of the side tables: per table, rows past their retention go in small batches,
recent ones (and anything still in use) stay; 0 keeps a table forever; a run stops at its
time budget and the next one finishes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from nightcrew.config import Settings
from nightcrew.scheduler.retention import apply_retention
from tests.scheduler.conftest import make_app

BATCH = 2  # small, so every table is walked in several statements


@pytest.fixture
def ret_db(sched_db: str) -> str:
    """The clean scheduler database with the side tables emptied too."""
    with psycopg.connect(sched_db, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE nightcrew.notifications, nightcrew.deliveries, nightcrew.audit_log,"
            " nightcrew.alerts, nightcrew.dashboard_sessions, nightcrew.api_keys, nightcrew.limits,"
            " nightcrew.limit_slots, nightcrew.limit_reservations"
        )
    return sched_db


@pytest.fixture
def conn(ret_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(ret_db, autocommit=True) as connection:
        yield connection


def days_ago(conn: psycopg.Connection[Any], days: float) -> datetime:
    row = conn.execute("SELECT now() - make_interval(secs => %s)", (days * 86400,)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


async def retain(url: str, **settings: Any) -> dict[str, Any]:
    """One retention run with ``settings``; its job result."""
    app = make_app(url, **settings)
    try:
        return (await apply_retention(app, batch_size=BATCH)).as_result()
    finally:
        await app.aclose()


def column(conn: psycopg.Connection[Any], sql: str) -> list[Any]:
    return [row[0] for row in conn.execute(sql)]


async def test_notifications_read_ones_after_30_days_unread_ones_after_90(
    ret_db: str, conn: psycopg.Connection[Any]
) -> None:
    rows = [("unread_100d", 100, False), ("read_95d", 95, True), ("unread_60d", 60, False),
            ("read_31d", 31, True), ("unread_31d", 31, False), ("read_29d", 29, True),
            ("read_1d", 1, True)]  # fmt: skip
    for title, age, read in rows:  # oldest first: ids grow with created_at, as in real use
        at = days_ago(conn, age)
        conn.execute(
            "INSERT INTO nightcrew.notifications (user_id, kind, title, body, created_at, read_at)"
            " VALUES ('alice', 'job', %s, '', %s, %s)",
            (title, at, at if read else None),
        )
    result = await retain(ret_db)
    assert result["deleted"]["notifications"] == 3 and result["complete"]
    kept = column(conn, "SELECT title FROM nightcrew.notifications ORDER BY id")
    assert kept == ["unread_60d", "unread_31d", "read_29d", "read_1d"]


async def test_deliveries_go_30_days_after_their_last_attempt(
    ret_db: str, conn: psycopg.Connection[Any]
) -> None:
    # (event, created days ago, last touched days ago, status)
    rows = [("sent_40d", 40, 40, "sent"), ("failed_35d", 35, 35, "failed"),
            ("retried_recently", 33, 0.01, "pending"), ("sent_31d", 31, 31, "sent"),
            ("sent_10d", 10, 10, "sent"), ("pending_now", 0, 0, "pending")]  # fmt: skip
    for event, created, touched, status in rows:
        conn.execute(
            "INSERT INTO nightcrew.deliveries (event_key, channel, target, status, created_at,"
            " updated_at) VALUES (%s, 'email', 'a@example.com', %s, %s, %s)",
            (event, status, days_ago(conn, created), days_ago(conn, touched)))  # fmt: skip
    result = await retain(ret_db)
    assert result["deleted"]["deliveries"] == 3
    kept = column(conn, "SELECT event_key FROM nightcrew.deliveries ORDER BY id")
    assert kept == ["retried_recently", "sent_10d", "pending_now"]


async def test_the_audit_log_keeps_a_year(ret_db: str, conn: psycopg.Connection[Any]) -> None:
    for action, age in [("a.400d", 400), ("a.366d", 366), ("a.364d", 364), ("a.now", 0)]:
        conn.execute(
            "INSERT INTO nightcrew.audit_log (at, actor, action) VALUES (%s, 'alice', %s)",
            (days_ago(conn, age), action),
        )
    result = await retain(ret_db)
    assert result["deleted"]["audit_log"] == 2
    assert column(conn, "SELECT action FROM nightcrew.audit_log ORDER BY id") == [
        "a.364d", "a.now"]  # fmt: skip


async def test_resolved_alerts_go_90_days_after_resolving_open_ones_stay(
    ret_db: str, conn: psycopg.Connection[Any]
) -> None:
    # (rule, opened days ago, resolved days ago or None: still open)
    rows = [("old_open", 300, None), ("resolved_200d", 210, 200), ("resolved_91d", 120, 91),
            ("resolved_89d", 100, 89), ("resolved_now", 1, 0)]  # fmt: skip
    for rule, opened, resolved in rows:
        conn.execute(
            "INSERT INTO nightcrew.alerts (rule, status, message, opened_at, resolved_at)"
            " VALUES (%s, %s, '', %s, %s)",
            (rule, "open" if resolved is None else "resolved", days_ago(conn, opened),
             None if resolved is None else days_ago(conn, resolved)))  # fmt: skip
    result = await retain(ret_db)
    assert result["deleted"]["alerts"] == 2
    assert column(conn, "SELECT rule FROM nightcrew.alerts ORDER BY id") == [
        "old_open", "resolved_89d", "resolved_now"]  # fmt: skip


async def test_archived_jobs_go_90_days_after_archiving(
    ret_db: str, conn: psycopg.Connection[Any]
) -> None:
    # (label, created days ago, archived days ago)
    rows = [("archived_100d", 200, 100), ("archived_91d", 180, 91), ("archived_89d", 179, 89),
            ("archived_30d", 60, 30), ("archived_now", 31, 0)]  # fmt: skip
    for label, created, archived in rows:
        created_at = days_ago(conn, created)
        conn.execute(
            "INSERT INTO nightcrew.jobs_history (id, type, queue, status, created_at,"
            " completed_at, archived_at, job) VALUES (nightcrew.uuid7(), %s, 'q', 'completed',"
            " %s, %s, %s, '{}')",
            (label, created_at, created_at, days_ago(conn, archived)))  # fmt: skip
    # uuid7() stamps ids with the clock of the insert: give them their creation times.
    conn.execute(
        "UPDATE nightcrew.jobs_history SET id = (lpad(to_hex((extract(epoch FROM created_at)"
        " * 1000)::bigint), 12, '0') || substr(replace(id::text, '-', ''), 13))::uuid"
    )
    result = await retain(ret_db)
    assert result["deleted"]["jobs_history"] == 2
    assert column(conn, "SELECT type FROM nightcrew.jobs_history ORDER BY id") == [
        "archived_89d", "archived_30d", "archived_now"]  # fmt: skip


def month_end(moment: datetime) -> datetime:
    """The end of ``moment``'s UTC month: when its jobs_history partition ends."""
    start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (start + timedelta(days=32)).replace(day=1)


async def test_archived_months_past_retention_are_dropped_whole(
    ret_db: str, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("TRUNCATE nightcrew.jobs_history")
    ages = {"archived_200d": 200, "archived_130d": 130, "archived_91d": 91,
            "archived_89d": 89, "archived_30d": 30, "archived_now": 0}  # fmt: skip
    archived = {label: days_ago(conn, age) for label, age in ages.items()}
    for label, at in archived.items():
        conn.execute("SELECT nightcrew.history_partition(%s)", (at,))
        conn.execute(
            "INSERT INTO nightcrew.jobs_history (id, type, queue, status, created_at,"
            " archived_at, job) VALUES (nightcrew.uuid7(), %s, 'q', 'completed', %s, %s, '{}')",
            (label, at, at))  # fmt: skip
    cutoff = days_ago(conn, 90)
    # A month goes once all of it is past retention: rows up to a month older may stay.
    gone = {label for label, at in archived.items() if month_end(at) <= cutoff}
    assert {"archived_200d", "archived_130d"} <= gone
    assert not gone & {"archived_89d", "archived_30d", "archived_now"}
    default_rows = "SELECT count(*) FROM nightcrew_history.jobs_history_default"
    assert column(conn, default_rows) == [0]  # every row went to a month partition

    result = await retain(ret_db)

    assert result["deleted"]["jobs_history"] == len(gone)
    assert set(result["dropped_partitions"]) == {
        f"jobs_history_{archived[label].astimezone(UTC):%Y_%m}" for label in gone
    }
    assert set(column(conn, "SELECT type FROM nightcrew.jobs_history")) == set(ages) - gone
    for name in result["dropped_partitions"]:
        assert column(conn, f"SELECT to_regclass('nightcrew_history.{name}')") == [None]
    # Nothing left to drop: the next run drops nothing.
    assert (await retain(ret_db))["dropped_partitions"] == []
    conn.execute("TRUNCATE nightcrew.jobs_history")


async def test_stale_worker_rows_go_but_never_a_live_worker(
    ret_db: str, conn: psycopg.Connection[Any]
) -> None:
    app = make_app(ret_db, shutdown_grace_seconds=0.2)
    started = asyncio.Event()

    @app.job("t.hold")
    async def hold(ctx: Any, payload: Any) -> None:
        started.set()
        await asyncio.sleep(3600)  # cancelled when the worker stops

    worker = app.worker(queues=["default"], concurrency=1)
    running = asyncio.create_task(worker.run())
    held = app.enqueue("t.hold", {})
    await asyncio.wait_for(started.wait(), 20)
    for name, hours in [("a-gone-1d", 25), ("b-gone-1w", 24 * 7), ("c-quiet-2h", 2)]:
        conn.execute(
            "INSERT INTO nightcrew.workers (id, hostname, pid, queues, concurrency, heartbeat_at)"
            " VALUES (%s, 'h', 1, '{default}', 1, now() - make_interval(hours => %s))",
            (name, hours),
        )
    # A row whose heartbeat is old but still holds a live lease: alive, whatever its row says.
    conn.execute(
        "INSERT INTO nightcrew.workers (id, hostname, pid, queues, concurrency, heartbeat_at)"
        " VALUES ('d-leasing', 'h', 1, '{default}', 1, now() - interval '3 days')"
    )
    leased = app.enqueue("t.hold", {}, delay=3600)
    conn.execute(
        "UPDATE nightcrew.jobs SET status = 'processing', worker_id = 'd-leasing',"
        " lease_expires_at = now() + interval '1 minute' WHERE id = %s", (leased,))  # fmt: skip
    try:
        result = await apply_retention(app, batch_size=BATCH)
        assert result.deleted["workers"] == 2
        kept = column(conn, "SELECT id FROM nightcrew.workers ORDER BY id")
        assert kept == sorted(["c-quiet-2h", "d-leasing", worker.id])
        job = app.get_job(held)
        assert job is not None and job.status.value == "processing"
        # Even with its heartbeat aged past retention, the worker running a job stays.
        conn.execute(
            "UPDATE nightcrew.workers SET heartbeat_at = now() - interval '2 days' WHERE id = %s",
            (worker.id,),
        )
        assert (await apply_retention(app, batch_size=BATCH)).deleted["workers"] == 0
        assert worker.id in column(conn, "SELECT id FROM nightcrew.workers")
    finally:
        worker.stop()
        await running
        await app.aclose()


def api_key(conn: psycopg.Connection[Any], user: str, revoked_days_ago: float | None) -> str:
    """A new API key row (revoked that many days ago, or live); its id."""
    row = conn.execute(
        "INSERT INTO nightcrew.api_keys (id, user_id, key_hash, prefix, created_at, revoked_at)"
        " VALUES (gen_random_uuid(), %s, sha256(gen_random_uuid()::text::bytea), 'nc_test',"
        " now() - interval '60 days', now() - make_interval(secs => %s)) RETURNING id",
        (user, None if revoked_days_ago is None else revoked_days_ago * 86400),
    ).fetchone()
    assert row is not None
    return str(row[0])


async def test_sessions_go_7_days_after_they_ended_a_live_one_never(
    ret_db: str, conn: psycopg.Connection[Any]
) -> None:
    live_key = api_key(conn, "alice", None)
    revoked_10d, revoked_1d = api_key(conn, "bob", 10), api_key(conn, "carol", 1)
    # (label, key, created days ago, expires in days (negative: ago), logged out days ago)
    rows = [("live", live_key, 0, 1, None), ("live_opened_30d", live_key, 30, 1, None),
            ("expired_10d", live_key, 11, -10, None), ("expired_1d", live_key, 2, -1, None),
            ("logged_out_10d", live_key, 10, 5, 10), ("logged_out_1d", live_key, 2, 5, 1),
            ("key_revoked_10d", revoked_10d, 20, 5, None),
            ("key_revoked_1d", revoked_1d, 20, 5, None)]  # fmt: skip
    for label, key_id, created, expires, logged_out in rows:
        conn.execute(
            "INSERT INTO nightcrew.dashboard_sessions (id_hash, key_id, user_id, is_admin,"
            " created_at, expires_at, revoked_at) VALUES (sha256(%s::bytea), %s, 'u', false,"
            " now() - make_interval(days => %s), now() + make_interval(days => %s),"
            " now() - make_interval(days => %s))",
            (label.encode(), key_id, created, expires, logged_out))  # fmt: skip
    labels = (
        "SELECT label FROM unnest(%s::text[]) AS label WHERE EXISTS (SELECT FROM"
        " nightcrew.dashboard_sessions WHERE id_hash = sha256(label::bytea)) ORDER BY label"
    )
    result = await retain(ret_db)
    assert result["deleted"]["dashboard_sessions"] == 3
    kept = [r[0] for r in conn.execute(labels, ([r[0] for r in rows],))]
    assert kept == sorted(["live", "live_opened_30d", "expired_1d", "logged_out_1d",
                           "key_revoked_1d"])  # fmt: skip
    # A run whose clock is far ahead still never deletes a session live by the database's.
    app = make_app(ret_db, retention_sessions_days=1)
    try:
        ahead = await apply_retention(app, now=days_ago(conn, -30), batch_size=BATCH)
    finally:
        await app.aclose()
    assert ahead.deleted["dashboard_sessions"] == 3
    kept = [r[0] for r in conn.execute(labels, ([r[0] for r in rows],))]
    assert kept == ["live", "live_opened_30d"]


def limit_key(conn: psycopg.Connection[Any], key: str, *, idle_days: float,
              rate_seconds: float | None = 1.0, concurrency: int | None = None,
              overridden: bool = False) -> None:  # fmt: skip
    """A limit key whose last call (and row write) was ``idle_days`` ago."""
    rate = None if rate_seconds is None else 10
    conn.execute(
        "INSERT INTO nightcrew.limits (key, code_rate_count, code_rate_seconds,"
        " code_concurrency, overridden, override_concurrency, tat, recent, updated_at)"
        " SELECT %(key)s, %(rate)s, %(seconds)s, %(conc)s, %(over)s,"
        " CASE WHEN %(over)s THEN 1 END, CASE WHEN %(rate)s::int IS NOT NULL THEN at END,"
        " CASE WHEN %(rate)s::int IS NOT NULL THEN ARRAY[at] ELSE '{}' END, at"
        " FROM (SELECT now() - make_interval(secs => %(idle)s) AS at) AS t",
        {"key": key, "rate": rate, "seconds": rate_seconds, "conc": concurrency,
         "over": overridden, "idle": idle_days * 86400},
    )  # fmt: skip


def job_row(conn: psycopg.Connection[Any], status: str, attempts: int = 1) -> str:
    row = conn.execute(
        "INSERT INTO nightcrew.jobs (id, type, status, attempts) VALUES (nightcrew.uuid7(),"
        " 't.limited', %s, %s) RETURNING id", (status, attempts)).fetchone()  # fmt: skip
    assert row is not None
    return str(row[0])


def slot(conn: psycopg.Connection[Any], key: str, job_id: str, attempt: int,
         days_ago: float) -> None:  # fmt: skip
    conn.execute(
        "INSERT INTO nightcrew.limit_slots (id, key, job_id, attempt, acquired_at) VALUES"
        " (gen_random_uuid(), %s, %s, %s, now() - make_interval(secs => %s))",
        (key, job_id, attempt, days_ago * 86400))  # fmt: skip


def reserve(conn: psycopg.Connection[Any], key: str, job_id: str) -> None:
    conn.execute(
        "INSERT INTO nightcrew.limit_reservations (job_id, key, slot_at)"
        " VALUES (%s, %s, now() - interval '10 days')", (job_id, key))  # fmt: skip


async def test_idle_limit_keys_go_never_one_in_use(
    ret_db: str, conn: psycopg.Connection[Any]
) -> None:
    limit_key(conn, "idle-rate", idle_days=10)
    limit_key(conn, "idle-concurrency", idle_days=10, rate_seconds=None, concurrency=2)
    slot(conn, "idle-concurrency", job_row(conn, "completed"), 1, 10)  # freed: goes with it
    slot(conn, "idle-concurrency", job_row(conn, "processing", 2), 1, 10)  # an earlier attempt
    limit_key(conn, "recent-rate", idle_days=1)
    limit_key(conn, "overridden", idle_days=100, overridden=True)
    # A running attempt holds a concurrency slot taken long ago: the key is in use.
    limit_key(conn, "held-slot", idle_days=10, rate_seconds=None, concurrency=1)
    held = job_row(conn, "processing", 3)
    slot(conn, "held-slot", held, 3, 10)
    # Concurrency-only keys show their use through their slots.
    limit_key(conn, "slot-taken-1d", idle_days=10, rate_seconds=None, concurrency=1)
    slot(conn, "slot-taken-1d", job_row(conn, "completed"), 1, 1)
    # A waiting job holds a reserved rate slot of an old key: both stay.
    limit_key(conn, "reserved", idle_days=10)
    waiting = job_row(conn, "pending", 0)
    reserve(conn, "reserved", waiting)
    # Reservations of jobs that will not run again go, and their key with them.
    limit_key(conn, "reserved-by-finished", idle_days=10)
    cancelled, archived = job_row(conn, "cancelled"), str(uuid.uuid4())
    reserve(conn, "reserved-by-finished", cancelled)
    reserve(conn, "reserved-by-finished", archived)
    reserve(conn, "reserved", cancelled)

    result = await retain(ret_db)

    assert result["deleted"]["limit_reservations"] == 3
    assert result["deleted"]["limits"] == 3
    assert column(conn, "SELECT key FROM nightcrew.limits ORDER BY key") == [
        "held-slot", "overridden", "recent-rate", "reserved", "slot-taken-1d"]  # fmt: skip
    assert conn.execute(
        "SELECT job_id::text, key FROM nightcrew.limit_reservations").fetchall() == [
        (waiting, "reserved")]  # fmt: skip
    assert column(conn, "SELECT key FROM nightcrew.limit_slots ORDER BY key") == [
        "held-slot", "slot-taken-1d"]  # fmt: skip


async def test_a_limit_key_a_grant_holds_is_skipped_not_waited_for(
    ret_db: str, conn: psycopg.Connection[Any]
) -> None:
    limit_key(conn, "busy", idle_days=10)
    limit_key(conn, "quiet", idle_days=10)
    with psycopg.connect(ret_db) as grant, grant.transaction():  # holds the key like a grant
        grant.execute("SELECT FROM nightcrew.limits WHERE key = 'busy' FOR UPDATE")
        result = await asyncio.wait_for(retain(ret_db), 30)
        assert result["deleted"]["limits"] == 1
    assert column(conn, "SELECT key FROM nightcrew.limits") == ["busy"]
    assert (await retain(ret_db))["deleted"]["limits"] == 1  # the next run takes it
    assert column(conn, "SELECT key FROM nightcrew.limits") == []


async def test_a_limit_key_outlives_the_longest_rate_period(
    ret_db: str, conn: psycopg.Connection[Any]
) -> None:
    # Whatever the setting, a key with a call in the last hour (+ 5 %) stays: its record
    # still bounds the next calls, at the recorded rate or a slower one the code asks next.
    limit_key(conn, "called-30min-ago", idle_days=30 / 1440)
    limit_key(conn, "hourly-called-62min-ago", idle_days=62 / 1440, rate_seconds=3600)
    limit_key(conn, "called-2h-ago", idle_days=2 / 24)
    result = await retain(ret_db, retention_limits_days=0.001)
    assert result["deleted"]["limits"] == 1
    assert column(conn, "SELECT key FROM nightcrew.limits ORDER BY key") == [
        "called-30min-ago", "hourly-called-62min-ago"]  # fmt: skip


async def test_zero_keeps_a_table_forever(ret_db: str, conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "INSERT INTO nightcrew.audit_log (at, actor, action) VALUES (%s, 'alice', 'a.old')",
        (days_ago(conn, 5000),),
    )
    conn.execute(
        "INSERT INTO nightcrew.notifications (user_id, kind, title, body, created_at, read_at)"
        " VALUES ('alice', 'job', 'read_old', '', %s, %s), ('alice', 'job', 'unread_old', '',"
        " %s, NULL)", (days_ago(conn, 500), days_ago(conn, 500), days_ago(conn, 500)))  # fmt: skip
    limit_key(conn, "idle", idle_days=500)
    reserve(conn, "idle", str(uuid.uuid4()))  # of a job long gone
    result = await retain(ret_db, retention_audit_days=0, retention_unread_notifications_days=0,
                          retention_limits_days=0)  # fmt: skip
    assert not {"audit_log", "limits", "limit_reservations"} & set(result["deleted"])
    assert column(conn, "SELECT key FROM nightcrew.limit_reservations") == ["idle"]
    assert column(conn, "SELECT key FROM nightcrew.limits") == ["idle"]
    assert column(conn, "SELECT action FROM nightcrew.audit_log") == ["a.old"]
    assert result["deleted"]["notifications"] == 1  # the read one; unread ones are kept
    assert column(conn, "SELECT title FROM nightcrew.notifications") == ["unread_old"]
    result = await retain(ret_db, retention_notifications_days=0)
    assert "notifications" not in result["deleted"]  # read kept forever: unread ones too
    assert column(conn, "SELECT title FROM nightcrew.notifications") == ["unread_old"]


async def test_a_run_stops_at_its_time_budget_and_the_next_one_finishes(
    ret_db: str, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(
        "INSERT INTO nightcrew.audit_log (at, actor, action)"
        " SELECT now() - interval '400 days', 'alice', 'a.old' FROM generate_series(1, 5)"
    )
    app = make_app(ret_db)
    try:
        spent = await apply_retention(app, batch_size=BATCH, budget_seconds=1e-9)
        assert not spent.complete and sum(spent.deleted.values()) == 0
        assert column(conn, "SELECT count(*) FROM nightcrew.audit_log") == [5]
        finished = await apply_retention(app, batch_size=BATCH)
        assert finished.complete and finished.deleted["audit_log"] == 5
    finally:
        await app.aclose()
    assert column(conn, "SELECT count(*) FROM nightcrew.audit_log") == [0]


def test_a_worker_retention_under_an_hour_is_refused() -> None:
    with pytest.raises(ValidationError, match="retention_workers_hours"):
        Settings(retention_workers_hours=0.5)
    assert Settings(retention_workers_hours=0).retention_workers_hours == 0


def test_the_defaults() -> None:
    s = Settings()
    assert (s.retention_notifications_days, s.retention_unread_notifications_days) == (30, 90)
    assert (s.retention_deliveries_days, s.retention_audit_days) == (30, 365)
    assert (s.retention_alerts_days, s.retention_history_days) == (90, 90)
    assert (s.retention_workers_hours, s.retention_batch_size) == (24, 5000)
    assert (s.retention_sessions_days, s.retention_limits_days) == (7, 7)
