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
    cur = await conn.execute(query("bulk_price_select"), _selection(request))
    return [row[0] for row in await cur.fetchall()]


def _selection(request: BulkPriceUpdateRequest) -> dict[str, Any]:
    """The parameters of the selection queries."""
    flt = request.filter
    return {
        "catalogue_codes": request.catalogue_codes, "item_codes": request.item_codes,
        "kind": flt.kind if flt else None, "category": flt.category if flt else None,
    }  # fmt: skip


async def count_selected_items(
    conn: psycopg.AsyncConnection[Any], request: BulkPriceUpdateRequest
) -> int:
    """How many library items the update selects (named, or matched by entry or filter)."""
    cur = await conn.execute(query("bulk_price_items"), _selection(request))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


def plural(count: int, noun: str) -> str:
    """``1 item``, ``2 items``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def price_update_summary(items: int, changed: int, percent: Decimal) -> str:
    """``100 items updated successfully (148 catalogue rates raised)``: the items selected
    and the catalogue entries changed, which differ when items share entries."""
    verb = "raised" if percent > 0 else "lowered" if percent < 0 else "unchanged"
    rates = plural(changed, "catalogue rate")
    return f"{plural(items, 'item')} updated successfully ({rates} {verb})"


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
            items = await count_selected_items(conn, request)
        await ctx.save(
            progress=0, stage=f"selected {len(ids)} catalogue entries of {items} items",
            checkpoint={"ids": ids, "done": 0, "items": items},
        )  # fmt: skip
    ids = list(ctx.checkpoint["ids"])
    factor = 1 + request.percent / Decimal(100)

    async def apply(conn: psycopg.AsyncConnection[Any], batch: list[int]) -> None:
        await conn.execute(
            query("bulk_price_apply"), {"job_id": ctx.job.id, "ids": batch, "factor": factor}
        )

    await run_batches(ctx, ids, apply, noun="updated")
    items = int(ctx.checkpoint.get("items", len(ids)))
    pool = await ctx.app.apool()
    async with pool.connection() as conn:  # the ledger counts every attempt's batches
        cur = await conn.execute(query("bulk_price_changed"), {"job_id": ctx.job.id})
        row = await cur.fetchone()
    changed = int(row[0]) if row else 0
    return {
        "summary": price_update_summary(items, changed, request.percent),
        "items": items, "catalogue_rates": changed, "percent": str(request.percent),
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
