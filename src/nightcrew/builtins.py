"""The one install point of nightcrew's built-in job types (called by ``App()``).

Every App registers them when it is made, so any worker of it (``app.worker()`` in a
program, ``nightcrew worker``, a test) runs built-in jobs enqueued by another process, and
the HTTP API and the scheduler find them without installing anything themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nightcrew.notify.install import install_notifications
from nightcrew.scheduler import maintenance

if TYPE_CHECKING:
    from nightcrew.app import App


def install_builtin_jobs(app: App) -> None:
    """Register notifications, alerts, rescue and prune (and their schedules) on ``app``."""
    install_notifications(app)
    maintenance.install(app)
