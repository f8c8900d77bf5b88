"""The dashboard's read-only pages: overview, job history, one job, dead letter, schedules,
alerts and notifications."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nightcrew.http.dashboard.auth import dashboard_session, nightcrew_app
from nightcrew.http.dashboard.views import cron_words, render
from nightcrew.http.models import JobResponse
from nightcrew.http.session import Session
from nightcrew.http.stats import combine, figures
from nightcrew.jobs import JobStatus

STATUSES = tuple(status.value for status in JobStatus)
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7),
          "30d": timedelta(days=30)}  # fmt: skip
PAGE_SIZE = 50
_HEX = re.compile(r"^[0-9a-f]{1,32}$")
LOWEST, HIGHEST = UUID(int=0), UUID(int=(1 << 128) - 1)


def id_at(moment: datetime) -> UUID:
    """The lowest UUIDv7 of ``moment``'s millisecond: ids compare like creation times."""
    return UUID(int=(int(moment.timestamp() * 1000) & 0xFFFF_FFFF_FFFF) << 80)


def id_prefix_window(text: str) -> tuple[UUID, UUID] | None:
    """``[low, high)`` of the ids starting with the hex digits ``text`` (dashes ignored)."""
    digits = text.strip().lower().replace("-", "")
    if not _HEX.match(digits):
        return None
    pad = 32 - len(digits)
    low = int(digits, 16) << (4 * pad)
    return UUID(int=low), UUID(int=min(low + (1 << (4 * pad)), (1 << 128) - 1))


async def job_page_rows(
    session: Session, *, status: str | None, type: str | None, before: UUID, after: UUID
) -> list[dict[str, Any]]:
    """One page of history in the id window ``[after, before)``, newest first."""
    params: dict[str, Any] = {"status": status, "type": type, "before": before, "after": after,
                              "limit": PAGE_SIZE}  # fmt: skip
    if session.principal.is_admin:
        return await session.all("dash_jobs", params)
    params["user_id"] = session.principal.user_id
    return await session.all("dash_user_jobs", params)


