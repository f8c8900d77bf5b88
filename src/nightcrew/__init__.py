"""nightcrew: Postgres-native background jobs for Python web apps."""

from nightcrew.app import App
from nightcrew.config import Settings
from nightcrew.context import JobContext, JobInfo, SyncJobContext
from nightcrew.errors import (
    ConfigurationError,
    EnqueueError,
    JobCancelled,
    JobControl,
    LeaseLost,
    MigrationError,
    NightcrewError,
    PayloadValidationError,
    Retry,
)
from nightcrew.jobs import Job, JobStatus
from nightcrew.worker import Worker

__all__ = [
    "App",
    "ConfigurationError",
    "EnqueueError",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobControl",
    "JobInfo",
    "JobStatus",
    "LeaseLost",
    "MigrationError",
    "NightcrewError",
    "PayloadValidationError",
    "Retry",
    "Settings",
    "SyncJobContext",
    "Worker",
]

__version__ = "0.1.0"
