"""``/api/schedules``: list the stored schedules; admins enable/disable, re-time, run now.

Reading is open to every key (a schedule shows no payload and no user's jobs). Changing a
schedule acts on the whole installation, so it takes an admin key. Each change and its
audit entry (``schedule.update`` / ``schedule.run``, actor = the key's user, before and
after) commit in one transaction, so a change is never left unaudited.

The schedules table is not exposed to the row-level-security role; the key is checked
in its own acting transaction, then the change runs on the App's connection as the
owner, in a thread (the scheduler store is synchronous).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from uuid import UUID

from fastapi import APIRouter
from psycopg.types.json import Jsonb

from nightcrew.errors import ConfigurationError, EnqueueError
from nightcrew.http.errors import ERROR_RESPONSES, ApiError, ErrorResponse, not_found
from nightcrew.http.models import (
    ScheduleChange,
    ScheduleList,
    ScheduleResponse,
    ScheduleRun,
    ScheduleStats7d,
)
from nightcrew.http.routes_jobs import ApiKey
from nightcrew.http.session import acting
from nightcrew.queries import query
from nightcrew.scheduler import store
from nightcrew.scheduler.schedules import check_cron
from nightcrew.scheduler.store import ScheduleInfo, UnknownScheduleError

if TYPE_CHECKING:
    from nightcrew.app import App

ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "not an admin key"},
}
CANNOT_RUN: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "the schedule's job cannot be enqueued"},
}
_AUDITED = ("enabled", "cron", "every_seconds", "timezone", "next_run_at")


def schedule_response(info: ScheduleInfo) -> ScheduleResponse:
    """The API view of a stored schedule (no payload: it is readable by every key)."""
    every = info.every.total_seconds() if info.every is not None else None
    fields = {name: getattr(info, name) for name in ScheduleResponse.model_fields
              if name not in ("every_seconds", "stats_7d")}  # fmt: skip
    stats = info.stats_7d.to_dict() if info.stats_7d else {"succeeded": 0, "failed": 0,
        "avg_duration_s": None, "last_run_at": None, "last_outcome": None}  # fmt: skip
    return ScheduleResponse(every_seconds=every, stats_7d=ScheduleStats7d(**stats), **fields)


def _audited(info: ScheduleInfo) -> dict[str, Any]:
    view = schedule_response(info).model_dump(mode="json", include=set(_AUDITED))
    return {name: view[name] for name in _AUDITED}


def _audit(conn: Any, actor: str, action: str, name: str, before: Any, after: Any) -> None:
    conn.execute(
        query("audit_insert"),
        {"actor": actor, "action": action, "target": f"schedule:{name}",
         "before": Jsonb(before), "after": Jsonb(after)},
    )  # fmt: skip


def change_schedule(app: App, name: str, change: ScheduleChange, actor: str) -> ScheduleInfo:
    """Apply ``change`` to the stored schedule ``name`` and audit it, in one transaction.

    Raises :class:`UnknownScheduleError` (no such schedule) or :class:`ConfigurationError`
    (a bad cron expression). A change that alters nothing is not audited.
    """
    with app.pool().connection() as conn, conn.transaction():
        conn.execute(query("schedule_get_locked"), {"name": name})  # serialises edits
        before = store.get_schedule(conn, name)
        after = before
        if change.cron is not None:
            after = store.set_timing(conn, name, cron=change.cron)
        if change.enabled is not None and change.enabled != after.enabled:
            after = store.set_enabled(conn, name, change.enabled)
        if _audited(before) != _audited(after):
            _audit(conn, actor, "schedule.update", name, _audited(before), _audited(after))
    return after


def run_schedule(app: App, name: str, actor: str) -> UUID:
    """Enqueue the job of schedule ``name`` now and audit it, in one transaction."""
    with app.pool().connection() as conn, conn.transaction():
        job_id = store.run_now(conn, name, registry=app.registry, strict_types=app.strict_types)
        _audit(conn, actor, "schedule.run", name, None, {"job_id": str(job_id)})
    return job_id


async def _admin(app: App, key: str | None) -> str:
    """The admin user of ``key``: 401 for no live key, 403 for a user's key."""
    async with acting(app, key) as session:
        principal = session.principal
    if not principal.is_admin:
        raise ApiError(403, "an admin key is required to manage schedules")
    return principal.user_id


def build_schedules_router(app: App) -> APIRouter:
    """The schedule routes of ``app``."""
    router = APIRouter(prefix="/api/schedules", tags=["schedules"], responses=ERROR_RESPONSES)

    @router.get("", response_model=ScheduleList, summary="Stored schedules and their state")
    async def list_schedules(key: ApiKey) -> ScheduleList:
        async with acting(app, key):
            pass  # any live key may read
        found = await app.aschedules_list()
        return ScheduleList(items=[schedule_response(info) for info in found])

    @router.patch(
        "/{name}",
        response_model=ScheduleResponse,
        responses=ADMIN_ONLY,
        summary="Enable, disable or re-time a schedule (admins)",
    )
    async def patch_schedule(name: str, body: ScheduleChange, key: ApiKey) -> ScheduleResponse:
        actor = await _admin(app, key)
        if body.cron is not None:
            try:
                check_cron(body.cron)
            except ConfigurationError as exc:
                raise ApiError(422, f"cron: {exc}", field="cron") from None
        try:
            info = await asyncio.to_thread(change_schedule, app, name, body, actor)
        except UnknownScheduleError:
            raise not_found("schedule") from None
        return schedule_response(info)

    @router.post(
        "/{name}/run",
        status_code=202,
        response_model=ScheduleRun,
        responses={**ADMIN_ONLY, **CANNOT_RUN},
        summary="Enqueue a schedule's job now (admins)",
    )
    async def run_now(name: str, key: ApiKey) -> ScheduleRun:
        actor = await _admin(app, key)
        try:
            job_id = await asyncio.to_thread(run_schedule, app, name, actor)
        except UnknownScheduleError:
            raise not_found("schedule") from None
        except EnqueueError as exc:  # e.g. this server does not register the job type
            raise ApiError(409, f"schedule {name!r} cannot be run here: {exc}") from None
        return ScheduleRun(schedule=name, job_id=job_id)

    return router
