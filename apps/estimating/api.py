"""``/api/estimating``: the library over HTTP, suggestions, price trends, and the on-demand
jobs (202 + the job, followed at ``/api/jobs/{id}``). Same API keys as nightcrew's API.

No ``from __future__ import annotations`` here: FastAPI must resolve the route signatures'
annotations, which name the closure's dependencies."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from estimating import library, popularity, prices
from estimating.bulk import select_catalogue_entries
from estimating.errors import EstimatingError
from estimating.models import (
    AssemblyRequest,
    BulkAssemblyUpdateRequest,
    BulkPriceUpdateRequest,
    CalculationRequest,
    CatalogueRequest,
    ItemRequest,
    ProjectRatesRequest,
    ProjectRequest,
    UsageRequest,
)
from estimating.sql import query
from nightcrew.http import ApiError, Principal, acting

if TYPE_CHECKING:
    from nightcrew import App

bearer = HTTPBearer(auto_error=False, description="A nightcrew API key.")


def build_router(app: "App") -> APIRouter:
    """The estimating routes of ``app``."""
    router = APIRouter(prefix="/api/estimating", tags=["estimating"])

    async def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        async with acting(app, credentials.credentials if credentials else None) as session:
            return session.principal

    User = Annotated[Principal, Depends(principal)]

    @asynccontextmanager
    async def transaction() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pool = await app.apool()
        try:
            async with pool.connection() as conn, conn.transaction():
                yield conn
        except EstimatingError as exc:
            raise ApiError(exc.status, exc.message, field=exc.field) from None

    async def enqueue(
        user: Principal, type: str, payload: BaseModel, email: str | None
    ) -> dict[str, Any]:
        notify = {"email": email, "in_app": True} if email else {"in_app": True}
        job_id = await app.aenqueue(type, payload, user_id=user.user_id, notify=notify)
        job = await app.aget_job(job_id)
        assert job is not None
        return {**job.to_dict(), "url": f"/api/jobs/{job_id}"}

    @router.post("/catalogue", status_code=201, summary="Create or update catalogue entries")
    async def post_catalogue(body: CatalogueRequest, user: User) -> dict[str, Any]:
        async with transaction() as conn:
            return {"stored": await library.upsert_catalogue(conn, body)}

    @router.post("/items", status_code=201, summary="Create a library item with its factors")
    async def post_item(body: ItemRequest, user: User) -> dict[str, Any]:
        async with transaction() as conn:
            return await library.create_item(conn, body)

    @router.get("/items/{code}", summary="An item, its factors, current rates and unit price")
    async def get_item(
        code: str, user: User, project_id: str | None = None, as_of: date | None = None
    ) -> dict[str, Any]:
        async with transaction() as conn:
            return await library.get_item(conn, code, project_id=project_id, as_of=as_of)

    @router.post("/projects", status_code=201, summary="Create a project (client-chosen id)")
    async def post_project(body: ProjectRequest, user: User) -> dict[str, Any]:
        async with transaction() as conn:
            return await library.create_project(conn, body)

    @router.post("/projects/{project_id}/rates", status_code=201, summary="Dated rate overrides")
    async def post_rates(project_id: str, body: ProjectRatesRequest, user: User) -> dict[str, Any]:
        async with transaction() as conn:
            return {"stored": await library.add_project_rates(conn, project_id, body)}

    @router.post("/usage", status_code=201, summary="Record the use of an item in an estimate")
    async def post_usage(body: UsageRequest, user: User) -> dict[str, Any]:
        async with transaction() as conn:
            return await library.record_usage(conn, body)

    @router.post("/assemblies", status_code=201, summary="Create an assembly with its items")
    async def post_assembly(body: AssemblyRequest, user: User) -> dict[str, Any]:
        async with transaction() as conn:
            return await library.create_assembly(conn, body)

    @router.get("/items/{code}/popularity", summary="Popularity and co-occurring items")
    async def get_popularity(code: str, user: User) -> dict[str, Any]:
        async with transaction() as conn:
            ids = await library.item_ids(conn, [code], field="code")
            return {"code": code, **await popularity.item_popularity(conn, ids[code])}

    @router.get("/suggestions", summary="Items to add, given the estimate's items")
    async def get_suggestions(
        user: User,
        items: Annotated[str, Query(min_length=1, description="comma-separated item codes")],
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict[str, Any]:
        codes = list(dict.fromkeys(c.strip() for c in items.split(",") if c.strip()))
        if not codes:
            raise ApiError(422, "items: give at least one item code", field="items")
        async with transaction() as conn:
            ids = await library.item_ids(conn, codes, field="items")
            found = await popularity.suggestions(conn, list(ids.values()), limit=limit)
        return {"items": codes, "suggestions": found}

    @router.get("/items/{code}/price-trend", summary="Average price per period and a forecast")
    async def get_price_trend(
        code: str,
        user: User,
        months: Annotated[int, Query(ge=1, le=60)] = 6,
        period: Literal["month", "quarter"] = "month",
    ) -> dict[str, Any]:
        async with transaction() as conn:
            return await prices.price_trend(conn, code, months=months, period=period)

    @router.get("/alerts", summary="Recent price spike alerts")
    async def get_alerts(
        user: User, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> dict[str, Any]:
        async with transaction() as conn:
            cur = await conn.execute(query("price_alerts_recent"), {"limit": limit})
            names = [c.name for c in cur.description or []]
            rows = [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
        return {"alerts": rows}

    @router.post("/calculations", status_code=202, summary="Start a cost calculation job")
    async def post_calculation(body: CalculationRequest, user: User) -> dict[str, Any]:
        async with transaction() as conn:
            await library.require_project(conn, body.project_id)
        return await enqueue(user, "estimating.calculate_costs", body, None)

    @router.post("/bulk-price-update", status_code=202, summary="Start a bulk price update")
    async def post_bulk_price(body: BulkPriceUpdateRequest, user: User) -> dict[str, Any]:
        async with transaction() as conn:
            await select_catalogue_entries(conn, body)  # unknown codes: 404 now, not later
        return await enqueue(user, "estimating.bulk_price_update", body, body.notify_email)

    @router.post("/bulk-assembly-update", status_code=202, summary="Replace an item in assemblies")
    async def post_bulk_assembly(body: BulkAssemblyUpdateRequest, user: User) -> dict[str, Any]:
        async with transaction() as conn:
            await library.item_ids(conn, [body.replace, body.with_item], field="replace")
            cur = await conn.execute(query("assembly_by_code"), {"code": body.assembly_code})
            if await cur.fetchone() is None:
                raise ApiError(404, f"unknown assembly {body.assembly_code!r}",
                               field="assembly_code")  # fmt: skip
        return await enqueue(user, "estimating.bulk_assembly_update", body, body.notify_email)

    return router
