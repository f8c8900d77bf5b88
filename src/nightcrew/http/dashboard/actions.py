"""The dashboard's form actions: log in and out, retry, cancel, reprioritise, discard,
schedule switches, queue pause/resume and limit overrides. Each needs a valid CSRF token;
job actions act through row-level security (admins: any job, users: their own); schedule,
queue and limit actions need an admin; all audited."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nightcrew import limits as limit_store
from nightcrew.errors import ConfigurationError, EnqueueError
from nightcrew.http.dashboard.auth import (
    check_csrf,
    clear_session_cookie,
    dashboard_session,
    end_session,
    flash_url,
    nightcrew_app,
    open_session,
    read_form,
    safe_next,
    session_id,
    set_session_cookie,
)
from nightcrew.http.dashboard.views import SECURITY_HEADERS, environment, render
from nightcrew.http.errors import ApiError
from nightcrew.http.models import LimitChange, ScheduleChange
from nightcrew.http.routes_flow import clear_limit, set_limit, set_queue_paused
from nightcrew.http.routes_schedules import change_schedule, run_schedule
from nightcrew.http.session import Session
from nightcrew.lifecycle import control
from nightcrew.lifecycle.enqueue import PRIORITY_RANGE
from nightcrew.scheduler.store import UnknownScheduleError

if TYPE_CHECKING:
    from nightcrew.app import App

BULK_LIMIT = 1000
"""Jobs changed by one Retry all / Discard all (press again for more)."""


def done(
    request: Request, form: dict[str, str], message: str, default: str = "/"
) -> RedirectResponse:
    """Back to the page the form came from, with ``message`` shown there."""
    target = safe_next(form.get("next"), default)
    return RedirectResponse(flash_url(request, target, message), 303)


def job_ids(form: dict[str, str]) -> list[str] | None:
    """The ``ids`` field (comma-separated UUIDs), or ``None`` for "all"."""
    raw = form.get("ids", "").strip()
    if raw in ("", "all"):
        return None
    try:
        return [str(UUID(part.strip())) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ApiError(422, "ids: not a list of job ids", field="ids") from None


def build_actions_router() -> APIRouter:
    """POST routes of the dashboard."""
    router = APIRouter(include_in_schema=False)

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> Response:
        return _login_page(request, None, 200)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await read_form(request)
        origin = request.headers.get("origin")
        if origin and origin.rstrip("/") != f"{request.url.scheme}://{request.url.netloc}":
            raise ApiError(403, "cross-site login refused")
        key = form.get("key", "").strip()
        new_id = await open_session(nightcrew_app(request), key) if key else None
        if new_id is None:
            return _login_page(request, "That key is not valid (unknown or revoked).", 401)
        response = RedirectResponse(safe_next(form.get("next")), 303)
        set_session_cookie(response, request, new_id)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        check_csrf(request, await read_form(request))
        sid = session_id(request)
        if sid:
            await end_session(nightcrew_app(request), sid)
        response = RedirectResponse("/login", 303)
        clear_session_cookie(response, request)
        return response

    @router.post("/jobs/{job_id}/{action}")
    async def job_action(request: Request, job_id: str, action: str) -> Response:
        form = await read_form(request)
        check_csrf(request, form)
        form.setdefault("next", f"/jobs/{job_id}")
        try:
            uid = str(UUID(job_id))
        except ValueError:
            return done(request, form, "no such job")
        if action == "discard" and form.get("confirmed") != "1":
            return await _confirm(request, form, f"Discard failed job {uid}? It is deleted.")
        async with dashboard_session(request) as session:
            return done(
                request,
                form,
                await _job_action(nightcrew_app(request), session, action, [uid], form),
            )

    @router.post("/dead/{action}")
    async def dead_bulk(request: Request, action: str) -> Response:
        form = await read_form(request)
        check_csrf(request, form)
        form.setdefault("next", "/dead")
        ids = job_ids(form)
        if ids is None and form.get("confirmed") != "1":
            verb = "Retry" if action == "retry" else "Discard"
            return await _confirm(request, form, f"{verb} every failed job you can see "
                                  f"(up to {BULK_LIMIT})?")  # fmt: skip
        async with dashboard_session(request) as session:
            return done(
                request, form, await _job_action(nightcrew_app(request), session, action, ids, form)
            )

    @router.post("/schedules/{name}/{action}")
    async def schedule_action(request: Request, name: str, action: str) -> Response:
        form = await read_form(request)
        check_csrf(request, form)
        form.setdefault("next", "/schedules")
        app = nightcrew_app(request)
        async with dashboard_session(request) as session:
            if not session.principal.is_admin:
                raise ApiError(403, "schedules can be changed by admins only")
            actor = session.principal.user_id
        # The API's own change functions: the row is locked and the audit entry (real
        # before and after) commits in the change's transaction.
        try:
            if action in ("enable", "disable"):
                change = ScheduleChange(enabled=action == "enable")
                await asyncio.to_thread(change_schedule, app, name, change, actor)
                message = f"{name} {action}d"
            elif action == "run":
                job_id = await asyncio.to_thread(run_schedule, app, name, actor)
                message = f"{name} started: job {job_id}"
            else:
                raise ApiError(404, f"unknown schedule action {action!r}")
        except UnknownScheduleError:
            return done(request, form, f"no schedule named {name!r}")
        except EnqueueError as exc:  # e.g. this server does not register the job type
            return done(request, form, f"{name} cannot be run here: {exc}")
        return done(request, form, message)

    @router.post("/queues/{name}/{action}")
    async def queue_action(request: Request, name: str, action: str) -> Response:
        form = await read_form(request)
        check_csrf(request, form)
        form.setdefault("next", "/queues")
        actor = await _dashboard_admin(request, "queues can be paused by admins only")
        if action not in ("pause", "resume"):
            raise ApiError(404, f"unknown queue action {action!r}")
        try:
            changed = await asyncio.to_thread(
                set_queue_paused, nightcrew_app(request), name, action == "pause", actor
            )
        except ConfigurationError as exc:
            return done(request, form, str(exc))
        state = "paused" if action == "pause" else "resumed"
        return done(request, form, f"{name} {state}" if changed else f"{name} unchanged")

    @router.post("/limits")
    async def limit_action(request: Request) -> Response:
        form = await read_form(request)
        check_csrf(request, form)
        form.setdefault("next", "/queues")
        actor = await _dashboard_admin(request, "limits can be changed by admins only")
        app, key = nightcrew_app(request), form.get("key", "")
        try:
            if form.get("action") == "clear":
                limit_store.check_key(key)
                cleared = await asyncio.to_thread(clear_limit, app, key, actor)
                return done(request, form, f"{key}: override cleared" if cleared
                            else f"{key}: had no override")  # fmt: skip
            change = _limit_change(form)
            await asyncio.to_thread(set_limit, app, key, change, actor)
        except ConfigurationError as exc:
            return done(request, form, str(exc))
        return done(request, form, f"{key}: rate {change.rate or '-'}, "
                    f"concurrency {change.concurrency or '-'}")  # fmt: skip

    @router.post("/notifications/{notification_id}/read")
    async def read_notification(request: Request, notification_id: str) -> Response:
        form = await read_form(request)
        check_csrf(request, form)
        if not (notification_id.isascii() and notification_id.isdigit()):
            return done(request, form, "no such notification", "/notifications")
        async with dashboard_session(request) as session:
            await session.one(
                "notify_inbox_read",
                {"id": int(notification_id), "user_id": session.principal.user_id},
            )
        return done(request, form, "marked read", "/notifications")

    return router


async def _dashboard_admin(request: Request, refusal: str) -> str:
    """The admin user of the dashboard session; 403 for other users."""
    async with dashboard_session(request) as session:
        if not session.principal.is_admin:
            raise ApiError(403, refusal)
        return session.principal.user_id


def _limit_change(form: dict[str, str]) -> LimitChange:
    """The limit form's rate and concurrency (empty: not given), checked."""
    rate = form.get("rate", "").strip() or None
    text = form.get("concurrency", "").strip()
    if text and not (text.isascii() and text.isdigit()):
        raise ConfigurationError(f"concurrency must be an integer >= 1, got {text!r}")
    concurrency = int(text) if text else None
    limit_store.override_params(form.get("key", ""), rate, concurrency, None)
    return LimitChange(rate=rate, concurrency=concurrency)


