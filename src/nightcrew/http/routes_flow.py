"""``/api/queues`` and ``/api/limits``: flow control over HTTP.

Any live key reads the queues (counts only: no job, payload or user). Pausing or resuming
a queue, and reading or changing limits, act on the whole installation, so they take an
admin key (403 otherwise). Each change and its audit entry (``queue.pause``,
``queue.resume``, ``limit.set``, ``limit.clear``; actor = the key's user) commit in one
transaction, on the App's connection as the owner (these tables are not exposed to the
row-level-security role).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from psycopg.types.json import Jsonb

from nightcrew import limits as limit_store
from nightcrew import queues as queue_store
from nightcrew.errors import ConfigurationError
from nightcrew.http.errors import ERROR_RESPONSES, ApiError, ErrorResponse, not_found
from nightcrew.http.models import (
    LimitChange,
    LimitList,
    LimitResponse,
    QueueList,
    QueueResponse,
)
from nightcrew.http.routes_jobs import ApiKey
from nightcrew.http.session import acting
from nightcrew.limits import LimitInfo
from nightcrew.queries import query

if TYPE_CHECKING:
    import psycopg

    from nightcrew.app import App

ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "not an admin key"},
}


def audit(conn: psycopg.Connection[Any], actor: str, action: str, target: str,
          before: Any, after: Any) -> None:  # fmt: skip
    """Record one flow-control change in the audit log (in the caller's transaction)."""
    conn.execute(
        query("audit_insert"),
        {"actor": actor, "action": action, "target": target,
         "before": Jsonb(before), "after": Jsonb(after)},
    )  # fmt: skip


def set_queue_paused(app: App, name: str, paused: bool, actor: str) -> bool:
    """Pause or resume queue ``name`` and audit it, in one transaction; False (and no
    audit entry) when it already was."""
    with app.pool().connection() as conn, conn.transaction():
        if paused:
            changed = queue_store.pause(conn, name, by=actor)
        else:
            changed = queue_store.resume(conn, name)
        if changed:
            action = "queue.pause" if paused else "queue.resume"
            audit(conn, actor, action, f"queue:{name}", {"paused": not paused},
                  {"paused": paused})  # fmt: skip
    return changed


def set_limit(app: App, key: str, change: LimitChange, actor: str) -> LimitInfo:
    """Override limit ``key`` and audit it, in one transaction."""
    with app.pool().connection() as conn, conn.transaction():
        before = limit_store.get_limit(conn, key)
        after = limit_store.set_override(
            conn, key, rate=change.rate, concurrency=change.concurrency, by=actor
        )
        audit(conn, actor, "limit.set", f"limit:{key}", _audited(before), _audited(after))
    return after


def clear_limit(app: App, key: str, actor: str) -> LimitInfo | None:
    """Drop the override of ``key`` and audit it; ``None`` when it had none."""
    with app.pool().connection() as conn, conn.transaction():
        before = limit_store.get_limit(conn, key)
        if not limit_store.clear_override(conn, key):
            return None
        after = limit_store.get_limit(conn, key)
        audit(conn, actor, "limit.clear", f"limit:{key}", _audited(before), _audited(after))
    return after


def _audited(info: LimitInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"rate": info.rate, "concurrency": info.concurrency, "overridden": info.overridden}


async def _admin(app: App, key: str | None, what: str) -> str:
    """The admin user of ``key``: 401 for no live key, 403 for a user's key."""
    async with acting(app, key) as session:
        principal = session.principal
    if not principal.is_admin:
        raise ApiError(403, f"an admin key is required to {what}")
    return principal.user_id


def _checked_queue(name: str) -> str:
    try:
        queue_store.check_queue_name(name)
    except ConfigurationError as exc:
        raise ApiError(422, str(exc), field="name") from None
    return name


def build_flow_router(app: App) -> APIRouter:
    """The queue and limit routes of ``app``."""
    router = APIRouter(prefix="/api", tags=["flow control"], responses=ERROR_RESPONSES)

    @router.get("/queues", response_model=QueueList, summary="Queues: depth, running, paused")
    async def list_queues(key: ApiKey) -> QueueList:
        async with acting(app, key):
            pass  # any live key may read: counts only
        found = await asyncio.to_thread(app.queues)
        return QueueList(items=[QueueResponse(**q.as_dict()) for q in found])

    async def change_pause(name: str, key: str | None, paused: bool) -> QueueResponse:
        actor = await _admin(app, key, "pause or resume queues")
        _checked_queue(name)
        await asyncio.to_thread(set_queue_paused, app, name, paused, actor)
        found = await asyncio.to_thread(app.queues)
        info = next(q for q in found if q.name == name)
        return QueueResponse(**info.as_dict())

    @router.post("/queues/{name}/pause", response_model=QueueResponse, responses=ADMIN_ONLY,
                 summary="Pause a queue cluster-wide (admins)")  # fmt: skip
    async def pause_queue(name: str, key: ApiKey) -> QueueResponse:
        return await change_pause(name, key, True)

    @router.post("/queues/{name}/resume", response_model=QueueResponse, responses=ADMIN_ONLY,
                 summary="Resume a paused queue (admins)")  # fmt: skip
    async def resume_queue(name: str, key: ApiKey) -> QueueResponse:
        return await change_pause(name, key, False)

    @router.get("/limits", response_model=LimitList, responses=ADMIN_ONLY,
                summary="Limit keys with their limits and current use (admins)")  # fmt: skip
    async def list_limits(key: ApiKey) -> LimitList:
        await _admin(app, key, "read limits")
        found = await asyncio.to_thread(app.limits)
        return LimitList(items=[LimitResponse(**info.as_dict()) for info in found])

    @router.put("/limits/{key_name:path}", response_model=LimitResponse, responses=ADMIN_ONLY,
                summary="Override a limit key at run time (admins)")  # fmt: skip
    async def put_limit(key_name: str, body: LimitChange, key: ApiKey) -> LimitResponse:
        actor = await _admin(app, key, "change limits")
        try:
            limit_store.override_params(key_name, body.rate, body.concurrency, actor)
        except ConfigurationError as exc:
            field = "rate" if "rate" in str(exc) else "key"
            raise ApiError(422, str(exc), field=field) from None
        info = await asyncio.to_thread(set_limit, app, key_name, body, actor)
        return LimitResponse(**info.as_dict())

    @router.delete("/limits/{key_name:path}", response_model=LimitResponse,
                   responses=ADMIN_ONLY,
                   summary="Drop a limit key's override: the code's apply (admins)")  # fmt: skip
    async def delete_limit(key_name: str, key: ApiKey) -> LimitResponse:
        actor = await _admin(app, key, "change limits")
        try:
            limit_store.check_key(key_name)
        except ConfigurationError as exc:
            raise ApiError(422, str(exc), field="key") from None
        info = await asyncio.to_thread(clear_limit, app, key_name, actor)
        if info is None:
            raise not_found("limit override")
        return LimitResponse(**info.as_dict())

    return router
