"""A project's members and what its members read: rates, price snapshots, calculations.

Every function runs in the caller's connection; over the API that is the request's
transaction acting as the user, so row-level security limits them to the user's projects.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from estimating.errors import EstimatingError
from estimating.models import MemberRequest
from estimating.sql import query


async def _rows(
    conn: psycopg.AsyncConnection[Any], name: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query(name), params)
        return await cur.fetchall()


async def add_member(
    conn: psycopg.AsyncConnection[Any], project_id: str, request: MemberRequest, *, by: str
) -> dict[str, Any]:
    """Add ``request.user_id`` to the project with ``request.role`` (or change its role).

    An owner may not change their own role (``by``): a project must keep an owner.
    """
    if request.user_id == by and request.role != "owner":
        raise EstimatingError(
            "user_id: you cannot change your own role; have another owner do it",
            field="user_id",
        )
    params = {"project_id": project_id, **request.model_dump()}
    rows = await _rows(conn, "project_member_upsert", params)
    return rows[0]


async def members(conn: psycopg.AsyncConnection[Any], project_id: str) -> list[dict[str, Any]]:
    """The project's members and their roles, oldest first."""
    return await _rows(conn, "project_members_of", {"project_id": project_id})


async def rates(conn: psycopg.AsyncConnection[Any], project_id: str) -> list[dict[str, Any]]:
    """Every dated rate override of the project."""
    return await _rows(conn, "project_rates_of", {"project_id": project_id})


async def snapshots(
    conn: psycopg.AsyncConnection[Any], project_id: str, *, limit: int
) -> list[dict[str, Any]]:
    """The project's price snapshots (per item it used), newest day first."""
    return await _rows(conn, "project_snapshots_of", {"project_id": project_id, "limit": limit})


async def totals(
    conn: psycopg.AsyncConnection[Any], project_id: str, *, limit: int
) -> list[dict[str, Any]]:
    """The project's daily totals (items, total quantity and cost), newest day first."""
    return await _rows(conn, "project_totals_of", {"project_id": project_id, "limit": limit})


async def calculations(
    conn: psycopg.AsyncConnection[Any], project_id: str, *, limit: int
) -> list[dict[str, Any]]:
    """The project's calculations (pending ones without a result), newest first."""
    return await _rows(conn, "calculations_of_project", {"project_id": project_id, "limit": limit})


async def record_calculation_request(
    conn: psycopg.AsyncConnection[Any], job_id: UUID, project_id: str, requested_by: str
) -> None:
    """Note a calculation job started for the project, for its other members to see."""
    await conn.execute(
        query("calculation_requested"),
        {"job_id": job_id, "project_id": project_id, "requested_by": requested_by},
    )


async def record_calculation_result(
    conn: psycopg.AsyncConnection[Any],
    job_id: UUID,
    project_id: str,
    requested_by: str | None,
    result: dict[str, Any],
) -> None:
    """Store a finished calculation's result (run by the worker, as the table owner)."""
    await conn.execute(
        query("calculation_completed"),
        {"job_id": job_id, "project_id": project_id, "requested_by": requested_by,
         "result": Jsonb(result)},
    )  # fmt: skip