async def _job_action(
    app: App, session: Session, action: str, ids: list[str] | None, form: dict[str, str]
) -> str:
    """Do ``action`` on the jobs ``ids`` (``None``: every failed job in sight); the message."""
    actor = session.principal.user_id
    if action == "priority":
        try:
            priority = int(form.get("priority", ""))
        except ValueError:
            return "priority: give a whole number"
        if not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
            return f"priority: between {PRIORITY_RANGE[0]} and {PRIORITY_RANGE[1]}"
        if not ids:
            return "no such job"
        refused = await _priority_refused(app, session, ids[0], priority)
        if refused:
            return refused
        result = await control.aset_priority(session.conn, ids[0], priority, actor=actor)
        return f"priority set to {priority}" if result.done else "no such job"
    bulk: dict[str, Any] = {"ids": ids, "actor": actor, "limit": BULK_LIMIT}
    if action == "retry":
        try:
            results = await control.aretry_jobs(
                session.conn, status="failed" if ids is None else None, **bulk
            )
        except control.DedupeKeyHeld:
            return "not retried: a live job holds the same dedupe key"
        count = _done(results)
        return f"{count} job(s) sent back to the queue" if count else "nothing to retry"
    if action == "cancel":
        count = _done(await control.acancel_jobs(session.conn, **bulk))
        return f"{count} job(s) cancelled" if count else "nothing to cancel (finished?)"
    if action == "discard":
        count = _done(await control.adiscard_jobs(session.conn, **bulk))
        return f"{count} failed job(s) discarded" if count else "nothing to discard"
    raise ApiError(404, f"unknown action {action!r}")


