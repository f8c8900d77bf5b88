"""The App ``make bench`` serves with ``nightcrew serve --app http_app:app`` (cwd ``bench/``).

One no-op job type; the database comes from ``NIGHTCREW_DATABASE_URL``, every other setting
is the default a user gets. ``POST /bench/floor`` is a FastAPI route of the same server
(uvicorn, FastAPI, nightcrew's middleware and error handlers) answering a fixed 202 without
touching the database: what a route costs there. ``POST /api/jobs`` itself skips FastAPI's
routing when it can (``nightcrew.http.enqueue_direct``), so it may cost less than this.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from nightcrew import App, JobContext

app = App(migrate_on_start=False)
FLOOR_BODY = b'{"id":"00000000-0000-0000-0000-000000000000","status":"pending"}'


@app.job("bench.noop")
async def noop(ctx: JobContext, payload: dict[str, object]) -> None:
    """Never run: the benchmark only enqueues."""
    return None


floor = APIRouter(prefix="/bench")


@floor.post("/floor", status_code=202)
async def post_floor(request: Request) -> Response:
    """Read the body, answer a fixed 202: what the stack costs with no database work."""
    await request.body()
    return Response(FLOOR_BODY, status_code=202, media_type="application/json")


app.add_router(floor)
