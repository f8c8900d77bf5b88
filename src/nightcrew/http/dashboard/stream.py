"""Server-Sent Events for the dashboard, on the HTTP API's one LISTEN connection per process.

``/events`` (overview): subscribed to every job change, it re-reads the running jobs and the
backlog under the viewer's row-level security — at most every ``COALESCE_SECONDS``, only
when something changed, never on a timer — and sends them when they differ from what it
sent last. ``/jobs/{id}/events``: the API's per-job stream, authenticated by the dashboard
session cookie instead of a bearer header (EventSource cannot send headers).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response, StreamingResponse

from nightcrew.app import App
from nightcrew.http.dashboard.auth import nightcrew_app, session_id
from nightcrew.http.models import JobResponse
from nightcrew.http.session import acting_for_dashboard
from nightcrew.http.sse import ANY_JOB, EventHub, job_stream
from nightcrew.http.streams import HEADERS, StreamEvent, event_stream

COALESCE_SECONDS = 0.25
"""A burst of job changes costs one re-read per open overview."""
RUNNING_SHOWN = 50


def build_stream_router() -> APIRouter:
    """The dashboard's two event streams."""
    router = APIRouter(include_in_schema=False)

    @router.get("/events")
    async def overview_events(request: Request) -> Response:
        sid = session_id(request)
        app, hub = nightcrew_app(request), _hub(request)
        if not sid:
            return Response("log in first", 401)
        wake = await hub.subscribe(ANY_JOB)
        try:
            first = await overview_snapshot(app, sid)
        except BaseException:
            hub.unsubscribe(ANY_JOB, wake)
            raise
        heartbeat = app.settings.http_heartbeat_seconds
        stream = _overview_stream(app, hub, sid, wake, first, heartbeat)
        return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)

    @router.get("/jobs/{job_id}/events")
    async def job_events(
        request: Request,
        job_id: str,
        last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
    ) -> Response:
        sid = session_id(request)
        app, hub = nightcrew_app(request), _hub(request)
        try:
            uid = UUID(job_id)
        except ValueError:
            return Response("no such job", 404)
        if not sid:
            return Response("log in first", 401)
        wake = await hub.subscribe(uid)  # before the first read: no change can slip between
        try:
            async with acting_for_dashboard(app, sid) as session:
                row = await session.one("http_get_job", {"id": uid})
        except BaseException:
            hub.unsubscribe(uid, wake)
            raise
        if row is None:
            hub.unsubscribe(uid, wake)
            return Response("no such job", 404)
        job = JobResponse.model_validate(row)
        heartbeat = app.settings.http_heartbeat_seconds
        stream = job_stream(hub, lambda: acting_for_dashboard(app, sid), uid, wake, job,
                            last_event_id, heartbeat)  # fmt: skip
        return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)

    return router


def _hub(request: Request) -> EventHub:
    hub: EventHub = request.app.state.event_hub
    return hub


async def overview_snapshot(app: App, sid: str) -> dict[str, Any]:
    """What the overview shows live: running jobs, backlog counts and the unread badge."""
    async with acting_for_dashboard(app, sid) as session:
        running = await session.all("dash_running", {"limit": RUNNING_SHOWN})
        backlog = await session.one("stats_backlog") or {}
        badge = await session.one("notify_inbox_unread", {"user_id": session.principal.user_id})
    jobs = [JobResponse.model_validate(row).model_dump(mode="json") for row in running]
    return {
        "running": jobs,
        "queue_depth": backlog.get("queue_depth", 0),
        "running_count": backlog.get("running", 0),
        "unread": badge["unread"] if badge else 0,
    }


def _overview_stream(
    app: App,
    hub: EventHub,
    sid: str,
    wake: asyncio.Event,
    snapshot: dict[str, Any],
    heartbeat_seconds: float,
) -> AsyncIterator[str]:
    async def read() -> StreamEvent:
        return overview_event(await overview_snapshot(app, sid))

    return event_stream(
        read,
        wake,
        heartbeat_seconds=heartbeat_seconds,
        on_close=lambda: hub.unsubscribe(ANY_JOB, wake),
        first=overview_event(snapshot),
        coalesce_seconds=COALESCE_SECONDS,
    )


def overview_event(snapshot: dict[str, Any]) -> StreamEvent:
    """The overview's event: sent when its JSON changed."""
    text = json.dumps(snapshot, separators=(",", ":"))
    return StreamEvent(text, f"event: overview\ndata: {text}\n\n")
