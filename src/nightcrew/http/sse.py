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

from nightcrew.http.errors import ERROR_RESPONSES, ApiError
from nightcrew.http.listen import ListenHub
from nightcrew.http.models import JobResponse
from nightcrew.http.routes_jobs import ApiKey, job_id_or_404, read_job
from nightcrew.http.session import Session, acting
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
        stream = _stream(
            hub, lambda: acting(app, key), uid, wake, job, last_event_id, heartbeat_seconds
        )
        return StreamingResponse(
            stream,
            media_type="text/event-stream",
            headers={
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            },
        )

    return router


async def _stream(
    hub: EventHub,
    open_session: Callable[[], AbstractAsyncContextManager[Session]],
    job_id: UUID,
    wake: asyncio.Event,
    job: JobResponse | None,
    last_sent: str | None,
    heartbeat_seconds: float,
) -> AsyncIterator[str]:
    try:
        yield "retry: 2000\n\n"
        while True:
            if job is None:
                wake.clear()  # before reading: a change during the read wakes us again
                try:
                    async with open_session() as session:
                        row = await session.one("http_get_job", {"id": job_id})
                except ApiError:  # the key (or dashboard session) was revoked meanwhile
                    return
                if row is None:  # gone (deleted by retention)
                    return
                job = JobResponse.model_validate(row)
            version = version_of(job)
            if version != last_sent:
                yield frame(job)
                last_sent = version
            if job.status in JobStatus.terminal_states():
                return
            job = None
            try:
                await asyncio.wait_for(wake.wait(), heartbeat_seconds)
            except TimeoutError:
                yield ": heartbeat\n\n"
    finally:
        hub.unsubscribe(job_id, wake)
