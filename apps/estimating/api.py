"""``/api/estimating``: the library over HTTP, suggestions, price trends, and the on-demand
jobs (202 + the job, followed at ``/api/jobs/{id}``). Same API keys as nightcrew's API.

No ``from __future__ import annotations`` here: FastAPI must resolve the route signatures'
annotations, which name the closure's dependencies."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from estimating import access, library, popularity, prices, projects, reports, uptake
from estimating.access import ANY_MEMBER, OWNERS, WRITERS
from estimating.bulk import select_catalogue_entries
from estimating.errors import EstimatingError
from estimating.models import (
    AssemblyRequest,
    BulkAssemblyUpdateRequest,
    BulkPriceUpdateRequest,
    CalculationRequest,
    CatalogueRequest,
    ItemRequest,
    MemberRequest,
    ProjectRatesRequest,
    ProjectRequest,
    UsageRequest,
)
from estimating.sql import query
from nightcrew import EnqueueError
from nightcrew.http import ApiError, Session, acting

if TYPE_CHECKING:
    from nightcrew import App

bearer = HTTPBearer(auto_error=False, description="A nightcrew API key.")
Key = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def build_router(app: "App") -> APIRouter:
    """The estimating routes of ``app``.

    Every request runs in one transaction acting as the key's user (``nightcrew.http.acting``:
    role nightcrew_api, row-level security), on that one connection: projects the user is
    not a member of do not exist for it (404), the shared library is read-only to non-admins
    (403 here, and refused by the policies underneath).
    """
    router = APIRouter(prefix="/api/estimating", tags=["estimating"])

    @asynccontextmanager
    async def acting_user(
        credentials: HTTPAuthorizationCredentials | None,
    ) -> AsyncIterator[Session]:
        async with acting(app, credentials.credentials if credentials else None) as session:
            try:
                yield session
            except EstimatingError as exc:
                raise ApiError(exc.status, exc.message, field=exc.field) from None

    async def enqueue(session: Session, type: str, payload: BaseModel, email: str | None) -> UUID:
        notify = {"email": email, "in_app": True} if email else {"in_app": True}
        try:
            return await app.aenqueue(type, payload, user_id=session.principal.user_id,
                                      notify=notify, conn=session.conn)  # fmt: skip
        except EnqueueError as exc:  # of the request's fields, only notify_email reaches here
            field = "notify_email" if exc.field == "notify.email" else None
            raise ApiError(422, f"{field or 'job'}: {exc}", field=field) from None

    async def accepted(job_id: UUID) -> dict[str, Any]:
        """The 202 answer: the job, and where to follow it."""
        job = await app.aget_job(job_id)
        assert job is not None
        return {**job.to_dict(), "url": f"/api/jobs/{job_id}"}

    @router.post(
        "/catalogue", status_code=201, summary="Create or update catalogue entries (admin)"
    )
    async def post_catalogue(body: CatalogueRequest, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            access.require_admin(session.principal, "changing the catalogue")
            return {"stored": await library.upsert_catalogue(session.conn, body)}

    @router.post(
        "/items", status_code=201, summary="Create a library item with its factors (admin)"
    )
    async def post_item(body: ItemRequest, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            access.require_admin(session.principal, "changing library items")
            return await library.create_item(session.conn, body)

    @router.get("/items/{code}", summary="An item, its factors, current rates and unit price")
    async def get_item(
        code: str, key: Key, project_id: str | None = None, as_of: date | None = None
    ) -> dict[str, Any]:
        async with acting_user(key) as session:
            return await library.get_item(session.conn, code, project_id=project_id, as_of=as_of)

    @router.post("/projects", status_code=201, summary="Create a project (you become its owner)")
    async def post_project(body: ProjectRequest, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            return await library.create_project(session.conn, body)

    @router.get("/projects/{project_id}", summary="A project, its members and your role")
    async def get_project(project_id: str, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            role = await access.project_role(session.conn, project_id, session.principal)
            cur = await session.conn.execute(query("project_get"), {"id": project_id})
            row = await cur.fetchone()
            assert row is not None
            members = await projects.members(session.conn, project_id)
        return {"id": row[0], "name": row[1], "created_at": row[2].isoformat(),
                "active": row[3], "your_role": role, "members": members}  # fmt: skip

    @router.post("/projects/{project_id}/members", status_code=201,
                 summary="Add a member or change a role (owners)")  # fmt: skip
    async def post_member(project_id: str, body: MemberRequest, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            user = session.principal
            await access.require_project_role(session.conn, project_id, user, OWNERS,
                                              "adding members")  # fmt: skip
            return await projects.add_member(session.conn, project_id, body, by=user.user_id)

    @router.get("/projects/{project_id}/rates", summary="The project's dated rate overrides")
    async def get_rates(project_id: str, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            await access.project_role(session.conn, project_id, session.principal)
            return {"project_id": project_id,
                    "rates": await projects.rates(session.conn, project_id)}  # fmt: skip

    @router.post("/projects/{project_id}/rates", status_code=201, summary="Dated rate overrides")
    async def post_rates(project_id: str, body: ProjectRatesRequest, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            await access.require_project_role(session.conn, project_id, session.principal,
                                              WRITERS, "changing project rates")  # fmt: skip
            return {"stored": await library.add_project_rates(session.conn, project_id, body)}

    @router.get("/projects/{project_id}/snapshots", summary="The project's price snapshots")
    async def get_snapshots(
        project_id: str, key: Key, limit: Annotated[int, Query(ge=1, le=10_000)] = 500
    ) -> dict[str, Any]:
        async with acting_user(key) as session:
            await access.project_role(session.conn, project_id, session.principal)
            found = await projects.snapshots(session.conn, project_id, limit=limit)
            totals = await projects.totals(session.conn, project_id, limit=limit)
        return {"project_id": project_id, "totals": totals, "snapshots": found}

    @router.get("/projects/{project_id}/calculations", summary="The project's calculations")
    async def get_calculations(
        project_id: str, key: Key, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> dict[str, Any]:
        async with acting_user(key) as session:
            await access.project_role(session.conn, project_id, session.principal)
            found = await projects.calculations(session.conn, project_id, limit=limit)
        return {"project_id": project_id, "calculations": found}

    @router.post("/usage", status_code=201, summary="Record the use of an item in an estimate")
    async def post_usage(body: UsageRequest, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            await access.require_project_role(session.conn, body.project_id, session.principal,
                                              WRITERS, "recording usage")  # fmt: skip
            return await library.record_usage(session.conn, body)

    @router.post(
        "/assemblies", status_code=201, summary="Create an assembly with its items (admin)"
    )
    async def post_assembly(body: AssemblyRequest, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            access.require_admin(session.principal, "changing assemblies")
            return await library.create_assembly(session.conn, body)

    @router.get("/items/{code}/popularity", summary="Popularity and co-occurring items")
    async def get_popularity(code: str, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            ids = await library.item_ids(session.conn, [code], field="code")
            return {"code": code, **await popularity.item_popularity(session.conn, ids[code])}

    @router.get("/suggestions", summary="Items to add, given the estimate's items")
    async def get_suggestions(
        key: Key,
        items: Annotated[str, Query(min_length=1, description="comma-separated item codes")],
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        project_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        estimate_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    ) -> dict[str, Any]:
        """With ``project_id`` and ``estimate_id`` (owners and editors of the project), the
        suggestions are recorded as offered for that estimate, each with its ``id``."""
        codes = list(dict.fromkeys(c.strip() for c in items.split(",") if c.strip()))
        if not codes:
            raise ApiError(422, "items: give at least one item code", field="items")
        if (project_id is None) != (estimate_id is None):
            missing = "estimate_id" if estimate_id is None else "project_id"
            raise ApiError(422, f"{missing}: give both project_id and estimate_id, or neither",
                           field=missing)  # fmt: skip
        async with acting_user(key) as session:
            ids = await library.item_ids(session.conn, codes, field="items")
            found = await popularity.suggestions(session.conn, list(ids.values()), limit=limit)
            if project_id is not None and estimate_id is not None:
                await access.require_project_role(session.conn, project_id, session.principal,
                                                  WRITERS, "recording suggestions")  # fmt: skip
                offered = await uptake.record_offers(
                    session.conn, project_id, estimate_id, [s["item_id"] for s in found]
                )
                for suggestion in found:
                    suggestion["id"] = offered[suggestion["item_id"]]
        for suggestion in found:
            suggestion.pop("item_id")
        return {"items": codes, "suggestions": found}

    @router.get("/suggestions/uptake", summary="Share of suggestions used, last 30 days")
    async def get_uptake(key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            return await uptake.uptake(session.conn)

    @router.get("/reports/weekly", summary="The weekly usage report (latest, or of a week)")
    async def get_weekly_report(key: Key, week: date | None = None) -> dict[str, Any]:
        """``week``: any day of the week wanted (weeks run Sunday to Saturday); project rows
        only for projects you may see."""
        async with acting_user(key) as session:
            return await reports.read_weekly_report(session.conn, week)

    @router.get("/projects/{project_id}/estimates/{estimate_id}",
                summary="An estimate and its lines (archived ones too)")  # fmt: skip
    async def get_estimate(project_id: str, estimate_id: str, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            await access.project_role(session.conn, project_id, session.principal)
            return await reports.read_estimate(session.conn, project_id, estimate_id)

    @router.get("/items/{code}/price-trend", summary="Average price per period and a forecast")
    async def get_price_trend(
        code: str,
        key: Key,
        months: Annotated[int, Query(ge=1, le=60)] = 6,
        period: Literal["month", "quarter"] = "month",
    ) -> dict[str, Any]:
        async with acting_user(key) as session:
            return await prices.price_trend(session.conn, code, months=months, period=period)

    @router.get("/alerts", summary="Recent price spike alerts")
    async def get_alerts(
        key: Key, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> dict[str, Any]:
        async with acting_user(key) as session:
            cur = await session.conn.execute(query("price_alerts_recent"), {"limit": limit})
            names = [c.name for c in cur.description or []]
            rows = [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
        return {"alerts": rows}

    @router.post("/calculations", status_code=202, summary="Start a cost calculation job")
    async def post_calculation(body: CalculationRequest, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            user = session.principal
            await access.require_project_role(session.conn, body.project_id, user, ANY_MEMBER,
                                              "calculating costs")  # fmt: skip
            job_id = await enqueue(session, "estimating.calculate_costs", body, None)
            await projects.record_calculation_request(session.conn, job_id, body.project_id,
                                                      user.user_id)  # fmt: skip
        return await accepted(job_id)

    @router.post("/bulk-price-update", status_code=202, summary="Start a bulk price update (admin)")
    async def post_bulk_price(body: BulkPriceUpdateRequest, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            access.require_admin(session.principal, "a bulk price update")
            await select_catalogue_entries(session.conn, body)  # unknown codes: 404 now, not later
            job_id = await enqueue(session, "estimating.bulk_price_update", body, body.notify_email)
        return await accepted(job_id)

    @router.post("/bulk-assembly-update", status_code=202,
                 summary="Replace an item in assemblies (admin)")  # fmt: skip
    async def post_bulk_assembly(body: BulkAssemblyUpdateRequest, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            access.require_admin(session.principal, "a bulk assembly update")
            conn = session.conn
            await library.item_ids(conn, [body.replace, body.with_item], field="replace")
            cur = await conn.execute(query("assembly_by_code"), {"code": body.assembly_code})
            if await cur.fetchone() is None:
                raise ApiError(404, f"unknown assembly {body.assembly_code!r}",
                               field="assembly_code")  # fmt: skip
            job_id = await enqueue(session, "estimating.bulk_assembly_update", body,
                                   body.notify_email)  # fmt: skip
        return await accepted(job_id)

    return router
