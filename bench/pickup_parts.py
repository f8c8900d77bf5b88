"""Where idle pickup time goes: the latency figure of ``bench/throughput.py`` cut into parts.

    python bench/pickup_parts.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

One worker process (concurrency 10, as the figure) waits idle; this process enqueues one job
every 20 ms with the sync API, as the figure does. The worker marks the wall-clock time of
the wake-up NOTIFY's arrival and of its fetch's start and end (by wrapping two of its
methods: a diagnosis, not a benchmark), and the handler its own start. Prints p50 / p95 /
p99 / max in ms of each part: the enqueue call (its durable commit), the NOTIFY's arrival
after the call returned, the wait until the fetch starts, the fetch (the lease and its
durable commit), the start of the handler after it; then the parts of the slowest jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import statistics
import tempfile
import time
from typing import Any

import psycopg

from throughput import JOB_TYPE, LATENCY_INTERVAL, _wait, bench_database

PARTS = ("enqueue", "notify", "to_fetch", "fetch", "to_start", "total")


def worker(url: str, out_path: str) -> None:
    """A worker process that writes, per job, the times of its pickup's steps."""
    from nightcrew import App, JobContext
    from nightcrew.worker import Worker

    marks: dict[str, float] = {}
    heard, fetch = Worker._on_notify, Worker._fetch

    def on_notify(self: Worker, channel: str, payload: str) -> None:
        if channel == "nightcrew_jobs":
            marks["notify"] = time.time()
        heard(self, channel, payload)

    async def timed_fetch(self: Worker, limit: int) -> list[tuple[Any, ...]]:
        marks["fetch0"] = time.time()
        rows = await fetch(self, limit)
        marks["fetch1"] = time.time()
        return rows

    Worker._on_notify = on_notify  # type: ignore[method-assign]
    Worker._fetch = timed_fetch  # type: ignore[method-assign]

    async def run() -> None:
        app = App(url, migrate_on_start=False, concurrency=10, fetch_batch=100,
                  complete_batch=500, complete_interval_ms=5)  # fmt: skip
        with open(out_path, "w", buffering=1) as out:

            @app.job(JOB_TYPE, max_attempts=1)
            async def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
                now = time.time()
                steps = (marks.get(k, 0.0) for k in ("notify", "fetch0", "fetch1"))
                out.write(" ".join(f"{v:.6f}" for v in (payload["i"], *steps, now)) + "\n")

            w = app.worker()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, w.stop)
            await w.run()
        await app.aclose()

    asyncio.run(run())


def lines(path: str) -> int:
    """Lines the worker has written to ``path`` so far (0 before it opens the file)."""
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for _ in f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    ap.add_argument("--db-name", default="nightcrew_bench")
    ap.add_argument("--jobs", type=int, default=300)
    args = ap.parse_args()
    from nightcrew import App, JobContext

    url = bench_database(args.database_url, args.db_name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE nightcrew.jobs")
    out_path = os.path.join(tempfile.mkdtemp(prefix="nc-pickup-"), "marks.log")
    proc = multiprocessing.get_context("spawn").Process(target=worker, args=(url, out_path))
    proc.start()
    app = App(url, migrate_on_start=False)

    @app.job(JOB_TYPE, max_attempts=1)
    async def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    app.enqueue(JOB_TYPE, {"i": -1})  # the worker is up once this one ran
    _wait(lambda: lines(out_path) >= 1, 60, "the worker never ran the warm-up job")
    time.sleep(1.0)  # idle
    sent: dict[int, tuple[float, float]] = {}
    for i in range(args.jobs):
        called = time.time()
        app.enqueue(JOB_TYPE, {"i": i})
        sent[i] = (called, time.time())
        time.sleep(LATENCY_INTERVAL)
    _wait(lambda: lines(out_path) >= args.jobs + 1, 120, None)
    os.kill(proc.pid or 0, signal.SIGTERM)
    proc.join(15)
    app.close()
    parts: dict[str, list[float]] = {p: [] for p in PARTS}
    with open(out_path) as f:
        for line in f:
            i, notify, fetch0, fetch1, start = map(float, line.split())
            if int(i) < 0:
                continue
            called, returned = sent[int(i)]
            steps = (returned - called, notify - returned, fetch0 - notify, fetch1 - fetch0,
                     start - fetch1, start - called)  # fmt: skip
            for part, seconds in zip(PARTS, steps, strict=True):
                parts[part].append(seconds * 1000)
    for part, ms in parts.items():
        q = statistics.quantiles(ms, n=100)
        print(f"{part:9s} p50 {q[49]:6.2f}  p95 {q[94]:6.2f}  p99 {q[98]:6.2f}  max {max(ms):6.2f}")
    slowest = sorted(range(len(parts["total"])), key=parts["total"].__getitem__)[-5:]
    print("slowest:", *({p: round(parts[p][j], 2) for p in PARTS} for j in slowest), sep="\n  ")


if __name__ == "__main__":
    main()
