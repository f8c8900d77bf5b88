"""Schedules in the database: sync from code, list, edit at run time, fire a tick."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from nightcrew.errors import ConfigurationError, EnqueueError, NightcrewError
from nightcrew.jobs import JobType
from nightcrew.lifecycle.enqueue import build_job
from nightcrew.queries import query
from nightcrew.scheduler.schedules import Schedule, check_cron


@dataclass(frozen=True)
class ScheduleStats:
    """A schedule's runs over its last 7 days (the current UTC day and the six before)."""

    succeeded: int
    failed: int
    avg_duration_s: float | None
    """Mean run time of the runs that ended (succeeded or failed)."""
    last_run_at: datetime | None
    """When the latest of those runs ended."""
    last_outcome: str | None
    """``completed`` or ``failed``: how the latest run ended."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ScheduleStats:
        """Build from the ``stats_*`` columns of a ``schedule_list`` row."""
        return cls(
            succeeded=int(row.get("stats_succeeded") or 0),
            failed=int(row.get("stats_failed") or 0),
            avg_duration_s=row.get("stats_avg_duration_s"),
            last_run_at=row.get("stats_last_run_at"),
            last_outcome=row.get("stats_last_outcome"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (times in ISO 8601)."""
        last = self.last_run_at.isoformat() if self.last_run_at else None
        return {"succeeded": self.succeeded, "failed": self.failed,
                "avg_duration_s": self.avg_duration_s, "last_run_at": last,
                "last_outcome": self.last_outcome}  # fmt: skip


class UnknownScheduleError(NightcrewError, LookupError):
    """No schedule with this name is stored (schedules are stored when a scheduler starts,
    or by :meth:`nightcrew.App.sync_schedules`)."""


@dataclass(frozen=True)
class ScheduleInfo:
    """A stored schedule and its run-time state, as operators see it."""

    name: str
    type: str
    cron: str | None
    every: timedelta | None
    timezone: str
    payload: Any
    priority: int | None
    queue: str | None
    critical: bool
    missed: str
    defer_delay: timedelta
    max_deferrals: int
    enabled: bool
    in_code: bool
    """False when the code that defines it no longer does (then it does not fire)."""
    next_run_at: datetime
    last_run_at: datetime | None
    last_job_id: UUID | None
    last_job_status: str | None
    """Status of the last fired job (also once it was pruned into jobs_history)."""
    last_outcome: str | None
    """What the scheduler did last: fired, deferred (and why), skipped missed ticks..."""
    deferrals: int
    """How often the pending tick was postponed under load."""
    deferred_from: datetime | None
    """The postponed tick, while one is postponed."""
    updated_at: datetime
    quiet_backlog: int | None = None
    """``when="quiet"``: the tick waits until fewer jobs than this are runnable..."""
    run_by_seconds: float | None = None
    """... and fires this long after the tick at the latest."""
    stats_7d: ScheduleStats | None = None
    """Runs over the last 7 days (from the per-day counters, not the jobs table)."""

    @property
    def when(self) -> str:
        """Human-readable timing: the cron expression or the interval."""
        if self.cron is not None:
            return self.cron if self.timezone == "UTC" else f"{self.cron} ({self.timezone})"
        assert self.every is not None
        return f"every {self.every}"

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ScheduleInfo:
        """Build from a ``schedule_list`` row."""
        every = row["every_seconds"]
        values: dict[str, Any] = {f.name: row.get(f.name) for f in fields(cls)}
        values["every"] = timedelta(seconds=every) if every is not None else None
        values["defer_delay"] = timedelta(seconds=row["defer_delay_seconds"])
        values["stats_7d"] = ScheduleStats.from_row(row)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (durations in seconds, times in ISO 8601)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, timedelta):
                value = value.total_seconds()
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, UUID):
                value = str(value)
            elif isinstance(value, ScheduleStats):
                value = value.to_dict()
            out[f.name] = value
        return out


# ---- firing -----------------------------------------------------------------------------------


def firing_params(
    registry: Mapping[str, JobType],
    strict_types: bool,
    schedule: Schedule,
    *,
    scheduled_for: datetime,
    run_at: datetime,
) -> dict[str, Any]:
    """Parameters of ``schedule_fire`` for one tick, validated exactly like ``App.enqueue``
    (raises :class:`EnqueueError` naming the problem)."""
    job = build_job(
        registry, schedule.type, schedule.payload, strict_types=strict_types,
        queue=schedule.queue, priority=schedule.priority, run_at=run_at,
    )  # fmt: skip
    return {**job.params(), "schedule_name": schedule.name, "scheduled_for": scheduled_for}


# ---- sync from code ---------------------------------------------------------------------------


