"""The league application: ``install(app)`` adds its job types, nightly schedule,
migrations (schema ``league``), HTTP routes (``/api/league``) and dashboard page
(``/league``) to any nightcrew App.

``league.app:app`` is an App with only the league installed, for the command line:
``nightcrew worker --app league.app:app`` runs the jobs and the nightly trigger;
``nightcrew serve --app league.app:app`` serves ``/api/league`` beside nightcrew's API.
"""

from __future__ import annotations

from typing import Any

from league import jobs
from league.api import build_router
from league.cache import LeagueHub
from league.dashboard import build_dashboard_router
from league.runs import FUNCTION_TYPE, INVALIDATE_TYPE, REFRESH_TYPE
from nightcrew import App

NAME = "league"
"""The application's name: its job types' prefix, its queue, schema and route prefixes."""
QUEUE = "league"
FUNCTION_ATTEMPTS = 3
RETRY_BACKOFF = 1.0
"""Seconds before a failed statistics function's first retry (doubling, jittered)."""
NIGHTLY_CRON = "0 3 * * *"


def install(app: App, *, retry_backoff: float = RETRY_BACKOFF) -> None:
    """Add the league application to ``app``, with its per-process cache (one
    :class:`~league.cache.LeagueHub` per App). ``retry_backoff``: seconds before a
    statistics function's first retry (tests shorten it). Refused
    (``ConfigurationError``) when already there."""
    hub = LeagueHub(app)
    with app.application(NAME):
        app.add_migrations("league", "league")
        app.job(REFRESH_TYPE, queue=QUEUE, priority=10, timeout=60, public=False)(
            jobs.refresh_stats
        )
        app.job(FUNCTION_TYPE, queue=QUEUE, max_attempts=FUNCTION_ATTEMPTS, timeout=300,
                backoff=retry_backoff, public=False)(jobs.run_statistic)  # fmt: skip
        app.job(INVALIDATE_TYPE, queue=QUEUE, priority=10, timeout=60, public=False)(
            jobs.invalidate_cache
        )
        app.job("league.nightly_refresh", queue=QUEUE, public=False)(jobs.nightly_refresh)
        app.schedule("league.nightly_refresh", cron=NIGHTLY_CRON)
        app.add_router(build_router(app, hub))
        app.add_dashboard_page(
            "League", "/league", build_dashboard_router(app, hub), templates="league"
        )


def build_app(database_url: str | None = None, **settings: Any) -> App:
    """A new App with only the league installed (arguments as for :class:`nightcrew.App`)."""
    target = App(database_url, **settings)
    install(target)
    return target


app = build_app()
"""For the command line only (``nightcrew worker/serve --app league.app:app``); code hosts
the application on its own App with :func:`install`."""
