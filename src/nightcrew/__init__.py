"""nightcrew: Postgres-native background jobs for Python web apps.

The names in ``__all__`` are the public API an application builds on (with
:mod:`nightcrew.http`, :mod:`nightcrew.http.dashboard` and :mod:`nightcrew.testing`); every
other module is internal and may change. See docs/public-api.md.
"""

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
from nightcrew.jobs import FanOut, Job, JobStatus, ParentJob, ParentSummary
from nightcrew.keys import admin_user_ids
from nightcrew.keys import create_key as create_api_key
from nightcrew.lifecycle.enqueue import EnqueueOptions
from nightcrew.limits import Limit, LimitInfo, LimitSlot
from nightcrew.notify.render import EmailTemplate
from nightcrew.notify.webhooks import sign as sign_webhook
from nightcrew.notify.webhooks import verify as verify_webhook
from nightcrew.parents import Parents, SyncParents
from nightcrew.queries import query as load_query
from nightcrew.queues import QueueInfo
from nightcrew.scheduler.loop import Scheduler
from nightcrew.stages import Stages
from nightcrew.worker import Worker

__all__ = [
    "App",
    "ConfigurationError",
    "EmailTemplate",
    "EnqueueError",
    "EnqueueOptions",
    "FanOut",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobControl",
    "JobInfo",
    "JobStatus",
    "LeaseLost",
    "Limit",
    "LimitInfo",
    "LimitSlot",
    "MigrationError",
    "NightcrewError",
    "ParentJob",
    "ParentSummary",
    "Parents",
    "PayloadValidationError",
    "QueueInfo",
    "Retry",
    "Scheduler",
    "Settings",
    "Stages",
    "SyncJobContext",
    "SyncParents",
    "Worker",
    "admin_user_ids",
    "create_api_key",
    "load_query",
    "sign_webhook",
    "verify_webhook",
]

__version__ = "0.1.0"
