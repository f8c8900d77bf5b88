"""Build the FastAPI application that serves an :class:`~nightcrew.App` over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from nightcrew.heap import freeze_startup_heap
from nightcrew.http.dashboard import build_dashboard_router
from nightcrew.http.enqueue_direct import DirectEnqueue
from nightcrew.http.errors import install_error_handlers
from nightcrew.http.limits import BodyLimitMiddleware
from nightcrew.http.metrics import build_ops_router
from nightcrew.http.notifications import build_notifications_router
from nightcrew.http.routes_flow import build_flow_router
from nightcrew.http.routes_jobs import build_jobs_router
from nightcrew.http.routes_schedules import build_schedules_router
from nightcrew.http.sse import EventHub, build_events_router
from nightcrew.http.stats import build_stats_router

if TYPE_CHECKING:
    from nightcrew.app import App


def create_app(
    app: App, *, max_body_bytes: int | None = None, heartbeat_seconds: float | None = None
) -> FastAPI:
    """The HTTP API of ``app`` as an ASGI application (mount it, or run it with uvicorn).

    ``max_body_bytes`` and ``heartbeat_seconds`` default to the App's settings
    ``http_max_body_bytes`` and ``http_heartbeat_seconds``.
    """
    settings = app.settings
    hub = EventHub(app)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Runs when served directly; a host app that mounts this one skips it, and the
        # listener then simply stops with the event loop.
        yield
        await hub.close()
        await app.aclose()

    api = FastAPI(
        title="nightcrew",
        version=_version(),
        lifespan=lifespan,
        description="Enqueue jobs, follow their progress live, manage them. Every `/api` "
        "route needs `Authorization: Bearer <key>`; a key acts on its user's "
        "jobs only (admins: all).",
    )
    api.state.nightcrew_app = app
    api.state.event_hub = hub
    install_error_handlers(api)
    api.include_router(build_jobs_router(app))
    api.include_router(
        build_events_router(app, hub, heartbeat_seconds or settings.http_heartbeat_seconds)
    )
    api.include_router(build_notifications_router(app))
    api.include_router(build_schedules_router(app))
    api.include_router(build_flow_router(app))
    api.include_router(build_stats_router(app))
    api.include_router(build_ops_router(app))
    for router, prefix in app.http_routers:  # the application's own (App.add_router)
        api.include_router(router, prefix=prefix)
    api.include_router(build_dashboard_router(app))  # HTML pages at /, not in the schema
    limit = max_body_bytes or settings.http_max_body_bytes
    # The last added runs first: the body's size is checked before anything reads it.
    api.add_middleware(DirectEnqueue, nightcrew_app=app, handlers=api.exception_handlers)
    api.add_middleware(BodyLimitMiddleware, max_bytes=limit)
    _document_job_types(api, app)
    return api


def _document_job_types(api: FastAPI, app: App) -> None:
    """List the public job types as the enum of ``EnqueueRequest.type`` in the OpenAPI spec.

    Computed when the spec is first requested, so types registered after ``create_app``
    are included; internal (``public=False``) types are not.
    """
    build = api.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        prop = schema["components"]["schemas"]["EnqueueRequest"]["properties"]["type"]
        public = sorted(name for name, spec in app.registry.items() if spec.public)
        if public:
            prop["enum"] = public
        return schema

    api.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    from nightcrew import __version__

    return __version__


def serve(
    app: App,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    access_log: bool = False,
    **uvicorn_options: Any,
) -> None:
    """Serve ``app``'s HTTP API with uvicorn until interrupted.

    uvicorn picks uvloop and httptools (dependencies of nightcrew) unless ``loop`` / ``http``
    say otherwise. ``access_log`` is off by default: a line per request is CPU spent on
    every request (with uvloop and httptools, the change cut the server's CPU per enqueue by
    a quarter: docs/benchmarks.md); errors are logged either way. With the ``gc_freeze``
    setting (default) the objects alive once the ASGI app is built are frozen out of the
    cyclic collector's full passes (:func:`nightcrew.heap.freeze_startup_heap`)."""
    import uvicorn

    asgi = create_app(app)
    if app.settings.gc_freeze:
        freeze_startup_heap()
    uvicorn.run(asgi, host=host, port=port, access_log=access_log, **uvicorn_options)
