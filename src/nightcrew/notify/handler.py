"""The ``nightcrew.notify`` job: deliver one event (a job finished, an alert opened or
resolved) on each of its channels.

Each (event, channel) has a row in ``nightcrew.deliveries``. A channel is attempted under
that row's lock and its outcome recorded with it; a channel already ``sent`` (or failed for
good) is skipped, so when the job retries after, say, the mail server was down, a webhook
that already went out is not sent again. Channels that failed for now make the job raise,
and the job's own retries (exponential backoff) are the delivery retries.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from nightcrew.notify.email import send_email
from nightcrew.notify.errors import DeliveryError, PermanentDeliveryError
from nightcrew.notify.render import (
    AlertEvent,
    JobEvent,
    duration_text,
    render_alert_email,
    render_job_email,
    summary_of,
)
from nightcrew.notify.webhooks import post_webhook
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App
    from nightcrew.context import JobContext

log = logging.getLogger("nightcrew.notify")


class DeliveriesPending(Exception):
    """Some channels failed for now; the notify job retries them."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def load_job_event(app: App, payload: dict[str, Any]) -> JobEvent | None:
    """The event of a finished job (``None`` when the job is gone)."""
    pool = await app.apool()
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("notify_load_job"), {"id": UUID(payload["job_id"])})
        row = await cur.fetchone()
    if row is None:
        return None
    status = payload.get("status") or row["status"]
    base = app.settings.dashboard_url.rstrip("/")
    job = {
        "id": str(row["id"]), "type": row["type"], "status": status,
        "summary": summary_of(row["type"], status, row["result"], row["error"]),
        "result": row["result"], "error": row["error"] if status != "completed" else None,
        "attempts": payload.get("attempts", row["attempts"]),
        "max_attempts": row["max_attempts"], "duration_s": row["duration_s"],
        "duration_text": duration_text(row["duration_s"]),
        "created_at": _iso(row["created_at"]), "started_at": _iso(row["started_at"]),
        "completed_at": _iso(row["completed_at"]), "url": f"{base}/jobs/{row['id']}",
        "user_id": row["user_id"],
    }  # fmt: skip
    notify = row["notify"] or {}
    channels: list[tuple[str, str]] = []
    if notify.get("email"):
        channels.append(("email", notify["email"]))
    if notify.get("webhook"):
        channels.append(("webhook", notify["webhook"]))
    if notify.get("in_app"):
        channels.append(("in_app", row["user_id"] or ""))
    return JobEvent(payload["event_key"], job, channels)


async def load_alert_event(app: App, payload: dict[str, Any]) -> AlertEvent | None:
    """The event of an alert opening or resolving (``None`` when the alert is gone)."""
    pool = await app.apool()
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("alert_get"), {"id": payload["alert_id"]})
        row = await cur.fetchone()
    if row is None:
        return None
    s = app.settings
    alert = {
        "id": row["id"], "rule": row["rule"], "status": row["status"],
        "state": payload["state"], "message": row["message"], "details": row["details"],
        "opened_at": _iso(row["opened_at"]), "resolved_at": _iso(row["resolved_at"]),
        "url": f"{s.dashboard_url.rstrip('/')}/alerts",
    }  # fmt: skip
    channels: list[tuple[str, str]] = []
    if s.alert_emails:
        channels.append(("email", ", ".join(s.alert_emails)))
    if s.alert_webhook:
        channels.append(("webhook", s.alert_webhook))
    return AlertEvent(payload["event_key"], alert, channels)


async def _send(
    app: App, conn: psycopg.AsyncConnection[Any], event: JobEvent | AlertEvent,
    channel: str, target: str,
) -> int | None:  # fmt: skip
    """One attempt on one channel; returns the HTTP status of a webhook."""
    s = app.settings
    if channel == "email":
        if isinstance(event, JobEvent):
            spec = app.registry.get(event.job["type"])
            mail = render_job_email(event, spec.notify_template if spec else None)
        else:
            mail = render_alert_email(event)
        await send_email(s, [t.strip() for t in target.split(",")], mail)
        return None
    if channel == "webhook":
        kind = f"job.{event.job['status']}" if isinstance(event, JobEvent) \
            else f"alert.{event.alert['state']}"  # fmt: skip
        return await post_webhook(
            target, event.webhook_body(datetime.now(UTC)),
            secret=s.webhook_secret.get_secret_value() if s.webhook_secret else None,
            event=kind, delivery=event.key, timeout=s.webhook_timeout_seconds,
            allowlist=s.webhook_allowlist,
        )  # fmt: skip
    assert isinstance(event, JobEvent)  # in_app: only jobs have an owner
    if not target:
        raise PermanentDeliveryError("in-app notification needs a job with a user_id")
    await conn.execute(query("notify_inbox_insert"), {
        "user_id": target, "job_id": UUID(event.job["id"]), "kind": f"job.{event.job['status']}",
        "title": event.title, "body": event.job["summary"],
    })  # fmt: skip
    return None


async def deliver(
    app: App, event: JobEvent | AlertEvent, channel: str, target: str, *, last_try: bool
) -> str:
    """Attempt one channel unless done; return ``sent``, ``failed`` or ``pending``."""
    job_id = UUID(event.job["id"]) if isinstance(event, JobEvent) else None
    alert_id = event.alert["id"] if isinstance(event, AlertEvent) else None
    key = {"event_key": event.key, "channel": channel}
    pool = await app.apool()
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(query("notify_delivery_ensure"), {
            **key, "job_id": job_id, "alert_id": alert_id, "target": target})  # fmt: skip
        cur = await conn.execute(query("notify_delivery_lock"), key)
        row = await cur.fetchone()
        if row is None:
            return "pending"  # another attempt holds it right now
        delivery_id, status, _ = row
        if status != "pending":
            return str(status)
        outcome: dict[str, Any] = {"id": delivery_id, "status_code": None, "error": None}
        try:
            async with conn.transaction():  # in_app writes roll back alone on failure
                outcome["status_code"] = await _send(app, conn, event, channel, target)
            outcome["status"] = "sent"
        except PermanentDeliveryError as exc:
            outcome.update(status="failed", error=str(exc), status_code=exc.status_code)
        except DeliveryError as exc:
            outcome.update(status="failed" if last_try else "pending", error=str(exc),
                           status_code=exc.status_code)  # fmt: skip
        await conn.execute(query("notify_delivery_record"), outcome)
    if outcome["error"]:
        log.warning("notification %s via %s to %s: %s", event.key, channel, target,
                    outcome["error"])  # fmt: skip
    return str(outcome["status"])


async def notify_job(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Handler of ``nightcrew.notify``: deliver the event on every channel not yet done."""
    app = ctx.app
    kind = payload.get("kind")
    event: JobEvent | AlertEvent | None
    if kind == "job":
        event = await load_job_event(app, payload)
    elif kind == "alert":
        event = await load_alert_event(app, payload)
    else:
        raise ValueError(f"unknown notification kind {kind!r}")
    if event is None:
        return {"summary": f"nothing to send: the {kind} is gone"}
    last_try = ctx.job.attempt >= ctx.job.max_attempts
    results = {channel: await deliver(app, event, channel, target, last_try=last_try)
               for channel, target in event.channels}  # fmt: skip
    pending = sorted(channel for channel, status in results.items() if status == "pending")
    if pending:
        raise DeliveriesPending(f"{event.key}: will retry {', '.join(pending)}")
    summary = ", ".join(f"{channel} {status}" for channel, status in results.items())
    return {"event": event.key, "deliveries": results, "summary": summary or "no channel"}
