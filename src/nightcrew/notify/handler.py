"""The ``nightcrew.notify`` job: deliver one event (a job finished, an alert opened or
resolved) on each of its channels.

Each (event, channel) has a row in ``nightcrew.deliveries``. An attempt claims the row in a
short transaction, sends with no database connection held (within
``notify_timeout_seconds`` for the whole exchange), then records the outcome; a channel
already ``sent`` (or failed for good) is skipped, so when the job retries after, say, the
mail server was down, a webhook that already went out is not sent again. Channels that
failed for now make the job raise, and the job's own retries (exponential backoff) are the
delivery retries.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import psycopg
from psycopg.rows import dict_row

from nightcrew.notify.dead_letters import MailEvent, dead_letter_job_id
from nightcrew.notify.email import send_email
from nightcrew.notify.errors import DeliveryError, PermanentDeliveryError
from nightcrew.notify.prefs import NotificationPrefs
from nightcrew.notify.render import (
    AlertEvent,
    Email,
    JobEvent,
    duration_text,
    render_alert_email,
    render_job_email,
    summary_of,
)
from nightcrew.notify.spec import host_allowed
from nightcrew.notify.webhooks import post_webhook, user_secret
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App
    from nightcrew.context import JobContext

log = logging.getLogger("nightcrew.notify")


Event = JobEvent | AlertEvent | MailEvent


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
    if notify.get("owner"):  # the webhook in the preferences was set by the user: untrusted
        return JobEvent(payload["event_key"], job,
                        await owner_channels(app, row["user_id"], status), True)  # fmt: skip
    channels: list[tuple[str, str]] = []
    if notify.get("email"):
        channels.append(("email", notify["email"]))
    if notify.get("webhook"):
        channels.append(("webhook", notify["webhook"]))
    if notify.get("in_app"):
        channels.append(("in_app", row["user_id"] or ""))
    return JobEvent(payload["event_key"], job, channels, bool(notify.get("untrusted")))


async def owner_channels(app: App, user_id: str | None, status: str) -> list[tuple[str, str]]:
    """The channels by which the owner ``user_id`` wants to hear that a job of theirs
    ended ``status``, as their preferences say when the job ends (none: nothing)."""
    if not user_id:
        return []
    pool = await app.apool()
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("notify_prefs_get"), {"user_id": user_id})
        prefs = NotificationPrefs.from_row(await cur.fetchone())
    return prefs.targets(status, user_id)


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


# How long a claim outlasts the attempt's deadline: time to record the outcome afterwards.
CLAIM_MARGIN_SECONDS = 30.0


async def _send_message(app: App, event: Event, channel: str, target: str) -> int | None:
    """Send one email or webhook; returns the HTTP status of a webhook. Holds no
    database connection: it may wait on a slow server for the whole deadline."""
    s = app.settings
    if channel == "email":
        if isinstance(event, MailEvent):
            mail = Email(event.subject, event.text, None)
        elif isinstance(event, JobEvent):
            spec = app.registry.get(event.job["type"])
            mail = render_job_email(event, spec.notify_template if spec else None)
        else:
            mail = render_alert_email(event)
        await send_email(s, [t.strip() for t in target.split(",")], mail)
        return None
    if isinstance(event, MailEvent):  # the admin's dead-letter emails have no webhook
        raise PermanentDeliveryError("dead-letter notices are sent by email only")
    untrusted = isinstance(event, JobEvent) and event.untrusted_webhook
    # Checked again: the setting may have changed since the job was enqueued.
    if untrusted and not host_allowed(target, s.webhook_hosts):
        raise PermanentDeliveryError(
            f"webhook host of {target!r} is not in webhook_hosts (set over the HTTP API)"
        )
    kind = f"job.{event.job['status']}" if isinstance(event, JobEvent) \
        else f"alert.{event.alert['state']}"  # fmt: skip
    return await post_webhook(
        target, event.webhook_body(datetime.now(UTC)), secret=signing_secret(app, event),
        event=kind, delivery=event.key, allow_private=s.webhook_allow_private,
    )  # fmt: skip


def signing_secret(app: App, event: JobEvent | AlertEvent) -> str | None:
    """The key that signs ``event``'s webhook: the job's user's own when it has one."""
    master = app.settings.webhook_secret
    if master is None:
        return None
    user_id = event.job.get("user_id") if isinstance(event, JobEvent) else None
    return user_secret(master.get_secret_value(), user_id) if user_id else \
        master.get_secret_value()  # fmt: skip


