"""Request and response bodies of the HTTP API (they make up the OpenAPI schema)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from nightcrew.jobs import JobStatus
from nightcrew.lifecycle.enqueue import MAX_ATTEMPTS_LIMIT, PRIORITY_RANGE

Status = JobStatus
"""A job's status in requests and responses: the values of :class:`JobStatus`."""
TEN_YEARS = 10 * 365 * 24 * 3600.0
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d[Tt ]")


class EnqueueRequest(BaseModel):
    """``POST /api/jobs``: one job to enqueue (``run_at`` or ``delay_seconds``, not both)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=200, description="A registered, public job type.")
    payload: Any = Field(default=None, description="JSON payload handed to the handler.")
    # Strict numbers: JSON true/false or "5" are type errors, not 1/0/5.
    priority: StrictInt | None = Field(default=None, ge=PRIORITY_RANGE[0], le=PRIORITY_RANGE[1])
    run_at: AwareDatetime | None = Field(default=None, description="Not before (with timezone).")
    delay_seconds: StrictFloat | None = Field(default=None, ge=0, le=TEN_YEARS, allow_inf_nan=False)
    dedupe_key: str | None = Field(default=None, min_length=1, max_length=200)
    dedupe_scope: Literal["active", "queued"] | None = Field(
        default=None,
        description='"active" (default): one live job per key; "queued": one waiting job '
        "per key, so one more may queue behind a running one.",
    )
    max_attempts: StrictInt | None = Field(default=None, ge=1, le=MAX_ATTEMPTS_LIMIT)
    queue: str | None = Field(default=None, min_length=1, max_length=200)
    notify: dict[str, Any] | None = Field(
        default=None, description='When it finishes: {"email", "webhook", "in_app", "on"}.'
    )

    @field_validator("run_at", mode="before")
    @classmethod
    def _iso_date_time(cls, value: Any) -> Any:
        # Pydantic would also take Unix timestamps (-933, "-933"); the schema promises an
        # ISO 8601 date-time string, so only that is accepted.
        if value is not None and not (isinstance(value, str) and _ISO_DATE.match(value)):
            raise ValueError(
                "must be an ISO 8601 datetime with a timezone, e.g. 2030-01-01T09:00:00Z"
            )
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> EnqueueRequest:
        if self.run_at is not None and self.delay_seconds is not None:
            raise ValueError("give run_at or delay_seconds, not both")
        if self.run_at is not None and not math.isfinite(self.run_at.timestamp()):
            raise ValueError("run_at is out of range")
        return self


class JobResponse(BaseModel):
    """A job as the API shows it."""

    id: UUID
    type: str
    queue: str
    payload: Any = None
    status: Status
    priority: int
    attempts: int
    max_attempts: int
    progress: float
    stage: str | None
    metrics: dict[str, Any]
    result: Any = None
    error: str | None
    run_at: datetime
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    user_id: str | None
    dedupe_scope: str = "active"


class JobPage(BaseModel):
    """One page of jobs, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[JobResponse]
    next_cursor: str | None


class PriorityChange(BaseModel):
    """``PATCH /api/jobs/{id}``."""

    model_config = ConfigDict(extra="forbid")

    priority: StrictInt = Field(ge=PRIORITY_RANGE[0], le=PRIORITY_RANGE[1])


class BulkFilter(BaseModel):
    """Select jobs by state and/or type (within what the caller may see)."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    type: str | None = Field(default=None, min_length=1, max_length=200)


class BulkRequest(BaseModel):
    """``POST /api/jobs/bulk``: an action on listed ids, or on the jobs matching a filter."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["cancel", "retry"]
    ids: list[UUID] | None = Field(default=None, min_length=1, max_length=1000)
    filter: BulkFilter | None = None
    limit: StrictInt = Field(default=1000, ge=1, le=10_000, description="Most jobs changed.")

    @model_validator(mode="after")
    def _one_selector(self) -> BulkRequest:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or filter")
        return self


class BulkResult(BaseModel):
    """The jobs the bulk action changed (others were missing or in the wrong state)."""

    action: Literal["cancel", "retry"]
    count: int
    ids: list[UUID]


