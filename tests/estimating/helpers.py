"""Small builders of hand-checked library data for the estimating tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from estimating import library, projects
from estimating.models import (
    CatalogueRequest,
    ItemRequest,
    MemberRequest,
    ProjectRatesRequest,
    ProjectRequest,
    UsageRequest,
)


async def catalogue(conn: psycopg.AsyncConnection[Any], **groups: list[tuple[str, str]]) -> None:
    """``materials=[(code, rate), ...]`` etc.; names and units are derived from the code."""
    body = {
        group: [{"code": c, "name": c.title(), "unit": "u", "rate": r} for c, r in rows]
        for group, rows in groups.items()
    }
    await library.upsert_catalogue(conn, CatalogueRequest.model_validate(body))


async def item(conn: psycopg.AsyncConnection[Any], code: str, **factors: Any) -> None:
    """An item whose factors are given as in the API (``materials=[{...}]``)."""
    body = {"code": code, "name": code.title(), "unit": "m3", **factors}
    await library.create_item(conn, ItemRequest.model_validate(body))


async def simple_items(conn: psycopg.AsyncConnection[Any], codes: list[str]) -> None:
    """Items each made of one material of its own (rate 10, 1 per unit)."""
    await catalogue(conn, materials=[(f"M-{c}", "10") for c in codes])
    for c in codes:
        await item(conn, c, materials=[{"code": f"M-{c}", "quantity_per_unit": "1"}])


async def project(
    conn: psycopg.AsyncConnection[Any], project_id: str, owner: str | None = None
) -> None:
    """A project named after its id (created as the table owner: no members unless
    ``owner`` is given)."""
    await library.create_project(conn, ProjectRequest(id=project_id, name=project_id))
    if owner is not None:
        await member(conn, project_id, owner, "owner")


async def member(
    conn: psycopg.AsyncConnection[Any], project_id: str, user_id: str, role: str
) -> None:
    """Make ``user_id`` a member of the project."""
    request = MemberRequest.model_validate({"user_id": user_id, "role": role})
    await projects.add_member(conn, project_id, request, by="")


async def rates(
    conn: psycopg.AsyncConnection[Any], project_id: str, rows: list[tuple[str, str, str]]
) -> None:
    """Dated overrides ``(code, rate, effective_from)``."""
    body = {"rates": [{"code": c, "rate": r, "effective_from": d} for c, r, d in rows]}
    await library.add_project_rates(conn, project_id, ProjectRatesRequest.model_validate(body))


async def use(
    conn: psycopg.AsyncConnection[Any],
    code: str,
    project_id: str,
    estimate_id: str,
    used_at: datetime,
    quantity: str = "1",
) -> None:
    """Record one usage row."""
    request = UsageRequest(
        item_code=code, project_id=project_id, estimate_id=estimate_id,
        quantity=Decimal(quantity), used_at=used_at,
    )  # fmt: skip
    await library.record_usage(conn, request)
