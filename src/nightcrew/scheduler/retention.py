"""Retention of the tables that only ever grow: in-app notifications, notification
deliveries, the audit log, resolved alerts, archived jobs (``nightcrew.jobs_history``), the
rows of workers that stopped heartbeating, ended dashboard sessions, and idle limit keys
with the rate slots reserved for jobs that will not run again (flow control).

Archived jobs are partitioned by month (migration 0013): a month is dropped whole once all
of it is older than ``retention_history_days``, so the archive never needs a vacuum; only
stray rows in its default partition are deleted row by row.

The built-in ``nightcrew.retention`` schedule runs :func:`apply_retention` as a job (see
:mod:`nightcrew.scheduler.maintenance`). Every table is trimmed by walking its primary key,
``retention_batch_size`` rows per statement, each statement its own short transaction, so a
run never holds locks for long; it stops after ``retention_time_budget_seconds`` and the
next run picks up what is left. A retention of 0 keeps that table's rows forever.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from nightcrew.config import Settings
from nightcrew.db.clock import database_now
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App

log = logging.getLogger("nightcrew.maintenance")


@dataclass(frozen=True)
class Sweep:
    """One table's trim: its batch query, where the key walk starts, and its cut-offs."""

    table: str
    query_name: str
    start: Any
    cutoffs: dict[str, Any]


@dataclass
class RetentionReport:
    """Rows deleted per table, and whether the run got through every table in its budget."""

    deleted: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    dropped_partitions: list[str] = field(default_factory=list)

    def as_result(self) -> dict[str, Any]:
        """The JSON result of the retention job."""
        return {"deleted": dict(self.deleted), "complete": self.complete,
                "dropped_partitions": list(self.dropped_partitions)}  # fmt: skip


def first_id_of(moment: datetime) -> uuid.UUID:
    """The smallest UUIDv7 of ``moment``'s millisecond: every id below it is older."""
    return uuid.UUID(int=int(moment.timestamp() * 1000) << 80)


def _days(value: float) -> timedelta:
    return timedelta(days=value)


def notification_sweep(s: Settings, now: datetime) -> Sweep | None:
    """Read notifications after ``retention_notifications_days``; unread ones after
    ``retention_unread_notifications_days``, but never sooner than read ones."""
    read_days, unread_days = s.retention_notifications_days, s.retention_unread_notifications_days
    if not read_days:
        return None  # read ones kept forever: unread ones, kept at least as long, too
    unread_before = now - _days(max(read_days, unread_days)) if unread_days else None
    cutoffs = {"read_before": now - _days(read_days), "unread_before": unread_before}
    return Sweep("notifications", "retention_notifications", 0, cutoffs)


def retention_sweeps(s: Settings, now: datetime) -> list[Sweep]:
    """The tables to trim as of ``now``, small ones first; tables kept forever are left out."""
    sweeps: list[Sweep | None] = []
    if s.retention_workers_hours:
        before = now - timedelta(hours=s.retention_workers_hours)
        sweeps.append(Sweep("workers", "retention_workers", "", {"before": before}))
    if s.retention_sessions_days:
        before = now - _days(s.retention_sessions_days)
        sweeps.append(Sweep("dashboard_sessions", "retention_sessions", b"", {"before": before}))
    if s.retention_limits_days:
        # Reservations of finished jobs first: a key holding none may then go in the same run.
        start = uuid.UUID(int=0)
        sweeps.append(Sweep("limit_reservations", "retention_limit_reservations", start, {}))
        before = now - _days(s.retention_limits_days)
        sweeps.append(Sweep("limits", "retention_limits", "", {"before": before}))
    if s.retention_alerts_days:
        before = now - _days(s.retention_alerts_days)
        sweeps.append(Sweep("alerts", "retention_alerts", 0, {"before": before}))
    sweeps.append(notification_sweep(s, now))
    if s.retention_deliveries_days:
        before = now - _days(s.retention_deliveries_days)
        sweeps.append(Sweep("deliveries", "retention_deliveries", 0, {"before": before}))
    if s.retention_audit_days:
        before = now - _days(s.retention_audit_days)
        sweeps.append(Sweep("audit_log", "retention_audit", 0, {"before": before}))
    if s.retention_history_days:
        before = now - _days(s.retention_history_days)
        cutoffs = {"before": before, "upper": first_id_of(before)}
        sweeps.append(Sweep("jobs_history", "retention_history", uuid.UUID(int=0), cutoffs))
    return [sweep for sweep in sweeps if sweep is not None]


async def sweep_table(
    conn: Any, sweep: Sweep, report: RetentionReport, *, batch_size: int, deadline: float
) -> bool:
    """Trim one table, one batch per statement, adding to ``report``; True when its walk got
    to the end, False when ``deadline`` (a ``time.monotonic()`` value) came first."""
    params = {**sweep.cutoffs, "after": sweep.start, "limit": batch_size}
    report.deleted.setdefault(sweep.table, 0)
    while True:
        if time.monotonic() >= deadline:
            return False
        cur = await conn.execute(query(sweep.query_name), params)
        row = await cur.fetchone()
        assert row is not None
        last_id, deleted, more = row
        report.deleted[sweep.table] += int(deleted)
        if not more:
            return True
        params["after"] = last_id


async def drop_history_partitions(
    conn: Any, before: datetime, report: RetentionReport, *, deadline: float
) -> bool:
    """Drop the month partitions of ``jobs_history`` that ended before ``before``, adding
    their rows to ``report``; True when none is left, False when ``deadline`` came first or
    a partition's lock was busy (the next run tries again)."""
    cur = await conn.execute(query("retention_history_partitions"), {"before": before})
    names = [row[0] for row in await cur.fetchall()]
    report.deleted.setdefault("jobs_history", 0)
    for name in names:
        if time.monotonic() >= deadline:
            return False
        try:
            cur = await conn.execute(query("retention_drop_partition"), {"name": name})
            row = await cur.fetchone()
        except psycopg.errors.LockNotAvailable:
            log.warning("retention: %s is in use; dropping it on the next run", name)
            return False
        report.deleted["jobs_history"] += int(row[0]) if row else 0
        report.dropped_partitions.append(name)
    return True


async def apply_retention(
    app: App,
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    budget_seconds: float | None = None,
) -> RetentionReport:
    """Delete the rows past their retention (``app.settings.retention_*``) from every table,
    as of ``now`` (default: the database's clock). ``batch_size`` and ``budget_seconds``
    default to ``retention_batch_size`` and ``retention_time_budget_seconds``."""
    s = app.settings
    size = batch_size or s.retention_batch_size
    deadline = time.monotonic() + (budget_seconds or s.retention_time_budget_seconds)
    report = RetentionReport()
    pool = await app.apool()
    async with pool.connection() as conn:
        now = await database_now(conn, now)
        if s.retention_history_days:
            before = now - _days(s.retention_history_days)
            if not await drop_history_partitions(conn, before, report, deadline=deadline):
                report.complete = False
        for sweep in retention_sweeps(s, now):
            if not await sweep_table(conn, sweep, report, batch_size=size, deadline=deadline):
                report.complete = False
                break
    return report
