"""The job: its states, the row as users read it, and registered job types.

States and transitions (drawn in docs/architecture.md)::

    pending ──fetch──> processing ──ok──> completed
       ^                  │  │ └──error, attempts left──> retrying ──(run_at)──fetch──> processing
       │                  │  └──error, attempts spent──> failed (dead letter)
       │                  └──cancel──> cancelled
       └──retry()── failed | cancelled         (shutdown gives the attempt back: -> pending)
"""

from __future__ import annotations

import enum
import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from nightcrew.errors import ConfigurationError, EnqueueError
from nightcrew.limits import Limit, check_limits
from nightcrew.notify.spec import notify_json


class JobStatus(enum.StrEnum):
    """Where a job is in its life."""

    PENDING = "pending"
    PROCESSING = "processing"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for completed, failed and cancelled."""
        return self in JobStatus.terminal_states()

    # The named sets of states. Code derives its sets from these; SQL that must spell a set
    # out is checked against them (tests/core/test_status_sets.py).

    @classmethod
    def terminal_states(cls) -> frozenset[JobStatus]:
        """Finished for good: completed, failed, cancelled."""
        return frozenset({cls.COMPLETED, cls.FAILED, cls.CANCELLED})

    @classmethod
    def waiting_states(cls) -> frozenset[JobStatus]:
        """Waiting to be fetched: pending, retrying."""
        return frozenset({cls.PENDING, cls.RETRYING})

    @classmethod
    def live_states(cls) -> frozenset[JobStatus]:
        """Not finished (waiting or processing); a dedupe key is held while live."""
        return cls.waiting_states() | {cls.PROCESSING}

    @classmethod
    def retryable_states(cls) -> frozenset[JobStatus]:
        """What a manual retry accepts: failed, cancelled."""
        return frozenset({cls.FAILED, cls.CANCELLED})


@dataclass(frozen=True)
class Job:
    """A snapshot of one job row."""

    id: UUID
    type: str
    queue: str
    payload: Any
    status: JobStatus
    priority: int
    run_at: datetime
    attempts: int
    max_attempts: int
    timeout_seconds: float | None
    progress: float
    stage: str | None
    metrics: dict[str, Any]
    checkpoint: Any
    result: Any
    error: str | None
    errors: list[dict[str, Any]]
    dedupe_key: str | None
    user_id: str | None
    cancel_requested: bool
    worker_id: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    dedupe_scope: str = "active"
    """``"active"`` or ``"queued"`` (coalescing); see docs/flows.md."""
    eta_seconds: float | None = None
    """Estimated seconds until a running job finishes (``None`` when unknown or not
    running): see :mod:`nightcrew.progress`."""
    depends_on: list[UUID] = field(default_factory=list)
    """The parents this job waits for (empty for a job without dependencies)."""
    pending_parents: int = 0
    """How many of its parents have not ended yet; the job waits while this is above 0."""
    on_parent_failure: str | None = None
    """``"cancel"`` or ``"run"`` for a job with parents (see docs/flows.md), else ``None``."""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        """Build from a ``nightcrew.jobs`` row (as a dict); unknown columns are ignored,
        ``eta_seconds`` is taken when the row has it."""
        values: dict[str, Any] = {name: row.get(name) for name in cls.__dataclass_fields__}
        values["status"] = JobStatus(values["status"])
        values["depends_on"] = list(values["depends_on"] or ())
        values["pending_parents"] = values["pending_parents"] or 0
        values["dedupe_scope"] = values["dedupe_scope"] or "active"
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of the job."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, UUID):
                value = str(value)
            elif name == "depends_on":
                value = [str(parent) for parent in value]
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, JobStatus):
                value = value.value
            out[name] = value
        return out


@dataclass(slots=True)
class ParentJob:
    """A parent of the running job, as ``await ctx.parents.all()`` (or iterating
    ``ctx.parents``) reads it. Not frozen: reading a fan-in of 10,000 builds 10,000 of
    these, and a frozen dataclass's ``__init__`` costs several times more."""

    id: UUID
    type: str
    status: JobStatus
    result: Any
    """The parent's result (JSON), ``None`` unless it completed."""
    error: str | None
    """The parent's last error message, if any."""


