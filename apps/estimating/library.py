"""Creating and reading the library: catalogue, items, projects and their rates, usage,
assemblies. Every function runs in the caller's connection; the API gives each request
one transaction."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

from estimating import uptake
from estimating.costs import priced_factors, shown, unit_breakdown
from estimating.errors import (
    Conflict,
    EstimatingError,
    Forbidden,
    InvalidReference,
    UnknownCode,
)
from estimating.models import (
    AssemblyRequest,
    CatalogueRequest,
    ItemRequest,
    ProjectRatesRequest,
    ProjectRequest,
    UsageRequest,
)
from estimating.sql import query

KINDS = {"materials": "material", "labour": "labour", "equipment": "equipment"}


def _no_duplicates(codes: list[str], field: str) -> None:
    twice = sorted(code for code, n in Counter(codes).items() if n > 1)
    if twice:
        raise EstimatingError(f"{field}: code {twice[0]!r} is given more than once", field=field)


async def catalogue_ids(
    conn: psycopg.AsyncConnection[Any], codes: list[str], *, field: str = "code"
) -> dict[str, tuple[int, str]]:
    """``code -> (id, kind)`` of catalogue entries; :class:`UnknownCode` for a missing one."""
    cur = await conn.execute(query("catalogue_by_codes"), {"codes": codes})
    found = {code: (cid, kind) for cid, code, kind in await cur.fetchall()}
    for code in codes:
        if code not in found:
            raise UnknownCode(f"unknown catalogue code {code!r}", field=field)
    return found


async def item_ids(
    conn: psycopg.AsyncConnection[Any], codes: list[str], *, field: str = "items"
) -> dict[str, int]:
    """``code -> id`` of library items; :class:`UnknownCode` naming the first missing one."""
    cur = await conn.execute(query("items_by_codes"), {"codes": codes})
    found = {row[1]: row[0] for row in await cur.fetchall()}
    for code in codes:
        if code not in found:
            raise UnknownCode(f"unknown item code {code!r}", field=field)
    return found


async def require_project(conn: psycopg.AsyncConnection[Any], project_id: str) -> None:
    """:class:`UnknownCode` unless the project exists."""
    cur = await conn.execute(query("project_get"), {"id": project_id})
    if await cur.fetchone() is None:
        raise UnknownCode(f"unknown project {project_id!r}", field="project_id")


async def upsert_catalogue(
    conn: psycopg.AsyncConnection[Any], request: CatalogueRequest
) -> dict[str, int]:
    """Create or update catalogue entries; a code may not change kind."""
    rows = [(KINDS[group], row) for group in KINDS for row in getattr(request, group)]
    if not rows:
        raise EstimatingError("give at least one of materials, labour or equipment")
    codes = [row.code for _, row in rows]
    _no_duplicates(codes, "catalogue")
    params = {
        "kinds": [kind for kind, _ in rows], "codes": codes,
        "names": [r.name for _, r in rows], "units": [r.unit for _, r in rows],
        "rates": [r.rate for _, r in rows],
    }  # fmt: skip
    cur = await conn.execute(query("catalogue_upsert"), params)
    stored = {row[0] for row in await cur.fetchall()}
    for kind, row in rows:
        if row.code not in stored:
            raise InvalidReference(
                f"catalogue code {row.code!r} already exists with another kind than {kind}",
                field="catalogue",
            )
    return {kind: sum(1 for k, _ in rows if k == kind) for kind in KINDS.values()}


async def create_item(conn: psycopg.AsyncConnection[Any], request: ItemRequest) -> dict[str, Any]:
    """Create (or replace) a library item and its factors; return it as :func:`get_item`."""
    factors = [(KINDS[group], f) for group in KINDS for f in getattr(request, group)]
    codes = [f.code for _, f in factors]
    _no_duplicates(codes, "factors")
    found = await catalogue_ids(conn, codes) if codes else {}
    for kind, factor in factors:
        if found[factor.code][1] != kind:
            raise InvalidReference(
                f"catalogue code {factor.code!r} is {found[factor.code][1]}, not {kind}",
                field=f"{'materials' if kind == 'material' else kind}",
            )
    cur = await conn.execute(query("item_upsert"), request.model_dump(include={
        "code", "name", "unit", "category"}))  # fmt: skip
    row = await cur.fetchone()
    assert row is not None
    item_id = row[0]
    await conn.execute(query("item_factors_clear"), {"item_id": item_id})
    empty = dict.fromkeys(
        ("quantity_per_unit", "wastage_percentage", "hours_per_unit", "productivity_factor",
         "crew_size", "utilization_factor"),
    )  # fmt: skip
    async with conn.cursor() as insert:
        await insert.executemany(
            query("item_factor_insert"),
            [
                {**empty, **f.model_dump(exclude={"code"}), "item_id": item_id,
                 "catalogue_id": found[f.code][0]}
                for _, f in factors
            ],
        )  # fmt: skip
    return await get_item(conn, request.code)


async def get_item(
    conn: psycopg.AsyncConnection[Any],
    code: str,
    *,
    project_id: str | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """An item with its factors, the current rates (catalogue, or the project's when one is
    given) and its unit price."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("items_by_codes"), {"codes": [code]})
        item = await cur.fetchone()
    if item is None:
        raise UnknownCode(f"unknown item code {code!r}", field="code")
    if project_id is not None:
        await require_project(conn, project_id)
    priced = (await priced_factors(conn, [item["id"]], project_id=project_id, as_of=as_of)).get(
        item["id"], []
    )
    unit = unit_breakdown(priced)
    return {
        "code": item["code"], "name": item["name"], "unit": item["unit"],
        "category": item["category"], "project_id": project_id,
        "factors": [f.to_dict() for f in priced],
        **{k: shown(v) for k, v in unit.items()},
    }  # fmt: skip


