"""``/api/workspace``: documents, their Yjs updates and state, search, sheets of formulas.
Same API keys as nightcrew's API; every request is one transaction acting as the key's
user under row-level security, so other users' documents and sheets are 404.

No ``from __future__ import annotations`` here: FastAPI must resolve the route signatures'
annotations, which name the closure's dependencies."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nightcrew.http import ApiError, Session, acting
from workspace import documents, sheets, yjs
from workspace.embedding import EmbeddingError, EmbeddingProvider
from workspace.errors import WorkspaceError

if TYPE_CHECKING:
    from nightcrew import App

bearer = HTTPBearer(auto_error=False, description="A nightcrew API key.")
Key = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
SheetName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]


class DocumentRequest(BaseModel):
    """A new document."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=500)
    content: str = Field(default="", max_length=1_000_000)


class DocumentPatch(BaseModel):
    """A change of title and/or content (at least one)."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=500)
    content: str | None = Field(default=None, max_length=1_000_000)

    @model_validator(mode="after")
    def something_to_change(self) -> "DocumentPatch":
        if self.title is None and self.content is None:
            raise ValueError("give title and/or content")
        return self


class CellRequest(BaseModel):
    """A cell: a formula (``=...``) or a number, exactly one."""

    model_config = ConfigDict(extra="forbid")
    formula: str | None = Field(default=None, min_length=2, max_length=10_000)
    value: Decimal | None = Field(default=None, allow_inf_nan=False, max_digits=40)

    @model_validator(mode="after")
    def one_of(self) -> "CellRequest":
        if (self.formula is None) == (self.value is None):
            raise ValueError('give exactly one of "formula" (e.g. "=SUM(A1:A3)") or "value"')
        return self


def build_router(app: "App", provider: EmbeddingProvider) -> APIRouter:
    """The workspace routes of ``app``; ``provider`` embeds semantic queries."""
    router = APIRouter(prefix="/api/workspace", tags=["workspace"])

    @asynccontextmanager
    async def acting_user(
        credentials: HTTPAuthorizationCredentials | None,
    ) -> AsyncIterator[Session]:
        async with acting(app, credentials.credentials if credentials else None) as session:
            try:
                yield session
            except WorkspaceError as exc:
                raise ApiError(exc.status, exc.message, field=exc.field) from None
            except EmbeddingError as exc:
                raise ApiError(503, f"semantic search unavailable: {exc}") from None

    @router.post("/documents", status_code=201, summary="Create a document (yours)")
    async def post_document(body: DocumentRequest, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            doc_id = await documents.create(session.conn, body.title, body.content)
            return await documents.get(session.conn, doc_id)

    @router.get("/documents", summary="Your newest documents with index/embedding status")
    async def list_documents(
        key: Key, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> dict[str, Any]:
        async with acting_user(key) as session:
            return {"documents": await documents.listing(session.conn, limit)}

    @router.get("/documents/{doc_id}", summary="A document, its status and working jobs")
    async def get_document(doc_id: UUID, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            return await documents.get(session.conn, doc_id)

    @router.patch("/documents/{doc_id}", summary="Change title and/or content")
    async def patch_document(doc_id: UUID, body: DocumentPatch, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            await documents.update(session.conn, doc_id, body.title, body.content)
            return await documents.get(session.conn, doc_id)

    @router.delete("/documents/{doc_id}", status_code=204, summary="Delete a document")
    async def delete_document(doc_id: UUID, key: Key) -> Response:
        async with acting_user(key) as session:
            await documents.delete(session.conn, doc_id)
        return Response(status_code=204)

    @router.post(
        "/documents/{doc_id}/updates",
        status_code=201,
        summary="Append a Yjs update (application/octet-stream)",
    )
    async def post_update(doc_id: UUID, request: Request, key: Key) -> dict[str, Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind != "application/octet-stream":
            raise ApiError(415, "send the Yjs update as application/octet-stream")
        body = await request.body()
        async with acting_user(key) as session:
            update_id = await yjs.append(session.conn, doc_id, body)
        return {"document_id": str(doc_id), "update_id": update_id, "bytes": len(body)}

    @router.get("/documents/{doc_id}/state", summary="The merged Yjs state (one update)")
    async def get_state(doc_id: UUID, key: Key) -> Response:
        async with acting_user(key) as session:
            state = await yjs.state(session.conn, doc_id)
        return Response(state, media_type="application/octet-stream")

    @router.get("/search", summary="Search your documents: text, semantic or hybrid (RRF)")
    async def search(
        key: Key,
        q: Annotated[str, Query(min_length=1, max_length=1000)],
        mode: Literal["text", "semantic", "hybrid"] = "hybrid",
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict[str, Any]:
        async with acting_user(key) as session:
            hits = await documents.search(session.conn, provider, q, mode, limit)
        return {"q": q, "mode": mode, "results": hits}

    @router.put("/sheets/{sheet}/cells/{ref}", summary="Set a cell: a formula or a value")
    async def put_cell(sheet: SheetName, ref: str, body: CellRequest, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            return await sheets.put_cell(session.conn, sheet, ref, body.formula, body.value)

    @router.post(
        "/reembed",
        status_code=202,
        summary="Re-embed every document with the configured model (admin)",
    )
    async def post_reembed(key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            if not session.principal.is_admin:
                raise ApiError(403, "re-embedding every document needs an admin API key")
        job_id = await app.aenqueue("workspace.reembed", {}, dedupe_key="workspace.reembed")
        return {"id": str(job_id), "url": f"/api/jobs/{job_id}", "model": provider.model}

    @router.get("/sheets/{sheet}", summary="Every cell of a sheet: formula, value, error")
    async def get_sheet(sheet: SheetName, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            return await sheets.get_sheet(session.conn, sheet)

    return router
