"""The campaign job: five stages with their own progress ranges (``nightcrew.Stages``).

initializing 0-10, discovering_businesses 10-30 (paid place searches, page by page),
scoring_businesses 30-50 (no calls), enriching_contacts 50-90 (a paid email finder call
per lead, a paid verifier call per email found), storing_results 90-100.

Every paid call is recorded with its cost in the transaction that stores its result (and
the checkpoint), fenced by the job's lease; a call's subject (search page, domain, email)
is unique per campaign, and what is done is read back from the tables on resume: a
resumed campaign never pays twice for the same thing and loses nothing it had stored.
Before each call: cancelled? stop (keeping everything); over budget? stop paying.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import psycopg
from psycopg.rows import dict_row

from nightcrew import JobCancelled, JobContext, Stages
from prospecting import scoring
from prospecting.providers import (
    EmailFinder,
    EmailVerifier,
    HttpEmailFinder,
    HttpEmailVerifier,
    HttpPlaceSearch,
    PlaceSearch,
    ProviderClient,
    Throttle,
)
from prospecting.settings import ProspectingSettings, Provider
from prospecting.sql import query

STAGES = {
    "initializing": (0, 10),
    "discovering_businesses": (10, 30),
    "scoring_businesses": (30, 50),
    "enriching_contacts": (50, 90),
    "storing_results": (90, 100),
}
"""The campaign's stages and their progress ranges."""

Conn = psycopg.AsyncConnection[Any]


@dataclass
class Providers:
    """The three providers a campaign calls, and their settings (price, rate)."""

    places: PlaceSearch
    finder: EmailFinder
    verifier: EmailVerifier
    settings: ProspectingSettings


def provider_throttle(ctx: JobContext, provider: Provider) -> Throttle:
    """One slot of the provider's rate limit per HTTP attempt: nightcrew's keyed limit
    ``prospecting.<provider>``, shared by every worker process (state in Postgres)."""
    key = f"prospecting.{provider.name}"
    return lambda: ctx.limit(key, rate=provider.limit_rate)


def http_providers(
    ctx: JobContext, settings: ProspectingSettings, http: httpx.AsyncClient
) -> Providers:
    """The HTTP clients of the three providers, throttled for this job."""

    def client(name: str) -> ProviderClient:
        return ProviderClient(settings[name], http, provider_throttle(ctx, settings[name]))

    return Providers(
        HttpPlaceSearch(client("places")),
        HttpEmailFinder(client("finder")),
        HttpEmailVerifier(client("verifier")),
        settings,
    )


def domain_of(website: str | None) -> str | None:
    """The host of an http(s) website (or a bare host name), without ``www.``; ``None``
    for anything else (``javascript:...``, ``http:///``, a host without a dot)."""
    text = (website or "").strip()
    if not text:
        return None
    try:  # a malformed URL (an unclosed IPv6 bracket, say) is no website
        parts = urlsplit(text if "://" in text else f"http://{text}")
        host = (parts.hostname or "").removeprefix("www.")
    except ValueError:
        return None
    return host if parts.scheme in ("http", "https") and "." in host else None


def usable_website(website: str | None) -> str | None:
    """The website as given when it is an http(s) URL with a host, else ``None``: provider
    data is not trusted to be a link (nor to score as a website)."""
    if (
        website
        and domain_of(website)
        and website.strip().lower().startswith(("http://", "https://"))
    ):
        return website.strip()
    return None


@dataclass
class Campaign:
    """The campaign a job runs, and its running state."""

    id: UUID
    user_id: str
    business_type: str
    location: str
    max_results: int
    budget: Decimal | None
    spent: Decimal = Decimal(0)
    budget_exhausted: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def search_text(self) -> str:
        """The place search's text query."""
        return f"{self.business_type} in {self.location}"

    def can_afford(self, price: Decimal) -> bool:
        """Whether the next call stays within the budget (always, without one)."""
        return self.budget is None or self.spent + price <= self.budget


async def load_campaign(conn: Conn, campaign_id: UUID) -> Campaign:
    """The campaign row (as the table owner) with what it has spent so far."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("campaign_for_job"), {"id": campaign_id})
        row = await cur.fetchone()
    if row is None:
        raise LookupError(f"campaign {campaign_id} does not exist")
    campaign = Campaign(**row)
    cur2 = await conn.execute(query("campaign_spent"), {"id": campaign_id})
    spent = await cur2.fetchone()
    campaign.spent = Decimal(spent[0]) if spent else Decimal(0)
    return campaign


async def read_metrics(conn: Conn, campaign_id: UUID) -> dict[str, Any]:
    """The five metrics as stored (JSON-ready: cost in dollars, confidence rounded)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("campaign_metrics"), {"id": campaign_id})
        row = await cur.fetchone()
    assert row is not None
    average = row["average_confidence"]
    return {
        "businesses_found": row["businesses_found"],
        "qualified_leads": row["qualified_leads"],
        "leads_enriched": row["leads_enriched"],
        "total_cost": float(row["total_cost"]),
        "average_confidence": None if average is None else round(float(average), 1),
    }


