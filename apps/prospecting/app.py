"""The prospecting application: ``install(app)`` adds its migrations (schema
``prospecting``), the campaign job type (queue ``prospecting``), ``/api/prospecting`` and
the "Prospecting" dashboard page to any nightcrew App.

``prospecting.app:app`` is an App with only prospecting installed, for the command line:
``nightcrew worker --app prospecting.app:app``. Providers are configured by
``PROSPECTING_*`` environment variables (docs/prospecting.md).
"""

from __future__ import annotations

import os
from typing import Any
from uuid import UUID

import httpx

from nightcrew import App, ConfigurationError, JobContext, Limit
from prospecting.api import build_router
from prospecting.campaigns import JOB_TYPE, QUEUE
from prospecting.dashboard import build_dashboard_router
from prospecting.pipeline import http_providers, run_campaign
from prospecting.settings import ProspectingSettings, SettingsSource, load_settings

NAME = "prospecting"
"""The application's name: its job types' prefix, its queue, schema and route prefixes."""


CAMPAIGNS_PER_USER_ENV = "PROSPECTING_CAMPAIGNS_PER_USER"


def campaigns_per_user() -> int:
    """How many campaigns one user runs at once (``$PROSPECTING_CAMPAIGNS_PER_USER``, 2)."""
    text = os.environ.get(CAMPAIGNS_PER_USER_ENV, "2")
    if not text.isdigit() or int(text) < 1:
        raise ConfigurationError(f"{CAMPAIGNS_PER_USER_ENV}: a whole number >= 1, got {text!r}")
    return int(text)


def campaign_handler(settings_of: SettingsSource) -> Any:
    """The ``prospecting.campaign`` handler, calling the providers of ``settings_of()``."""

    async def run(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        """Run one campaign's pipeline (resuming from its checkpoint on a retry)."""
        settings = settings_of()
        async with httpx.AsyncClient(timeout=settings.timeout) as http:
            return await run_campaign(
                ctx, UUID(payload["campaign_id"]), lambda: http_providers(ctx, settings, http)
            )

    return run


def install(app: App, settings: ProspectingSettings | None = None) -> None:
    """Add the prospecting application to ``app``; ``settings`` default to the
    ``PROSPECTING_*`` environment. Refused (``ConfigurationError``) when already there."""
    # Read when used, not at install: the demo points the providers at its sandbox after
    # building its App.
    settings_of: SettingsSource = (lambda: settings) if settings else load_settings
    with app.application(NAME):
        app.add_migrations("prospecting", "prospecting")
        # One user's many campaigns cannot take every worker slot and the whole of the
        # providers' limits: a user runs this many at once (app.set_limit overrides it).
        per_user = Limit(f"{NAME}.campaigns:{{user_id}}", concurrency=campaigns_per_user())
        app.job(JOB_TYPE, queue=QUEUE, timeout=3600, max_attempts=5, limits=[per_user])(
            campaign_handler(settings_of)
        )
        app.add_router(build_router(app, settings_of))
        app.add_dashboard_page(
            "Prospecting", "/prospecting", build_dashboard_router(app, settings_of),
            templates="prospecting",
        )  # fmt: skip


def build_app(
    database_url: str | None = None,
    *,
    prospecting: ProspectingSettings | None = None,
    **settings: Any,
) -> App:
    """A new App with only prospecting installed (``database_url`` and ``settings`` as for
    :class:`nightcrew.App`; ``prospecting`` the providers' settings)."""
    target = App(database_url, **settings)
    install(target, prospecting)
    return target


app = build_app()
"""For the command line only (``nightcrew worker --app prospecting.app:app``)."""