@dataclass(frozen=True)
class ParentSummary:
    """How many parents the running job has in each status (``await
    ctx.parents.summary()``), counted in the database without reading the parents."""

    total: int
    """How many parents the job has (``len(ctx.parents)``)."""
    counts: dict[JobStatus, int]
    """Parents per status; a status no parent has is absent. A parent pruned without an
    archive copy is in ``total`` but in no count."""

    @property
    def completed(self) -> int:
        """Parents that completed."""
        return self.counts.get(JobStatus.COMPLETED, 0)

    @property
    def failed(self) -> int:
        """Parents that ended failed (attempts spent)."""
        return self.counts.get(JobStatus.FAILED, 0)

    @property
    def cancelled(self) -> int:
        """Parents that ended cancelled."""
        return self.counts.get(JobStatus.CANCELLED, 0)

    @property
    def all_completed(self) -> bool:
        """True when every parent is read as completed (a dependent in the default
        ``on_parent_failure="cancel"`` mode runs only then)."""
        return self.completed == self.total


@dataclass(frozen=True)
class FanOut:
    """What :meth:`nightcrew.App.fan_out` enqueued: the children, then the dependent."""

    children: list[UUID]
    then: UUID


Backoff = float | Callable[[int], float]


def backoff_delay(backoff: Backoff, attempt: int) -> float:
    """Seconds to wait before retrying after failed ``attempt`` (1-based).

    A number is the base of exponential backoff, ``base * 2**(attempt-1)``, jittered by
    ±25 % so that jobs failing together don't retry together; a callable decides alone.
    """
    if callable(backoff):
        return max(0.0, float(backoff(attempt)))
    return float(backoff) * 2.0 ** (attempt - 1) * random.uniform(0.75, 1.25)


@dataclass
class JobType:
    """A registered job type: the handler and its defaults."""

    name: str
    handler: Callable[..., Any]
    queue: str = "default"
    priority: int = 0
    max_attempts: int = 3
    timeout: float | None = None
    backoff: Backoff = 2.0
    public: bool = True
    model: type[BaseModel] | None = field(default=None)
    is_async: bool = True
    notify: dict[str, Any] | str | None = None
    """Default ``notify`` of this type's jobs, or ``"owner"`` (see docs/notifications.md)."""
    notify_template: Any = None
    """A :class:`nightcrew.notify.render.EmailTemplate` for this type's emails."""
    notify_json: str | None = field(default=None, init=False)
    priority_range: tuple[int, int] | None = None
    """The priorities a non-admin HTTP caller may ask for this type's jobs (inclusive);
    ``None``: any valid priority. Python callers and admins are not bound by it."""
    limits: tuple[Limit, ...] = ()
    """Keyed rate and concurrency limits every job of this type is held to (see
    :class:`nightcrew.Limit`, docs/flow-control.md)."""

    def allows_priority(self, priority: int) -> bool:
        """Whether a non-admin HTTP caller may give this type's jobs ``priority``."""
        if self.priority_range is None:
            return True
        return self.priority_range[0] <= priority <= self.priority_range[1]

    def _check_priority_range(self) -> None:
        bounds: Any = self.priority_range
        if bounds is None:
            return
        pair = tuple(bounds) if isinstance(bounds, list | tuple) else None
        if pair is None or not _bounds_ok(pair):
            raise ConfigurationError(
                f"{self.name}: priority_range must be a pair of integers (low, high) with "
                f"low <= high, got {bounds!r}"
            )
        self.priority_range = (pair[0], pair[1])

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigurationError("a job type needs a non-empty name")
        if self.max_attempts < 1:
            raise ConfigurationError(f"{self.name}: max_attempts must be >= 1")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError(f"{self.name}: timeout must be > 0 seconds")
        if not callable(self.backoff) and float(self.backoff) < 0:
            raise ConfigurationError(f"{self.name}: backoff must be >= 0")
        self._check_priority_range()
        self.limits = check_limits(self.name, self.limits)
        self.is_async = inspect.iscoroutinefunction(self.handler)
        try:
            self.notify_json = notify_json(self.notify)
        except EnqueueError as exc:
            raise ConfigurationError(f"{self.name}: {exc}") from None
        self.model = _payload_model(self.handler)


def _bounds_ok(bounds: object) -> bool:
    return (
        isinstance(bounds, tuple)
        and len(bounds) == 2
        and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
        and bounds[0] <= bounds[1]
    )


def _payload_model(handler: Callable[..., Any]) -> type[BaseModel] | None:
    """The Pydantic model the handler's payload parameter is annotated with, if any."""
    try:
        params = list(inspect.signature(handler, eval_str=True).parameters.values())
    except (NameError, TypeError):
        return None
    if len(params) < 2:
        raise ConfigurationError(
            f"handler {getattr(handler, '__name__', handler)!r} must take (ctx, payload)"
        )
    annotation = params[1].annotation
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    return None
