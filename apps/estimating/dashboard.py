"""The estimating pages of nightcrew's dashboard (added with ``App.add_dashboard_page``):
the item list, an item's six-month price trend with popularity and suggestions, and the
"Update prices +N %" form that starts the bulk job and shows its live progress bar.

No ``from __future__ import annotations``: FastAPI resolves the handlers' annotations."""

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg.rows import dict_row
from pydantic import ValidationError

from estimating import library, popularity, prices, reports, uptake
from estimating.bulk import select_catalogue_entries
from estimating.errors import EstimatingError
from estimating.models import BulkPriceUpdateRequest
from estimating.sql import query
from nightcrew.http.dashboard import check_csrf, dashboard_session, flash_url, read_form, render

if TYPE_CHECKING:
    from nightcrew import App

BULK_TYPE = "estimating.bulk_price_update"
JUMP_PCT = 10.0
"""A month-over-month change this large is highlighted on the trend chart."""


def build_dashboard_router(app: "App") -> APIRouter:
    """``/estimating`` pages of ``app``'s dashboard. Each page runs its queries on the
    page's own session (one connection, acting as the logged-in user under row-level
    security): taking a second pool connection while the session holds one starved small
    pools."""
    router = APIRouter(prefix="/estimating", include_in_schema=False)

    @router.get("", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        search = (request.query_params.get("q") or "").strip()[:100] or None
        job = None
        async with dashboard_session(request) as session:
            job_id = request.query_params.get("job")
            if job_id:
                try:
                    job = await session.one("http_get_job", {"id": UUID(job_id)})
                except ValueError:
                    job = None
            async with session.conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(query("dashboard_items"), {"search": search, "limit": 40})
                items = await cur.fetchall()
                await cur.execute(query("dashboard_categories"))
                categories = [row["category"] for row in await cur.fetchall()]
            report = await _latest_report(session.conn)
            taken = await uptake.uptake(session.conn)
            return await render(
                request, session, "estimating/index.html", items=items, search=search or "",
                categories=categories, job=job, form=request.query_params, report=report,
                uptake=taken,
            )  # fmt: skip

    @router.get("/items/{code}", response_class=HTMLResponse)
    async def item_page(request: Request, code: str) -> Response:
        async with dashboard_session(request) as session:
            conn = session.conn
            try:
                trend = await prices.price_trend(conn, code, months=6)
                ids = await library.item_ids(conn, [code], field="code")
                popular = await popularity.item_popularity(conn, ids[code])
                suggested = await popularity.suggestions(conn, [ids[code]], limit=5)
            except EstimatingError:
                return await render(request, session, "not_found.html", status=404,
                                    what=f"item {code}")  # fmt: skip
            jump = _biggest_jump(trend["periods"])
            chart = {
                "labels": [p["period_start"][:7] for p in trend["periods"]],
                "datasets": [{"label": f"average price per {trend['unit']}",
                              "data": [p["average_price"] for p in trend["periods"]],
                              "borderColor": "#2152c4", "tension": 0.2,
                              "pointRadius": [7 if p is jump else 3 for p in trend["periods"]],
                              "pointBackgroundColor": [
                                  "#a3161b" if p is jump else "#2152c4"
                                  for p in trend["periods"]]}],
            }  # fmt: skip
            return await render(
                request, session, "estimating/item.html", trend=trend, popular=popular,
                suggested=suggested, chart=chart, jump=jump,
            )  # fmt: skip

    @router.post("/bulk-price-update")
    async def bulk_price_update(request: Request) -> Response:
        form = await read_form(request)
        check_csrf(request, form)
        problem, body = _bulk_request(form)
        async with dashboard_session(request) as session:
            if body is not None and not session.principal.is_admin:
                problem = "a bulk price update needs an admin API key"
            elif body is not None:
                try:
                    await select_catalogue_entries(session.conn, body)
                except EstimatingError as exc:
                    problem = exc.message
            if problem is not None or body is None:
                target = flash_url(request, "/estimating", problem or "invalid form")
                return RedirectResponse(target, 303)
            job_id = await app.aenqueue(
                BULK_TYPE,
                body,
                user_id=session.principal.user_id,
                notify={"in_app": True},
                conn=session.conn,
            )
        message = f"price update +{body.percent} % started"
        return RedirectResponse(flash_url(request, f"/estimating?job={job_id}", message), 303)

    return router


async def _latest_report(conn: Any) -> dict[str, Any] | None:
    """The latest weekly report with only the viewer's project rows, if there is one."""
    try:
        return await reports.read_weekly_report(conn, None)
    except EstimatingError:
        return None


def _biggest_jump(periods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The period with the largest price change, if it moved at least ``JUMP_PCT``."""
    moved = [p for p in periods if p["change_pct"] is not None]
    if not moved:
        return None
    biggest = max(moved, key=lambda p: abs(p["change_pct"]))
    return biggest if abs(biggest["change_pct"]) >= JUMP_PCT else None


def _bulk_request(form: dict[str, str]) -> tuple[str | None, BulkPriceUpdateRequest | None]:
    """The job's payload from the form, or the problem in words."""
    try:
        percent = Decimal(form.get("percent", "").strip())
    except InvalidOperation:
        return "percent: give a number, e.g. 5 or 2.5", None
    category = form.get("category", "").strip()
    codes = [c.strip() for c in form.get("item_codes", "").split(",") if c.strip()]
    selection: dict[str, Any] = {"item_codes": codes} if codes else {
        "filter": {"category": category} if category else {}}  # fmt: skip
    try:
        return None, BulkPriceUpdateRequest.model_validate({"percent": percent, **selection})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "form"
        return f"{where}: {first['msg']}", None
