"""/api/stats from the rollup, /metrics, /healthz."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nightcrew.http.stats import quantile
from tests.http.conftest import METRICS_TOKEN, Server
from tests.support import wait_until


def post(srv: Server, who: str, path: str, **body: object) -> dict[str, object]:
    with srv.client(who) as client:
        response = client.post(path, json=body)
    assert response.status_code in (200, 202), response.text
    return response.json()  # type: ignore[no-any-return]


def count_done(srv: Server) -> int:
    rows = srv.sql("SELECT count(*) FROM nightcrew.jobs WHERE status IN "
                   "('completed', 'failed', 'cancelled')")  # fmt: skip
    return int(rows[0][0])


async def test_stats_count_outcomes_per_type_and_user(srv: Server) -> None:
    for _ in range(3):
        post(srv, "alice", "/api/jobs", type="demo.echo", payload={"n": 1})
    failing = post(srv, "alice", "/api/jobs", type="demo.fail")
    doomed = post(srv, "alice", "/api/jobs", type="demo.echo", delay_seconds=3600)
    post(srv, "alice", f"/api/jobs/{doomed['id']}/cancel")
    post(srv, "bob", "/api/jobs", type="demo.echo")
    worker = srv.app.worker(queues=["http"])
    task = asyncio.create_task(worker.run())
    await asyncio.to_thread(wait_until, lambda: count_done(srv) == 6, 20, "jobs to finish")
    worker.stop()
    await task
    await srv.app.aclose()
    post(srv, "alice", f"/api/jobs/{failing['id']}/retry")  # counted as retried
    post(srv, "alice", "/api/jobs", type="demo.echo", delay_seconds=3600)  # waiting
    with srv.client("alice") as client:
        alice = client.get("/api/stats").json()
    with srv.client("admin") as client:
        admin = client.get("/api/stats").json()
    window = alice["last_24h"]
    assert (window["completed"], window["failed"], window["cancelled"]) == (3, 1, 1)
    assert (window["total"], window["retried"]) == (5, 1)
    assert 0 < window["avg_duration_s"] < 5 and 0 < window["p95_duration_s"] < 5
    assert (alice["queue_depth"], alice["running"]) == (2, 0)  # the retried and the delayed
    by_type = {row["type"]: row for row in alice["by_type"]}
    assert set(by_type) == {"demo.echo", "demo.fail"}
    assert (by_type["demo.echo"]["completed"], by_type["demo.echo"]["cancelled"]) == (3, 1)
    assert (by_type["demo.fail"]["failed"], by_type["demo.fail"]["avg_duration_s"]) == (1, None)
    assert admin["last_24h"]["completed"] == 4 and admin["queue_depth"] == 2


def test_rollup_histogram_gives_avg_and_p95(srv: Server) -> None:
    # 95 jobs that ran ~0.1 s and 5 that ran ~10 s, completed by one batched UPDATE.
    srv.sql("""
        INSERT INTO nightcrew.jobs (id, type, user_id, status, attempts, started_at, priority)
        SELECT gen_random_uuid(), 'demo.echo', 'alice', 'processing', 1, now(), i
        FROM generate_series(1, 100) AS i""")
    srv.sql("""
        UPDATE nightcrew.jobs SET status = 'completed', completed_at = started_at
            + CASE WHEN priority <= 95 THEN interval '0.1 s' ELSE interval '10 s' END""")
    srv.sql("UPDATE nightcrew.jobs SET status = 'completed'")  # no transition: not counted
    with srv.client("alice") as client:
        window = client.get("/api/stats").json()["last_24h"]
    assert window["completed"] == 100
    assert window["avg_duration_s"] == pytest.approx(0.95 * 0.1 + 0.05 * 10, rel=0.01)
    assert 0.08 <= window["p95_duration_s"] <= 0.16  # bucket (0.08, 0.16]
    rollup_rows = srv.sql("SELECT (SELECT count(*) FROM nightcrew.stats_minute)"
                          " + (SELECT count(*) FROM nightcrew.stats_hour)")  # fmt: skip
    assert rollup_rows == [(1,)]  # one batched statement: one rollup row


def test_closed_minutes_fold_into_hours_and_totals(srv: Server) -> None:
    srv.sql("TRUNCATE nightcrew.stats_hour, nightcrew.stats_total")
    srv.sql("""
        INSERT INTO nightcrew.stats_minute (minute, type, user_id, shard, completed, h3)
        SELECT date_trunc('minute', now()) - make_interval(mins => m), 'demo.echo', 'alice',
               s, 1, 1
        FROM unnest(ARRAY[0, 1, 2, 61, 30 * 60]) AS m, generate_series(0, 7) AS s""")
    with srv.client("alice") as client:
        window = client.get("/api/stats").json()["last_24h"]
    assert window["completed"] == 4 * 8  # the minute 30 h ago is outside the window
    # The minutes of the last hour stay (the alert window); older ones fold, 61 min included.
    left = srv.sql("SELECT count(*) FROM nightcrew.stats_minute")[0][0]
    assert left == 3 * 8
    folded = 40 - left
    assert srv.sql("SELECT sum(completed) FROM nightcrew.stats_hour") == [(folded,)]
    assert srv.sql("SELECT completed, h3 FROM nightcrew.stats_total") == [(folded, folded)]
    finished = metrics(srv)[("nightcrew_jobs_finished_total",
                             (("outcome", "completed"), ("type", "demo.echo")))]  # fmt: skip
    assert finished == 40


def test_quantile_interpolates_inside_the_bucket() -> None:
    assert quantile([0] * 22, 0.95) is None
    buckets = [0] * 22
    buckets[3] = 10  # (0.02, 0.04]
    assert quantile(buckets, 0.5) == pytest.approx(0.03)
    buckets[21] = 1000
    assert quantile(buckets, 0.99) > 5000


def scraper(srv: Server) -> httpx.Client:
    """A client that scrapes like Prometheus, with the metrics token."""
    return srv.client(headers={"Authorization": f"Bearer {METRICS_TOKEN}"})


def metrics(srv: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with scraper(srv) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_cover_states_outcomes_durations_and_enqueues(srv: Server) -> None:
    before = metrics(srv).get(("nightcrew_jobs_enqueued_total", ()), 0)
    post(srv, "alice", "/api/jobs", type="demo.echo", queue="reports")
    post(srv, "bob", "/api/jobs", type="demo.echo", queue="reports")
    srv.sql("""
        INSERT INTO nightcrew.jobs (id, type, status, attempts, started_at, queue, priority)
        SELECT gen_random_uuid(), 'demo.typed', 'processing', 1, now() - interval '1 s', 'q2', i
        FROM generate_series(1, 3) AS i""")
    srv.sql("UPDATE nightcrew.jobs SET status = 'completed', completed_at = started_at "
            "+ interval '1 s' WHERE type = 'demo.typed' AND priority = 1")  # fmt: skip
    srv.sql("UPDATE nightcrew.jobs SET status = 'failed', completed_at = now() "
            "WHERE type = 'demo.typed' AND priority = 2")  # fmt: skip
    m = metrics(srv)
    pending = (("queue", "reports"), ("state", "pending"), ("type", "demo.echo"))
    assert m[("nightcrew_jobs", pending)] == 2
    assert (
        m[("nightcrew_jobs", (("queue", "other"), ("state", "processing"), ("type", "demo.typed")))]
        == 1
    )  # q2: declared by no type
    assert m[("nightcrew_queue_depth", (("queue", "reports"),))] == 2
    assert m[("nightcrew_jobs_running", ())] == 1
    typed = (("type", "demo.typed"),)
    assert m[("nightcrew_jobs_finished_total", (("outcome", "completed"), *typed))] == 1
    assert m[("nightcrew_jobs_finished_total", (("outcome", "failed"), *typed))] == 1
    assert m[("nightcrew_job_duration_seconds_count", typed)] == 1
    assert m[("nightcrew_job_duration_seconds_sum", typed)] == 1.0
    assert m[("nightcrew_job_duration_seconds_bucket", (("le", "0.64"), *typed))] == 0
    assert m[("nightcrew_job_duration_seconds_bucket", (("le", "+Inf"), *typed))] == 1
    # PostgreSQL publishes its insert counter within about a second.
    wait_until(lambda: metrics(srv)[("nightcrew_jobs_enqueued_total", ())] >= before + 5, 10)


def test_healthz_reports_database_and_migrations(srv: Server) -> None:
    with srv.client() as client:
        assert client.get("/healthz").json() == {
            "status": "ok", "database": "ok", "migrations": "current"}  # fmt: skip
        srv.sql("DELETE FROM nightcrew.migrations WHERE version = 4")
        try:
            response = client.get("/healthz")
        finally:
            srv.sql("INSERT INTO nightcrew.migrations (version, name) VALUES (4, 'http')")
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "migrations not applied: [4]"


def test_metrics_need_the_metrics_token_or_an_admin_key(srv: Server) -> None:
    answers = {}
    for who, headers in (("nobody", {}), ("wrong", {"Authorization": "Bearer nope"}),
                         ("basic", {"Authorization": f"Basic {METRICS_TOKEN}"})):  # fmt: skip
        with srv.client(headers=headers) as client:
            answers[who] = client.get("/metrics")
    with srv.client("alice") as client:
        answers["alice"] = client.get("/metrics")
    for who in ("nobody", "wrong", "basic"):
        assert answers[who].status_code == 401, who
        assert answers[who].headers["WWW-Authenticate"] == "Bearer"
        assert "nightcrew_jobs" not in answers[who].text
    assert answers["alice"].status_code == 403
    with srv.client("admin") as admin, scraper(srv) as prometheus:
        assert admin.get("/metrics").status_code == 200
        assert prometheus.get("/metrics").status_code == 200


def test_metrics_sum_undeclared_queues_into_one_other_series(srv: Server) -> None:
    # Queues named by whoever enqueued (admins may pick any) must not mint series.
    for queue in ("tenant-a", "tenant-b", "tenant-c", "http"):
        post(srv, "admin", "/api/jobs", type="demo.echo", queue=queue)
    m = metrics(srv)
    depth = {labels[0][1]: value for (name, labels), value in m.items()
             if name == "nightcrew_queue_depth"}  # fmt: skip
    assert depth == {"http": 1, "other": 3}
    queues = {dict(labels)["queue"] for (name, labels) in m if name == "nightcrew_jobs"}
    assert queues == {"http", "other"}
