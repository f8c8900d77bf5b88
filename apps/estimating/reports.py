"""The weekly usage report and the monthly archive of old estimates.

The report covers the seven days before the run (Sunday 00:00 UTC: Sunday to Saturday);
``GET /api/estimating/reports/weekly`` reads it back, with only the project rows the reader
may see. The archive moves estimates whose newest line is older than 13 months, with their
lines, to ``estimates_archive`` / ``usage_archive`` in batches, each committed with its
checkpoint, so a killed run resumes where it stopped. Estimates are looked at in key order
(keyset: each once per run, so a run costs one index probe per estimate, not a rescan of
the recent ones per batch).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from estimating.errors import UnknownCode
from estimating.sql import query
from nightcrew import JobContext

ARCHIVE_BATCH = 2000
"""Estimates looked at per transaction (the old ones among them move with their lines)."""
ARCHIVE_AFTER_DAYS = 396
"""13 months, rounded to 396 days: an estimate untouched this long is archived."""
WEEK = timedelta(days=7)


async def compute_weekly_report(conn: psycopg.AsyncConnection[Any], end: date) -> dict[str, Any]:
    """Compute and store the report of the seven days before ``end`` (UTC midnight)."""
    start = end - WEEK
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("weekly_report"), {"start": start, "end": end})
        found = await cur.fetchone()
        assert found is not None
        report = {"week_start": start.isoformat(), "week_end": end.isoformat(), **found}
        report["summary"] = (
            f"week of {start}: {report['usage_rows']} item uses in {report['estimates']} "
            f"estimates across {report['projects']} projects; {len(report['new_items'])} new "
            f"items, {report['unused_count']} unused"
        )
        await cur.execute(
            query("weekly_report_store"), {"week_start": start, "report": json.dumps(report)}
        )
    return report


async def weekly_report(ctx: JobContext, payload: dict[str, Any] | None) -> dict[str, Any]:
    """Usage of the seven days before ``payload["end"]`` (default: today, UTC midnight)."""
    end = date.fromisoformat(payload["end"]) if payload and payload.get("end") else None
    pool = await ctx.app.apool()
    async with pool.connection() as conn:
        return await compute_weekly_report(conn, end or datetime.now(UTC).date())


async def read_weekly_report(
    conn: psycopg.AsyncConnection[Any], day: date | None
) -> dict[str, Any]:
    """The stored report of the week holding ``day`` (the latest without one), its project
    rows cut to the projects visible on ``conn`` (row-level security decides)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("weekly_report_get"), {"day": day})
        row = await cur.fetchone()
        if row is None:
            what = f"the week of {day}" if day else "any week yet"
            raise UnknownCode(f"no weekly report for {what}", field="week")
        report: dict[str, Any] = row["report"]
        ids = [p["project_id"] for p in report.get("by_project", [])]
        await cur.execute(query("projects_visible"), {"ids": ids})
        visible = {r["id"] for r in await cur.fetchall()}
    report["by_project"] = [p for p in report.get("by_project", []) if p["project_id"] in visible]
    report.pop("summary", None)
    return report


async def archive_batch(
    conn: psycopg.AsyncConnection[Any], cutoff: datetime, after: int, batch: int
) -> tuple[int | None, int, int]:
    """Look at the ``batch`` estimates after key ``after`` and archive, with their lines,
    those whose newest line is older than ``cutoff``; return the last key looked at
    (``None`` when there were none) and how many estimates and lines moved."""
    params = {"cutoff": cutoff, "after": after, "batch": batch}
    cur = await conn.execute(query("archive_estimates_batch"), params)
    row = await cur.fetchone()
    assert row is not None
    return row[0], int(row[1]), int(row[2])


async def archive_usage(ctx: JobContext, payload: dict[str, Any] | None) -> dict[str, Any]:
    """Move estimates untouched for 13 months (``before`` overrides the cutoff) and their
    lines to the archive, looking at ``batch`` estimates per transaction in key order; the
    cutoff, the last key looked at and the counts live in the checkpoint, committed with
    each batch, so a resumed run goes on where the killed one stopped."""
    payload = payload or {}
    done = dict(ctx.checkpoint or {})
    if "cutoff" not in done:
        before = payload.get("before")
        cutoff = (
            datetime.fromisoformat(before) if before
            else datetime.now(UTC) - timedelta(days=ARCHIVE_AFTER_DAYS)
        )  # fmt: skip
        done = {"cutoff": cutoff.isoformat(), "after": 0, "estimates": 0, "lines": 0}
    cutoff = datetime.fromisoformat(done["cutoff"])
    size = int(payload.get("batch") or ARCHIVE_BATCH)
    while True:
        async with ctx.transaction() as conn:
            last, estimates, lines = await archive_batch(conn, cutoff, done["after"], size)
            if last is None:  # no estimate left to look at
                break
            done = {**done, "after": last, "estimates": done["estimates"] + estimates,
                    "lines": done["lines"] + lines}  # fmt: skip
            await ctx.save(
                stage=f"archived {done['estimates']} estimates", checkpoint=done,
                metrics={"estimates": done["estimates"], "lines": done["lines"]},
            )  # fmt: skip
    return {
        "summary": f"{done['estimates']} estimates and {done['lines']} lines archived",
        "estimates": done["estimates"], "lines": done["lines"], "before": done["cutoff"],
    }  # fmt: skip


async def read_estimate(
    conn: psycopg.AsyncConnection[Any], project_id: str, estimate_id: str
) -> dict[str, Any]:
    """An estimate and its lines, from the live tables or, once archived, from the archive."""
    params = {"project_id": project_id, "estimate_id": estimate_id}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("estimate_find"), params)
        found = await cur.fetchone()
        if found is None:
            raise UnknownCode(f"unknown estimate {estimate_id!r}", field="estimate_id")
        lines_query = "estimate_lines_archived" if found["archived"] else "estimate_lines"
        await cur.execute(query(lines_query), {"key": found["key"]})
        lines = await cur.fetchall()
    return {
        "project_id": project_id, "estimate_id": estimate_id, "archived": found["archived"],
        "archived_at": found["archived_at"].isoformat() if found["archived_at"] else None,
        "lines": [{**line, "quantity": str(line["quantity"]),
                   "used_at": line["used_at"].isoformat()} for line in lines],
    }  # fmt: skip
