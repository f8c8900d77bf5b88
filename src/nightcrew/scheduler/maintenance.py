"""Built-in maintenance schedules (on unless ``maintenance_schedules=False``):

* ``nightcrew.rescue`` (every ``maintenance_rescue_seconds``, critical): rescue jobs whose
  lease expired, in case no worker did, and report jobs still ``processing`` well past
  their timeout.
* ``nightcrew.prune`` (``prune_cron``, non-critical so it waits for a quiet queue):
  move finished jobs past their retention into ``nightcrew.jobs_history`` (or delete
  them), in small batches that never lock live jobs.
* ``nightcrew.retention`` (``retention_cron``, non-critical): delete old notifications,
  deliveries, audit entries, resolved alerts, archived jobs, stale worker rows, ended
  dashboard sessions and idle limit keys (:mod:`nightcrew.scheduler.retention`), reporting
  the rows removed per table.
* ``nightcrew.vacuum`` (``vacuum_cron``, ``when="quiet"``: it waits until fewer than
  ``vacuum_quiet_backlog`` jobs are runnable, ``vacuum_run_by_hours`` at most): ANALYZE
  the queue tables, then REINDEX INDEX CONCURRENTLY each index of ``nightcrew.jobs`` whose
  estimated bloat reaches ``vacuum_reindex_bloat`` (see :func:`vacuum`); it also drops the
  per-day schedule counters older than the 7 days the schedules show.

All run as ordinary jobs on the ``maintenance_queue``, so any worker serving that queue
runs them and their results are visible like any job's.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from nightcrew.context import JobContext
from nightcrew.db.clock import database_now
from nightcrew.lifecycle.rescue import rescue_expired
from nightcrew.queries import query
from nightcrew.scheduler.retention import apply_retention

if TYPE_CHECKING:
    from nightcrew.app import App

log = logging.getLogger("nightcrew.maintenance")

RESCUE_JOB = "nightcrew.rescue"
PRUNE_JOB = "nightcrew.prune"
RETENTION_JOB = "nightcrew.retention"
VACUUM_JOB = "nightcrew.vacuum"
QUEUE_TABLES = ("jobs", "jobs_history", "schedules", "workers")
"""The tables nightcrew.vacuum analyzes (schema nightcrew)."""
_RESCUE_BATCH = 1000
_OVERDUE_SLACK_SECONDS = 60.0  # grace beyond a job's timeout before it is reported
_OVERDUE_REPORT_LIMIT = 100


def install(app: App) -> None:
    """Register the maintenance job types and, unless ``maintenance_schedules`` is off,
    declare their schedules (idempotent).

    The types are registered either way: a worker then runs a rescue or prune job that
    another process enqueued (or an operator started with "run now").
    """
    s = app.settings
    if RESCUE_JOB in app.registry:
        return
    app.job(RESCUE_JOB, queue=s.maintenance_queue, max_attempts=1, public=False)(rescue_job)
    app.job(PRUNE_JOB, queue=s.maintenance_queue, max_attempts=3, public=False)(prune_job)
    # A rebuild can take long on a big table: no retry storm, a generous timeout.
    app.job(VACUUM_JOB, queue=s.maintenance_queue, max_attempts=1, timeout=6 * 3600,
            public=False)(vacuum_job)  # fmt: skip
    if not s.maintenance_schedules:
        return
    app.schedule(RESCUE_JOB, every=timedelta(seconds=s.maintenance_rescue_seconds),
                 missed="skip")  # fmt: skip
    app.schedule(PRUNE_JOB, cron=s.prune_cron, critical=False)
    app.job(RETENTION_JOB, queue=s.maintenance_queue, max_attempts=3, public=False)(retention_job)
    app.schedule(RETENTION_JOB, cron=s.retention_cron, critical=False)
    app.schedule(VACUUM_JOB, cron=s.vacuum_cron, when="quiet",
                 quiet_backlog=s.vacuum_quiet_backlog,
                 run_by=timedelta(hours=s.vacuum_run_by_hours), missed="skip")  # fmt: skip


async def rescue_job(ctx: JobContext, payload: Any) -> dict[str, Any]:
    """Rescue expired leases; report overdue jobs (logged and returned as the result)."""
    pool = await ctx.app.apool()
    rescued = 0
    async with pool.connection() as conn:
        while True:
            batch = await rescue_expired(conn, limit=_RESCUE_BATCH)
            rescued += len(batch)
            if len(batch) < _RESCUE_BATCH:
                break
        overdue = await find_overdue(conn)
    if rescued:
        log.warning("maintenance: rescued %d jobs whose lease expired", rescued)
    for job in overdue:
        log.warning("maintenance: job %s (%s) has run %s, past its %gs timeout (worker %s)",
                    job["id"], job["type"], job["running_for"], job["timeout_seconds"],
                    job["worker_id"])  # fmt: skip
    return {"rescued": rescued, "overdue": overdue}


async def find_overdue(conn: Any, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Jobs processing for longer than their timeout plus a minute's slack."""
    cur = await conn.execute(
        query("maintenance_overdue"),
        {"now": now, "slack": _OVERDUE_SLACK_SECONDS, "limit": _OVERDUE_REPORT_LIMIT},
    )
    return [
        {"id": str(job_id), "type": job_type, "worker_id": worker_id,
         "started_at": started_at.isoformat(), "timeout_seconds": timeout,
         "running_for": str(running_for)}
        for job_id, job_type, worker_id, started_at, timeout, running_for in await cur.fetchall()
    ]  # fmt: skip