async def _attempt(
    app: App, event: Event, channel: str, target: str, *, last_try: bool
) -> dict[str, Any]:
    """Send once within ``notify_timeout_seconds``; the outcome to record."""
    deadline = app.settings.notify_timeout_seconds
    outcome: dict[str, Any] = {"status": "sent", "status_code": None, "error": None}
    try:
        async with asyncio.timeout(deadline):
            outcome["status_code"] = await _send_message(app, event, channel, target)
    except PermanentDeliveryError as exc:
        outcome.update(status="failed", error=str(exc), status_code=exc.status_code)
    except DeliveryError as exc:
        outcome.update(status="failed" if last_try else "pending", error=str(exc),
                       status_code=exc.status_code)  # fmt: skip
    except TimeoutError:
        error = f"no answer within notify_timeout_seconds ({deadline:g} s)"
        outcome.update(status="failed" if last_try else "pending", error=error)
    except Exception as exc:  # e.g. a job type's template that fails to render
        # Recorded like a failure for now, so the claim is released rather than left to expire.
        log.exception("notification %s via %s failed unexpectedly", event.key, channel)
        error = f"{type(exc).__name__}: {exc}"
        outcome.update(status="failed" if last_try else "pending", error=error)
    return outcome


def _delivery_key(event: Event, channel: str, target: str) -> dict[str, Any]:
    job_id = UUID(event.job["id"]) if isinstance(event, JobEvent) else \
        dead_letter_job_id(event) if isinstance(event, MailEvent) else None  # fmt: skip
    return {
        "event_key": event.key, "channel": channel, "target": target, "job_id": job_id,
        "alert_id": event.alert["id"] if isinstance(event, AlertEvent) else None,
    }  # fmt: skip


async def _claim(
    conn: psycopg.AsyncConnection[Any], app: App, key: dict[str, Any], claim: UUID
) -> tuple[int, str, bool]:
    """Make sure the delivery row exists and claim it: (id, status, claimed)."""
    await conn.execute(query("notify_delivery_ensure"), key)
    claim_seconds = app.settings.notify_timeout_seconds + CLAIM_MARGIN_SECONDS
    cur = await conn.execute(query("notify_delivery_claim"), {
        **key, "claim": claim, "claim_seconds": claim_seconds})  # fmt: skip
    row = await cur.fetchone()
    assert row is not None  # ensured just above
    return int(row[0]), str(row[1]), bool(row[2])


async def _record(
    conn: psycopg.AsyncConnection[Any], delivery_id: int, claim: UUID, outcome: dict[str, Any]
) -> bool:
    """Record the attempt; False when its claim was taken over meanwhile."""
    cur = await conn.execute(query("notify_delivery_record"),
                             {**outcome, "id": delivery_id, "claim": claim})  # fmt: skip
    return await cur.fetchone() is not None


async def _deliver_in_app(app: App, event: JobEvent, key: dict[str, Any], *, last_try: bool) -> str:
    """An inbox row is a database write: claim, insert and record in one transaction."""
    claim = uuid4()
    pool = await app.apool()
    async with pool.connection() as conn, conn.transaction():
        delivery_id, status, claimed = await _claim(conn, app, key, claim)
        if not claimed:
            return status
        outcome: dict[str, Any] = {"status": "sent", "status_code": None, "error": None}
        try:
            async with conn.transaction():  # the insert rolls back alone on failure
                await _insert_inbox(conn, event, key["target"])
        except DeliveryError as exc:
            outcome.update(status="failed" if last_try or isinstance(
                exc, PermanentDeliveryError) else "pending", error=str(exc))  # fmt: skip
        await _record(conn, delivery_id, claim, outcome)
    return str(outcome["status"])


async def _insert_inbox(conn: psycopg.AsyncConnection[Any], event: JobEvent, user: str) -> None:
    if not user:
        raise PermanentDeliveryError("in-app notification needs a job with a user_id")
    await conn.execute(query("notify_inbox_insert"), {
        "user_id": user, "job_id": UUID(event.job["id"]), "kind": f"job.{event.job['status']}",
        "title": event.title, "body": event.job["summary"],
    })  # fmt: skip


async def deliver(app: App, event: Event, channel: str, target: str, *, last_try: bool) -> str:
    """Attempt one channel unless done; return ``sent``, ``failed`` or ``pending``.

    Claim (short transaction), send with no connection held, record (another short
    transaction): a slow server ties up no pool connection and no row lock. A claim lasts
    ``notify_timeout_seconds`` + 30 s; an attempt that dies between sending and recording
    leaves it to expire, and the delivery is then sent once more (at-least-once).
    """
    key = _delivery_key(event, channel, target)
    if channel == "in_app":
        assert isinstance(event, JobEvent)  # only jobs have an owner
        return await _deliver_in_app(app, event, key, last_try=last_try)
    claim = uuid4()
    pool = await app.apool()
    async with pool.connection() as conn, conn.transaction():
        delivery_id, status, claimed = await _claim(conn, app, key, claim)
    if not claimed:
        return status  # done already, or "pending": another attempt holds the claim
    outcome = await _attempt(app, event, channel, target, last_try=last_try)
    async with pool.connection() as conn:
        recorded = await _record(conn, delivery_id, claim, outcome)
    if not recorded:
        log.warning("notification %s via %s: claim expired before the outcome (%s) was "
                    "recorded", event.key, channel, outcome["status"])  # fmt: skip
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
