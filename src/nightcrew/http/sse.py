"""Live job updates over Server-Sent Events, pushed from LISTEN/NOTIFY.

One LISTEN connection per server process (:class:`EventHub`) receives the trigger's
``nightcrew_events`` notifications (comma-separated ids of changed jobs) and wakes only
the streams subscribed to those ids; each woken stream re-reads its job, under its user's
row-level security, and sends the full job JSON when it changed. Nothing polls the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING
from uuid import UUID

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from nightcrew.http.errors import ERROR_RESPONSES
from nightcrew.http.listen import ListenHub
from nightcrew.http.models import JobResponse
from nightcrew.http.routes_jobs import ApiKey, job_id_or_404, read_job
from nightcrew.http.session import Session, acting
from nightcrew.http.streams import HEADERS, StreamEvent, event_stream
from nightcrew.jobs import JobStatus

if TYPE_CHECKING:
    from nightcrew.app import App

log = logging.getLogger("nightcrew.http.sse")
CHANNEL = "nightcrew_events"
ANY_JOB = UUID(int=0)
"""Subscribe to this id to be woken by a change of any job (the dashboard's overview)."""


class EventHub(ListenHub[UUID]):
    """Fans job-change notifications out to the streams of this process; a stream
    subscribed to :data:`ANY_JOB` is woken by every change."""

    def __init__(self, app: App) -> None:
        super().__init__(app, CHANNEL, _parse_ids, also=(ANY_JOB,))


def _parse_ids(payload: str) -> list[UUID]:
    ids = []
    for part in payload.split(","):
        with contextlib.suppress(ValueError):
            ids.append(UUID(part))
    return ids


def version_of(job: JobResponse) -> str:
    """The SSE event id of a job state: its ``updated_at`` in microseconds."""
    return str(int(job.updated_at.timestamp() * 1_000_000))


def frame(job: JobResponse) -> str:
    """One SSE event carrying the whole job."""
    return f"id: {version_of(job)}\nevent: job\ndata: {job.model_dump_json()}\n\n"


def build_events_router(app: App, hub: EventHub, heartbeat_seconds: float) -> APIRouter:
    """``GET /api/jobs/{id}/events``."""
    router = APIRouter(tags=["jobs"], responses=ERROR_RESPONSES)

    @router.get(
        "/api/jobs/{job_id}/events",
        summary="Live updates of one job (Server-Sent Events)",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
                "description": "an event with the job's JSON now and on every change, "
                "until the job finishes",
            }
        },
    )
    async def job_events(
        job_id: str,
        key: ApiKey,
        last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
    ) -> StreamingResponse:
        uid = job_id_or_404(job_id)
        wake = await hub.subscribe(uid)  # before the first read: no change can slip between
        try:
            async with acting(app, key) as session:
                job = await read_job(session, uid)
        except BaseException:
            hub.unsubscribe(uid, wake)
            raise
        stream = job_stream(
            hub, lambda: acting(app, key), uid, wake, job, last_event_id, heartbeat_seconds
        )
        return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)

    return router


def job_stream(
    hub: EventHub,
    open_session: Callable[[], AbstractAsyncContextManager[Session]],
    job_id: UUID,
    wake: asyncio.Event,
    job: JobResponse,
    last_sent: str | None,
    heartbeat_seconds: float,
) -> AsyncIterator[str]:
    """The event stream of one job (the API's and the dashboard's): the job's JSON now and
    on every change, until it finishes; ``open_session`` acts as the stream's user."""

    async def read() -> StreamEvent | None:
        async with open_session() as session:
            row = await session.one("http_get_job", {"id": job_id})
        return None if row is None else job_event(JobResponse.model_validate(row))

    return event_stream(
        read,
        wake,
        heartbeat_seconds=heartbeat_seconds,
        on_close=lambda: hub.unsubscribe(job_id, wake),
        first=job_event(job),
        last_sent=last_sent,
    )


def job_event(job: JobResponse) -> StreamEvent:
    """The stream event of a job state (the stream ends after a terminal state)."""
    return StreamEvent(version_of(job), frame(job), job.status in JobStatus.terminal_states())
