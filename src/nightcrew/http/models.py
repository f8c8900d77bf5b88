"""Request and response bodies of the HTTP API (they make up the OpenAPI schema)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    model_validator,
)

from nightcrew.lifecycle.enqueue import MAX_ATTEMPTS_LIMIT, PRIORITY_RANGE

Status = Literal["pending", "processing", "retrying", "completed", "failed", "cancelled"]
TEN_YEARS = 10 * 365 * 24 * 3600.0


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
    max_attempts: StrictInt | None = Field(default=None, ge=1, le=MAX_ATTEMPTS_LIMIT)
    queue: str | None = Field(default=None, min_length=1, max_length=200)
    notify: dict[str, Any] | None = Field(
        default=None, description='When it finishes: {"email", "webhook", "in_app", "on"}.'
    )

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
    """Figures of one job type."""

    type: str


class Stats(BaseModel):
    """``GET /api/stats``."""

    last_24h: Figures
    queue_depth: int
    running: int
    by_type: list[TypeFigures]


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok"]
    database: Literal["ok"]
    migrations: Literal["current"]
