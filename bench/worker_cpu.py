"""The worker's own CPU per job, the part of the drain a Python worker adds to the database's.

    python bench/worker_cpu.py --no-database          # the per-job path alone, no server
    python bench/worker_cpu.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

``--no-database`` times what a worker does for each fetched row of a no-op job -- build its
``JobInfo`` and ``JobContext``, start its task, run the handler, make its outcome and queue
it, free its slot, and encode the outcome as the completer would -- for batches of 500 rows
made up in the process (no fetch, no write). It is repeatable enough to compare two trees
(``PYTHONPATH=/other/tree/src``) and, being short, runs under ``valgrind --tool=callgrind``
for instruction counts, which do not depend on how busy the machine is.

With a database, one worker in this process drains ``--n`` preloaded no-op jobs (concurrency
and fetch batch 500, complete batch 1000 every 10 ms); it prints jobs/s and the process's CPU
per job over the drain (fetch rows parsed, outcomes written, the event loop: all of it).
``floors.py``'s ``python_drain_floor`` is the same statements with no nightcrew code: its
CPU per job is the least any Python worker of psycopg spends (7.3 us here on 2026-12-03).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from nightcrew import App, JobContext

JOB_TYPE = "bench.noop"
BATCH = 500


def app_for(url: str) -> App:
    app = App(url, migrate_on_start=False, concurrency=BATCH, fetch_batch=BATCH,
              complete_batch=1000, complete_interval_ms=10)  # fmt: skip

    @app.job(JOB_TYPE, max_attempts=1)
    async def noop(ctx: JobContext, payload: Any) -> None:
        return None

    return app


def fetched_rows(count: int) -> list[tuple[Any, ...]]:
    """Rows as ``fetch_jobs`` returns them, in the order of the tree's FETCHED_COLUMNS."""
    from nightcrew.lifecycle.fetch import FETCHED_COLUMNS

    now = datetime.now(UTC)
    common = {"type": JOB_TYPE, "queue": "default", "priority": 0, "attempts": 1,
              "max_attempts": 1, "timeout_seconds": None, "checkpoint": None, "user_id": None,
              "run_at": now, "created_at": now, "parent_count": 0}  # fmt: skip
    rows = []
    for i in range(count):
        values = {**common, "id": uuid.uuid4(), "payload": {"i": i, "t": 1.0}}
        rows.append(tuple(values[column] for column in FETCHED_COLUMNS))
    return rows


async def per_job_path(batches: int, reps: int) -> list[float]:
    """CPU microseconds per job of the per-job path, once per rep."""
    from nightcrew.lifecycle.finish import Completer, outcomes_json

    app = app_for("postgresql://unused")
    worker = app.worker()
    completer = Completer(None, worker.id, batch=1000, interval=0.01)  # type: ignore[arg-type]
    worker._completer = completer  # outcomes are queued, never written
    figures = []
    for _ in range(reps):
        rows = [fetched_rows(BATCH) for _ in range(batches)]
        gc.collect()
        t0 = time.process_time()
        for batch in rows:
            leased_at = time.monotonic()
            for row in batch:
                worker._start(row, leased_at)
            while worker.running:
                await asyncio.sleep(0)
            outcomes_json(completer._pending)
            completer._pending.clear()
        figures.append(1e6 * (time.process_time() - t0) / (BATCH * batches))
    return figures


async def drain(url: str, n: int) -> dict[str, float]:
    """One worker drains the ``n`` preloaded jobs; stops once every one is completed."""
    app = app_for(url)
    worker = app.worker()
    pool = await app.apool()

    async def stop_when_done() -> None:
        while True:
            await asyncio.sleep(0.02)
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT count(*) FROM nightcrew.jobs WHERE status = 'completed'"
                )
                row = await cur.fetchone()
            if row and row[0] >= n:
                worker.stop()
                return

    watcher = asyncio.create_task(stop_when_done())
    t0, c0 = time.perf_counter(), time.process_time()
    await worker.run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    await watcher
    await app.aclose()
    return {"rate": n / seconds, "cpu_us_per_job": 1e6 * cpu / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    ap.add_argument("--db-name", default="nightcrew_worker_cpu")
    ap.add_argument("--no-database", action="store_true", help="the per-job path alone")
    ap.add_argument("--batches", type=int, default=40, help="--no-database: batches of 500")
    ap.add_argument("--n", type=int, default=20_000, help="jobs drained per rep")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    if a.no_database:
        figures = asyncio.run(per_job_path(a.batches, a.reps))
        print(json.dumps({"figure": "per_job_path", "cpu_us_per_job": min(figures),
                          "each": [round(f, 2) for f in figures]}))  # fmt: skip
        return
    if not a.database_url:
        ap.error("give --database-url (or NIGHTCREW_DATABASE_URL), or --no-database")
    from throughput import Bench, bench_database

    url = bench_database(a.database_url, a.db_name)
    loader = Bench(url, {"chunk": 1000, "drain": a.n})  # the drain figure's preload
    runs = []
    for _ in range(a.reps):
        loader.reset()
        loader.preload(a.n)
        loader.admin.execute("CHECKPOINT")
        runs.append(asyncio.run(drain(url, a.n)))
        print(json.dumps({"figure": "drain_in_process", **runs[-1]}), flush=True)
    medians = {key: statistics.median(r[key] for r in runs) for key in ("rate", "cpu_us_per_job")}
    print(json.dumps({"figure": "drain_in_process_median", "n": a.n, **medians}))


if __name__ == "__main__":
    main()
