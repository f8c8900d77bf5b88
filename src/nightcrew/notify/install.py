"""Register nightcrew's notification and alert jobs on every App (called by ``App()``)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nightcrew.app import App
    from nightcrew.context import JobContext

NOTIFY_JOB = "nightcrew.notify"
NOTIFY_QUEUE = "nightcrew"  # the trigger of migration 0005 enqueues here
NOTIFY_MAX_ATTEMPTS = 8  # ... with this many attempts
ALERTS_JOB = "nightcrew.alerts"
DEAD_LETTER_JOB = "nightcrew.dead_letter_mail"  # see nightcrew.notify.dead_letters


async def _notify(ctx: JobContext, payload: Any) -> Any:
    from nightcrew.notify.handler import notify_job

    return await notify_job(ctx, payload)


async def _dead_letters(ctx: JobContext, payload: Any) -> Any:
    from nightcrew.notify.dead_letters import dead_letter_job

    return await dead_letter_job(ctx, payload)


async def _alerts(ctx: JobContext, payload: Any) -> Any:
    from nightcrew.notify.alerts import alerts_job

    return await alerts_job(ctx, payload)


def install_notifications(app: App) -> None:
    """Register ``nightcrew.notify`` (deliveries; queue ``nightcrew``), ``nightcrew.alerts``
    (one alert pass) and ``nightcrew.dead_letter_mail`` (the admin's dead-letter emails);
    unless ``maintenance_schedules`` is off, schedule the alert pass every
    ``alert_check_seconds`` and the dead-letter mail every minute. Idempotent."""
    s = app.settings
    if NOTIFY_JOB in app.registry:
        return
    app.job(NOTIFY_JOB, queue=NOTIFY_QUEUE, max_attempts=NOTIFY_MAX_ATTEMPTS,
            backoff=s.notify_backoff_seconds, timeout=300, public=False)(_notify)  # fmt: skip
    queue = getattr(s, "maintenance_queue", NOTIFY_QUEUE)
    app.job(ALERTS_JOB, queue=queue, max_attempts=1, timeout=120, public=False)(_alerts)
    # One attempt: mail not sent yet stays recorded for the next minute's run.
    app.job(DEAD_LETTER_JOB, queue=queue, max_attempts=1, timeout=300,
            public=False)(_dead_letters)  # fmt: skip
    schedule = getattr(app, "schedule", None)
    if schedule is not None and getattr(s, "maintenance_schedules", False):
        schedule(ALERTS_JOB, every=timedelta(seconds=s.alert_check_seconds),
                 missed="skip", critical=True)  # fmt: skip
        # Keyed per minute: a tick is fired once, so one delivery job per minute.
        schedule(DEAD_LETTER_JOB, every=timedelta(minutes=1), missed="skip", critical=True)
