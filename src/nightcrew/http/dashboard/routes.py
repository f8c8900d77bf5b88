"""The dashboard's router: pages, actions, event streams, static files and apps' pages."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import Response

from nightcrew.http.dashboard.actions import build_actions_router
from nightcrew.http.dashboard.pages import build_pages_router
from nightcrew.http.dashboard.stream import build_stream_router

if TYPE_CHECKING:
    from nightcrew.app import App

STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".md": "text/plain",
                ".svg": "image/svg+xml"}  # fmt: skip


def build_dashboard_router(app: App) -> APIRouter:
    """Every dashboard route (none of them in the OpenAPI schema), with the pages that
    ``app`` added through :meth:`~nightcrew.App.add_dashboard_page`."""
    router = APIRouter(include_in_schema=False)
    static = resources.files("nightcrew.http.dashboard") / "static"
    files = {
        entry.name: (entry.read_bytes(), STATIC_TYPES[suffix])
        for entry in static.iterdir()
        if (suffix := "." + entry.name.rsplit(".", 1)[-1]) in STATIC_TYPES
    }

    @router.get("/static/{name}")
    async def static_file(name: str) -> Response:
        found = files.get(name)
        if found is None:
            return Response("not found", 404)
        body, media_type = found
        return Response(body, media_type=media_type,
                        headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip

    router.include_router(build_pages_router())
    router.include_router(build_actions_router())
    router.include_router(build_stream_router())
    for page in app.dashboard_pages:
        router.include_router(page.router, include_in_schema=False)
    return router
