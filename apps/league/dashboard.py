"""The League page of nightcrew's dashboard: the Background Job Status table of the last
ten statistics runs (live over Server-Sent Events, Retry on failed runs), the admin's
"Refresh statistics" button, and a few statistics.

No ``from __future__ import annotations``: FastAPI resolves the handlers' annotations."""

import asyncio
import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from league import runs
from league.api import read_stats
from league.cache import LeagueHub
from league.runs import Trigger
from nightcrew.http import ApiError
from nightcrew.http.dashboard import check_csrf, dashboard_session, flash_url, read_form, render

if TYPE_CHECKING:
    from nightcrew import App

RUNS_SHOWN = 10
COALESCE_SECONDS = 0.2
"""A burst of run changes costs one re-read per open page."""
HEARTBEAT_SECONDS = 15.0
STATIC = {"league.js": "text/javascript", "league.css": "text/css"}
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def build_dashboard_router(app: "App", hub: LeagueHub) -> APIRouter:
    """``/league`` pages of ``app``'s dashboard."""
    router = APIRouter(prefix="/league", include_in_schema=False)

    @router.get("", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        await hub.start()
        ratings = await cached_stats(app, hub, "player_power_rating")
        all_time = await cached_stats(app, hub, "all_time_stats")
        async with dashboard_session(request) as session:
            recent = await runs.recent_runs(session.conn, RUNS_SHOWN)
            return await render(
                request, session, "league/index.html", runs=recent, request_id=str(uuid4()),
                ratings=json.loads(ratings)[:10], scorers=_top_scorers(json.loads(all_time)),
            )  # fmt: skip

    @router.post("/refresh")
    async def refresh(request: Request) -> Response:
        form = await read_form(request)
        check_csrf(request, form)
        request_id = form.get("request_id", "").strip()[:200] or str(uuid4())
        return await _trigger(request, Trigger("admin", f"admin:{request_id}"))

    @router.post("/runs/{run_id}/retry")
    async def retry(request: Request, run_id: str) -> Response:
        form = await read_form(request)
        check_csrf(request, form)
        try:
            failed = UUID(run_id)
        except ValueError:
            return RedirectResponse(flash_url(request, "/league", "no such run"), 303)
        return await _trigger(request, Trigger("admin", f"retry:{failed}", retry_of=failed))

    async def _trigger(request: Request, trigger: Trigger) -> Response:
        async with dashboard_session(request) as session:
            if not session.principal.is_admin:
                message = "refreshing statistics needs an admin API key"
                return RedirectResponse(flash_url(request, "/league", message), 303)
            if trigger.retry_of is not None and await _not_failed(session.conn, trigger.retry_of):
                return RedirectResponse(flash_url(request, "/league", "no such failed run"), 303)
            run = await runs.request_run(app, session.conn, trigger, kick=True)
        await runs.announce(app, run)
        message = f"statistics run {run.id} {run.status}"
        return RedirectResponse(flash_url(request, "/league", message), 303)

    @router.get("/events")
    async def events(request: Request) -> Response:
        await hub.start()
        wake = hub.watch_runs()
        try:
            first = await _runs_snapshot(request)
        except BaseException:
            hub.unwatch_runs(wake)
            raise
        if first is None:
            hub.unwatch_runs(wake)
            return Response("log in first", 401)
        stream = _run_stream(request, hub, wake, first)
        return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            return Response("not found", 404)
        text = resources.files("league").joinpath("static", name).read_text()
        return Response(text, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    return router


async def cached_stats(app: "App", hub: LeagueHub, tag: str) -> str:
    """The rows of a tag that has no season, through this process's cache."""
    return await hub.cache.get(tag, "", lambda: read_stats(app, tag, {}))


async def _not_failed(conn: Any, run_id: UUID) -> bool:
    detail = await runs.run_detail(conn, run_id)
    return detail is None or detail["status"] != "failed"


async def _runs_snapshot(request: Request) -> list[dict[str, Any]] | None:
    """The last runs as the logged-in user may see them; None when not logged in."""
    try:
        async with dashboard_session(request) as session:
            return await runs.recent_runs(session.conn, RUNS_SHOWN)
    except (ApiError, HTTPException):  # logged out, expired: the login redirect
        return None


async def _run_stream(
    request: Request, hub: LeagueHub, wake: asyncio.Event, first: list[dict[str, Any]]
) -> AsyncIterator[str]:
    """``runs`` events: the table's rows now and after every change (no timer polls)."""
    snapshot: list[dict[str, Any]] | None = first
    sent = None
    try:
        yield "retry: 2000\n\n"
        while True:
            if snapshot is None:
                wake.clear()  # before reading: a change during the read wakes us again
                snapshot = await _runs_snapshot(request)
                if snapshot is None:
                    return
            text = json.dumps(snapshot, separators=(",", ":"))
            if text != sent:
                yield f"event: runs\ndata: {text}\n\n"
                sent = text
            snapshot = None
            while not wake.is_set():
                try:
                    await asyncio.wait_for(wake.wait(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": heartbeat\n\n"
            await asyncio.sleep(COALESCE_SECONDS)
    finally:
        hub.unwatch_runs(wake)


def _top_scorers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (-r["goals"], r["player_id"]))[:10]
