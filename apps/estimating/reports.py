"""The weekly usage report and the monthly archive of old usage."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg.rows import dict_row

from estimating.sql import query
from nightcrew import JobContext

ARCHIVE_BATCH = 10_000


async def weekly_report(ctx: JobContext, payload: dict[str, Any] | None) -> dict[str, Any]:
    """Usage of the seven days before ``payload["end"]`` (default: today, UTC midnight)."""
    end = date.fromisoformat(payload["end"]) if payload and payload.get("end") else None
    end = end or datetime.now(UTC).date()
    start = end - timedelta(days=7)
    pool = await ctx.app.apool()
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("weekly_report"), {"start": start, "end": end})
        report = await cur.fetchone()
        assert report is not None
        report = {"week_start": start.isoformat(), "week_end": end.isoformat(), **report}
        await cur.execute(
            query("weekly_report_store"), {"week_start": start, "report": json.dumps(report)}
        )
    report["summary"] = (
        f"week of {start}: {report['usage_rows']} item uses in {report['estimates']} estimates "
        f"across {report['projects']} projects"
    )
    return report


async def archive_usage(ctx: JobContext, payload: dict[str, Any] | None) -> dict[str, Any]:
    """Move usage older than 13 months into ``usage_archive``, a batch per transaction."""
    cutoff_text = payload.get("before") if payload else None
    cutoff = (
        datetime.fromisoformat(cutoff_text) if cutoff_text
        else datetime.now(UTC) - timedelta(days=396)  # 13 months, rounded to 396 days
    )  # fmt: skip
    moved = int((ctx.checkpoint or {}).get("moved", 0))
    while True:
        async with ctx.transaction() as conn:
            cur = await conn.execute(
                query("archive_usage_batch"), {"cutoff": cutoff, "batch": ARCHIVE_BATCH}
            )
            count = cur.rowcount
            moved += count
            await ctx.save(stage=f"archived {moved} usage rows", checkpoint={"moved": moved},
                           metrics={"archived": moved})  # fmt: skip
        if count < ARCHIVE_BATCH:
            break
    return {"summary": f"{moved} usage rows archived", "archived": moved,
            "before": cutoff.isoformat()}  # fmt: skip