def build_pages_router() -> APIRouter:
    """GET routes of the dashboard's pages."""
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> Response:
        app = nightcrew_app(request)
        async with dashboard_session(request) as session:
            await session.one("stats_compact")
            window = combine(await session.all("stats_window"))
            backlog = await session.one("stats_backlog") or {}
            hourly = await session.all("dash_hourly")
            running = await session.all("dash_running", {"limit": 50})
            queued = await session.all("dash_queued", {"limit": 10})
            alerts = []
            if session.principal.is_admin:
                alerts = await session.all("alert_list", {"status": "open", "limit": 5})
            schedules = [s for s in await app.aschedules_list() if s.enabled and s.in_code]
            schedules.sort(key=lambda s: s.next_run_at)
            today = figures(window)
            ended = today["completed"] + today["failed"]
            chart = {"labels": [r["hour"].astimezone(UTC).strftime("%H:00") for r in hourly],
                     "completed": [r["completed"] for r in hourly],
                     "failed": [r["failed"] + r["cancelled"] for r in hourly]}  # fmt: skip
            return await render(
                request, session, "overview.html",
                today=today, backlog=backlog, chart=chart,
                success_rate=(100 * today["completed"] / ended) if ended else None,
                running=running, queued=queued, alerts=alerts,
                schedules=[(s, cron_words(s.cron, s.every, s.timezone)) for s in schedules[:5]],
            )  # fmt: skip

    @router.get("/jobs", response_class=HTMLResponse)
    async def history(request: Request) -> Response:
        q = request.query_params
        problems: list[str] = []
        status = q.get("status") or None
        if status is not None and status not in STATUSES:
            problems.append(f"unknown status {status!r}")
            status = None
        type_ = (q.get("type") or "").strip()[:200] or None
        window = RANGES.get(q.get("range", ""))
        after = id_at(datetime.now(UTC) - window) if window else LOWEST
        before = HIGHEST
        search = (q.get("q") or "").strip()
        if search:
            try:
                return RedirectResponse(f"/jobs/{UUID(search)}", 303)
            except ValueError:
                bounds = id_prefix_window(search)
                if bounds is None:
                    problems.append("search: give a job id or the hex digits it starts with")
                else:
                    after, before = max(after, bounds[0]), bounds[1]
        cursor = q.get("cursor")
        if cursor:
            try:
                before = min(before, UUID(cursor))
            except ValueError:
                problems.append("cursor: not a page link of this dashboard")
        async with dashboard_session(request) as session:
            rows = await job_page_rows(session, status=status, type=type_, before=before,
                                       after=after)  # fmt: skip
            keep = {k: v for k, v in q.items() if k != "cursor" and v}
            return await render(
                request, session, "jobs.html", jobs=rows, statuses=STATUSES, ranges=RANGES,
                filters=keep, problems=problems,
                next_cursor=str(rows[-1]["id"]) if len(rows) == PAGE_SIZE else None,
            )  # fmt: skip

    @router.get("/jobs/{job_id}", response_class=HTMLResponse)
    async def job_page(request: Request, job_id: str) -> Response:
        try:
            uid = UUID(job_id)
        except ValueError:
            uid = None
        async with dashboard_session(request) as session:
            job = await session.one("dash_job", {"id": uid}) if uid else None
            if job is None:
                return await render(request, session, "not_found.html", status=404,
                                    what=f"job {job_id}")  # fmt: skip
            audit = await session.all("audit_list", {"target": str(uid), "cursor": None,
                                                     "limit": 50})  # fmt: skip
            started, ended = job["started_at"], job["completed_at"]
            runtime = ((ended or datetime.now(UTC)) - started).total_seconds() if started else None
            owner = job["user_id"] == session.principal.user_id
            # An archived job (moved to jobs_history by pruning) is shown read-only.
            may_act = (session.principal.is_admin or owner) and not job["archived"]
            return await render(
                request, session, "job.html", job=job, audit=audit, runtime=runtime,
                timeline=timeline(job), may_act=may_act,
                attempts=failed_attempts(job["errors"], session.principal.is_admin),
                live=JobResponse.model_validate(job).model_dump(mode="json"),
            )  # fmt: skip

    @router.get("/dead", response_class=HTMLResponse)
    async def dead_letter(request: Request) -> Response:
        before = HIGHEST
        cursor = request.query_params.get("cursor")
        if cursor:
            with contextlib.suppress(ValueError):
                before = UUID(cursor)
        async with dashboard_session(request) as session:
            rows = await job_page_rows(session, status="failed", type=None, before=before,
                                       after=LOWEST)  # fmt: skip
            return await render(
                request, session, "dead.html", jobs=rows,
                next_cursor=str(rows[-1]["id"]) if len(rows) == PAGE_SIZE else None,
            )  # fmt: skip

    @router.get("/schedules", response_class=HTMLResponse)
    async def schedules(request: Request) -> Response:
        app = nightcrew_app(request)
        async with dashboard_session(request) as session:
            found = await app.aschedules_list()
            rows = [(s, cron_words(s.cron, s.every, s.timezone)) for s in found]
            return await render(request, session, "schedules.html", schedules=rows)

    @router.get("/queues", response_class=HTMLResponse)
    async def queues(request: Request) -> Response:
        app = nightcrew_app(request)
        async with dashboard_session(request) as session:
            found = await asyncio.to_thread(app.queues)  # counts only: any user
            # Limits act on the whole installation: admins only, like /api/limits.
            limits = await asyncio.to_thread(app.limits) if session.principal.is_admin else []
            return await render(request, session, "queues.html", queues=found, limits=limits)

    @router.get("/alerts", response_class=HTMLResponse)
    async def alerts(request: Request) -> Response:
        async with dashboard_session(request) as session:
            if not session.principal.is_admin:
                return await render(request, session, "forbidden.html", status=403,
                                    what="Alerts are shown to admins only.")  # fmt: skip
            open_ = await session.all("alert_list", {"status": "open", "limit": 100})
            resolved = await session.all("alert_list", {"status": "resolved", "limit": 20})
            return await render(request, session, "alerts.html", open=open_, resolved=resolved)

    @router.get("/notifications", response_class=HTMLResponse)
    async def notifications(request: Request) -> Response:
        async with dashboard_session(request) as session:
            rows = await session.all(
                "notify_inbox_list",
                {"user_id": session.principal.user_id, "before": None, "unread_only": False,
                 "limit": 50},
            )  # fmt: skip
            return await render(request, session, "notifications.html", items=rows)

    return router


def failed_attempts(errors: list[dict[str, Any]] | None, is_admin: bool) -> list[dict[str, Any]]:
    """The job's failed attempts as its page shows them: admins get the workers'
    tracebacks, other users (owners) only each error's type and message, because a
    traceback shows the worker's code, paths and local values."""
    if is_admin:
        return list(errors or [])
    return [{k: v for k, v in entry.items() if k != "traceback"} for entry in errors or []]


def timeline(job: dict[str, Any]) -> list[tuple[datetime, str, str]]:
    """The job's life as ``(time, kind, text)``, oldest first: created, scheduled, each failed
    attempt, started, finished (stages seen while the page is open are added live)."""
    events = [(job["created_at"], "created", "enqueued" +
               (f" by {job['user_id']}" if job["user_id"] else ""))]  # fmt: skip
    if job["run_at"] > job["created_at"] + timedelta(seconds=1):
        events.append((job["run_at"], "scheduled", "due to run"))
    for entry in job["errors"] or []:
        at = datetime.fromisoformat(entry["at"]) if entry.get("at") else job["created_at"]
        events.append((at, "failed", f"attempt {entry.get('attempt')} failed: "
                       f"{entry.get('type')}: {entry.get('message')}"))  # fmt: skip
    if job["started_at"]:
        events.append((job["started_at"], "started", f"attempt {job['attempts']} started"))
    if job["stage"]:  # only the latest stage is stored; the page adds later ones live
        at = min(job["updated_at"], job["completed_at"] or job["updated_at"])
        events.append((at, "stage", f"stage: {job['stage']}"))
    if job["completed_at"]:
        events.append((job["completed_at"], job["status"], job["status"]))
    return sorted(events, key=lambda e: e[0])
