"""Campaigns as the API and the dashboard see them: create one (its row and its job in
the request's transaction), read it with its job's live state, its leads as JSON or CSV.
Every read runs on the acting user's connection: row-level security hides the others'."""

from __future__ import annotations

import csv
import io
import math
import re
import uuid
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from prospecting.models import CampaignRequest
from prospecting.settings import ProspectingSettings
from prospecting.sql import query

if TYPE_CHECKING:
    from nightcrew import App

JOB_TYPE = "prospecting.campaign"
QUEUE = "prospecting"
QUALIFY_SHARE = 0.6
"""About this share of the businesses found qualify (the sandbox's; used for estimates)."""
EMAIL_SHARE = 0.75
"""About this share of the qualified leads have an email found (then verified)."""

Conn = psycopg.AsyncConnection[Any]

LEAD_COLUMNS = ("name", "email", "email_status", "confidence", "website", "phone", "rating",
                "reviews", "address", "place_id")  # fmt: skip
"""The CSV columns, in order."""


def estimate_seconds(request: CampaignRequest, settings: ProspectingSettings) -> int:
    """Seconds the campaign should take at the configured rate limits (the floor the
    limits set; provider latency and retries add to it)."""
    pages = math.ceil(request.max_results / 20)
    leads = request.max_results * QUALIFY_SHARE
    seconds = (
        pages / settings["places"].per_second
        + leads / settings["finder"].per_second
        + leads * EMAIL_SHARE / settings["verifier"].per_second
    )
    return max(1, math.ceil(seconds))


async def create_campaign(
    app: App, conn: Conn, user_id: str, request: CampaignRequest
) -> tuple[UUID, UUID]:
    """Enqueue the campaign's job and store the campaign, both in ``conn``'s transaction
    (the worker cannot see the job before the campaign). Returns (campaign id, job id)."""
    campaign_id = uuid.uuid4()
    job_id = await app.aenqueue(
        JOB_TYPE, {"campaign_id": str(campaign_id)}, user_id=user_id, conn=conn,
        notify={"in_app": True},
    )  # fmt: skip
    await conn.execute(query("campaign_insert"), {
        "id": campaign_id, "job_id": job_id, "business_type": request.business_type,
        "location": request.location, "max_results": request.max_results,
        "budget": request.budget,
    })  # fmt: skip
    return campaign_id, job_id


def parse_id(text: str) -> UUID | None:
    """A campaign id from a path, ``None`` when it is not a UUID (then: not found)."""
    try:
        return UUID(text)
    except ValueError:
        return None


async def get_campaign(conn: Conn, campaign_id: UUID) -> dict[str, Any] | None:
    """The campaign (``None`` when it is not the acting user's) with its job's status,
    progress, stage and metrics, read on ``conn`` (no second pool connection per request)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("campaign_get"), {"id": campaign_id})
        row = await cur.fetchone()
    return None if row is None else campaign_json(row)


def campaign_json(row: dict[str, Any]) -> dict[str, Any]:
    """The API's view of a campaign row joined with its job's state."""
    budget = row.get("budget")
    return {
        "campaignId": str(row["id"]),
        "jobId": str(row["job_id"]) if row.get("job_id") else None,
        "businessType": row["business_type"],
        "location": row["location"],
        "maxResults": row["max_results"],
        "budget": None if budget is None else float(budget),
        "status": row.get("status"),
        "progress": float(row.get("progress") or 0),
        "stage": row.get("stage"),
        "metrics": row.get("metrics") or {},
        "summary": row.get("summary"),
        "createdAt": row["created_at"].isoformat(),
        "finishedAt": row["finished_at"].isoformat() if row.get("finished_at") else None,
    }


async def list_campaigns(conn: Conn, limit: int = 50) -> list[dict[str, Any]]:
    """The acting user's campaigns, newest first."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("campaigns_list"), {"limit": limit})
        rows = await cur.fetchall()
    return [campaign_json(row) for row in rows]


async def leads_of(conn: Conn, campaign_id: UUID) -> list[dict[str, Any]]:
    """The campaign's leads, best first (JSON-ready)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("leads_of"), {"id": campaign_id})
        rows = await cur.fetchall()
    return [
        {**row, "rating": None if row["rating"] is None else float(row["rating"]),
         "base_score": None if row["base_score"] is None else float(row["base_score"]),
         "confidence": None if row["confidence"] is None else float(row["confidence"]),
         "enriched": bool(row["finder_done"] and (row["email"] is None
                                                  or row["verifier_done"]))}
        for row in rows
    ]  # fmt: skip


def leads_csv(leads: list[dict[str, Any]]) -> str:
    """The leads as CSV (a header row, then :data:`LEAD_COLUMNS` per lead). Text starting
    with ``= + - @`` is quoted with a leading ``'``: no formula runs in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(LEAD_COLUMNS)
    for lead in leads:
        writer.writerow([_cell(lead.get(column)) for column in LEAD_COLUMNS])
    return out.getvalue()


_NUMBER_LIKE = re.compile(r"[+-][\d\s().-]*")


def _cell(value: Any) -> Any:
    # A phone number such as "+1 555 0100" is data; "+cmd|..." would be a formula.
    formula = isinstance(value, str) and value[:1] in ("=", "+", "-", "@")
    if formula and not _NUMBER_LIKE.fullmatch(value):
        return "'" + value
    return "" if value is None else value