async def _priority_refused(app: App, session: Session, job_id: str, priority: int) -> str:
    """Why a non-admin may not give the job ``priority`` (its type's ``priority_range``), as
    the HTTP API's PATCH decides; empty when allowed."""
    if session.principal.is_admin:
        return ""
    row = await session.one("http_get_job", {"id": job_id})
    spec = app.registry.get(row["type"]) if row else None
    if spec is None or spec.allows_priority(priority):
        return ""
    assert spec.priority_range is not None
    low, high = spec.priority_range
    return f"priority: jobs of type {spec.name} take a priority between {low} and {high}"


def _done(results: list[control.ControlResult]) -> int:
    """How many jobs the action changed."""
    return sum(1 for result in results if result.done)


async def _confirm(request: Request, form: dict[str, str], question: str) -> Response:
    """The no-JavaScript confirmation of a destructive action: the same form, confirmed."""
    async with dashboard_session(request) as session:
        fields = {k: v for k, v in form.items() if k not in ("confirmed", "csrf")}
        fields["next"] = safe_next(fields.get("next"))
        return await render(request, session, "confirm.html", question=question,
                            action=request.url.path, fields=fields)  # fmt: skip


def _login_page(request: Request, error: str | None, status: int) -> HTMLResponse:
    env = environment(nightcrew_app(request))
    hours = nightcrew_app(request).settings.dashboard_session_hours
    html = env.get_template("login.html").render(
        error=error, next=safe_next(request.query_params.get("next")), nav=[], user=None,
        session_hours=hours,
    )  # fmt: skip
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