async def prune_job(ctx: JobContext, payload: Any) -> dict[str, Any]:
    """Prune finished jobs past their retention, batch by batch."""
    s = ctx.app.settings
    pruned = await prune(
        ctx.app, completed_after=timedelta(days=s.prune_completed_days),
        failed_after=timedelta(days=s.prune_failed_days), archive=s.prune_mode == "archive",
        batch_size=s.prune_batch_size,
    )  # fmt: skip
    if pruned:
        log.info("maintenance: pruned %d finished jobs (%s)", pruned, s.prune_mode)
    return {"pruned": pruned, "mode": s.prune_mode}


async def retention_job(ctx: JobContext, payload: Any) -> dict[str, Any]:
    """Delete rows past their retention from the side tables; the counts are the result."""
    report = await apply_retention(ctx.app)
    removed = {table: n for table, n in report.deleted.items() if n}
    if not report.complete:
        log.warning("maintenance: retention spent its time budget (removed %s); the next run "
                    "continues", removed)  # fmt: skip
    elif removed:
        log.info("maintenance: retention removed %s", removed)
    return report.as_result()


def _floor_id(moment: datetime) -> uuid.UUID:
    """The smallest UUIDv7 of ``moment``'s millisecond: every id below it is older."""
    return uuid.UUID(int=int(moment.timestamp() * 1000) << 80)


async def prune(
    app: App,
    *,
    completed_after: timedelta,
    failed_after: timedelta,
    archive: bool = True,
    batch_size: int = 1000,
    now: datetime | None = None,
) -> int:
    """Move (``archive``) or delete completed/cancelled jobs finished more than
    ``completed_after`` ago and failed ones finished more than ``failed_after`` ago.

    Walks the primary key in batches of ``batch_size``, each its own short transaction, so
    live jobs are never blocked and vacuum can reuse the freed space as it goes. Only jobs
    created before the shorter cut-off can qualify, which bounds the walk. Returns the
    number of jobs pruned.
    """
    pool = await app.apool()
    async with pool.connection() as conn:
        if archive:  # archived rows go to this month's partition (created on the 1st)
            await conn.execute(query("history_ensure_partitions"))
        now = await database_now(conn, now)
        params = {
            "after": uuid.UUID(int=0), "upper": _floor_id(now - min(completed_after, failed_after)),
            "completed_before": now - completed_after, "failed_before": now - failed_after,
            "archive": archive, "limit": batch_size,
        }  # fmt: skip
        total = 0
        while True:
            cur = await conn.execute(query("prune_jobs"), params)
            row = await cur.fetchone()
            assert row is not None
            last_id, pruned = row
            total += int(pruned)
            if last_id is None:
                return total
            params["after"] = last_id


