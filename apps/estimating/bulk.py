"""Bulk price and assembly updates: batches of 50, each committed together with its
checkpoint through ``ctx.transaction()``, so a crashed job resumes after its last batch and
never changes anything twice."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from estimating.errors import UnknownCode
from estimating.library import item_ids
from estimating.models import BulkAssemblyUpdateRequest, BulkPriceUpdateRequest
from estimating.sql import query
from nightcrew import JobContext

BATCH_SIZE = 50


async def select_catalogue_entries(
    conn: psycopg.AsyncConnection[Any], request: BulkPriceUpdateRequest
) -> list[int]:
    """Ids of the catalogue entries the update changes (each once); unknown codes raise."""
    if request.item_codes is not None:
        await item_ids(conn, sorted(set(request.item_codes)), field="item_codes")
    if request.catalogue_codes is not None:
        cur = await conn.execute(query("catalogue_by_codes"), {"codes": request.catalogue_codes})
        found = {row[1] for row in await cur.fetchall()}
        for code in request.catalogue_codes:
            if code not in found:
                raise UnknownCode(f"unknown catalogue code {code!r}", field="catalogue_codes")
    flt = request.filter
    params = {
        "catalogue_codes": request.catalogue_codes, "item_codes": request.item_codes,
        "kind": flt.kind if flt else None, "category": flt.category if flt else None,
    }  # fmt: skip
    cur = await conn.execute(query("bulk_price_select"), params)
    return [row[0] for row in await cur.fetchall()]


async def run_batches(
    ctx: JobContext,
    ids: list[int],
    apply: Any,
    *,
    noun: str,
) -> int:
    """Apply ``apply(conn, batch)`` to the ids after the checkpoint, batch by batch, saving
    progress, stage and the new checkpoint in each batch's transaction."""
    done = int(ctx.checkpoint.get("done", 0))
    total = len(ids)
    for start in range(done, total, BATCH_SIZE):
        batch = ids[start : start + BATCH_SIZE]
        end = start + len(batch)
        async with ctx.transaction() as conn:
            await apply(conn, batch)
            await ctx.save(
                progress=100.0 * end / total,
                stage=f"{noun} {end}/{total}",
                metrics={"done": end, "total": total},
                checkpoint={**ctx.checkpoint, "done": end},
            )
    return total


async def bulk_price_update(ctx: JobContext, request: BulkPriceUpdateRequest) -> dict[str, Any]:
    """Raise the selected catalogue rates by ``percent`` (rounded to 4 decimals)."""
    if not ctx.checkpoint:
        pool = await ctx.app.apool()
        async with pool.connection() as conn:
            ids = await select_catalogue_entries(conn, request)
        await ctx.save(
            progress=0, stage=f"selected {len(ids)} catalogue entries",
            checkpoint={"ids": ids, "done": 0},
        )  # fmt: skip
    ids = list(ctx.checkpoint["ids"])
    factor = 1 + request.percent / Decimal(100)

    async def apply(conn: psycopg.AsyncConnection[Any], batch: list[int]) -> None:
        await conn.execute(
            query("bulk_price_apply"), {"job_id": ctx.job.id, "ids": batch, "factor": factor}
        )

    total = await run_batches(ctx, ids, apply, noun="updated")
    return {
        "summary": f"{total} items updated successfully", "updated": total,
        "percent": str(request.percent),
    }  # fmt: skip


async def bulk_assembly_update(
    ctx: JobContext, request: BulkAssemblyUpdateRequest
) -> dict[str, Any]:
    """Replace one item by another in an assembly and all its descendant assemblies."""
    pool = await ctx.app.apool()
    async with pool.connection() as conn:
        found = await item_ids(conn, [request.replace, request.with_item], field="replace")
        if not ctx.checkpoint:
            cur = await conn.execute(query("assembly_by_code"), {"code": request.assembly_code})
            root = await cur.fetchone()
            if root is None:
                raise UnknownCode(f"unknown assembly {request.assembly_code!r}")
            cur = await conn.execute(
                query("assembly_tree_with_item"),
                {"root_id": root[0], "old_item_id": found[request.replace]},
            )
            ids = [row[0] for row in await cur.fetchall()]
            await ctx.save(progress=0, stage=f"{len(ids)} assemblies hold {request.replace}",
                           checkpoint={"ids": ids, "done": 0})  # fmt: skip
    params = {"old_item_id": found[request.replace], "new_item_id": found[request.with_item]}

    async def apply(conn: psycopg.AsyncConnection[Any], batch: list[int]) -> None:
        await conn.execute(query("assembly_replace_item"), {**params, "ids": batch})

    total = await run_batches(ctx, list(ctx.checkpoint["ids"]), apply, noun="assemblies")
    return {
        "summary": f"{request.replace} replaced by {request.with_item} in {total} assemblies",
        "assemblies": total,
    }