async def record_paid_call(
    ctx: JobContext,
    campaign: Campaign,
    provider: Provider,
    subject: str,
    store: Callable[[Conn], Awaitable[None]],
    *,
    checkpoint: Any = None,
) -> dict[str, Any]:
    """Store a paid call's result (``store``), its cost and the new metrics in one
    transaction fenced by the lease; returns the metrics.

    A cancel request arriving while the call was out still has its result and cost
    recorded (as the table owner: a cancelled job is not run elsewhere), then stops the job.
    """

    async def write(conn: Conn) -> dict[str, Any]:
        params = {
            "campaign_id": campaign.id,
            "user_id": campaign.user_id,
            "provider": provider.name,
            "subject": subject,
            "cost": provider.price,
        }
        cur = await conn.execute(query("call_insert"), params)
        if await cur.fetchone() is not None:
            campaign.spent += provider.price
        await store(conn)
        return await read_metrics(conn, campaign.id)

    try:
        async with ctx.transaction() as conn:
            metrics = await write(conn)
            if checkpoint is not None:
                await ctx.save(checkpoint=checkpoint)
    except JobCancelled:
        pool = await ctx.app.apool()
        async with pool.connection() as conn, conn.transaction():
            await write(conn)
        raise
    campaign.metrics = metrics
    return metrics


def stop_if_cancelled(ctx: JobContext) -> None:
    """Stop before the next provider call once the job is cancelled."""
    if ctx.cancelled:
        raise JobCancelled(f"job {ctx.job.id} was cancelled")


async def discover(
    ctx: JobContext, stages: Stages, campaign: Campaign, providers: Providers
) -> None:
    """Search places page by page until ``max_results`` businesses are stored."""
    price = providers.settings["places"]
    state = ctx.checkpoint or {}
    found = int(campaign.metrics.get("businesses_found", 0))
    await stages.enter("discovering_businesses", total=campaign.max_results, done=found)
    token: str | None = state.get("next_token")
    page = int(state.get("page", 0))
    while found < campaign.max_results and not state.get("discovered"):
        if not campaign.can_afford(price.price):
            campaign.budget_exhausted = True
            return
        stop_if_cancelled(ctx)
        result = await providers.places.search(
            campaign.search_text, token, idempotency_key=f"{campaign.id}:places:page:{page + 1}"
        )
        wanted = result.places[: campaign.max_results - found]
        rows = [
            {"campaign_id": campaign.id, "place_id": p.place_id, "user_id": campaign.user_id,
             "position": found + i, "name": p.name, "address": p.address,
             "website": website, "domain": domain_of(website), "phone": p.phone,
             "rating": p.rating, "reviews": p.reviews}
            for i, (p, website) in enumerate((p, usable_website(p.website)) for p in wanted)
        ]  # fmt: skip
        token = result.next_token
        last = token is None or found + len(rows) >= campaign.max_results

        async def store(conn: Conn, rows: list[dict[str, Any]] = rows) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(query("business_insert"), rows)

        page += 1
        state = {"next_token": token, "page": page, "discovered": last}
        metrics = await record_paid_call(ctx, campaign, price, f"page:{page}", store,
                                         checkpoint=state)  # fmt: skip
        found = metrics["businesses_found"]
        await stages.advance(found, metrics=metrics)
        if token is None:
            break


async def score(ctx: JobContext, stages: Stages, campaign: Campaign) -> None:
    """Score every business found; the qualified ones become leads (no paid call)."""
    async with ctx.transaction() as conn:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query("businesses_to_score"), {"id": campaign.id})
            rows = await cur.fetchall()
        await stages.enter("scoring_businesses", total=len(rows))
        updates = []
        for row in rows:
            signals = scoring.Signals(row["website"], row["phone"],
                                      _float(row["rating"]), row["reviews"])  # fmt: skip
            updates.append({"campaign_id": campaign.id, "place_id": row["place_id"],
                            "score": scoring.base_score(signals),
                            "qualified": scoring.qualifies(signals)})  # fmt: skip
        async with conn.cursor() as cur:
            await cur.executemany(query("business_score"), updates)
        campaign.metrics = await read_metrics(conn, campaign.id)
        await stages.complete(metrics=campaign.metrics)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


async def enrich(ctx: JobContext, stages: Stages, campaign: Campaign, providers: Providers) -> None:
    """Find and verify an email for every lead not enriched yet, one paid call at a time."""
    pool = await ctx.app.apool()
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("leads_to_enrich"), {"id": campaign.id})
        pending = await cur.fetchall()
    qualified = int(campaign.metrics.get("qualified_leads", 0))
    await stages.enter("enriching_contacts", total=qualified,
                       done=qualified - len(pending), metrics=campaign.metrics)  # fmt: skip
    for lead in pending:
        if not await enrich_one(ctx, campaign, providers, lead):
            return
        await stages.advance(campaign.metrics["leads_enriched"], metrics=campaign.metrics)


