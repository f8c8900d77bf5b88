"""The "Workspace" page of nightcrew's dashboard: documents with their index and
embedding status, a search box (text, semantic, hybrid) and a sheet's cells with values,
errors and the last recompute job.

No ``from __future__ import annotations``: FastAPI resolves the handlers' annotations."""

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from nightcrew.http.dashboard import dashboard_session, render
from workspace import documents, sheets
from workspace.embedding import EmbeddingError, EmbeddingProvider
from workspace.errors import WorkspaceError

if TYPE_CHECKING:
    from nightcrew import App

MODES = ("hybrid", "text", "semantic")


def build_dashboard_router(app: "App", provider: EmbeddingProvider) -> APIRouter:
    """``/workspace`` of ``app``'s dashboard; every query runs on the page's session (the
    logged-in user, under row-level security)."""
    router = APIRouter(prefix="/workspace", include_in_schema=False)

    @router.get("", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        params = request.query_params
        q = (params.get("q") or "").strip()[:200]
        mode = params.get("mode") if params.get("mode") in MODES else "hybrid"
        async with dashboard_session(request) as session:
            docs = await documents.listing(session.conn, 50)
            results: list[dict[str, Any]] = []
            problem = None
            if q:
                try:
                    results = await documents.search(session.conn, provider, q, mode, 10)  # type: ignore[arg-type]
                except EmbeddingError as exc:
                    problem = f"semantic search unavailable: {exc}"
            all_sheets = await sheets.sheets(session.conn)
            chosen = params.get("sheet") or (all_sheets[0]["name"] if all_sheets else None)
            sheet = None
            if chosen:
                try:
                    sheet = await sheets.get_sheet(session.conn, chosen)
                except WorkspaceError:
                    problem = f"unknown sheet {chosen!r}"
            return await render(
                request,
                session,
                "workspace/index.html",
                docs=docs,
                q=q,
                mode=mode,
                modes=MODES,
                results=results,
                problem=problem,
                sheets=all_sheets,
                sheet=sheet,
            )

    return router