async def create_project(
    conn: psycopg.AsyncConnection[Any], request: ProjectRequest
) -> dict[str, Any]:
    """Create a project, its creator (the acting API user) its owner; or rename it when the
    id exists and the acting user may write it. :class:`Forbidden` for a viewer of it,
    :class:`Conflict` when the id belongs to a project the acting user cannot see."""
    params = request.model_dump()
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("project_create"), params)
        row = await cur.fetchone()
        if row is not None and request.active is False:  # created, then set inactive
            row = await _renamed(cur, params)
        row = row or await _renamed(cur, params)
        if row is not None:
            return row
        await cur.execute(query("project_get"), {"id": request.id})
        if await cur.fetchone() is not None:
            raise Forbidden(
                f"renaming project {request.id!r} needs the owner or editor role", field="id"
            )
    raise Conflict(f"project id {request.id!r} is already taken: choose another", field="id")


async def _renamed(
    cur: psycopg.AsyncCursor[dict[str, Any]], params: dict[str, Any]
) -> dict[str, Any] | None:
    """Rename an existing project and set its active flag when given (row-level security:
    only if the user may write it)."""
    await cur.execute(query("project_rename"), params)
    return await cur.fetchone()


async def add_project_rates(
    conn: psycopg.AsyncConnection[Any], project_id: str, request: ProjectRatesRequest
) -> int:
    """Store dated rate overrides of a project; return how many."""
    await require_project(conn, project_id)
    _no_duplicates([f"{r.code}@{r.effective_from}" for r in request.rates], "rates")
    found = await catalogue_ids(conn, sorted({r.code for r in request.rates}), field="rates")
    await conn.execute(
        query("project_rates_upsert"),
        {
            "project_id": project_id,
            "catalogue_ids": [found[r.code][0] for r in request.rates],
            "dates": [r.effective_from for r in request.rates],
            "rates": [r.rate for r in request.rates],
        },
    )
    return len(request.rates)


async def record_usage(conn: psycopg.AsyncConnection[Any], request: UsageRequest) -> dict[str, Any]:
    """Record one use of an item in an estimate (the estimate is created on first use)."""
    ids = await item_ids(conn, [request.item_code], field="item_code")
    await require_project(conn, request.project_id)
    params = {
        **request.model_dump(include={"project_id", "estimate_id", "quantity", "used_at"}),
        "item_id": ids[request.item_code],
    }
    await conn.execute(query("estimate_ensure"), params)
    cur = await conn.execute(query("usage_insert"), params)
    row = await cur.fetchone()
    assert row is not None
    taken = await uptake.record_use(conn, request, ids[request.item_code], row[1])
    return {"id": row[0], "used_at": row[1].isoformat(), **request.model_dump(mode="json",
            exclude={"used_at", "suggestion_id"}), "suggestion_id": taken}  # fmt: skip


async def create_assembly(
    conn: psycopg.AsyncConnection[Any], request: AssemblyRequest
) -> dict[str, Any]:
    """Create (or update) an assembly under an optional parent, with its items."""
    parent_id = None
    if request.parent_code is not None:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query("assembly_by_code"), {"code": request.parent_code})
            parent = await cur.fetchone()
        if parent is None:
            raise UnknownCode(f"unknown assembly {request.parent_code!r}", field="parent_code")
        parent_id = parent["id"]
    codes = [line.code for line in request.items]
    _no_duplicates(codes, "items")
    ids = await item_ids(conn, codes) if codes else {}
    inserted = await conn.execute(
        query("assembly_insert"),
        {"code": request.code, "name": request.name, "parent_id": parent_id},
    )
    row = await inserted.fetchone()
    assert row is not None
    if codes:
        await conn.execute(
            query("assembly_items_set"),
            {
                "assembly_id": row[0],
                "item_ids": [ids[c] for c in codes],
                "quantities": [line.quantity for line in request.items],
            },
        )
    return {"id": row[0], "code": request.code, "items": len(codes)}