async def enrich_one(
    ctx: JobContext, campaign: Campaign, providers: Providers, lead: dict[str, Any]
) -> bool:
    """The finder call (if not made) then the verifier call (if an email was found and
    not verified yet) for one lead. False when the budget stopped it."""
    signals = scoring.Signals(lead["website"], lead["phone"], _float(lead["rating"]),
                              lead["reviews"])  # fmt: skip
    key = {"campaign_id": campaign.id, "place_id": lead["place_id"]}
    email: str | None = lead["email"]
    if not lead["finder_done"]:
        finder = providers.settings["finder"]
        if not campaign.can_afford(finder.price):
            campaign.budget_exhausted = True
            return False
        stop_if_cancelled(ctx)
        found = await providers.finder.find(
            lead["domain"], idempotency_key=f"{campaign.id}:finder:domain:{lead['domain']}"
        )
        email = found.email
        signals = scoring.Signals(**{**signals.__dict__, "email_found": email is not None})
        params = {**key, "email": email, "confidence": scoring.confidence(signals)}

        async def store_email(conn: Conn) -> None:
            await conn.execute(query("business_found_email"), params)

        await record_paid_call(ctx, campaign, finder, f"domain:{lead['domain']}", store_email)
    if email is None:
        return True
    verifier = providers.settings["verifier"]
    if not campaign.can_afford(verifier.price):
        campaign.budget_exhausted = True
        return False
    stop_if_cancelled(ctx)
    verdict = await providers.verifier.verify(
        email, idempotency_key=f"{campaign.id}:verifier:email:{email}"
    )
    signals = scoring.Signals(**{**signals.__dict__, "email_found": True,
                                 "email_verified": verdict == "valid"})  # fmt: skip
    verified = {**key, "status": verdict, "confidence": scoring.confidence(signals)}

    async def store_verdict(conn: Conn) -> None:
        await conn.execute(query("business_verified"), verified)

    await record_paid_call(ctx, campaign, verifier, f"email:{email}", store_verdict)
    return True


def summary_of(campaign: Campaign, *, cancelled: bool = False) -> str:
    """``42 businesses, 25 qualified leads, 25 enriched, $3.61 spent`` (+ why it stopped)."""
    m = campaign.metrics
    text = (
        f"{m.get('businesses_found', 0)} businesses, {m.get('qualified_leads', 0)} qualified "
        f"leads, {m.get('leads_enriched', 0)} enriched, ${m.get('total_cost', 0):.2f} spent"
    )
    if campaign.budget_exhausted:
        text += f"; stopped paying at the ${campaign.budget:.2f} budget"
    if cancelled:
        text += "; cancelled (the leads found so far are kept)"
    return text


async def finish(conn: Conn, campaign: Campaign, summary: str) -> None:
    """Write the campaign's summary and end time."""
    await conn.execute(query("campaign_finish"), {
        "id": campaign.id, "summary": summary, "budget_exhausted": campaign.budget_exhausted,
    })  # fmt: skip


async def run_campaign(
    ctx: JobContext, campaign_id: UUID, make_providers: Callable[[], Providers]
) -> dict[str, Any]:
    """The whole pipeline of one campaign (resumable from its checkpoint and tables)."""
    pool = await ctx.app.apool()
    async with pool.connection() as conn:
        campaign = await load_campaign(conn, campaign_id)
        campaign.metrics = await read_metrics(conn, campaign_id)
    # A resumed attempt starts its bar where the last one left it (never backwards).
    job = await ctx.app.aget_job(ctx.job.id)
    stages = ctx.stages(STAGES, floor=job.progress if job is not None else 0.0)
    await stages.enter("initializing", metrics=campaign.metrics)
    providers = make_providers()
    await stages.complete()
    try:
        await discover(ctx, stages, campaign, providers)
        await score(ctx, stages, campaign)
        if not campaign.budget_exhausted:
            await enrich(ctx, stages, campaign, providers)
    except JobCancelled:
        if ctx.cancelled:  # not a timeout or a shutdown: those run the campaign again
            async with pool.connection() as conn:
                campaign.metrics = await read_metrics(conn, campaign_id)
                await finish(conn, campaign, summary_of(campaign, cancelled=True))
        raise
    await stages.enter("storing_results", metrics=campaign.metrics)
    async with ctx.transaction() as conn:
        campaign.metrics = await read_metrics(conn, campaign_id)
        summary = summary_of(campaign)
        await finish(conn, campaign, summary)
        await stages.complete(metrics=campaign.metrics)
    return {"campaign_id": str(campaign_id), **campaign.metrics,
            "budget_exhausted": campaign.budget_exhausted, "summary": summary}  # fmt: skip
