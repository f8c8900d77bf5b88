"""The estimating application: ``install(app)`` adds its job types, schedules, migrations,
HTTP routes and dashboard page to any nightcrew App (beside other applications).

``estimating.app:app`` is an App with only estimating installed, for the command line:
``nightcrew worker --app estimating.app:app`` runs the jobs and the scheduler;
``nightcrew serve --app estimating.app:app`` serves ``/api/estimating`` beside nightcrew's API.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from typing import Any

from estimating import bulk, popularity, prices, projects, reports
from estimating.api import build_router
from estimating.costs import calculate_costs
from estimating.dashboard import build_dashboard_router
from estimating.models import (
    BulkAssemblyUpdateRequest,
    BulkPriceUpdateRequest,
    CalculationRequest,
)
from nightcrew import App, EmailTemplate, JobContext, admin_user_ids

QUEUE = "estimating"
ALERT_EMAIL_ENV = "ESTIMATING_ALERT_EMAIL"
"""Where price spike alerts are emailed (besides the in-app notification), if set."""


async def aggregate_popularity(ctx: JobContext, payload: dict[str, Any] | None) -> dict[str, Any]:
    """Recompute popularity and co-occurrence over the last 30 days (``as_of`` optional)."""
    as_of = (payload or {}).get("as_of")
    now = datetime.fromisoformat(as_of) if as_of else None
    pool = await ctx.app.apool()
    async with pool.connection() as conn:
        result = await popularity.aggregate_popularity(conn, now=now)
    result["summary"] = (
        f"popularity of {result['items']} items, {result['pairs']} co-occurrence pairs "
        f"in {result['seconds']} s"
    )
    return result


async def capture_price_snapshot(ctx: JobContext, payload: dict[str, Any] | None) -> dict[str, Any]:
    """Snapshot the day's prices (``day`` optional, default today UTC), then alert on spikes."""
    day_text = (payload or {}).get("day")
    day = date.fromisoformat(day_text) if day_text else datetime.now(UTC).date()
    pool = await ctx.app.apool()
    async with pool.connection() as conn:
        counts = await prices.capture_snapshot(conn, day)
        await ctx.save(progress=80, stage="checking for price spikes")
        spikes = await prices.detect_spikes(conn, day)
        admins = await admin_user_ids(conn)
    for spike in spikes:
        await raise_price_alert(ctx.app, spike, admins)
    return {
        **counts, "day": day.isoformat(), "alerts": spikes,
        "summary": f"prices of {counts['catalogue']} catalogue entries, {counts['items']} "
                   f"items and {counts['projects']} active projects captured for {day}; "
                   f"{len(spikes)} spike alert(s)",
    }  # fmt: skip


async def raise_price_alert(target: App, spike: dict[str, Any], admins: list[str]) -> None:
    """Notify a price spike through nightcrew's notifications: tiny jobs whose summary is
    the alert. In-app notifications belong to a job's user, so each admin gets their own
    (admins are the ones who change the shared catalogue); one more carries the email to
    ``$ESTIMATING_ALERT_EMAIL`` when it is set."""
    alert_key = f"price-alert:{spike['code']}:{spike['period_start']}"
    for admin in admins:
        await target.aenqueue(
            "estimating.price_alert", spike, user_id=admin,
            notify={"in_app": True, "on": ["completed"]}, dedupe_key=f"{alert_key}:{admin}",
        )  # fmt: skip
    address = os.environ.get(ALERT_EMAIL_ENV)
    if address:
        await target.aenqueue(
            "estimating.price_alert", spike, notify={"email": address, "on": ["completed"]},
            dedupe_key=f"{alert_key}:email",
        )  # fmt: skip


PRICE_ALERT_EMAIL = EmailTemplate(
    subject="[estimating] {{ job.summary }}",
    text=(
        "{{ job.summary }}\n\n"
        "{{ job.result.code }}: average rate {{ job.result.previous_rate | money }} in the "
        "previous month, {{ job.result.current_rate | money }} this month "
        "({{ '%+.2f' | format(job.result.change_pct) }} %).\n\n{{ job.url }}\n"
    ),
    html=(
        "<p><strong>{{ job.summary }}</strong></p><p>{{ job.result.code }}: average rate "
        "{{ job.result.previous_rate | money }} in the previous month, "
        "{{ job.result.current_rate | money }} this month "
        "({{ '%+.2f' | format(job.result.change_pct) }} %).</p>"
        '<p><a href="{{ job.url }}">{{ job.url }}</a></p>'
    ),
)
"""The price spike email: the alert, and the rates as money."""


