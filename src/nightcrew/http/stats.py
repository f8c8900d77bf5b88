"""``GET /api/stats``: last-24-hour figures from the stats rollup (hours plus the minutes not
yet compacted), never ``count(*)`` over the job history; per type also the success rate,
the last success and the current failure streak; queue depth and running count from the
backlog's partial indexes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from nightcrew.http.errors import ERROR_RESPONSES
from nightcrew.http.models import Figures, Stats, TypeFigures
from nightcrew.http.routes_jobs import ApiKey
from nightcrew.http.session import acting
from nightcrew.progress import BUCKET_BOUNDS as BUCKET_BOUNDS  # re-exported
from nightcrew.progress import quantile as quantile

if TYPE_CHECKING:
    from nightcrew.app import App


def figures(row: dict[str, Any]) -> dict[str, Any]:
    """The public figures of one rollup sum (per type or overall)."""
    completed, failed, cancelled = row["completed"], row["failed"], row["cancelled"]
    return {
        "total": completed + failed + cancelled,
        "completed": completed,
        "failed": failed,
        "retried": row["retried"],
        "cancelled": cancelled,
        "avg_duration_s": row["duration_sum"] / completed if completed else None,
        "p95_duration_s": quantile(row["buckets"], 0.95),
    }


def type_figures(row: dict[str, Any]) -> TypeFigures:
    """The figures and health of one job type from its ``stats_window`` row."""
    done = row["completed"] + row["failed"]
    return TypeFigures(
        type=row["type"],
        success_rate=row["completed"] / done if done else None,
        last_success_at=row["last_success_at"],
        failure_streak=row["failure_streak"],
        **figures(row),
    )


def combine(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sum per-type rollup rows into one."""
    out: dict[str, Any] = {
        "completed": 0,
        "failed": 0,
        "retried": 0,
        "cancelled": 0,
        "duration_sum": 0.0,
        "buckets": [0] * (len(BUCKET_BOUNDS) + 1),
    }
    for row in rows:
        for name in ("completed", "failed", "retried", "cancelled", "duration_sum"):
            out[name] += row[name]
        out["buckets"] = [a + b for a, b in zip(out["buckets"], row["buckets"], strict=True)]
    return out


def build_stats_router(app: App) -> APIRouter:
    """``GET /api/stats`` (a user sees figures of their own jobs, an admin of all)."""
    router = APIRouter(tags=["stats"], responses=ERROR_RESPONSES)

    @router.get("/api/stats", response_model=Stats, summary="Last 24 hours and the backlog")
    async def stats(key: ApiKey) -> Stats:
        async with acting(app, key) as session:
            await session.one("stats_compact")
            rows = await session.all("stats_window")
            backlog = await session.one("stats_backlog")
        assert backlog is not None
        return Stats(
            last_24h=Figures(**figures(combine(rows))),
            queue_depth=backlog["queue_depth"],
            running=backlog["running"],
            by_type=[type_figures(row) for row in rows],
        )

    return router
