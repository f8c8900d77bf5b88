"""``/api/jobs``: enqueue, read, list, cancel, retry, reprioritise, bulk actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, Depends, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nightcrew.errors import EnqueueError, PayloadValidationError
from nightcrew.http.errors import ERROR_RESPONSES, ApiError, ErrorResponse, not_found
from nightcrew.http.models import (
    BulkRequest,
    BulkResult,
    EnqueueRequest,
    JobPage,
    JobResponse,
    PriorityChange,
    Status,
)
from nightcrew.http.session import Session, acting
from nightcrew.lifecycle.control import parse_id

if TYPE_CHECKING:
    from nightcrew.app import App

bearer = HTTPBearer(auto_error=False, description="An API key from `nightcrew keys create`.")


def api_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str | None:
    """The bearer token of the request, if any (checked against the database later)."""
    return credentials.credentials if credentials else None


ApiKey = Annotated[str | None, Depends(api_key)]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "the job is in the wrong state"}
}
DEDUPE_HELD = "a live job holds the same dedupe_key; retrying would duplicate it"
_ENQUEUE_FIELDS = (
    "delay",
    "priority",
    "max_attempts",
    "queue",
    "dedupe_key",
    "dedupe_scope",
    "run_at",
    "timeout",
    "payload",
)


def job_id_or_404(raw: str) -> UUID:
    """A path id that is not a UUID names no job: 404, like an unknown one."""
    uid = parse_id(raw)
    if uid is None:
        raise not_found()
    return uid


async def read_job(session: Session, job_id: UUID) -> JobResponse:
    """The job if the acting user may see it; 404 otherwise."""
    row = await session.one("http_get_job", {"id": job_id})
    if row is None:
        raise not_found()
    return JobResponse.model_validate(row)


def _enqueue_field(message: str) -> str | None:
    first = message.split(" ", 1)[0]
    if first == "delay":
        return "delay_seconds"
    return first if first in _ENQUEUE_FIELDS else None


def build_jobs_router(app: App) -> APIRouter:
    """The job routes of ``app``."""
    router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=ERROR_RESPONSES)

    @router.post("", status_code=202, response_model=JobResponse, summary="Enqueue a job")
    async def enqueue(body: EnqueueRequest, key: ApiKey) -> JobResponse:
        spec = app.registry.get(body.type)
        if spec is None or not spec.public:
            known = ", ".join(sorted(n for n, t in app.registry.items() if t.public)) or "none"
            raise ApiError(422, f"unknown job type {body.type!r} (known: {known})", field="type")
        async with acting(app, key) as session:
            user = session.principal.user_id
            # Dedupe keys are per user: one user's key can never match another user's job.
            dedupe = f"{user}:{body.dedupe_key}" if body.dedupe_key is not None else None
            try:
                job_id = await app.aenqueue(
                    body.type,
                    body.payload,
                    queue=body.queue,
                    priority=body.priority,
                    delay=body.delay_seconds,
                    run_at=body.run_at,
                    dedupe_key=dedupe,
                    dedupe_scope=body.dedupe_scope,
                    user_id=user,
                    max_attempts=body.max_attempts,
                    notify=body.notify,
                    conn=session.conn,
                )
            except PayloadValidationError as exc:
                raise ApiError(422, str(exc), field="payload") from None
            except EnqueueError as exc:
                raise ApiError(422, str(exc), field=_enqueue_field(str(exc))) from None
            except psycopg.DataError as exc:  # e.g. "\u0000", which PostgreSQL cannot store
                field = next((name for name in ("type", "queue", "dedupe_key")
                              if "\x00" in (getattr(body, name) or "")), "payload")  # fmt: skip
                raise ApiError(422, f"{field}: {str(exc).splitlines()[0]}", field=field) from None
            except psycopg.errors.InsufficientPrivilege:
                # The dedupe key matches a live job this user may not see.
                raise ApiError(
                    409, "dedupe_key is in use by another job", field="dedupe_key"
                ) from None
            return await read_job(session, job_id)

    @router.get("", response_model=JobPage, summary="List jobs, newest first")
    async def list_jobs(
        key: ApiKey,
        status: Annotated[Status | None, Query()] = None,
        type: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> JobPage:
        before = None
        if cursor is not None:
            before = parse_id(cursor)
            if before is None:
                raise ApiError(422, "cursor: not a cursor returned by this API", field="cursor")
        async with acting(app, key) as session:
            params: dict[str, Any] = {
                "status": status,
                "type": type,
                "limit": limit,
                "cursor": before,
            }
            if session.principal.is_admin:
                rows = await session.all("http_list_jobs", params)
            else:
                params["user_id"] = session.principal.user_id
                rows = await session.all("http_list_user_jobs", params)
        items = [JobResponse.model_validate(row) for row in rows]
        more = len(items) == limit
        return JobPage(items=items, next_cursor=str(items[-1].id) if more and items else None)

    @router.post(
        "/bulk", response_model=BulkResult, responses=CONFLICT, summary="Cancel or retry many jobs"
    )
    async def bulk(body: BulkRequest, key: ApiKey) -> BulkResult:
        flt = body.filter
        params = {
            "ids": [str(i) for i in body.ids] if body.ids is not None else None,
            "status": flt.status if flt else None,
            "type": flt.type if flt else None,
            "limit": body.limit,
        }
        name = "http_cancel_jobs" if body.action == "cancel" else "http_retry_jobs"
        try:
            async with acting(app, key) as session:
                params["actor"] = session.principal.user_id
                rows = await session.all(name, params)
        except psycopg.errors.UniqueViolation:  # raced with a new job taking a dedupe key
            raise ApiError(409, DEDUPE_HELD) from None
        ids = [row["id"] for row in rows]
        return BulkResult(action=body.action, count=len(ids), ids=ids)

    @router.get("/{job_id}", response_model=JobResponse, summary="One job")
    async def get_job(job_id: str, key: ApiKey) -> JobResponse:
        uid = job_id_or_404(job_id)
        async with acting(app, key) as session:
            return await read_job(session, uid)

    @router.patch("/{job_id}", response_model=JobResponse, summary="Change a job's priority")
    async def patch_job(job_id: str, body: PriorityChange, key: ApiKey) -> JobResponse:
        uid = job_id_or_404(job_id)
        async with acting(app, key) as session:
            params = {"id": uid, "priority": body.priority, "actor": session.principal.user_id}
            if await session.one("http_set_priority", params) is None:
                raise not_found()
            return await read_job(session, uid)

    @router.post(
        "/{job_id}/cancel", response_model=JobResponse, responses=CONFLICT, summary="Cancel a job"
    )
    async def cancel_job(job_id: str, key: ApiKey) -> JobResponse:
        return await _act(job_id, key, "http_cancel_jobs", "cancelled")

    @router.post(
        "/{job_id}/retry",
        response_model=JobResponse,
        responses=CONFLICT,
        summary="Retry a failed or cancelled job",
    )
    async def retry_job(job_id: str, key: ApiKey) -> JobResponse:
        return await _act(job_id, key, "http_retry_jobs", "retried")

    async def _act(job_id: str, key: str | None, name: str, verb: str) -> JobResponse:
        uid = job_id_or_404(job_id)
        try:
            async with acting(app, key) as session:
                before = await read_job(session, uid)
                params = {
                    "ids": [str(uid)],
                    "status": None,
                    "type": None,
                    "limit": 1,
                    "actor": session.principal.user_id,
                }
                if not await session.all(name, params):
                    if verb == "retried" and before.status in ("failed", "cancelled"):
                        raise ApiError(409, DEDUPE_HELD)
                    raise ApiError(409, f"job is {before.status} and cannot be {verb}")
                return await read_job(session, uid)
        except psycopg.errors.UniqueViolation:
            raise ApiError(409, DEDUPE_HELD) from None

    return router