class Figures(BaseModel):
    """Outcomes over a window."""

    total: int = Field(description="Jobs that finished: completed + failed + cancelled.")
    completed: int
    failed: int
    retried: int = Field(description="Attempts sent to retry (automatic or manual).")
    cancelled: int
    avg_duration_s: float | None = Field(description="Mean run time of completed jobs.")
    p95_duration_s: float | None = Field(description="Estimated from a log-scale histogram.")


class TypeFigures(Figures):
    """Figures of one job type, with its health."""

    type: str
    success_rate: float | None = Field(
        description="completed / (completed + failed); null without either."
    )
    last_success_at: datetime | None = Field(
        description="Start of the newest rollup bucket with a success: its minute while "
        "that is the current one, else its hour. Null: no success in the window."
    )
    failure_streak: int = Field(
        description="Failures recorded in the rollup buckets after the last success."
    )


class Stats(BaseModel):
    """``GET /api/stats``."""

    last_24h: Figures
    queue_depth: int
    running: int
    by_type: list[TypeFigures]


class ScheduleResponse(BaseModel):
    """A stored schedule and its run-time state (``GET /api/schedules``)."""

    name: str
    type: str
    cron: str | None = Field(description="Cron expression; null for an interval schedule.")
    every_seconds: float | None = Field(description="Interval; null for a cron schedule.")
    timezone: str
    enabled: bool
    in_code: bool = Field(description="False when the code no longer declares it (it idles).")
    critical: bool = Field(description="False: the tick may be deferred while the queue is busy.")
    queue: str | None
    priority: int | None
    next_run_at: datetime
    last_run_at: datetime | None
    last_job_id: UUID | None
    last_job_status: str | None
    last_outcome: str | None = Field(description="fired, deferred (and why), missed ticks...")
    deferrals: int
    deferred_from: datetime | None
    updated_at: datetime


class ScheduleList(BaseModel):
    """``GET /api/schedules``: every stored schedule, by name."""

    items: list[ScheduleResponse]


class ScheduleChange(BaseModel):
    """``PATCH /api/schedules/{name}``: enable/disable and/or a new cron expression."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool | None = None
    cron: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="5 fields, 6 with leading seconds, or an alias such as @daily.",
    )

    @model_validator(mode="after")
    def _something(self) -> ScheduleChange:
        if self.enabled is None and self.cron is None:
            raise ValueError("give enabled and/or cron")
        return self


class ScheduleRun(BaseModel):
    """``POST /api/schedules/{name}/run``: the job enqueued."""

    schedule: str
    job_id: UUID


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok"]
    database: Literal["ok"]
    migrations: Literal["current"]


class QueueResponse(BaseModel):
    """One queue: waiting and running jobs, whether paused, recent throughput."""

    name: str
    depth: int = Field(description="Jobs waiting to run (pending or retrying).")
    running: int
    paused: bool
    paused_at: datetime | None
    jobs_per_minute: float = Field(description="Jobs finished per minute, last 5 minutes.")


class QueueList(BaseModel):
    """``GET /api/queues``: every known queue, by name."""

    items: list[QueueResponse]


class LimitResponse(BaseModel):
    """One limit key: the limits in force, the code's, and current use."""

    key: str
    rate: str | None = Field(description="The rate in force, e.g. '10/s'; null: none.")
    concurrency: int | None = Field(description="The concurrency in force; null: none.")
    code_rate: str | None
    code_concurrency: int | None
    overridden: bool = Field(description="An operator's values replace the code's.")
    running: int = Field(description="Concurrency slots held now.")
    backlog_seconds: float = Field(description="How far ahead the rate's slots are taken.")
    updated_at: datetime


class LimitList(BaseModel):
    """``GET /api/limits``: every limit key seen or overridden."""

    items: list[LimitResponse]


class LimitChange(BaseModel):
    """``PUT /api/limits/{key}``: override the key's limits (both replace the code's; one
    not given is then unlimited)."""

    model_config = ConfigDict(extra="forbid")

    rate: str | None = Field(
        default=None, max_length=40, description="'N/s', 'N/m' or 'N/h'.", examples=["10/s"]
    )
    concurrency: StrictInt | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _something(self) -> LimitChange:
        if self.rate is None and self.concurrency is None:
            raise ValueError("give rate and/or concurrency")
        return self
