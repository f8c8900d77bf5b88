"""``/api/jobs``: enqueue, read, list, cancel, retry, reprioritise, bulk actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from nightcrew.errors import EnqueueError, PayloadValidationError
from nightcrew.http.enqueue_batches import enqueue_batches
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
from nightcrew.http.session import (
    Principal,
    Session,
    acting,
    known_principal,
)
from nightcrew.jobs import JobType
from nightcrew.lifecycle import control
from nightcrew.lifecycle.control import parse_id
from nightcrew.lifecycle.enqueue import (
    NewJob,
    ainsert_one,
    build_job,
)
from nightcrew.notify.spec import user_notify
from nightcrew.progress import median_by_type, row_eta

if TYPE_CHECKING:
    from nightcrew.app import App


class BearerKey(HTTPBearer):
    """The bearer token of the request, if any (checked against the database later).

    FastAPI's ``HTTPBearer`` answers a credentials model that a second dependency would then
    unwrap: each dependency level and that model cost CPU on every request. Same header
    parsing and the same OpenAPI security scheme (the class's ``model``); answers the token
    itself, or None (no ``Authorization``, another scheme, or no token), as the credentials'
    ``credentials`` were."""

    async def __call__(self, request: HTTPConnection) -> str | None:  # type: ignore[override]
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if not (scheme and token) or scheme.lower() != "bearer":
            return None
        return token


api_key = BearerKey(
    auto_error=False,
    scheme_name="HTTPBearer",
    description="An API key from `nightcrew keys create`.",
)
ApiKey = Annotated[str | None, Depends(api_key)]
Action = Callable[..., Awaitable[control.ControlResult]]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "the job is in the wrong state"}
}
RESERVED_QUEUE_PREFIX = "nightcrew"
DEDUPE_HELD = "a live job holds the same dedupe_key; retrying would duplicate it"
HTTP_FIELD_NAMES = {"delay": "delay_seconds"}
"""Where the request's name of an enqueue argument differs from the Python one."""


def refuse_unless_done(result: control.ControlResult, verb: str) -> None:
    """The HTTP answer of an action that did nothing: 404 (no such job in sight) or 409."""
    if result.outcome is control.Outcome.NOT_FOUND:
        raise not_found()
    if result.outcome is control.Outcome.DEDUPE_HELD:
        raise ApiError(409, DEDUPE_HELD)
    if result.outcome is control.Outcome.WRONG_STATE:
        status = result.status.value if result.status else "in another state"
        raise ApiError(409, f"job is {status} and cannot be {verb}")


async def refuse_archived(session: Session, result: control.ControlResult, change: str) -> None:
    """A job no live row holds may be in the archive: 409 there (read-only), else nothing."""
    if result.outcome is control.Outcome.NOT_FOUND:
        row = await session.one("http_get_job", {"id": result.job_id})
        if row is not None and row["archived"]:
            raise archived_conflict(row, change)


def job_id_or_404(raw: str) -> UUID:
    """A path id that is not a UUID names no job: 404, like an unknown one."""
    uid = parse_id(raw)
    if uid is None:
        raise not_found()
    return uid


async def with_eta(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (job rows) with their ``eta_seconds``; the median durations of the types of
    running jobs without a rate of their own are read in one query, under the acting user's
    row-level security (a user's estimate comes from their own jobs' history)."""
    now = datetime.now(UTC)
    unknown = {row["type"] for row in rows if row_eta(row, now, lambda _t: None) is None
               and row.get("status") == "processing"}  # fmt: skip
    medians: dict[str, float | None] = {}
    if unknown:
        medians = median_by_type(await session.all("eta_type_buckets", {"types": list(unknown)}))
    for row in rows:
        row["eta_seconds"] = row_eta(row, now, medians.get)
    return rows


async def job_row(session: Session, job_id: UUID) -> dict[str, Any]:
    """The job's row, live or archived (``archived``), if the acting user may see it, with
    its ``eta_seconds``; 404 otherwise."""
    row = await session.one("http_get_job", {"id": job_id})
    if row is None:
        raise not_found()
    return (await with_eta(session, [row]))[0]


async def read_job(session: Session, job_id: UUID) -> JobResponse:
    """The job (live or archived) if the acting user may see it; 404 otherwise."""
    return JobResponse.model_validate(await job_row(session, job_id))


def archived_conflict(row: dict[str, Any], change: str) -> ApiError:
    """The 409 for a change asked of a job that pruning moved to the archive."""
    return ApiError(409, f"job is archived ({row['status']}) and cannot be {change}")


def public_type(app: App, name: str, principal: Principal) -> JobType:
    """The public job type ``name``; 422 otherwise, listing the known types to admins only."""
    spec = app.registry.get(name)
    if spec is not None and spec.public:
        return spec
    message = f"unknown job type {name!r}"
    if principal.is_admin:
        known = ", ".join(sorted(n for n, t in app.registry.items() if t.public)) or "none"
        message += f" (known: {known})"
    raise ApiError(422, message, field="type")


def declared_queues(app: App) -> set[str]:
    """The queues the App's job types declare (and the maintenance jobs' queue)."""
    return {spec.queue for spec in app.registry.values()} | {app.settings.maintenance_queue}


def is_reserved_queue(queue: str) -> bool:
    """``nightcrew*`` queues belong to nightcrew's own jobs."""
    return queue.lower().startswith(RESERVED_QUEUE_PREFIX)


def check_user_queue(app: App, spec: JobType, queue: str | None) -> None:
    """A non-admin may enqueue to the type's own queue or to another queue the App's job
    types declare, never to a reserved ``nightcrew*`` queue; 422 naming ``queue`` else."""
    if queue is None or queue == spec.queue:
        return
    if is_reserved_queue(queue):
        raise ApiError(422, f"queue: {queue!r} is reserved for nightcrew's own jobs",
                       field="queue")  # fmt: skip
    if queue not in declared_queues(app):
        raise ApiError(422, f"queue: {queue!r} is not a queue of this app's job types",
                       field="queue")  # fmt: skip


def check_user_priority(spec: JobType, priority: int) -> None:
    """422 naming ``priority`` when the type's ``priority_range`` excludes it."""
    if not spec.allows_priority(priority):
        assert spec.priority_range is not None
        low, high = spec.priority_range
        raise ApiError(422, f"priority: jobs of type {spec.name!r} take a priority between "
                       f"{low} and {high}, got {priority}", field="priority")  # fmt: skip


def request_field(exc: EnqueueError) -> str | None:
    """The request's name of the argument an :class:`EnqueueError` is about."""
    return HTTP_FIELD_NAMES.get(exc.field or "", exc.field)


def checked_job(app: App, body: EnqueueRequest, principal: Principal) -> NewJob:
    """The job ``body`` asks ``principal`` to enqueue, validated (422 naming the field
    otherwise): a public type; for non-admins a queue of the App and a priority in the
    type's range; the dedupe key scoped to the user, who owns the job."""
    spec = public_type(app, body.type, principal)
    if not principal.is_admin:
        check_user_queue(app, spec, body.queue)
        if body.priority is not None:
            check_user_priority(spec, body.priority)
    user = principal.user_id
    # Dedupe keys are per user: one user's key can never match another user's job.
    dedupe = f"{user}:{body.dedupe_key}" if body.dedupe_key is not None else None
    notify = user_notify(
        body.notify,
        webhook_hosts=app.settings.webhook_hosts,
        allow_private=app.settings.webhook_allow_private,
    )
    return build_job(
        app.registry, body.type, body.payload, strict_types=app.strict_types,
        queue=body.queue, priority=body.priority, delay=body.delay_seconds, run_at=body.run_at,
        dedupe_key=dedupe, dedupe_scope=body.dedupe_scope, user_id=user,
        max_attempts=body.max_attempts, notify=notify, depends_on=body.depends_on,
        on_parent_failure=body.on_parent_failure or "cancel",
    )  # fmt: skip


async def enqueue_in_one_round_trip(app: App, body: EnqueueRequest, key: str | None) -> Any:
    """A job without parents or dedupe key, with a key this process has seen accepted: the
    key check, the insert and the read-back go to the database as one statement list in
    one implicit transaction (one round trip; a key revoked meanwhile stops it at the
    check: 401, nothing written), shared with the other such requests of the same key
    waiting for a connection (:mod:`nightcrew.http.enqueue_batches`); the answer is not
    validated a second time. Anything else, and any refusal before the database has
    checked the key, goes step by step (the key checked first: a revoked key learns
    nothing about job types)."""
    job = one_round_trip_job(app, body, key)
    if job is None or key is None:
        return await enqueue_in_steps(app, body, key)
    return await write_in_one_round_trip(app, key, job)


def one_round_trip_job(app: App, body: EnqueueRequest, key: str | None) -> NewJob | None:
    """The job ``body`` asks for, when it may go in one round trip (see
    :func:`enqueue_in_one_round_trip`); None when it must go step by step. Writes nothing."""
    principal = known_principal(app, key) if not (body.depends_on or body.dedupe_key) else None
    if principal is None or key is None:
        return None
    try:
        return checked_job(app, body, principal)
    except (ApiError, EnqueueError):
        return None


async def write_in_one_round_trip(app: App, key: str, job: NewJob) -> Response:
    """Write a job :func:`one_round_trip_job` built; answer its 202."""
    row = await enqueue_batches(app).write(key, job)
    answer = JobResponse.model_validate(row).model_dump_json()  # pending: no eta
    return Response(answer, status_code=202, media_type="application/json")


@contextmanager
def enqueue_errors(body: EnqueueRequest) -> Iterator[None]:
    """The enqueue's refusals as the API answers them: a 422 naming the field (``payload``
    for a value PostgreSQL cannot store), a 409 for a dedupe key another user holds."""
    try:
        yield
    except PayloadValidationError as exc:
        raise ApiError(422, str(exc), field="payload") from None
    except EnqueueError as exc:
        raise ApiError(422, str(exc), field=request_field(exc)) from None
    except psycopg.DataError as exc:  # e.g. "\u0000", which PostgreSQL cannot store
        field = next((name for name in ("type", "queue", "dedupe_key")
                      if "\x00" in (getattr(body, name) or "")), "payload")  # fmt: skip
        raise ApiError(422, f"{field}: {str(exc).splitlines()[0]}", field=field) from None
    except psycopg.errors.InsufficientPrivilege:
        # The dedupe key matches a live job this user may not see.
        raise ApiError(409, "dedupe_key is in use by another job", field="dedupe_key") from None


async def enqueue_in_steps(app: App, body: EnqueueRequest, key: str | None) -> JobResponse:
    """A job with parents or a dedupe key (whose answer may be another job): statement by
    statement, each error caught where it happens."""
    async with acting(app, key) as session:
        job = checked_job(app, body, session.principal)
        job_id = await ainsert_one(session.conn, job)
        return await read_job(session, job_id)


def build_jobs_router(app: App) -> APIRouter:
    """The job routes of ``app``."""
    router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=ERROR_RESPONSES)

    @router.post(
        "",
        status_code=202,
        response_model=JobResponse,
        summary="Enqueue a job",
        # The key is read in the route, not by a dependency (FastAPI solves each dependency
        # in a pass of its own, the busiest route's largest cost of its own): the security
        # requirement ApiKey would document, declared here.
        openapi_extra={"security": [{api_key.scheme_name: []}]},
    )
    async def enqueue(body: EnqueueRequest, request: Request) -> Any:
        key = await api_key(request)
        with enqueue_errors(body):
            return await enqueue_in_one_round_trip(app, body, key)

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
            rows = await with_eta(session, rows)
        items = [JobResponse.model_validate(row) for row in rows]
        more = len(items) == limit
        return JobPage(items=items, next_cursor=str(items[-1].id) if more and items else None)

    @router.post(
        "/bulk", response_model=BulkResult, responses=CONFLICT, summary="Cancel or retry many jobs"
    )
    async def bulk(body: BulkRequest, key: ApiKey) -> BulkResult:
        flt = body.filter
        act = control.acancel_jobs if body.action == "cancel" else control.aretry_jobs
        try:
            async with acting(app, key) as session:
                results = await act(
                    session.conn, ids=body.ids, status=flt.status if flt else None,
                    type=flt.type if flt else None, limit=body.limit,
                    actor=session.principal.user_id,
                )  # fmt: skip
        except control.DedupeKeyHeld:  # raced with a new job taking a dedupe key
            raise ApiError(409, DEDUPE_HELD) from None
        ids = [r.job_id for r in results if r.done and r.job_id is not None]
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
            if not session.principal.is_admin:
                spec = app.registry.get((await read_job(session, uid)).type)
                if spec is not None:
                    check_user_priority(spec, body.priority)
            actor = session.principal.user_id
            result = await control.aset_priority(session.conn, uid, body.priority, actor=actor)
            if not result.done:
                await refuse_archived(session, result, "reprioritised")
                raise not_found()
            return await read_job(session, uid)

    @router.post(
        "/{job_id}/cancel", response_model=JobResponse, responses=CONFLICT, summary="Cancel a job"
    )
    async def cancel_job(job_id: str, key: ApiKey) -> JobResponse:
        return await _act(job_id, key, control.acancel, "cancelled")

    @router.post(
        "/{job_id}/retry",
        response_model=JobResponse,
        responses=CONFLICT,
        summary="Retry a failed or cancelled job",
    )
    async def retry_job(job_id: str, key: ApiKey) -> JobResponse:
        return await _act(job_id, key, control.aretry, "retried")

    async def _act(job_id: str, key: str | None, action: Action, verb: str) -> JobResponse:
        uid = job_id_or_404(job_id)
        async with acting(app, key) as session:
            result = await action(session.conn, uid, actor=session.principal.user_id)
            if not result.done:
                await refuse_archived(session, result, verb)
            refuse_unless_done(result, verb)
            return await read_job(session, uid)

    return router