async def price_alert(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Carry one spike alert to the notification system (its summary is the message)."""
    return {**payload, "summary": payload["message"]}


async def calculate_costs_job(ctx: JobContext, payload: CalculationRequest) -> dict[str, Any]:
    """Price a list of items for a project; per-item failures stay in their rows."""
    await ctx.save(progress=0, stage=f"pricing {len(payload.items)} items")
    pool = await ctx.app.apool()
    async with pool.connection() as conn:
        result = await calculate_costs(conn, payload)
        # As the table owner: every member of the project sees the result, not only the
        # user who started the job (who alone may read the job itself).
        await projects.record_calculation_result(
            conn, ctx.job.id, payload.project_id, ctx.job.user_id, result
        )
    await ctx.save(progress=100, stage=result["summary"])
    return result


async def bulk_price_update(ctx: JobContext, payload: BulkPriceUpdateRequest) -> dict[str, Any]:
    """Raise catalogue rates by a percentage in checkpointed batches of 50."""
    return await bulk.bulk_price_update(ctx, payload)


async def bulk_assembly_update(
    ctx: JobContext, payload: BulkAssemblyUpdateRequest
) -> dict[str, Any]:
    """Replace one item by another across an assembly tree in checkpointed batches."""
    return await bulk.bulk_assembly_update(ctx, payload)


async def weekly_report(ctx: JobContext, payload: dict[str, Any] | None) -> dict[str, Any]:
    """The usage report of the past seven days."""
    return await reports.weekly_report(ctx, payload)


async def archive_usage(ctx: JobContext, payload: dict[str, Any] | None) -> dict[str, Any]:
    """Move estimates untouched for 13 months, with their lines, to the archive tables."""
    return await reports.archive_usage(ctx, payload)


NAME = "estimating"
"""The application's name: its job types' prefix, its queue, schema and route prefixes."""


def install(app: App) -> None:
    """Add the estimating application to ``app``: its migrations (``estimating`` schema),
    job types (queue ``estimating``), schedules, HTTP routes (``/api/estimating``) and
    dashboard page (``/estimating``). Refused (``ConfigurationError``) when already there."""
    with app.application(NAME):
        app.add_migrations("estimating", "estimating")
        app.job("estimating.aggregate_popularity", queue=QUEUE, timeout=900)(aggregate_popularity)
        app.job("estimating.capture_price_snapshot", queue=QUEUE, timeout=900)(
            capture_price_snapshot
        )
        app.job("estimating.price_alert", queue=QUEUE, public=False,
                notify_template=PRICE_ALERT_EMAIL)(price_alert)  # fmt: skip
        app.job("estimating.calculate_costs", queue=QUEUE, timeout=600)(calculate_costs_job)
        app.job("estimating.bulk_price_update", queue=QUEUE, timeout=3600)(bulk_price_update)
        app.job("estimating.bulk_assembly_update", queue=QUEUE, timeout=3600)(bulk_assembly_update)
        app.job("estimating.weekly_report", queue=QUEUE)(weekly_report)
        app.job("estimating.archive_usage", queue=QUEUE, timeout=3600)(archive_usage)
        app.schedule("estimating.aggregate_popularity", cron="0 * * * *", critical=False)
        app.schedule("estimating.capture_price_snapshot", cron="0 2 * * *")
        # The seed's times: the week's report on Sunday at midnight, the archive on the 1st.
        app.schedule("estimating.weekly_report", cron="0 0 * * 0", critical=False)
        app.schedule("estimating.archive_usage", cron="0 0 1 * *", critical=False)
        app.add_router(build_router(app))
        app.add_dashboard_page(
            "Estimating", "/estimating", build_dashboard_router(app), templates="estimating"
        )


def build_app(database_url: str | None = None, **settings: Any) -> App:
    """A new App with only the estimating application installed (``database_url`` and
    ``settings`` as for :class:`nightcrew.App`)."""
    target = App(database_url, **settings)
    install(target)
    return target


app = build_app()
"""For the command line only (``nightcrew worker/serve --app estimating.app:app``); code
hosts the application on its own App with :func:`install`."""
