"""Operations routes: ``/healthz`` (open) and Prometheus ``/metrics`` (the metrics token
or an admin key).

Metrics are read from the database at scrape time, so they cover every worker and every
producer process, not just this server: live jobs by state/type/queue (from the backlog's
partial indexes), outcome counters and the duration histogram (from the stats rollup), and
enqueues (PostgreSQL's own insert counter of the jobs table; ``rate()`` gives the rate).
Queue labels are bounded to the queues the App's job types declare; other queues (named by
whoever enqueued) are summed into one ``other`` series.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import psycopg
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from psycopg.rows import dict_row

from nightcrew.db.migrate import available_migrations
from nightcrew.http.errors import ApiError, ErrorResponse
from nightcrew.http.models import Health
from nightcrew.http.routes_jobs import ApiKey, declared_queues
from nightcrew.http.session import acting
from nightcrew.http.stats import BUCKET_BOUNDS
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App

UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "database down or schema outdated"}
}


OTHER_QUEUES = "other"
"""The ``queue`` label of every queue no job type of the App declares."""
METRICS_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "no metrics token and no live key"},
    403: {"model": ErrorResponse, "description": "a user's key (not an admin's)"},
}


class _Snapshot:
    """A prometheus collector over figures already read from the database."""

    def __init__(
        self,
        backlog: list[dict[str, Any]],
        totals: list[dict[str, Any]],
        inserted: int,
        known_queues: set[str],
    ) -> None:
        self.backlog, self.totals, self.inserted = backlog, totals, inserted
        self.known_queues = known_queues

    def _queue_label(self, queue: str) -> str:
        return queue if queue in self.known_queues else OTHER_QUEUES

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "nightcrew_jobs",
            "Live jobs by state, type and queue.",
            labels=["state", "type", "queue"],
        )
        by_labels: dict[tuple[str, str, str], int] = {}
        depth: dict[str, int] = {}
        running = 0
        for row in self.backlog:
            queue = self._queue_label(row["queue"])
            labels = (row["status"], row["type"], queue)
            by_labels[labels] = by_labels.get(labels, 0) + row["jobs"]
            if row["status"] == "processing":
                running += row["jobs"]
            else:
                depth[queue] = depth.get(queue, 0) + row["jobs"]
        for labels, count in sorted(by_labels.items()):
            jobs.add_metric(list(labels), count)
        yield jobs
        queue_depth = GaugeMetricFamily(
            "nightcrew_queue_depth", "Jobs waiting, per queue.", labels=["queue"]
        )
        for queue, count in sorted(depth.items()):
            queue_depth.add_metric([queue], count)
        yield queue_depth
        yield GaugeMetricFamily("nightcrew_jobs_running", "Jobs being processed.", value=running)
        yield CounterMetricFamily(
            "nightcrew_jobs_enqueued", "Jobs ever inserted (enqueued).", value=self.inserted
        )
        finished = CounterMetricFamily(
            "nightcrew_jobs_finished",
            "Jobs that reached an end state, by outcome (failed: dead-lettered).",
            labels=["type", "outcome"],
        )
        retries = CounterMetricFamily(
            "nightcrew_job_retries", "Attempts sent to retry.", labels=["type"]
        )
        durations = HistogramMetricFamily(
            "nightcrew_job_duration_seconds", "Run time of completed jobs.", labels=["type"]
        )
        for row in self.totals:
            for outcome in ("completed", "failed", "cancelled"):
                finished.add_metric([row["type"], outcome], row[outcome])
            retries.add_metric([row["type"]], row["retried"])
            cumulative, buckets = 0, []
            for bound, count in zip(BUCKET_BOUNDS, row["buckets"], strict=False):
                cumulative += count
                buckets.append((repr(bound), cumulative))
            buckets.append(("+Inf", sum(row["buckets"])))
            durations.add_metric([row["type"]], buckets, row["duration_sum"])
        yield finished
        yield retries
        yield durations


def _is_metrics_token(app: App, key: str) -> bool:
    token = app.settings.metrics_token
    if token is None or not token.get_secret_value():
        return False
    return hmac.compare_digest(key.encode(), token.get_secret_value().encode())


async def authorize_scrape(app: App, key: str | None) -> None:
    """Let the metrics token or an admin key through: 401 without a live key, 403 for a
    user's key (metrics show every user's types and queues)."""
    if key and _is_metrics_token(app, key):
        return
    async with acting(app, key) as session:
        is_admin = session.principal.is_admin
    if not is_admin:
        raise ApiError(403, "an admin key or the metrics token is required")


def build_ops_router(app: App) -> APIRouter:
    """``/healthz`` and ``/metrics``."""
    router = APIRouter(tags=["operations"])

    @router.get(
        "/healthz",
        response_model=Health,
        responses=UNAVAILABLE,
        summary="Database reachable and migrations current",
    )
    async def healthz() -> Health:
        expected = {m.version for m in available_migrations()}
        try:
            pool = await app.apool()
            async with pool.connection(timeout=5) as conn:
                cur = await conn.execute("SELECT version FROM nightcrew.migrations")
                applied = {row[0] for row in await cur.fetchall()}
        except (psycopg.Error, OSError, TimeoutError) as exc:
            raise ApiError(503, f"database unreachable: {type(exc).__name__}") from None
        missing = sorted(expected - applied)
        if missing:
            raise ApiError(503, f"migrations not applied: {missing}")
        return Health(status="ok", database="ok", migrations="current")

    @router.get(
        "/metrics",
        response_class=Response,
        summary="Prometheus metrics (metrics token or admin key)",
        responses={
            200: {
                "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                "description": "Prometheus text format",
            },
            **METRICS_FORBIDDEN,
        },
    )
    async def metrics(key: ApiKey) -> Response:
        await authorize_scrape(app, key)
        pool = await app.apool()
        timeout = app.settings.http_pool_timeout_seconds
        async with (
            pool.connection(timeout=timeout) as conn,
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(query("stats_compact"))
            await cur.execute(query("stats_metrics_backlog"))
            backlog = await cur.fetchall()
            await cur.execute(query("stats_metrics_totals"))
            totals = await cur.fetchall()
            await cur.execute(query("stats_inserted"))
            inserted = await cur.fetchone()
        registry = CollectorRegistry(auto_describe=False)
        count = inserted["inserted"] if inserted else 0
        registry.register(_Snapshot(backlog, totals, count, declared_queues(app)))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
