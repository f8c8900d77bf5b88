"""Exceptions raised by nightcrew.

::

    NightcrewError
    ├── ConfigurationError      bad settings, unknown job type, bad handler
    ├── EnqueueError            bad enqueue arguments; nothing was written
    │   └── PayloadValidationError   payload failed the handler's Pydantic model
    ├── MigrationError          the schema is missing, newer than this code, or broken
    └── JobControl              raised inside handlers to steer the attempt
        ├── LeaseLost           this worker no longer owns the job; stop touching it
        ├── JobCancelled        the job was cancelled; the handler is interrupted
        └── Retry               ask for a retry after ``delay`` seconds (counts an attempt)
"""

from __future__ import annotations


class NightcrewError(Exception):
    """Base of every nightcrew exception."""


class ConfigurationError(NightcrewError):
    """Settings, job registration or the worker set-up are wrong."""


class EnqueueError(NightcrewError, ValueError):
    """An enqueue call's arguments are invalid; no job was written.

    ``field`` names the argument at fault when it is known (e.g. ``"depends_on"``).
    """

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PayloadValidationError(EnqueueError):
    """The payload does not match the job type's Pydantic model."""


class MigrationError(NightcrewError):
    """The database schema cannot be used by this version of nightcrew."""


class JobControl(NightcrewError):
    """Base of the exceptions that steer a running attempt."""


class LeaseLost(JobControl):
    """The worker lost the job's lease (it was rescued elsewhere); its writes are refused."""


class JobCancelled(JobControl):
    """The job was cancelled while running."""


class Retry(JobControl):
    """Raised by a handler to retry the job later (counts as a failed attempt)."""

    def __init__(self, reason: str = "retry requested", delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay
