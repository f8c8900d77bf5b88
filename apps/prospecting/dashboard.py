"""The "Prospecting" dashboard page: a form to start a campaign, your campaigns, and a
campaign's live view (bar, stage, the five metrics and running cost over the dashboard's
Server-Sent Events), then its results table and CSV download.

No ``from __future__ import annotations``: FastAPI resolves the handlers' annotations."""

from importlib.resources import files
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from nightcrew.http.dashboard import check_csrf, dashboard_session, flash_url, read_form, render
from prospecting import campaigns
from prospecting.models import CampaignRequest
from prospecting.settings import SettingsSource

if TYPE_CHECKING:
    from nightcrew import App

TERMINAL = ("completed", "failed", "cancelled")
FORM_FIELDS = {"businessType": "business type", "location": "location",
               "maxResults": "max results", "budget": "budget"}  # fmt: skip


def campaign_form(form: dict[str, str]) -> tuple[str | None, CampaignRequest | None]:
    """The campaign request from the form, or the problem in words (naming the field)."""
    body = {name: form.get(name, "").strip() for name in FORM_FIELDS}
    if not body["budget"]:
        body.pop("budget")
    try:
        return None, CampaignRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = str(first["loc"][0]) if first["loc"] else "form"
        return f"{FORM_FIELDS.get(where, where)}: {first['msg']}", None


def build_dashboard_router(app: "App", settings_of: SettingsSource) -> APIRouter:
    """``/prospecting`` pages of ``app``'s dashboard (queries on the page's session)."""
    router = APIRouter(prefix="/prospecting", include_in_schema=False)
    script = files("prospecting").joinpath("templates/prospecting/prospecting.js").read_text()

    @router.get("", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        async with dashboard_session(request) as session:
            mine = await campaigns.list_campaigns(session.conn, limit=20)
            return await render(request, session, "prospecting/index.html", campaigns=mine,
                                 form=request.query_params)  # fmt: skip

    @router.post("/campaigns")
    async def start(request: Request) -> Response:
        form = await read_form(request)
        check_csrf(request, form)
        problem, body = campaign_form(form)
        if problem is not None or body is None:
            return RedirectResponse(flash_url(request, "/prospecting", problem or "invalid"), 303)
        async with dashboard_session(request) as session:
            campaign_id, _ = await campaigns.create_campaign(
                app, session.conn, session.principal.user_id, body
            )
        target = f"/prospecting/campaigns/{campaign_id}"
        seconds = campaigns.estimate_seconds(body, settings_of())
        return RedirectResponse(
            flash_url(request, target, f"campaign started: about {seconds} s"), 303
        )

    @router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
    async def campaign_page(request: Request, campaign_id: str) -> Response:
        async with dashboard_session(request) as session:
            uid = campaigns.parse_id(campaign_id)
            found = await campaigns.get_campaign(session.conn, uid) if uid else None
            if found is None or uid is None:
                return await render(request, session, "not_found.html", status=404,
                                    what=f"campaign {campaign_id}")  # fmt: skip
            leads = await campaigns.leads_of(session.conn, uid)
            return await render(request, session, "prospecting/campaign.html", campaign=found,
                                leads=leads, finished=found["status"] in TERMINAL)  # fmt: skip

    @router.get("/campaigns/{campaign_id}/leads.csv")
    async def leads_csv(request: Request, campaign_id: str) -> Response:
        async with dashboard_session(request) as session:
            uid = campaigns.parse_id(campaign_id)
            found = await campaigns.get_campaign(session.conn, uid) if uid else None
            if found is None or uid is None:
                return Response("campaign not found\n", status_code=404, media_type="text/plain")
            leads = await campaigns.leads_of(session.conn, uid)
        return Response(campaigns.leads_csv(leads), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 f'attachment; filename="leads-{uid}.csv"'})  # fmt: skip

    @router.get("/prospecting.js")
    async def page_script() -> Response:
        return Response(script, media_type="text/javascript",
                        headers={"Cache-Control": "no-cache"})  # fmt: skip

    return router
