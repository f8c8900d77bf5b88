"""``/api/prospecting``: submit a campaign (202 at once), follow it, cancel it, read its
leads as JSON or CSV. Same API keys as nightcrew's API; every request acts as the key's
user under row-level security (another user's campaign is a 404).

No ``from __future__ import annotations`` here: FastAPI must resolve the route signatures'
annotations, which name the closure's dependencies."""

from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nightcrew.http import ApiError, Session, acting
from prospecting import campaigns
from prospecting.models import CampaignRequest
from prospecting.settings import SettingsSource

if TYPE_CHECKING:
    from nightcrew import App

bearer = HTTPBearer(auto_error=False, description="A nightcrew API key.")
Key = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def wants_csv(request: Request) -> bool:
    """Whether the client asked for CSV (``Accept: text/csv``) rather than JSON."""
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def build_router(app: "App", settings_of: SettingsSource) -> APIRouter:
    """The prospecting routes of ``app``."""
    router = APIRouter(prefix="/api/prospecting", tags=["prospecting"])

    def secret(key: HTTPAuthorizationCredentials | None) -> str | None:
        return key.credentials if key else None

    async def own_campaign(session: Session, campaign_id: str) -> dict[str, Any]:
        uid = campaigns.parse_id(campaign_id)
        found = await campaigns.get_campaign(session.conn, uid) if uid else None
        if found is None:
            raise ApiError(404, "campaign not found")
        return found

    @router.post("/campaigns", status_code=202, summary="Start a prospecting campaign")
    async def post_campaign(body: CampaignRequest, key: Key) -> dict[str, Any]:
        async with acting(app, secret(key)) as session:
            campaign_id, job_id = await campaigns.create_campaign(
                app, session.conn, session.principal.user_id, body
            )
        return {
            "jobId": str(job_id),
            "campaignId": str(campaign_id),
            "status": "pending",
            "estimatedTime": campaigns.estimate_seconds(body, settings_of()),
            "url": f"/api/prospecting/campaigns/{campaign_id}",
        }

    @router.get("/campaigns", summary="Your campaigns, newest first")
    async def get_campaigns(
        key: Key, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> dict[str, Any]:
        async with acting(app, secret(key)) as session:
            return {"campaigns": await campaigns.list_campaigns(session.conn, limit)}

    @router.get("/campaigns/{campaign_id}", summary="A campaign: status, progress, metrics")
    async def get_campaign(campaign_id: str, key: Key) -> dict[str, Any]:
        async with acting(app, secret(key)) as session:
            return await own_campaign(session, campaign_id)

    @router.get(
        "/campaigns/{campaign_id}/leads",
        summary="A campaign's leads (JSON, or CSV with Accept: text/csv)",
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def get_leads(campaign_id: str, key: Key, request: Request) -> Any:
        async with acting(app, secret(key)) as session:
            campaign = await own_campaign(session, campaign_id)
            leads = await campaigns.leads_of(session.conn, UUID(campaign["campaignId"]))
        if wants_csv(request):
            return Response(
                campaigns.leads_csv(leads),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition":
                         f'attachment; filename="leads-{campaign["campaignId"]}.csv"'},
            )  # fmt: skip
        return {"campaignId": campaign["campaignId"], "leads": leads}

    @router.post("/campaigns/{campaign_id}/cancel", status_code=202,
                 summary="Cancel a campaign (it stops at its next provider call)")  # fmt: skip
    async def cancel_campaign(campaign_id: str, key: Key) -> dict[str, Any]:
        async with acting(app, secret(key)) as session:
            campaign = await own_campaign(session, campaign_id)
        if campaign["jobId"] is None or not await app.acancel(campaign["jobId"]):
            raise ApiError(409, f"campaign is {campaign['status']}: nothing to cancel")
        return {"campaignId": campaign["campaignId"], "jobId": campaign["jobId"],
                "cancelRequested": True}  # fmt: skip

    return router
