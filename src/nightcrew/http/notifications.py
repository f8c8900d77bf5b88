"""In-app notifications, alerts and per-type health over HTTP.

* ``GET /api/notifications``: the caller's own notifications, newest first, with the unread
  count for the badge; ``POST /api/notifications/{id}/read``.
* ``GET /api/notifications/events``: Server-Sent Events with the unread count, pushed on
  every change (one LISTEN connection per server process, :class:`InboxHub`).
* ``GET /api/notifications/webhook-secret``: the caller's own webhook signing key.
* ``GET /api/alerts`` (admins): open alerts first, then the history.

Per job type health (success rate, last success, failure streak) is part of ``GET
/api/stats`` (``by_type``).

Wire it up with ``api.include_router(build_notifications_router(app))``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from nightcrew.http.errors import ERROR_RESPONSES, ApiError, ErrorResponse, not_found
from nightcrew.http.listen import ListenHub
from nightcrew.http.routes_jobs import ApiKey
from nightcrew.http.session import acting
from nightcrew.http.streams import HEADERS, StreamEvent, event_stream
from nightcrew.notify.webhooks import user_secret

if TYPE_CHECKING:
    from nightcrew.app import App

log = logging.getLogger("nightcrew.http.notifications")
INBOX_CHANNEL = "nightcrew_inbox"


class Notification(BaseModel):
    """One in-app notification."""

    id: int
    job_id: str | None
    kind: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    """The caller's notifications, newest first; ``unread`` is the badge count."""

    items: list[Notification]
    unread: int
    next_cursor: int | None


class WebhookSecret(BaseModel):
    """``GET /api/notifications/webhook-secret``: the caller's own signing key; webhooks
    about their jobs carry ``X-Nightcrew-Signature: sha256=<hex HMAC-SHA256(secret,
    "<X-Nightcrew-Timestamp>.<raw body>")>`` (see docs/notifications.md)."""

    user_id: str
    secret: str
    algorithm: Literal["HMAC-SHA256"] = "HMAC-SHA256"


class Alert(BaseModel):
    """A health alert."""

    id: int
    rule: str
    status: Literal["open", "resolved"]
    message: str
    details: dict[str, Any]
    opened_at: datetime
    resolved_at: datetime | None


class AlertList(BaseModel):
    """``GET /api/alerts``."""

    items: list[Alert]


def _notification(row: dict[str, Any]) -> Notification:
    job_id = row["job_id"]
    return Notification(**{**row, "job_id": str(job_id) if job_id else None})


class InboxHub(ListenHub[str]):
    """Wakes the badge streams of a user when their notifications change (the payload of
    a notification on the inbox channel is the user id)."""

    def __init__(self, app: App) -> None:
        super().__init__(app, INBOX_CHANNEL, lambda user_id: [user_id])


def build_notifications_router(app: App, hub: InboxHub | None = None) -> APIRouter:
    """The notification and alert routes of ``app``."""
    router = APIRouter(tags=["notifications"], responses=ERROR_RESPONSES)
    inbox = hub or InboxHub(app)

    @router.get(
        "/api/notifications",
        response_model=NotificationPage,
        summary="Your notifications and the unread count",
    )
    async def list_notifications(
        key: ApiKey,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[
            int | None, Query(ge=1, le=2**63 - 1, description="next_cursor of the last page")
        ] = None,
        unread: Annotated[bool, Query(description="only unread ones")] = False,
    ) -> NotificationPage:
        async with acting(app, key) as session:
            user = session.principal.user_id
            rows = await session.all(
                "notify_inbox_list",
                {"user_id": user, "before": cursor, "unread_only": unread, "limit": limit},
            )
            badge = await session.one("notify_inbox_unread", {"user_id": user})
        items = [_notification(row) for row in rows]
        more = len(items) == limit
        return NotificationPage(
            items=items,
            unread=badge["unread"] if badge else 0,
            next_cursor=items[-1].id if more else None,
        )

    @router.post(
        "/api/notifications/{notification_id}/read",
        response_model=Notification,
        summary="Mark one of your notifications read",
    )
    async def mark_read(notification_id: str, key: ApiKey) -> Notification:
        # isascii: str.isdigit() also accepts digits like '³' that int() refuses.
        if (
            not (notification_id.isascii() and notification_id.isdigit())
            or len(notification_id) > 18
        ):
            raise not_found("notification")
        async with acting(app, key) as session:
            row = await session.one(
                "notify_inbox_read",
                {"id": int(notification_id), "user_id": session.principal.user_id},
            )
        if row is None:
            raise not_found("notification")
        row.pop("notified", None)
        return _notification(row)

    @router.get(
        "/api/notifications/webhook-secret",
        response_model=WebhookSecret,
        summary="The key that signs webhooks about your jobs",
    )
    async def webhook_secret(key: ApiKey, response: Response) -> WebhookSecret:
        async with acting(app, key) as session:
            user = session.principal.user_id
        master = app.settings.webhook_secret
        if master is None:
            raise ApiError(404, "no webhook secret is configured: webhooks are not sent")
        response.headers["Cache-Control"] = "no-store"
        return WebhookSecret(user_id=user, secret=user_secret(master.get_secret_value(), user))

    @router.get(
        "/api/notifications/events",
        summary="Live unread count (Server-Sent Events)",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
                "description": 'an "unread" event now and on every change',
            }
        },
    )
    async def notification_events(key: ApiKey) -> StreamingResponse:
        async with acting(app, key) as session:  # 401 before the stream starts
            user = session.principal.user_id
        wake = await inbox.subscribe(user)
        heartbeat = app.settings.http_heartbeat_seconds
        return StreamingResponse(
            _badge_stream(app, inbox, key, user, wake, heartbeat),
            media_type="text/event-stream",
            headers=HEADERS,
        )

    @router.get(
        "/api/alerts",
        response_model=AlertList,
        summary="Health alerts (admins)",
        responses={403: {"model": ErrorResponse, "description": "not an admin key"}},
    )
    async def list_alerts(
        key: ApiKey,
        status: Annotated[Literal["open", "resolved"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> AlertList:
        async with acting(app, key) as session:
            if not session.principal.is_admin:
                raise ApiError(403, "alerts are visible to admin keys only")
            rows = await session.all("alert_list", {"status": status, "limit": limit})
        return AlertList(items=[Alert(**row) for row in rows])

    return router


def _badge_stream(
    app: App, hub: InboxHub, key: str | None, user: str, wake: asyncio.Event, heartbeat: float
) -> AsyncIterator[str]:
    async def read() -> StreamEvent:
        async with acting(app, key) as session:
            badge = await session.one("notify_inbox_unread", {"user_id": user})
        state = {
            "unread": badge["unread"] if badge else 0,
            "latest_id": badge["latest_id"] if badge else None,
        }
        text = json.dumps(state)
        return StreamEvent(text, f"event: unread\ndata: {text}\n\n")

    return event_stream(
        read, wake, heartbeat_seconds=heartbeat, on_close=lambda: hub.unsubscribe(user, wake)
    )
