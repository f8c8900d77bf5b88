"""The ASGI application of the estimating App: nightcrew's HTTP API plus ``/api/estimating``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from nightcrew.http import create_app

if TYPE_CHECKING:
    from nightcrew import App


def create_web_app(app: App) -> FastAPI:
    """``nightcrew.http.create_app(app)`` with the App's own routers included (newer
    nightcrew versions include them already; then nothing is added twice)."""
    api = create_app(app)
    served = set(api.openapi()["paths"])
    for router, prefix in app.http_routers:
        paths = {prefix + getattr(route, "path", "") for route in router.routes}
        if not paths & served:
            api.include_router(router, prefix=prefix)
    api.openapi_schema = None  # regenerate with the routes just added
    return api
