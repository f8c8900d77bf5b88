"""Stats endpoint latency over a large history, and the cost of the rollup trigger.

1. Fills a scratch database with ``--jobs`` finished jobs (history the stats must not
   scan) plus a full 24 h of rollup rows (``--types`` x ``--users`` x ``--shards`` per
   minute), then times ``GET /api/stats`` (admin and one user) in-process.
2. Completes ``--complete`` processing jobs through the worker's real batched
   ``finish_jobs`` query (batches of 500), with the trigger enabled and disabled.

    python bench/http_stats.py --database-url postgresql://.../scratch --jobs 10000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid

import httpx
import psycopg

from nightcrew import App, JobContext
from nightcrew.http import create_app
from nightcrew.keys import create_key
from nightcrew.queries import query


def fill_history(url: str, jobs: int, types: int, users: int, shards: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        row = conn.execute("SELECT count(*) FROM nightcrew.jobs").fetchone()
        have = row[0] if row else 0
        # Finished jobs (in the primary key, outside the backlog's partial indexes) with
        # time-ordered ids like real ones, added a million per statement.
        while have < jobs:
            chunk = min(1_000_000, jobs - have)
            conn.execute("""
                INSERT INTO nightcrew.jobs (id, type, status, user_id, attempts, created_at,
                                            started_at, completed_at, progress)
                SELECT (lpad(to_hex(1600000000000 + i), 12, '0') || '7000' || '8000'
                        || lpad(to_hex(i), 12, '0'))::uuid,
                       'type' || (i %% %s), 'completed', 'u' || (i %% %s), 1,
                       now() - interval '2 days', now() - interval '2 days',
                       now() - interval '2 days', 100
                FROM generate_series(%s::bigint, %s::bigint) AS i""",
                         (types, users, have + 1, have + chunk))  # fmt: skip
            have += chunk
        conn.execute("VACUUM ANALYZE nightcrew.jobs")
        conn.execute("TRUNCATE nightcrew.stats_minute")
        conn.execute("""
            INSERT INTO nightcrew.stats_minute (minute, type, user_id, shard, completed, failed,
                retried, cancelled, duration_sum, h5, h6, h7)
            SELECT date_trunc('minute', now()) - make_interval(mins => m), 'type' || t,
                   'u' || u, s, 100, 2, 3, 1, 20.0, 30, 60, 10
            FROM generate_series(0, 1439) AS m, generate_series(0, %s) AS t,
                 generate_series(0, %s) AS u, generate_series(0, %s) AS s""",
                     (types - 1, users - 1, shards - 1))  # fmt: skip
        conn.execute("VACUUM ANALYZE nightcrew.stats_minute")


async def time_stats(app: App, keys: dict[str, str], rounds: int) -> dict[str, object]:
    api = create_app(app)
    out: dict[str, object] = {}
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for who, key in keys.items():
            headers = {"Authorization": f"Bearer {key}"}
            started = time.perf_counter()
            response = await client.get("/api/stats", headers=headers)
            assert response.status_code == 200, response.text
            first = round(1000 * (time.perf_counter() - started), 1)  # may compact a backlog
            with psycopg.connect(app.url, autocommit=True) as conn:
                # What autovacuum does after the one-off fold of a day of minutes.
                conn.execute("VACUUM ANALYZE nightcrew.stats_minute, nightcrew.stats_hour")
            for _ in range(5):
                await client.get("/api/stats", headers=headers)
            samples = []
            for _ in range(rounds):
                started = time.perf_counter()
                await client.get("/api/stats", headers=headers)
                samples.append(1000 * (time.perf_counter() - started))
            samples.sort()
            out[who] = {"first_call_ms": first, "p50_ms": round(statistics.median(samples), 2),
                        "p95_ms": round(samples[int(0.95 * len(samples))], 2),
                        "total_24h": response.json()["last_24h"]["total"]}  # fmt: skip
    await app.aclose()
    return out


def time_completion(url: str, count: int, trigger: bool) -> float:
    worker = "bench-worker"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM nightcrew.jobs WHERE worker_id = %s OR type = 'bench.finish'",
                     (worker,))  # fmt: skip
        ids = [uuid.uuid4() for _ in range(count)]
        with conn.cursor().copy("COPY nightcrew.jobs (id, type, status, attempts, worker_id, "
                                "started_at, user_id) FROM STDIN") as copy:  # fmt: skip
            for job_id in ids:
                copy.write_row((job_id, "bench.finish", "processing", 1, worker,
                                "2026-01-01T00:00:00Z", "u0"))  # fmt: skip
        conn.execute("VACUUM ANALYZE nightcrew.jobs")
        action = "ENABLE" if trigger else "DISABLE"
        conn.execute(f"ALTER TABLE nightcrew.jobs {action} TRIGGER jobs_after_update")
        try:
            started = time.perf_counter()
            for start in range(0, count, 500):
                batch = ids[start : start + 500]
                conn.execute(query("finish_jobs"), {
                    "ids": batch, "attempts": [1] * len(batch),
                    "statuses": ["completed"] * len(batch), "results": [None] * len(batch),
                    "errors": [None] * len(batch), "delays": [0.0] * len(batch),
                    "worker_id": worker})  # fmt: skip
            return time.perf_counter() - started
        finally:
            conn.execute("ALTER TABLE nightcrew.jobs ENABLE TRIGGER jobs_after_update")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    parser.add_argument("--jobs", type=int, default=10_000_000)
    parser.add_argument("--types", type=int, default=10)
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--complete", type=int, default=20_000)
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit("give --database-url or set NIGHTCREW_DATABASE_URL")
    started = time.perf_counter()
    fill_history(args.database_url, args.jobs, args.types, args.users, args.shards)
    filled = time.perf_counter() - started
    app = App(args.database_url, migrate_on_start=False)

    @app.job("bench.noop")
    async def noop(ctx: JobContext, payload: dict[str, object]) -> None:
        return None

    with app.pool().connection() as conn:
        keys = {"admin": create_key(conn, "bench-admin", admin=True, actor="bench")[1],
                "user": create_key(conn, "u1", actor="bench")[1]}  # fmt: skip
    app.close()
    stats = asyncio.run(time_stats(app, keys, args.rounds))
    runs = {label: [time_completion(args.database_url, args.complete, trigger) for _ in range(3)]
            for label, trigger in (("with_trigger", True), ("without_trigger", False))}  # fmt: skip
    best = {label: min(times) for label, times in runs.items()}
    print(json.dumps({
        "history_jobs": args.jobs, "fill_seconds": round(filled, 1),
        "rollup_rows": 1440 * args.types * args.users * args.shards, "stats": stats,
        f"complete_{args.complete}_jobs_s": {k: round(v, 3) for k, v in best.items()},
        "trigger_overhead_pct": round(100 * (best["with_trigger"] / best["without_trigger"] - 1)),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