@dataclass(frozen=True)
class IndexBloat:
    """One index of ``nightcrew.jobs``: its pages, the pages it would take rebuilt, and the
    share of its pages that is bloat."""

    index: str
    pages: int
    expected_pages: int
    bloat: float


async def vacuum_job(ctx: JobContext, payload: Any) -> dict[str, Any]:
    """Handler of ``nightcrew.vacuum`` (see :func:`vacuum`)."""
    s = ctx.app.settings
    return await vacuum(ctx.app, bloat=s.vacuum_reindex_bloat, min_pages=s.vacuum_reindex_min_pages)


async def vacuum(app: App, *, bloat: float, min_pages: int) -> dict[str, Any]:
    """ANALYZE the queue tables, then rebuild with REINDEX INDEX CONCURRENTLY each index
    of ``nightcrew.jobs`` of at least ``min_pages`` pages whose estimated bloat is at least
    ``bloat`` (0..1). Returns what was analyzed, every index's estimate and the rebuilt ones.

    First drops what an interrupted rebuild left (:func:`drop_leftover_indexes`). Runs on a
    connection of its own in autocommit: REINDEX CONCURRENTLY cannot run in a
    transaction block, and it waits for transactions older than itself at a few points,
    so it must not hold a pooled connection in a transaction meanwhile. Concurrent rebuilds
    take no lock that blocks fetching or finishing jobs.
    """
    # Direct, not through a transaction pooler: a rebuild holds its server connection for long.
    async with await psycopg.AsyncConnection.connect(app.direct_url, autocommit=True) as conn:
        trimmed = (await conn.execute(query("schedule_runs_trim"))).rowcount
        dropped = await drop_leftover_indexes(conn)
        for table in QUEUE_TABLES:
            await conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier("nightcrew", table)))
        estimates = await index_bloat(conn)
        rebuilt = []
        for found in estimates:
            if found.bloat >= bloat and found.pages >= min_pages:
                statement = sql.SQL("REINDEX INDEX CONCURRENTLY {}")
                await conn.execute(statement.format(sql.Identifier("nightcrew", found.index)))
                rebuilt.append(found.index)
                log.info("maintenance: rebuilt index %s (%d pages, ~%d expected)",
                         found.index, found.pages, found.expected_pages)  # fmt: skip
    return {
        "analyzed": [f"nightcrew.{table}" for table in QUEUE_TABLES],
        "indexes": {e.index: {"pages": e.pages, "expected_pages": e.expected_pages,
                              "bloat": round(e.bloat, 3)} for e in estimates},
        "reindexed": rebuilt,
        "schedule_days_trimmed": trimmed,
        "dropped_leftovers": dropped,
    }  # fmt: skip


async def drop_leftover_indexes(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Drop (concurrently) the invalid ``*_ccnew`` indexes of ``nightcrew.jobs`` that an
    interrupted rebuild left; they cost every write and serve no read. Returns their names."""
    cur = await conn.execute(query("vacuum_leftover_indexes"))
    names = [name for (name,) in await cur.fetchall()]
    for name in names:
        statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}")
        await conn.execute(statement.format(sql.Identifier("nightcrew", name)))
        log.warning("maintenance: dropped %s, left invalid by an interrupted rebuild", name)
    return names


async def index_bloat(conn: psycopg.AsyncConnection[Any]) -> list[IndexBloat]:
    """The bloat estimate of every B-tree index of ``nightcrew.jobs`` (current statistics)."""
    cur = await conn.execute(query("vacuum_index_bloat"))
    return [IndexBloat(name, int(pages), int(expected), float(share))
            for name, pages, expected, share in await cur.fetchall()]  # fmt: skip