def sync_definitions(
    conn: psycopg.Connection[Any],
    schedules: Iterable[Schedule],
    *,
    registry: Mapping[str, JobType],
    strict_types: bool,
    mark_missing: bool,
) -> None:
    """Store the schedules defined in code. With ``mark_missing``, stored schedules that
    the code no longer defines stop firing (``in_code = false``)."""
    schedules = list(schedules)
    with conn.transaction():
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        now: datetime = row[0]
        for schedule in schedules:
            try:  # check the payload and type now, not at 2 AM
                firing_params(registry, strict_types, schedule, scheduled_for=now, run_at=now)
            except EnqueueError as exc:
                raise ConfigurationError(f"schedule {schedule.name!r}: {exc}") from None
            params = {**schedule.definition(), "next_run_at": schedule.next_after(now)}
            conn.execute(query("schedule_insert"), params)
            conn.execute(query("schedule_sync"), params)
        if mark_missing:
            conn.execute(query("schedule_mark_in_code"), {"names": [s.name for s in schedules]})


# ---- run-time operations ----------------------------------------------------------------------


def list_schedules(conn: psycopg.Connection[Any], name: str | None = None) -> list[ScheduleInfo]:
    """Stored schedules by name (one when ``name`` is given)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("schedule_list"), {"name": name}).fetchall()
    return [ScheduleInfo.from_row(row) for row in rows]


def get_schedule(conn: psycopg.Connection[Any], name: str) -> ScheduleInfo:
    """One stored schedule; :class:`UnknownScheduleError` when there is none."""
    found = list_schedules(conn, name)
    if not found:
        raise UnknownScheduleError(_unknown(conn, name))
    return found[0]


def _unknown(conn: psycopg.Connection[Any], name: str) -> str:
    known = [row[0] for row in conn.execute("SELECT name FROM nightcrew.schedules ORDER BY 1")]
    return f"no schedule named {name!r} (known: {', '.join(known) or 'none stored yet'})"


def _locked(conn: psycopg.Connection[Any], name: str) -> tuple[Schedule, datetime, bool]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query("schedule_get_locked"), {"name": name}).fetchone()
    if row is None:
        raise UnknownScheduleError(_unknown(conn, name))
    return Schedule.from_row(row), row["db_now"], row["enabled"]


def set_enabled(conn: psycopg.Connection[Any], name: str, enabled: bool) -> ScheduleInfo:
    """Enable or disable a schedule. Enabling restarts it from its next fire time."""
    if not isinstance(enabled, bool):
        raise ConfigurationError(f"enabled must be True or False, got {enabled!r}")
    with conn.transaction():
        schedule, now, _was = _locked(conn, name)
        conn.execute(
            query("schedule_set_enabled"),
            {"name": name, "enabled": enabled, "next_run_at": schedule.next_after(now)},
        )
    return get_schedule(conn, name)


def set_timing(
    conn: psycopg.Connection[Any],
    name: str,
    *,
    cron: str | None = None,
    every: timedelta | float | None = None,
    timezone: str | None = None,
) -> ScheduleInfo:
    """Change when a schedule fires (a cron replaces an interval and vice versa); it
    restarts from the new next fire time. Kept until the code's definition changes."""
    if cron is not None and every is not None:
        raise ConfigurationError("give cron= or every=, not both")
    if cron is not None:
        check_cron(cron, name)
    interval = timedelta(seconds=every) if isinstance(every, int | float) else every
    with conn.transaction():
        current, now, _enabled = _locked(conn, name)
        changed = Schedule(
            name=current.name, type=current.type,
            cron=cron if cron is not None else (None if every is not None else current.cron),
            every=interval if interval is not None else (None if cron else current.every),
            timezone=timezone or current.timezone, payload_json=current.payload_json,
            priority=current.priority, queue=current.queue, critical=current.critical,
            missed=current.missed, defer_delay=current.defer_delay,
            max_deferrals=current.max_deferrals, quiet_backlog=current.quiet_backlog,
            run_by=current.run_by,
        )  # fmt: skip
        conn.execute(
            query("schedule_set_timing"),
            {"name": name, "cron": changed.cron, "timezone": changed.timezone,
             "every_seconds": changed.every.total_seconds() if changed.every else None,
             "next_run_at": changed.next_after(now)},
        )  # fmt: skip
    return get_schedule(conn, name)


def run_now(
    conn: psycopg.Connection[Any],
    name: str,
    *,
    registry: Mapping[str, JobType],
    strict_types: bool,
) -> UUID:
    """Enqueue the schedule's job now (also when disabled, never deferred); the regular
    ticks are unaffected. Returns the job id."""
    with conn.transaction():
        schedule, now, _enabled = _locked(conn, name)
        params = firing_params(registry, strict_types, schedule, scheduled_for=now, run_at=now)
        row = conn.execute(query("schedule_fire"), params).fetchone()
        if row is None:  # the same microsecond twice: impossible in practice, but say so
            raise EnqueueError(f"schedule {name!r} was already fired at {now.isoformat()}")
        conn.execute(
            query("schedule_ran_now"),
            {"name": name, "fired_at": now, "job_id": row[0], "outcome": "run now"},
        )
    return row[0]  # type: ignore[no-any-return]
